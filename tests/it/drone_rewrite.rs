//! Drone and Woodpecker CI (issue 20 item 4): Kaniko plugin steps are
//! rewritten to the maintained buildx plugin (`thegeeklab/drone-docker-buildx`
//! on Drone, `woodpeckerci/plugin-docker-buildx` on Woodpecker) with the
//! guarantees every platform keeps: golden output, idempotent, the output
//! parses and is clean of KM001 but for the steps kept for a human, the
//! builds read back the same, inline ignores hold, and the privileged step
//! the buildx plugin needs is a KM004 finding.

use std::fs;
use std::path::{Path, PathBuf};

use kmigrate::buildx::equivalence::Explained;
use kmigrate::platform::Platform;
use kmigrate::verify::equivalence;

use crate::support::run_in;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The pipeline fixtures: `(snapshot name, directory, file in it)`.
fn pipelines() -> Vec<(&'static str, PathBuf, &'static str)> {
    vec![
        (
            "drone",
            fixtures().join("drone-rewrite/drone"),
            ".drone.yml",
        ),
        (
            "woodpecker_dir",
            fixtures().join("woodpecker"),
            ".woodpecker/build.yaml",
        ),
        (
            "woodpecker_file",
            fixtures().join("woodpecker"),
            ".woodpecker.yml",
        ),
    ]
}

/// `text` at `file` in a fresh directory.
fn scratch(file: &str, text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(file);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, text).unwrap();
    dir
}

#[test]
fn drone_rewrite_golden_idempotent_clean_and_equivalent() {
    for (name, dir, file) in pipelines() {
        let original = fs::read_to_string(dir.join(file)).unwrap();
        let (text, messages, code) = run_in(&dir, &["rewrite", "--stdout", file]);
        assert_eq!(code, 0, "{name}: {messages}");
        snapshot!(
            format!("drone_rewrite__{name}"),
            format!("{text}\n----- stderr -----\n{messages}")
        );
        for doc in serde_yaml_docs(&text) {
            doc.unwrap_or_else(|e| panic!("{name}: rewritten text does not parse: {e}"));
        }

        // Rewriting the output changes nothing.
        let tmp = scratch(file, &text);
        let (again, _, _) = run_in(tmp.path(), &["rewrite", "--stdout", file]);
        assert_eq!(again, text, "{name}: rewrite is not idempotent");

        // `check` on the output: KM001 only on the steps kept for a human.
        let (after, _, _) = run_in(tmp.path(), &["check", "--format", "json", file]);
        let (before, _, _) = run_in(&dir, &["check", "--format", "json", file]);
        let manual = before.matches("not rewritten automatically").count();
        assert_eq!(
            after.matches("\"KM001\"").count(),
            manual,
            "{name}: {after}"
        );
        assert!(!after.contains("\"KM003\""), "{name}: {after}");

        // The safety net, read from the outside.
        if text != original {
            let m = equivalence::texts(
                &dir.join(file),
                Platform::Drone,
                &original,
                &text,
                &Explained::default(),
            )
            .unwrap();
            assert!(m.is_empty(), "{name}: {m:?}");
        }
    }
}

/// Every YAML document of `text`, parsed.
fn serde_yaml_docs(text: &str) -> Vec<Result<yaml_serde::Value, String>> {
    text.split("\n---\n")
        .map(|d| yaml_serde::from_str::<yaml_serde::Value>(d).map_err(|e| e.to_string()))
        .collect()
}

#[test]
fn drone_rewrite_a_tampered_rewrite_reads_back_as_a_different_build() {
    let dir = fixtures().join("drone-rewrite/drone");
    let original = fs::read_to_string(dir.join(".drone.yml")).unwrap();
    let (text, _, _) = run_in(&dir, &["rewrite", "--stdout", ".drone.yml"]);
    for (from, to, field) in [
        ("target: runtime", "target: debug", "Target"),
        ("context: docker", "context: .", "Context"),
        ("mode=max", "mode=min", "CacheExports"),
    ] {
        let tampered = text.replacen(from, to, 1);
        assert_ne!(tampered, text, "{from}");
        let m = equivalence::texts(
            &dir.join(".drone.yml"),
            Platform::Drone,
            &original,
            &tampered,
            &Explained::default(),
        )
        .unwrap();
        assert!(
            m.iter().any(|m| format!("{:?}", m.fields).contains(field)),
            "{from}: {m:?}"
        );
    }
}

/// The privileged step is said once per rewritten step, with what the
/// server must allow on each CI system.
#[test]
fn drone_rewrite_privileged_step_is_km004_per_system() {
    let (out, _, _) = run_in(
        &fixtures().join("drone-rewrite/drone"),
        &["check", "--format", "json", ".drone.yml"],
    );
    assert_eq!(out.matches("\"KM004\"").count(), 2, "{out}");
    assert!(out.contains("Trusted"), "{out}");
    let (out, _, _) = run_in(
        &fixtures().join("woodpecker"),
        &["check", "--format", "json", ".woodpecker/build.yaml"],
    );
    assert_eq!(out.matches("\"KM004\"").count(), 1, "{out}");
    assert!(
        out.contains("WOODPECKER_PLUGINS_PRIVILEGED=woodpeckerci/plugin-docker-buildx:6"),
        "{out}"
    );
}

