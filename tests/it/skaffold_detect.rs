//! Skaffold (issue 20 item 3): `kaniko:` artifacts of every config
//! document and profile are found by path convention and content, reported
//! in every format with the way off Kaniko Skaffold allows, counted by
//! `report`, silenced by inline ignores; `rewrite` leaves the files as
//! they are (Skaffold has no builder that keeps both the cluster and the
//! registry cache, so every migration is a human's choice).

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::{concise_lines, kmigrate, output_text, run_in};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/skaffold")
}

/// Every `kaniko:` artifact (top level, profiles, later documents) counts,
/// on the `kaniko:` key; `docker:` artifacts, comments and a config without
/// Kaniko do not; the cache TTL is KM005 and the flags get their notes.
#[test]
fn skaffold_detection_by_path_with_precision() {
    let (out, err, code) = run_in(&root(), &["check", "--format", "concise", "."]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        concise_lines(&out, "KM001"),
        [
            "app/skaffold.yaml:16",
            "app/skaffold.yaml:36",
            "app/skaffold.yaml:47"
        ],
        "{out}"
    );
    assert_eq!(
        concise_lines(&out, "KM005"),
        ["app/skaffold.yaml:23"],
        "{out}"
    );
    assert_eq!(
        concise_lines(&out, "KM011"),
        ["app/skaffold.yaml:22", "app/skaffold.yaml:25"],
        "{out}"
    );
    assert!(!out.contains("clean/"), "{out}");
    assert!(!out.contains("skaffold-local.yaml"), "{out}");
}

/// The help says why there is no rewrite and what to do, on and off the
/// cluster.
#[test]
fn skaffold_help_names_the_ways_off_kaniko() {
    let (out, _, _) = run_in(
        &root().join("app"),
        &["check", "--format", "json", "skaffold.yaml"],
    );
    for needle in [
        "no in-cluster builder but Kaniko",
        "useBuildkit: true",
        "cacheFrom",
        "BUILDKIT_INLINE_CACHE",
        "mode=max",
        "buildctl",
        "on the cluster (`build.cluster`)",
        "on Google Cloud Build",
        "profiles[gcb].build.artifacts[0]",
        "also sets `env`, `volumeMounts`",
    ] {
        assert!(out.contains(needle), "{needle}: {out}");
    }
}

#[test]
fn skaffold_every_format() {
    let dir = root().join("app");
    for format in ["json", "sarif", "gitlab", "github", "concise", "human"] {
        let (out, err, code) = run_in(&dir, &["check", "--format", format, "skaffold.yaml"]);
        assert_eq!(code, 1, "{format}: {err}");
        assert!(out.contains("KM001"), "{format}: {out}");
    }
}

#[test]
fn skaffold_rewrite_leaves_the_files_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("skaffold.yaml");
    fs::copy(root().join("app/skaffold.yaml"), &copy).unwrap();
    let before = fs::read(&copy).unwrap();
    let (_, err, code) = run_in(dir.path(), &["rewrite", "skaffold.yaml"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(fs::read(&copy).unwrap(), before);
}

#[test]
fn skaffold_platform_by_content_and_by_flag() {
    let dir = tempfile::tempdir().unwrap();
    let text = "apiVersion: skaffold/v2beta29\nkind: Config\nbuild:\n  cluster: {}\n  artifacts:\n    - image: a\n      kaniko: {}\n";
    fs::write(dir.path().join("deploy.yaml"), text).unwrap();
    let (out, _, code) = run_in(dir.path(), &["check", "--format", "concise", "deploy.yaml"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("KM001"), "{out}");
    let (out, _, code) = run_in(
        dir.path(),
        &[
            "check",
            "--format",
            "concise",
            "--platform",
            "skaffold",
            "deploy.yaml",
        ],
    );
    assert_eq!(code, 1, "{out}");
    // Another tool's `kind: Config` is not a Skaffold config.
    fs::write(
        dir.path().join("other.yaml"),
        "apiVersion: v1\nkind: Config\nbuild:\n  artifacts:\n    - kaniko: {}\n",
    )
    .unwrap();
    let (out, err, code) = run_in(dir.path(), &["check", "--format", "concise", "other.yaml"]);
    assert_ne!(code, 1, "{out}{err}");
    assert!(!out.contains("KM001"), "{out}");
}

#[test]
fn skaffold_inline_ignore() {
    let dir = tempfile::tempdir().unwrap();
    let text = "apiVersion: skaffold/v4beta11\nkind: Config\nbuild:\n  cluster: {}\n  artifacts:\n    - image: a\n      # kmigrate: ignore[KM001]\n      kaniko: {}\n";
    fs::write(dir.path().join("skaffold.yaml"), text).unwrap();
    let (out, err, code) = run_in(dir.path(), &["check", "."]);
    assert_eq!(code, 0, "{out}{err}");
    fs::write(
        dir.path().join("skaffold.yaml"),
        text.replace("      # kmigrate: ignore[KM001]\n", ""),
    )
    .unwrap();
    let (out, _, code) = run_in(dir.path(), &["check", "."]);
    assert_eq!(code, 1, "{out}");
}

#[test]
fn skaffold_report() {
    let o = kmigrate(&root(), &["report", "."]);
    snapshot!("skaffold_detect__report", output_text(&o));
}
