//! The shipped `.pre-commit-hooks.yaml`, run by the real `pre-commit`
//! (installed from PyPI by `scripts/test.sh`) in a temporary git repository.
//!
//! The manifest's hooks are used as written (ids, file patterns, types,
//! serial setting) except that `language: rust` (which would `cargo install`
//! kmigrate from the hook repository) becomes `language: system` with the
//! entry pointing at the binary under test.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn manifest() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".pre-commit-hooks.yaml")
}

fn pre_commit_available() -> bool {
    let found = Command::new("pre-commit")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "pre-commit is not installed; scripts/test.sh installs it from PyPI"
        );
        eprintln!("skipping: pre-commit is not installed (run scripts/test.sh)");
    }
    found
}

fn git(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .args([
            "-c",
            "user.name=kmigrate tests",
            "-c",
            "user.email=tests@kmigrate.invalid",
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

fn pre_commit(dir: &Path, home: &Path, args: &[&str]) -> Output {
    Command::new("pre-commit")
        .args(args)
        .current_dir(dir)
        .env("PRE_COMMIT_HOME", home)
        .env("NO_COLOR", "1")
        .env("PRE_COMMIT_COLOR", "never")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const KANIKO: &str = "steps:
  - name: gcr.io/kaniko-project/executor:latest
    args:
      - --destination=gcr.io/p/app
      - --cache=true
";

#[test]
fn manifest_validates() {
    if !pre_commit_available() {
        return;
    }
    let o = Command::new("pre-commit")
        .arg("validate-manifest")
        .arg(manifest())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn check_hook_fails_on_findings_and_rewrite_hook_fixes_files() {
    if !pre_commit_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");

    // A hook repository holding the manifest, pointed at the built binary.
    let hooks = tmp.path().join("hooks");
    fs::create_dir_all(&hooks).unwrap();
    let original = fs::read_to_string(manifest()).unwrap();
    assert_eq!(original.matches("\n  language: rust\n").count(), 2);
    let adapted = original
        .replace("\n  language: rust\n", "\n  language: system\n")
        .replace(
            "\n  entry: kmigrate ",
            &format!("\n  entry: {} ", env!("CARGO_BIN_EXE_kmigrate")),
        );
    assert_eq!(adapted.matches(env!("CARGO_BIN_EXE_kmigrate")).count(), 2);
    fs::write(hooks.join(".pre-commit-hooks.yaml"), adapted).unwrap();
    git(&hooks, &["init", "-q"]);
    git(&hooks, &["add", "-A"]);
    git(&hooks, &["commit", "-q", "-m", "hooks"]);
    let rev = git(&hooks, &["rev-parse", "HEAD"]);

    // A project with a Kaniko Cloud Build file, a clean one, and a Kaniko
    // file whose name the hooks' `files` pattern does not match.
    let project = tmp.path().join("project");
    fs::create_dir_all(project.join("deploy")).unwrap();
    fs::write(project.join("cloudbuild.yaml"), KANIKO).unwrap();
    fs::write(
        project.join("deploy/cloudbuild-clean.yml"),
        "steps:\n  - name: gcr.io/cloud-builders/docker\n    args: ['version']\n",
    )
    .unwrap();
    fs::write(project.join("notes.yaml"), KANIKO).unwrap();
    let config = |hook: &str| {
        format!(
            "repos:\n  - repo: {}\n    rev: {rev}\n    hooks:\n      - id: {hook}\n",
            hooks.display()
        )
    };
    git(&project, &["init", "-q"]);

    // kmigrate-check fails the commit and names the finding.
    fs::write(
        project.join(".pre-commit-config.yaml"),
        config("kmigrate-check"),
    )
    .unwrap();
    git(&project, &["add", "-A"]);
    let o = pre_commit(&project, &home, &["run", "--all-files"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("kmigrate check") && out.contains("Failed"),
        "{out}"
    );
    assert!(
        out.contains("KM001") && out.contains("cloudbuild.yaml"),
        "{out}"
    );
    assert!(!out.contains("notes.yaml"), "files pattern: {out}");
    assert_eq!(
        fs::read_to_string(project.join("cloudbuild.yaml")).unwrap(),
        KANIKO
    );

    // kmigrate-rewrite rewrites in place; pre-commit reports the change,
    // and a second run passes.
    fs::write(
        project.join(".pre-commit-config.yaml"),
        config("kmigrate-rewrite"),
    )
    .unwrap();
    git(&project, &["add", "-A"]);
    let o = pre_commit(&project, &home, &["run", "--all-files"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("files were modified by this hook"), "{out}");
    let rewritten = fs::read_to_string(project.join("cloudbuild.yaml")).unwrap();
    assert!(
        rewritten.contains("buildx") && !rewritten.contains("kaniko-project"),
        "{rewritten}"
    );
    assert_eq!(
        fs::read_to_string(project.join("notes.yaml")).unwrap(),
        KANIKO
    );
    git(&project, &["add", "-A"]);
    let o = pre_commit(&project, &home, &["run", "--all-files"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // And the check hook now passes on the rewritten file.
    fs::write(
        project.join(".pre-commit-config.yaml"),
        config("kmigrate-check"),
    )
    .unwrap();
    git(&project, &["add", "-A"]);
    let o = pre_commit(&project, &home, &["run", "--all-files"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}
