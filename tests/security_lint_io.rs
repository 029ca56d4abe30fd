//! Hostile input against the lint and rewrite side (issue 13, items 14-19):
//! terminal escapes in names and text, unbounded stdin, symlinks out of a
//! walked tree, rewrite metadata and signals, multi-file all-or-nothing
//! rewrites, and one-line configs. Every fixture is generated here.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kmigrate"));
    c.env("NO_COLOR", "1")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("FORCE_COLOR");
    c
}

fn kmigrate(cwd: &Path, args: &[&str]) -> Output {
    bin()
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .expect("kmigrate runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The limit `SourceFile::read` applies to files (src/source/mod.rs).
const MAX_FILE_BYTES: usize = 8 * 1024 * 1024;

#[test]
fn stdin_larger_than_the_file_limit_is_refused_with_a_bounded_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = bin()
        .args(["check", "-", "--stdin-filename", "cloudbuild.yaml"])
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // An endless stream: the writer stops when kmigrate closes the pipe,
    // or after a bound far past the limit that an unbounded read would eat.
    let writer = std::thread::spawn(move || {
        let chunk = "# padding padding padding padding padding padding padding\n".repeat(1024);
        let mut sent = 0;
        while sent < 20 * MAX_FILE_BYTES {
            if stdin.write_all(chunk.as_bytes()).is_err() {
                return sent;
            }
            sent += chunk.len();
        }
        sent
    });
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    let sent = writer.join().unwrap();
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("cloudbuild.yaml") && err.contains("byte limit"),
        "{err}"
    );
    assert!(
        sent < 20 * MAX_FILE_BYTES,
        "kmigrate read the whole stream ({sent} bytes) instead of stopping at the limit"
    );
}

/// Runs kmigrate, killing it after `limit` (an unbounded run fails the
/// test instead of hanging it).
fn kmigrate_within(cwd: &Path, args: &[&str], limit: Duration) -> Output {
    let child = bin()
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = done.clone();
    let watchdog = std::thread::spawn(move || {
        let started = Instant::now();
        while started.elapsed() < limit {
            if flag.load(std::sync::atomic::Ordering::SeqCst) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        true
    });
    let out = child.wait_with_output().unwrap();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(
        !watchdog.join().unwrap(),
        "kmigrate {args:?} ran past {limit:?}"
    );
    out
}

const KANIKO_STEP: &str =
    "steps:\n  - name: gcr.io/kaniko-project/executor\n    args: ['--destination=r/app']\n";

#[test]
fn the_walk_does_not_follow_symlinks_out_of_the_tree() {
    use std::os::unix::fs::symlink;
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    let repo = tmp.path().join("repo");
    fs::create_dir_all(outside.join("deep")).unwrap();
    fs::create_dir_all(repo.join("sub")).unwrap();
    fs::write(outside.join("cloudbuild.yaml"), KANIKO_STEP).unwrap();
    fs::write(outside.join("deep/cloudbuild.yaml"), KANIKO_STEP).unwrap();
    fs::write(repo.join("cloudbuild.yaml"), KANIKO_STEP).unwrap();
    fs::write(repo.join("sub/real.yaml"), KANIKO_STEP).unwrap();
    symlink("/", repo.join("rootlink")).unwrap();
    symlink(&outside, repo.join("outlink")).unwrap();
    symlink("sub", repo.join("inlink")).unwrap();
    // A symlinked file: inside the tree it is checked, outside it is not.
    symlink("sub/real.yaml", repo.join("cloudbuild-in.yaml")).unwrap();
    symlink(
        outside.join("cloudbuild.yaml"),
        repo.join("cloudbuild-out.yaml"),
    )
    .unwrap();

    let o = kmigrate_within(
        &repo,
        &["check", "--format", "json"],
        Duration::from_secs(60),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut paths: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "KM001")
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    paths.dedup();
    assert_eq!(paths, ["cloudbuild-in.yaml", "cloudbuild.yaml"], "{v:#}");
    assert_eq!(v["errors"], serde_json::json!([]), "{v:#}");

    // Named on the command line, a link (or a path through one) is the
    // user's choice and is read.
    let o = kmigrate(
        &repo,
        &[
            "check",
            "--format",
            "json",
            "cloudbuild-out.yaml",
            "outlink",
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let paths: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"cloudbuild-out.yaml"), "{v:#}");
    // (`outlink/cloudbuild.yaml` is the file `cloudbuild-out.yaml` names,
    // reported once.)
    assert!(paths.contains(&"outlink/deep/cloudbuild.yaml"), "{v:#}");
}
