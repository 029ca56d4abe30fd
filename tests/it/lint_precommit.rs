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

/// How to run pre-commit: the `pre-commit` script, or `python3 -m
/// pre_commit` when the script is not on PATH (a `pip install --user`).
fn pre_commit_cmd() -> Option<Vec<&'static str>> {
    for cmd in [&["pre-commit"][..], &["python3", "-m", "pre_commit"][..]] {
        let ok = Command::new(cmd[0])
            .args(&cmd[1..])
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(cmd.to_vec());
        }
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "pre-commit is not installed; scripts/test.sh installs it from PyPI"
    );
    eprintln!("skipping: pre-commit is not installed (run scripts/test.sh)");
    None
}

fn pre_commit_command(cmd: &[&str]) -> Command {
    let mut c = Command::new(cmd[0]);
    c.args(&cmd[1..]);
    c
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

fn pre_commit(cmd: &[&str], dir: &Path, home: &Path, args: &[&str]) -> Output {
    pre_commit_command(cmd)
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
    let Some(cmd) = pre_commit_cmd() else { return };
    let o = pre_commit_command(&cmd)
        .arg("validate-manifest")
        .arg(manifest())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn check_hook_fails_on_findings_and_rewrite_hook_fixes_files() {
    let Some(cmd) = pre_commit_cmd() else { return };
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
    // Excluded in kmigrate.toml: the hooks pass it, --force-exclude skips it.
    fs::create_dir_all(project.join("vendor")).unwrap();
    fs::write(project.join("vendor/cloudbuild.yaml"), KANIKO).unwrap();
    fs::write(
        project.join("kmigrate.toml"),
        "[paths]\nexclude = [\"vendor\"]\n",
    )
    .unwrap();
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
    let o = pre_commit(&cmd, &project, &home, &["run", "--all-files"]);
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
    assert!(!out.contains("vendor"), "excluded: {out}");
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
    let o = pre_commit(&cmd, &project, &home, &["run", "--all-files"]);
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
    assert_eq!(
        fs::read_to_string(project.join("vendor/cloudbuild.yaml")).unwrap(),
        KANIKO
    );
    git(&project, &["add", "-A"]);
    let o = pre_commit(&cmd, &project, &home, &["run", "--all-files"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // And the check hook now passes on the rewritten file.
    fs::write(
        project.join(".pre-commit-config.yaml"),
        config("kmigrate-check"),
    )
    .unwrap();
    git(&project, &["add", "-A"]);
    let o = pre_commit(&cmd, &project, &home, &["run", "--all-files"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}
