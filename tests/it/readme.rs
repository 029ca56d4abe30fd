//! The README's shell examples, run. A block whose info string is
//! `sh runnable` is taken line by line: each command runs with `sh` in a
//! fresh copy of `tests/fixtures/readme/` (plus the repository's
//! `examples/`), with the binary under test as `kmigrate` on the PATH. A
//! command may find something (exit 1); a usage, read or parse error
//! (exit 2, or anything else) fails the test with the line that broke.
//! `sh runnable registry` blocks get a loopback registry holding the busybox
//! base image, written `127.0.0.1:5000` in the README and the fixture.
//! Blocks left as plain `sh` need what tests cannot have (the network, a
//! toolchain, the suite itself); the test lists them so that the choice
//! stays visible.

use crate::support::*;

use std::path::{Path, PathBuf};
use std::process::Command;

const README_PORT: &str = "127.0.0.1:5000";

struct Block {
    /// The line of the opening fence (1-based).
    line: usize,
    info: String,
    commands: Vec<(usize, String)>,
}

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

/// Every fenced block, with its commands: comments dropped, backslash
/// continuations joined.
fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    let mut pending = String::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(rest) = line.strip_prefix("```") {
            match open.take() {
                None => {
                    open = Some(Block {
                        line: i + 1,
                        info: rest.trim().to_string(),
                        commands: Vec::new(),
                    })
                }
                Some(b) => out.push(b),
            }
            continue;
        }
        let Some(block) = open.as_mut() else { continue };
        let code = strip_comment(line);
        if let Some(head) = code.strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        pending.push_str(code);
        let command = std::mem::take(&mut pending).trim().to_string();
        if !command.is_empty() {
            block.commands.push((i + 1, command));
        }
    }
    out
}

/// A line without its trailing `# comment` (a `#` after whitespace and
/// outside quotes, as sh reads it).
fn strip_comment(line: &str) -> &str {
    let (mut single, mut double) = (false, false);
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev_space => return line[..i].trim_end(),
            _ => {}
        }
        prev_space = c.is_whitespace();
    }
    line.trim_end()
}

fn copy_dir(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from) {
        let e = e.unwrap();
        let dest = to.join(e.path().strip_prefix(from).unwrap());
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// A fresh tree for one command, with the README's registry address
/// replaced by the live one.
fn tree(registry: Option<&str>) -> tempfile::TempDir {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&root.join("tests/fixtures/readme"), dir.path());
    copy_dir(&root.join("examples"), &dir.path().join("examples"));
    if let Some(addr) = registry {
        let df = dir.path().join("Dockerfile");
        let text = std::fs::read_to_string(&df).unwrap();
        std::fs::write(&df, text.replace(README_PORT, addr)).unwrap();
    }
    dir
}

fn run(command: &str, cwd: &Path, state: &Path) -> std::process::Output {
    let bin_dir: PathBuf = Path::new(env!("CARGO_BIN_EXE_kmigrate"))
        .parent()
        .unwrap()
        .into();
    Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(cwd)
        .env(
            "PATH",
            format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap()),
        )
        .env("NO_COLOR", "1")
        .env("KMIGRATE_STATE_DIR", state)
        .output()
        .unwrap()
}

/// The two commands the README opens with are the suite and a release
/// build; here they stand for the binary under test.
fn as_tested(command: &str) -> Option<String> {
    if command.starts_with("bash scripts/test.sh") {
        return None; // the suite that is running this test
    }
    Some(command.replacen("cargo run --release --", "kmigrate", 1))
}

#[test]
fn readme_shell_examples_run() {
    let text = readme();
    let all = blocks(&text);
    let runnable: Vec<&Block> = all
        .iter()
        .filter(|b| b.info.split_whitespace().nth(1) == Some("runnable"))
        .collect();
    assert!(runnable.len() >= 4, "runnable blocks: {}", runnable.len());
    let needs_registry = runnable.iter().any(|b| b.info.contains("registry"));
    let registry = if needs_registry {
        let Some(r) = registry_with_busybox() else {
            return;
        };
        Some(r)
    } else {
        None
    };
    let addr = registry.as_ref().map(|(r, _)| r.addr.clone());
    let mut ran = 0;
    let mut failures = Vec::new();
    for block in &runnable {
        let live = block
            .info
            .contains("registry")
            .then(|| addr.as_deref().unwrap());
        for (line, command) in &block.commands {
            let Some(command) = as_tested(command) else {
                continue;
            };
            let command = match live {
                Some(a) => command.replace(README_PORT, a),
                None => command,
            };
            let dir = tree(live);
            let state = tempfile::tempdir().unwrap();
            let out = run(&command, dir.path(), state.path());
            ran += 1;
            if !matches!(out.status.code(), Some(0 | 1)) {
                failures.push(format!(
                    "README.md:{line}: `{command}` exited {:?}\n{}",
                    out.status.code(),
                    output_text(&out)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(ran >= 25, "only {ran} commands ran");
}

/// The shell blocks that are not run, and why: a new one must be run or
/// named here.
#[test]
fn readme_blocks_not_run_are_the_known_ones() {
    let text = readme();
    let not_run: Vec<String> = blocks(&text)
        .iter()
        .filter(|b| {
            b.info.starts_with("sh") && b.info.split_whitespace().nth(1) != Some("runnable")
        })
        .map(|b| {
            b.commands
                .first()
                .map(|(_, c)| c.clone())
                .unwrap_or_default()
        })
        .collect();
    let known = [
        // verify pulls the public base images the example names.
        "kmigrate verify cloudbuild.yaml",
        // cargo-fuzz on a nightly toolchain, for minutes.
        "cd fuzz",
    ];
    assert_eq!(
        not_run.len(),
        known.len(),
        "shell blocks not run: {not_run:?}"
    );
    for (block, start) in not_run.iter().zip(known) {
        assert!(block.starts_with(start), "a shell block not run: {block}");
    }
}

#[test]
fn block_reader_joins_continuations_and_drops_comments() {
    let b = blocks("x\n```sh runnable\na --x \\\n  b   # c\n# only\nd '#e' f#g\n```\n");
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].line, 2);
    assert_eq!(
        b[0].commands,
        vec![(4, "a --x   b".to_string()), (6, "d '#e' f#g".to_string())]
    );
}