/// Settings kmigrate cannot translate keep the step as it is, each with a
/// KM012 saying why.
#[test]
fn drone_rewrite_untranslatable_settings_are_manual_with_why() {
    let (out, _, _) = run_in(
        &fixtures().join("drone-rewrite/drone"),
        &["check", "--format", "concise", ".drone.yml"],
    );
    for why in [
        "the setting `auto_tag` cannot be translated",
        "these plugins log in with cloud credentials",
    ] {
        assert!(out.contains(why), "{why}: {out}");
    }
    let (out, _, _) = run_in(
        &fixtures().join("woodpecker"),
        &["check", "--format", "concise", "."],
    );
    for why in [
        "the setting `build_args_from_env` cannot be translated",
        "needs `repo:` even for a dry run",
    ] {
        assert!(out.contains(why), "{why}: {out}");
    }
    // A setting the plugin does not read at all stops the translation.
    let text = "kind: pipeline\nsteps:\n  - name: p\n    image: plugins/kaniko\n    settings:\n      repo: r.example/a\n      cache: true\n";
    let dir = scratch(".drone.yml", text);
    let (out, _, _) = run_in(dir.path(), &["rewrite", "--stdout", ".drone.yml"]);
    assert_eq!(out, text);
    let (out, _, _) = run_in(dir.path(), &["check", "--format", "concise", "."]);
    assert!(
        out.contains("the setting `cache` is not one kmigrate knows"),
        "{out}"
    );
}

#[test]
fn drone_rewrite_inline_ignore_keeps_the_step() {
    let text = "kind: pipeline\nsteps:\n  - name: p\n    # kmigrate: ignore[KM001]\n    image: plugins/kaniko\n    settings:\n      repo: r.example/a\n";
    let dir = scratch(".drone.yml", text);
    let (out, err, code) = run_in(dir.path(), &["check", "."]);
    assert_eq!(code, 0, "{out}{err}");
    let (out, _, _) = run_in(dir.path(), &["rewrite", "--stdout", ".drone.yml"]);
    assert_eq!(out, text);
    let dir = scratch(
        ".drone.yml",
        &text.replace("    # kmigrate: ignore[KM001]\n", ""),
    );
    let (out, _, _) = run_in(dir.path(), &["rewrite", "--stdout", ".drone.yml"]);
    assert!(out.contains("thegeeklab/drone-docker-buildx"), "{out}");
}

#[test]
fn drone_rewrite_every_format() {
    let dir = fixtures().join("woodpecker");
    for format in ["json", "sarif", "gitlab", "github", "concise"] {
        let (out, err, code) = run_in(&dir, &["check", "--format", format, "."]);
        assert_eq!(code, 1, "{format}: {err}");
        assert!(
            out.contains("KM001") && out.contains("KM004"),
            "{format}: {out}"
        );
    }
}

/// Woodpecker passes `build-args` to the plugin as `PLUGIN_BUILD_ARGS`, so
/// the setting is read (and kept as written); Drone passes names as
/// written, so there it is a setting the plugin does not read.
#[test]
fn drone_rewrite_woodpecker_reads_hyphenated_settings() {
    let steps = "steps:\n  - name: b\n    image: woodpeckerci/plugin-kaniko\n    settings:\n      registry: r.example\n      repo: team/app\n      build-args: A=1\n";
    let dir = scratch(".woodpecker.yml", steps);
    let (out, err, code) = run_in(dir.path(), &["rewrite", "--stdout", ".woodpecker.yml"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("woodpeckerci/plugin-docker-buildx"), "{out}");
    assert!(out.contains("      build-args: A=1\n"), "{out}");
    let drone = "kind: pipeline\nsteps:\n  - name: b\n    image: plugins/kaniko\n    settings:\n      repo: r.example/team/app\n      build-args: A=1\n";
    let dir = scratch(".drone.yml", drone);
    let (out, _, _) = run_in(dir.path(), &["rewrite", "--stdout", ".drone.yml"]);
    assert_eq!(out, drone);
    let (out, _, _) = run_in(dir.path(), &["check", "--format", "concise", "."]);
    assert!(
        out.contains("the setting `build-args` is not one kmigrate knows"),
        "{out}"
    );
}

/// A setting written as an alias is read as the value its anchor names.
#[test]
fn drone_rewrite_reads_settings_through_aliases() {
    let text = "variables:\n  - &file Containerfile\nsteps:\n  - name: b\n    image: woodpeckerci/plugin-kaniko\n    settings:\n      registry: r.example\n      repo: team/app\n      dockerfile: *file\n";
    let dir = scratch(".woodpecker.yml", text);
    let (out, err, code) = run_in(dir.path(), &["rewrite", "--stdout", ".woodpecker.yml"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("woodpeckerci/plugin-docker-buildx"), "{out}");
    assert!(out.contains("      dockerfile: *file\n"), "{out}");
}
