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
