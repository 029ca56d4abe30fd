//! Resource bounds of `check` on hostile CI files (issue 13, items 12 and
//! 13): small files that expand to huge values are refused with a message
//! naming the file and the limit, under a memory limit so a regression fails
//! the test instead of exhausting the machine; and large valid files of the
//! shapes that used to take quadratic time give the right findings (their
//! speed is measured by `scripts/bench.sh`, not here).

use std::fmt::Write as _;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The address space a `check` gets here: far more than any of these files
/// needs, far less than what an unbounded expansion takes.
const MEMORY_LIMIT: u64 = 1 << 30;

/// `kmigrate ARGS` in `dir` under [`MEMORY_LIMIT`]; a run longer than 120 s
/// fails the test. Output goes to files, so a large report cannot block the
/// child on a full pipe while it is timed.
fn kmigrate_limited(dir: &Path, args: &[&str]) -> Output {
    let mut stdout = tempfile::tempfile().unwrap();
    let mut stderr = tempfile::tempfile().unwrap();
    let mut child = Command::new("prlimit")
        .arg(format!("--as={MEMORY_LIMIT}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_kmigrate"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(stdout.try_clone().unwrap())
        .stderr(stderr.try_clone().unwrap())
        .spawn()
        .expect("prlimit runs kmigrate");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(120) {
            child.kill().unwrap();
            panic!("kmigrate {args:?} did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |f: &mut std::fs::File| {
        let mut bytes = Vec::new();
        f.seek(SeekFrom::Start(0)).unwrap();
        f.read_to_end(&mut bytes).unwrap();
        bytes
    };
    Output {
        status,
        stdout: read(&mut stdout),
        stderr: read(&mut stderr),
    }
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

/// Findings per rule of `kmigrate check --format json` over `dir`'s files.
fn rule_counts(dir: &Path) -> std::collections::BTreeMap<String, usize> {
    let out = kmigrate_limited(
        dir,
        &[
            "check",
            "--no-config",
            "--exit-zero",
            "--format",
            "json",
            ".",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["errors"], serde_json::json!([]), "{report}");
    let mut counts = std::collections::BTreeMap::new();
    for f in report["findings"].as_array().unwrap() {
        *counts
            .entry(f["rule"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    counts
}

/// Writes `files(n)` for n = 1, 2 and `n`, and checks that every rule's
/// count grows by the same step per copy: a large file of a shape gets the
/// findings a small one gets, once per copy (its speed is a benchmark row).
fn findings_scale(n: usize, files: impl Fn(usize) -> Vec<(String, String)>) {
    let counts: Vec<_> = [1, 2, n]
        .iter()
        .map(|&k| {
            let dir = tempfile::tempdir().unwrap();
            for (name, text) in files(k) {
                let p = dir.path().join(name);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, text).unwrap();
            }
            rule_counts(dir.path())
        })
        .collect();
    assert!(!counts[0].is_empty(), "the shape must have findings");
    for (rule, &one) in &counts[0] {
        let step = counts[1].get(rule).copied().unwrap_or(0) - one;
        assert_eq!(
            counts[2].get(rule).copied().unwrap_or(0),
            one + (n - 1) * step,
            "{rule}: {counts:?}"
        );
    }
    assert_eq!(
        counts[0].keys().collect::<Vec<_>>(),
        counts[2].keys().collect::<Vec<_>>()
    );
}

const KANIKO_JOB: &str = "build:\n  image: {name: gcr.io/kaniko-project/executor:debug, entrypoint: [\"\"]}\n  script: [/kaniko/executor --context . --destination registry.example/app:1]\n";

#[test]
fn many_top_level_jobs_give_the_findings_of_one() {
    // Thousands of plain jobs around one Kaniko job: its findings, no more.
    let with = |jobs: usize| {
        let mut text = String::new();
        for i in 0..jobs {
            let _ = writeln!(text, "job-{i}: {{script: [make test-{i}]}}");
        }
        text + KANIKO_JOB
    };
    let alone = tempfile::tempdir().unwrap();
    std::fs::write(alone.path().join(".gitlab-ci.yml"), with(0)).unwrap();
    let many = tempfile::tempdir().unwrap();
    std::fs::write(many.path().join(".gitlab-ci.yml"), with(5000)).unwrap();
    let expected = rule_counts(alone.path());
    assert!(!expected.is_empty());
    assert_eq!(rule_counts(many.path()), expected);
}

#[test]
fn many_jobs_aliasing_one_image_each_get_their_findings() {
    findings_scale(400, |n| {
        let mut text = String::from(
            ".kaniko: &kaniko {name: gcr.io/kaniko-project/executor:debug, entrypoint: [\"\"]}\n",
        );
        for i in 0..n {
            let _ = writeln!(
                text,
                "job-{i}: {{image: *kaniko, script: [/kaniko/executor --context . --destination r.example/app{i}:1]}}"
            );
        }
        vec![(".gitlab-ci.yml".into(), text)]
    });
}

#[test]
fn many_cloud_build_steps_sharing_args_each_get_their_findings() {
    findings_scale(400, |n| {
        let mut text = String::from("steps:\n");
        for i in 0..n {
            let args = if i == 0 {
                "&a ['--destination=gcr.io/p/app:1', '--context=.']"
            } else {
                "*a"
            };
            let _ = writeln!(
                text,
                "- id: build-{i}\n  name: gcr.io/kaniko-project/executor:latest\n  args: {args}"
            );
        }
        vec![("cloudbuild.yaml".into(), text)]
    });
}

/// `n` flow-style docker steps, each exporting cache (a KM003 fix).
fn flow_steps(n: usize) -> String {
    let mut text = String::from("steps:\n");
    for i in 0..n {
        let _ = writeln!(
            text,
            "- {{name: gcr.io/cloud-builders/docker, args: [build, '--cache-to=ref=c{i}', '-t', 'i{i}', '.']}}"
        );
    }
    text
}

#[test]
fn many_flow_style_steps_each_get_their_fix_in_flow_style() {
    findings_scale(400, |n| vec![("cloudbuild.yaml".into(), flow_steps(n))]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cloudbuild.yaml"), flow_steps(400)).unwrap();
    let out = kmigrate_limited(
        dir.path(),
        &["rewrite", "--no-config", "--stdout", "cloudbuild.yaml"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    // Every step keeps its one line, the new flags written inline.
    assert_eq!(
        text.lines().filter(|l| l.starts_with("- {")).count(),
        400,
        "{text}"
    );
    // The new items are quoted like the list's own quoted items.
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("- {") && l.contains("'--builder', 'kmigrate'"))
            .count(),
        400,
        "{text}"
    );
}

#[test]
fn many_included_files_each_get_their_findings() {
    findings_scale(300, |n| {
        let mut files = vec![(
            ".gitlab-ci.yml".to_string(),
            "include: 'ci/*.yml'\nstages: [build]\n".to_string(),
        )];
        for i in 0..n {
            files.push((
                format!("ci/job{i:04}.yml"),
                format!(
                    "job-{i}:\n  stage: build\n  image: {{name: gcr.io/kaniko-project/executor:debug, entrypoint: [\"\"]}}\n  script: [/kaniko/executor --context . --destination r.example/app{i}:1]\n"
                ),
            ));
        }
        files
    });
}
