//! Resource bounds of `check` on hostile CI files (issue 13, items 12 and
//! 13): small files that expand to huge values are refused with a message
//! naming the file and the limit, under a memory limit so a regression fails
//! the test instead of exhausting the machine; and large valid files of the
//! shapes that used to take quadratic time give the right findings (their
//! speed is measured by `scripts/bench.sh`, not here).

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The address space a `check` gets here: far more than any of these files
/// needs, far less than what an unbounded expansion takes.
const MEMORY_LIMIT: u64 = 1 << 30;

/// `kmigrate ARGS` in `dir` under [`MEMORY_LIMIT`]; a run longer than 120 s
/// fails the test.
fn kmigrate_limited(dir: &Path, args: &[&str]) -> Output {
    let mut child = Command::new("prlimit")
        .arg(format!("--as={MEMORY_LIMIT}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_kmigrate"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("prlimit runs kmigrate");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(120) {
            child.kill().unwrap();
            panic!("kmigrate {args:?} did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Checks `.gitlab-ci.yml` holding `text` and expects a refusal (exit 2,
/// not a crash) whose message names the file and says each of `says`.
fn refused(text: &str, says: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".gitlab-ci.yml"), text).unwrap();
    let out = kmigrate_limited(dir.path(), &["check", "--no-config", ".gitlab-ci.yml"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{:?}\nstderr: {}",
        out.status,
        &stderr[..stderr.len().min(2000)]
    );
    assert!(stderr.contains(".gitlab-ci.yml:"), "{stderr}");
    for s in says {
        assert!(stderr.contains(s), "{s:?} not in {stderr}");
    }
}

/// A double-quoted scalar of `len` bytes.
fn big_scalar(len: usize) -> String {
    format!("\"{}\"", "x".repeat(len))
}

#[test]
fn alias_bomb_over_a_large_scalar_is_refused_by_bytes() {
    // 100,000 aliases of a 512 KiB scalar: 200,001 nodes, well inside the
    // node budget, but 50 GB of copies.
    let mut text = format!(".big: &big {}\n.bomb: [", big_scalar(512 << 10));
    for i in 0..100_000 {
        text.push_str(if i == 0 { "*big" } else { ", *big" });
    }
    text.push_str("]\n");
    assert!(text.len() < 2 << 20);
    refused(&text, &["aliases expand to more than 64 MiB"]);
}

#[test]
fn merge_key_bomb_over_a_large_template_is_refused_by_bytes() {
    let mut text = format!(".t: &t\n  script: {}\n", big_scalar(512 << 10));
    for i in 0..20_000 {
        let _ = writeln!(text, "j{i}: {{<<: *t}}");
    }
    refused(&text, &["aliases expand to more than 64 MiB"]);
}

#[test]
fn extends_chain_written_shallowest_first_is_held_to_the_depth_limit() {
    // Each template extends the one before it: resolved in file order, each
    // step finds its parent already resolved, and the chain grows without
    // ever looking deep (it reached 7.8 GB on a 538 KB file).
    let mut text = String::from(".t0:\n  script: [x]\n");
    for i in 1..20_000 {
        let _ = writeln!(
            text,
            ".t{i}:\n  extends: .t{}\n  variables: {{V{i}: value-of-variable-{i}}}",
            i - 1
        );
    }
    refused(&text, &["`extends` nests deeper than 11 levels"]);
}

#[test]
fn extends_chains_are_measured_the_same_in_either_order() {
    // GitLab's limit: 11 levels, so a chain of ten `extends` (eleven
    // entries) is allowed and one of eleven is not, whichever order the
    // chain is written in.
    for (edges, allowed) in [(10, true), (11, false)] {
        for shallowest_first in [true, false] {
            let name = |i: usize| {
                if i == edges {
                    "job".to_string()
                } else {
                    format!(".t{i}")
                }
            };
            let mut entries: Vec<String> = (0..=edges)
                .map(|i| match i {
                    0 => ".t0:\n  script: [x]\n".to_string(),
                    _ => format!("{}:\n  extends: {}\n", name(i), name(i - 1)),
                })
                .collect();
            if !shallowest_first {
                entries.reverse();
            }
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join(".gitlab-ci.yml"), entries.concat()).unwrap();
            let out = kmigrate_limited(
                dir.path(),
                &["check", "--no-config", "--exit-zero", ".gitlab-ci.yml"],
            );
            let stderr = String::from_utf8_lossy(&out.stderr);
            let refused = stderr.contains("`extends` nests deeper than 11 levels");
            assert_eq!(
                refused, !allowed,
                "{edges} levels, shallowest first: {shallowest_first}: {stderr}"
            );
            assert_eq!(
                out.status.code(),
                Some(if allowed { 0 } else { 2 }),
                "{stderr}"
            );
        }
    }
}

#[test]
fn extends_bomb_over_a_large_template_is_refused_by_bytes() {
    // Few lines, one 512 KiB template, 20,000 jobs extending it: 10 GB of
    // copies.
    let mut text = format!(".big:\n  script: [{}]\n", big_scalar(512 << 10));
    for i in 0..20_000 {
        let _ = writeln!(text, "j{i}: {{extends: .big}}");
    }
    refused(&text, &["`extends` copies more than 64 MiB"]);
}
