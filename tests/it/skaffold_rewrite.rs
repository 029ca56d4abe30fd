//! Skaffold (issue 20 item 3): a `build:` whose Kaniko artifacts use only
//! `dockerfile`, `target` and `buildArgs` moves from `cluster:` to `local:`
//! with BuildKit, each `kaniko:` becoming `docker:`; golden output,
//! idempotent, clean of KM001 but for the builds kept for a human, read back
//! as the same builds, a KM004 for the move, and left alone by
//! `--only-exact` (the build changes where it runs).

use std::fs;
use std::path::{Path, PathBuf};

use kmigrate::buildx::equivalence::Explained;
use kmigrate::platform::Platform;
use kmigrate::verify::equivalence;

use crate::support::run_in;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/skaffold-rewrite/local")
}

#[test]
fn skaffold_rewrite_golden_idempotent_clean_and_equivalent() {
    let original = fs::read_to_string(dir().join("skaffold.yaml")).unwrap();
    let (text, messages, code) = run_in(&dir(), &["rewrite", "--stdout", "skaffold.yaml"]);
    assert_eq!(code, 0, "{messages}");
    snapshot!(
        "skaffold_rewrite__local",
        format!("{text}\n----- stderr -----\n{messages}")
    );
    yaml_serde::from_str::<yaml_serde::Value>(&text).unwrap();

    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("skaffold.yaml"), &text).unwrap();
    let (again, _, _) = run_in(tmp.path(), &["rewrite", "--stdout", "skaffold.yaml"]);
    assert_eq!(again, text, "rewrite is not idempotent");

    // Only the cached profile's artifact is left (a cache has no exact
    // `docker:` form).
    let (after, _, _) = run_in(tmp.path(), &["check", "--format", "concise", "."]);
    let km001: Vec<&str> = after.lines().filter(|l| l.contains(" KM001 ")).collect();
    assert_eq!(km001.len(), 1, "{after}");
    assert!(km001[0].contains("profiles[cached]"), "{after}");

    let m = equivalence::texts(
        &dir().join("skaffold.yaml"),
        Platform::Skaffold,
        &original,
        &text,
        &Explained::default(),
    )
    .unwrap();
    assert!(m.is_empty(), "{m:?}");
    let tampered = text.replacen("target: runtime", "target: debug", 1);
    let m = equivalence::texts(
        &dir().join("skaffold.yaml"),
        Platform::Skaffold,
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
fn skaffold_rewrite_says_what_moves_and_only_exact_leaves_it() {
    let (out, _, _) = run_in(&dir(), &["check", "--format", "json", "skaffold.yaml"]);
    assert_eq!(out.matches("\"KM004\"").count(), 2, "{out}");
    assert!(out.contains("docker login"), "{out}");
    let original = fs::read_to_string(dir().join("skaffold.yaml")).unwrap();
    let (text, err, code) = run_in(
        &dir(),
        &["rewrite", "--stdout", "--only-exact", "skaffold.yaml"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(text, original);
}
