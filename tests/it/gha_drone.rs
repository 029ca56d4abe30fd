//! Drone and Woodpecker CI (issue 20 item 4, detection and report): Kaniko
//! plugin steps and executor calls in `commands:` are found by path
//! convention and content, reported in every format with what to do, and
//! silenced by inline ignores; `rewrite` leaves the files as they are.

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::{concise_lines, kmigrate, output_text, run_in};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/drone")
}

/// Plugin steps (any tag, every pipeline document) and executor calls count;
/// comments, `echo` lines and a step silenced inline do not.
#[test]
fn gha_drone_detection_by_path_with_precision() {
    let (out, err, code) = run_in(&root(), &["check", "--format", "concise", "."]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        concise_lines(&out, "KM001"),
        [
            "drone/.drone.yml:14",
            "drone/.drone.yml:28",
            "drone/.drone.yml:36",
            "woodpecker/.woodpecker/images.yaml:5",
            "woodpecker/.woodpecker.yml:3",
        ],
        "{out}"
    );
    assert_eq!(
        concise_lines(&out, "KM011"),
        ["drone/.drone.yml:28", "woodpecker/.woodpecker.yml:9"],
        "{out}"
    );
}

#[test]
fn gha_drone_help_names_the_buildx_plugin_and_the_privileged_step() {
    let dir = root().join("woodpecker");
    let (out, _, _) = run_in(&dir, &["check", "--format", "json", ".woodpecker.yml"]);
    for needle in [
        "woodpeckerci/plugin-docker-buildx",
        "thegeeklab/drone-docker-buildx",
        "privileged: true",
        "WOODPECKER_PLUGINS_PRIVILEGED",
    ] {
        assert!(out.contains(needle), "{needle}: {out}");
    }
    for format in ["sarif", "gitlab", "github"] {
        let (out, err, code) = run_in(&dir, &["check", "--format", format, ".woodpecker.yml"]);
        assert_eq!(code, 1, "{format}: {err}");
        assert!(out.contains("KM001"), "{format}: {out}");
    }
}

#[test]
fn gha_drone_rewrite_leaves_the_files_byte_identical() {
    let path = root().join("drone/.drone.yml");
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join(".drone.yml");
    fs::copy(&path, &copy).unwrap();
    let before = fs::read(&copy).unwrap();
    let (_, err, code) = run_in(dir.path(), &["rewrite", ".drone.yml"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(fs::read(&copy).unwrap(), before);
}

#[test]
fn gha_drone_platform_by_content_and_by_flag() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("ci.yml"),
        "kind: pipeline\nsteps:\n  - name: p\n    image: plugins/kaniko\n    settings: {repo: a/b}\n",
    )
    .unwrap();
    let (out, _, code) = run_in(dir.path(), &["check", "--format", "concise", "ci.yml"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("KM001"), "{out}");
    // Woodpecker's map form, named anything, with the flag's alias.
    fs::write(
        dir.path().join("build.yml"),
        "steps:\n  p:\n    image: woodpeckerci/plugin-kaniko\n    settings: {repo: a/b}\n",
    )
    .unwrap();
    let (out, _, code) = run_in(
        dir.path(),
        &[
            "check",
            "--format",
            "concise",
            "--platform",
            "woodpecker",
            "build.yml",
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("KM001"), "{out}");
    // A file of no platform: the error names every platform and flag.
    fs::write(dir.path().join("other.yml"), "a: 1\n").unwrap();
    let (_, err, code) = run_in(dir.path(), &["check", "other.yml"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("other.yml: not a "), "{err}");
    for name in [
        "Drone / Woodpecker CI",
        "Cloud Build",
        "GitHub Actions",
        "GitLab CI",
    ] {
        assert!(err.contains(name), "{name} missing: {err}");
    }
    let flags = err.split("--platform ").nth(1).unwrap_or_default();
    for flag in ["drone", "cloudbuild", "github", "gitlab"] {
        assert!(
            flags.split(['|', '\n']).any(|f| f == flag),
            "{flag} missing: {err}"
        );
    }
}

#[test]
fn gha_drone_report() {
    let o = kmigrate(&root(), &["report", "."]);
    snapshot!("gha_drone__report", output_text(&o));
}
