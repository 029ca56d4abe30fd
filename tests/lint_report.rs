//! `kmigrate report`: the migration audit over a fixture tree, snapshotted
//! in both formats.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn kmigrate(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kmigrate"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .output()
        .expect("kmigrate runs")
}

fn fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lint/report")
}

macro_rules! snapshot {
    ($name:expr, $value:expr) => {
        insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
            insta::assert_snapshot!($name, $value);
        })
    };
}

#[test]
fn markdown_report() {
    let o = kmigrate(&fixture(), &["report"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let md = String::from_utf8(o.stdout).unwrap();
    for needle in [
        "| Migrated automatically | 1 | 33% |",
        "| Manual only | 1 | 33% |",
        "| `cloudbuild.yaml:19` | KM001 | manual |",
        "**KM012**",
        "\"olderThan\": \"168h\"",
        "| `--snapshot-mode` | 1 | dropped",
    ] {
        assert!(md.contains(needle), "{needle} not in\n{md}");
    }
    snapshot!("lint_report_markdown", md);
}

#[test]
fn json_report() {
    let o = kmigrate(&fixture(), &["report", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["summary"]["builds"], 3);
    assert_eq!(v["summary"]["automatic"], 1);
    assert_eq!(v["summary"]["partial"], 1);
    assert_eq!(v["summary"]["manual"], 1);
    snapshot!("lint_report_json", String::from_utf8(o.stdout).unwrap());
}

#[test]
fn unreadable_files_are_listed_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for entry in ["cloudbuild.yaml", "deploy/cloudbuild-prod.yaml"] {
        let to = dir.path().join(entry);
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::copy(fixture().join(entry), to).unwrap();
    }
    fs::create_dir_all(dir.path().join("bad")).unwrap();
    fs::write(dir.path().join("bad/cloudbuild.yaml"), "steps: [\n").unwrap();
    let o = kmigrate(dir.path(), &["report"]);
    assert_eq!(o.status.code(), Some(2));
    let md = String::from_utf8(o.stdout).unwrap();
    assert!(
        md.contains("2 files scanned (5 steps/jobs), 1 not checked"),
        "{md}"
    );
    assert!(
        md.contains("## Not checked\n\n- bad/cloudbuild.yaml:"),
        "{md}"
    );
}
