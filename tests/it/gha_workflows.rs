//! GitHub Actions (issue 20 item 1): Kaniko actions and `run:` executor
//! calls in `.github/workflows/*.yml` are found by path convention, reported
//! in every format, silenced by inline ignores, counted by `report`, and
//! action steps are rewritten to docker/setup-buildx-action +
//! docker/build-push-action with the guarantees every platform keeps
//! (idempotent, the output parses and is clean under `check`, the builds
//! read back the same).

use std::fs;
use std::path::{Path, PathBuf};

use kmigrate::buildx::equivalence::Explained;
use kmigrate::platform::Platform;
use kmigrate::verify::equivalence;

use crate::support::{kmigrate, output_text, run_in};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/github")
}

/// Every workflow fixture, `(case/.github/workflows/name, path)`, sorted.
fn workflows() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for case in fs::read_dir(root()).unwrap() {
        let case = case.unwrap().path();
        let dir = case.join(".github/workflows");
        for f in fs::read_dir(&dir).unwrap() {
            let p = f.unwrap().path();
            let name = format!(
                "{}/{}",
                case.file_name().unwrap().to_str().unwrap(),
                p.file_name().unwrap().to_str().unwrap()
            );
            out.push((name, p));
        }
    }
    out.sort();
    out
}

/// A copy of `text` at `.github/workflows/<name>` in a fresh directory.
fn scratch(text: &str, name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let wf = dir.path().join(".github/workflows");
    fs::create_dir_all(&wf).unwrap();
    let path = wf.join(name);
    fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn gha_every_workflow_rewrites_as_snapshotted_and_keeps_the_guarantees() {
    for (name, path) in workflows() {
        let dir = path.parent().unwrap();
        let file = path.file_name().unwrap().to_str().unwrap();
        let original = fs::read_to_string(&path).unwrap();
        let (text, messages, code) = run_in(dir, &["rewrite", "--stdout", file]);
        assert_eq!(code, 0, "{name}: {messages}");
        snapshot!(
            format!("gha_workflows__{}", name.replace('/', "__")),
            format!("{text}\n----- stderr -----\n{messages}")
        );
        yaml_serde::from_str::<yaml_serde::Value>(&text)
            .unwrap_or_else(|e| panic!("{name}: rewritten text does not parse: {e}"));

        // Rewriting the output changes nothing.
        let (tmp, out) = scratch(&text, file);
        let (again, _, _) = run_in(tmp.path(), &["rewrite", "--stdout", out.to_str().unwrap()]);
        assert_eq!(again, text, "{name}: rewrite is not idempotent");

        // `check` on the output: no Kaniko left but the steps kept for a human.
        let (report, _, _) = run_in(tmp.path(), &["check", "--format", "json", "."]);
        let left = report.matches("\"KM001\"").count();
        let (before, _, _) = run_in(dir, &["check", "--format", "json", file]);
        let manual = before.matches("\"KM012\"").count()
            + before.matches("not rewritten automatically").count();
        if text != original {
            assert!(left <= manual, "{name}: {report}");
            assert!(!report.contains("\"KM003\""), "{name}: {report}");
        }

        // The safety net, read from the outside: the rewritten builds read
        // back as the originals.
        if text != original {
            let mismatches = equivalence::texts(
                &path,
                Platform::GitHub,
                &original,
                &text,
                &Explained::default(),
            )
            .unwrap();
            assert!(mismatches.is_empty(), "{name}: {mismatches:?}");
        }
    }
}

#[test]
fn gha_a_tampered_rewrite_reads_back_as_a_different_build() {
    let path = root().join("actions/.github/workflows/int128.yml");
    let original = fs::read_to_string(&path).unwrap();
    let dir = path.parent().unwrap();
    let (text, _, _) = run_in(dir, &["rewrite", "--stdout", "int128.yml"]);
    let tampered = text.replace("target: runtime", "target: debug");
    assert_ne!(tampered, text);
    let m = equivalence::texts(
        &path,
        Platform::GitHub,
        &original,
        &tampered,
        &Explained::default(),
    )
    .unwrap();
    assert!(
        m.iter()
            .any(|m| format!("{:?}", m.fields).contains("Target")),
        "{m:?}"
    );
}

#[test]
fn gha_check_finds_workflows_by_path_convention() {
    let (out, err, code) = run_in(&root(), &["check", "--format", "json", "."]);
    assert_eq!(code, 1, "{err}");
    for f in ["int128.yml", "aevea.yaml", "manual.yml", "run.yml"] {
        assert!(out.contains(f), "{f} not checked: {out}");
    }
    assert!(!out.contains("ci.yml"), "{out}");
}

/// Comments, `echo` lines and a `docker run` of another image never count;
/// `docker run` of the executor and `/kaniko/executor` (or bare `executor`)
/// in a Kaniko `container:` job do; two cached builds in one container are
/// KM002.
#[test]
fn gha_detection_precision_in_run_scripts() {
    let dir = root().join("run/.github/workflows");
    let (out, err, _) = run_in(&dir, &["check", "--format", "json", "run.yml"]);
    let v: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    let findings = v["findings"].as_array().or_else(|| v.as_array()).unwrap();
    let lines = |rule: &str| -> Vec<u64> {
        findings
            .iter()
            .filter(|f| f["rule"] == rule)
            .map(|f| {
                f["line"]
                    .as_u64()
                    .or_else(|| f["start"]["line"].as_u64())
                    .unwrap()
            })
            .collect()
    };
    assert_eq!(lines("KM001"), [12, 20, 21], "{out}");
    assert_eq!(lines("KM002"), [21], "{out}");
    assert!(lines("KM003").is_empty(), "{out}");
}

/// `uses: docker://` of the executor image and an action named after
/// Kaniko count; `docker://` of another image does not.
#[test]
fn gha_detection_of_container_steps_and_unknown_kaniko_actions() {
    let dir = root().join("run/.github/workflows");
    let (out, _, _) = run_in(&dir, &["check", "--format", "concise", "image.yml"]);
    let km001: Vec<&str> = out
        .lines()
        .filter(|l| l.contains(" KM001 "))
        .map(|l| l.split(':').nth(1).unwrap())
        .collect();
    assert_eq!(km001, ["7", "11", "15", "28", "30"], "{out}");
    let (json, _, _) = run_in(&dir, &["check", "--format", "json", "image.yml"]);
    assert!(json.contains("exists only inside a Kaniko image"), "{json}");
}

#[test]
fn gha_platform_is_detected_by_content_and_forced_by_flag() {
    let text = "on: push\njobs:\n  b:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: int128/kaniko-action@v1\n        with:\n          tags: r.example/a:1\n          push: true\n";
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("build.yml"), text).unwrap();
    let (out, err, code) = run_in(dir.path(), &["check", "build.yml"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("KM001"), "{out}");
    let (out, err, code) = run_in(
        dir.path(),
        &["rewrite", "--stdout", "--platform", "github", "build.yml"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("docker/build-push-action@v6"), "{out}");
}

#[test]
fn gha_inline_ignore_keeps_the_step_out_of_check_and_rewrite() {
    let text = "on: push\njobs:\n  b:\n    runs-on: ubuntu-latest\n    steps:\n      - name: kept\n        # kmigrate: ignore[KM001]\n        uses: int128/kaniko-action@v1\n        with:\n          tags: r.example/a:1\n          push: true\n";
    let (dir, _) = scratch(text, "b.yml");
    let (out, err, code) = run_in(dir.path(), &["check", "."]);
    assert_eq!(code, 0, "{out}{err}");
    let (out, _, _) = run_in(
        dir.path(),
        &["rewrite", "--stdout", ".github/workflows/b.yml"],
    );
    assert_eq!(out, text);
    let unsilenced = text.replace("        # kmigrate: ignore[KM001]\n", "");
    let (dir, _) = scratch(&unsilenced, "b.yml");
    let (out, _, code) = run_in(dir.path(), &["check", "."]);
    assert_eq!(code, 1, "{out}");
}

#[test]
fn gha_every_format_and_report() {
    let dir = root().join("actions/.github/workflows");
    for format in ["json", "sarif", "gitlab", "github"] {
        let (out, err, code) = run_in(&dir, &["check", "--format", format, "int128.yml"]);
        assert_eq!(code, 1, "{format}: {err}");
        assert!(out.contains("KM001"), "{format}: {out}");
    }
    let o = kmigrate(&root(), &["report", "."]);
    let text = output_text(&o);
    snapshot!("gha_workflows__report", text);
}

/// `verify` reads a workflow's builds: the Kaniko action step (rewritten in
/// memory) and, after `rewrite`, the build-push-action step, each built cold
/// then warm from its registry cache in the embedded store.
#[test]
fn gha_verify_builds_the_workflow_before_and_after_rewrite() {
    let (dir, path) = scratch(
        "on: push\njobs:\n  b:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - name: app\n        uses: int128/kaniko-action@v1\n        with:\n          tags: r.example/app:1\n          push: true\n          context: app\n          cache: true\n          cache-repository: r.example/app/cache\n",
        "b.yml",
    );
    fs::create_dir_all(dir.path().join("app")).unwrap();
    fs::write(
        dir.path().join("app/Dockerfile"),
        "FROM scratch\nCOPY hello.txt /hello.txt\n",
    )
    .unwrap();
    fs::write(dir.path().join("app/hello.txt"), "hi\n").unwrap();
    let config = path.to_str().unwrap();
    let context = dir.path().to_str().unwrap();
    for round in ["original", "rewritten"] {
        let store = dir.path().join(format!("store-{round}"));
        let (out, err, code) = run_in(
            dir.path(),
            &[
                "verify",
                config,
                "--context",
                context,
                "--store",
                store.to_str().unwrap(),
            ],
        );
        assert_eq!(code, 0, "{round}: {out}{err}");
        assert!(out.contains("1 passed"), "{round}: {out}");
        assert!(out.contains("warm: 0 executed, 1 cached"), "{round}: {out}");
        if round == "original" {
            let (_, err, code) = run_in(dir.path(), &["rewrite", config]);
            assert_eq!(code, 0, "{err}");
            assert!(fs::read_to_string(&path).unwrap().contains(BUILD_PUSH));
        }
    }
}

const BUILD_PUSH: &str = "docker/build-push-action@v6";

#[test]
fn gha_github_cache_gha_moves_the_cache_to_the_cache_service_and_says_so() {
    let path = root().join("actions/.github/workflows/aevea.yaml");
    let original = fs::read_to_string(&path).unwrap();
    let (tmp, out) = scratch(&original, "aevea.yaml");
    let file = out.to_str().unwrap();
    let (text, messages, code) = run_in(
        tmp.path(),
        &["rewrite", "--github-cache", "gha", "--stdout", file],
    );
    assert_eq!(code, 0, "{messages}");
    assert!(text.contains("cache-from: type=gha\n"), "{text}");
    assert!(text.contains("cache-to: type=gha,mode=max\n"), "{text}");
    assert!(!text.contains("type=registry"), "{text}");
    assert!(
        messages.contains("registry.example.com/team/app-cache:buildcache")
            && messages.contains("cache service"),
        "{messages}"
    );
    // The same from kmigrate.toml; the default stays the registry.
    fs::write(
        tmp.path().join("kmigrate.toml"),
        "[rewrite]\ngithub_cache = \"gha\"\n",
    )
    .unwrap();
    let (from_config, _, _) = run_in(tmp.path(), &["rewrite", "--stdout", file]);
    assert_eq!(from_config, text);
    let (registry, _, _) = run_in(
        tmp.path(),
        &["rewrite", "--github-cache", "registry", "--stdout", file],
    );
    assert!(
        registry.contains("type=registry,ref=registry.example.com/team/app-cache:buildcache"),
        "{registry}"
    );

    // Idempotent, and the rewrite reads back as the original build once
    // the note is taken into account (and not without it).
    fs::write(&out, &text).unwrap();
    let (again, _, _) = run_in(tmp.path(), &["rewrite", "--stdout", file]);
    assert_eq!(again, text);
    let moved = Explained::from_notes(
        messages.lines().filter(|l| l.contains("cache service")),
        "buildcache",
    );
    assert!(moved.cache_service, "{messages}");
    let same = equivalence::texts(&path, Platform::GitHub, &original, &text, &moved).unwrap();
    assert!(same.is_empty(), "{same:?}");
    let plain = equivalence::texts(
        &path,
        Platform::GitHub,
        &original,
        &text,
        &Explained::default(),
    )
    .unwrap();
    assert!(
        !plain.is_empty(),
        "without the note the cache move is a difference"
    );
}
