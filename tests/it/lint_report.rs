//! `kmigrate report`: the migration audit over a fixture tree, snapshotted
//! in both formats.

use std::fs;
use std::path::Path;

use crate::support::kmigrate;

use serde_json::Value;

fn fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lint/report")
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

#[test]
fn gitlab_pipeline_report() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lint/gitlab");
    let o = kmigrate(&dir, &["report"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let md = String::from_utf8(o.stdout).unwrap();
    for needle in [
        "| `.gitlab-ci.yml` | GitLab CI | 1 |",
        "| `ci/build.yml` | GitLab CI | 1 |",
        // The two written calls of the multi-build job and the deploy call.
        "| `--destination` | 3 |",
        // The split KM002 is done by the rewrite: no manual task.
    ] {
        assert!(md.contains(needle), "{needle} not in\n{md}");
    }
    assert!(!md.contains("**KM002**"), "{md}");
    snapshot!("lint_report_gitlab", md);
}
