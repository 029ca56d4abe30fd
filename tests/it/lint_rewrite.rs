//! `kmigrate rewrite` honours the lint's configuration and inline ignores:
//! a step whose Kaniko finding is silenced is left as it is.

use std::fs;
use std::path::Path;

use crate::support::kmigrate;

const TWO_STEPS: &str = "steps:
  # kmigrate: ignore[KM001] the platform team migrates this one
  - id: legacy
    name: gcr.io/kaniko-project/executor:latest
    args: ['--destination=gcr.io/p/legacy', '--snapshot-mode=redo']
  - id: app
    name: gcr.io/kaniko-project/executor:latest
    args: ['--destination=gcr.io/p/app']
";

fn rewritten(dir: &Path, extra: &[&str]) -> String {
    let mut args = vec!["rewrite", "--stdout", "cloudbuild.yaml"];
    args.extend(extra);
    let o = kmigrate(dir, &args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn setup(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("cloudbuild.yaml"), text).unwrap();
    dir
}

#[test]
fn an_ignored_step_is_not_rewritten() {
    let dir = setup(TWO_STEPS);
    let out = rewritten(dir.path(), &[]);
    // The ignored step is byte for byte as it was, its flag note's fix
    // (the same step rewrite) withheld too; the other step is migrated
    // behind one setup step.
    let legacy = "  - id: legacy
    name: gcr.io/kaniko-project/executor:latest
    args: ['--destination=gcr.io/p/legacy', '--snapshot-mode=redo']
";
    assert!(out.contains(legacy), "{out}");
    assert_eq!(out.matches("kaniko-project").count(), 1, "{out}");
    assert_eq!(out.matches("id: setup-buildx").count(), 1, "{out}");
    assert!(out.contains("gcr.io/p/app"), "{out}");
    // The ignored step's flag note ("--snapshot-mode removed") is not
    // reported: nothing is removed from a step that stays.
    let o = kmigrate(dir.path(), &["rewrite", "--diff", "cloudbuild.yaml"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains("KM010"), "{stderr}");
    assert!(stderr.contains("would rewrite 1 Kaniko step"), "{stderr}");
    // And the result is clean under check: the only Kaniko use left is
    // the ignored one.
    fs::write(dir.path().join("cloudbuild.yaml"), &out).unwrap();
    let o = kmigrate(
        dir.path(),
        &["check", "cloudbuild.yaml", "--format", "json"],
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rules: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert!(!rules.contains(&"KM001"), "{rules:?}");
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn no_ignores_rewrites_everything() {
    let dir = setup(TWO_STEPS);
    let out = rewritten(dir.path(), &["--no-ignores"]);
    assert!(!out.contains("kaniko-project"), "{out}");
    assert_eq!(out.matches("id: setup-buildx").count(), 1, "{out}");
}

#[test]
fn every_build_silenced_leaves_the_file_untouched() {
    let text = TWO_STEPS.replace(
        "  - id: app\n",
        "  # kmigrate: ignore[KM001]\n  - id: app\n",
    );
    let dir = setup(&text);
    assert_eq!(rewritten(dir.path(), &[]), text);
    // In place: the file is not written and the summary says so.
    let o = kmigrate(dir.path(), &["rewrite", "cloudbuild.yaml"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        fs::read_to_string(dir.path().join("cloudbuild.yaml")).unwrap(),
        text
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("nothing to rewrite"));
}

#[test]
fn a_rule_ignored_in_the_configuration_is_not_fixed() {
    let plain = TWO_STEPS.replace(
        "  # kmigrate: ignore[KM001] the platform team migrates this one\n",
        "",
    );
    let dir = setup(&plain);
    fs::write(
        dir.path().join("kmigrate.toml"),
        "[rules]\nignore = [\"KM001\"]\n",
    )
    .unwrap();
    assert_eq!(rewritten(dir.path(), &[]), plain);
    assert!(!rewritten(dir.path(), &["--no-config"]).contains("kaniko-project"));
}
