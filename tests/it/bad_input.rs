//! The bad-input suite: one table, each row an input kmigrate may meet in
//! the wild and what must happen (exit code, a message naming the file and
//! line, files untouched or rewritten as they must be, never a panic).
//! Then a crash test: `rewrite` killed with SIGKILL at random moments leaves
//! every file fully old or fully new.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const KANIKO: &str = include_str!("../fixtures/bad/kaniko.yaml");

fn kmigrate(dir: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kmigrate"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kmigrate runs");
    // A hang (alias expansion, deep recursion) fails the row, not the suite.
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("kmigrate {args:?} did not finish in 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

/// How a row sets up its directory.
type Setup = fn(&Path);

/// What must hold after the command.
#[derive(Clone, Copy)]
enum After {
    /// Every file is byte-for-byte as before.
    Unchanged,
    /// A check that the rewritten files are as they must be.
    Check(fn(&Path)),
}

struct Row {
    name: &'static str,
    setup: Setup,
    args: &'static [&'static str],
    code: i32,
    /// Each must appear in stderr (a file and line, as `path:line:`).
    stderr: &'static [&'static str],
    after: After,
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) {
    let p = dir.join(name);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, bytes).unwrap();
}

fn mkfifo(path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::S_IRWXU).unwrap();
}

fn billion_laughs(dir: &Path) {
    // Seven levels of ten references: 10^6 leaves once fully expanded.
    let mut s = String::from("l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..=6 {
        let refs = vec![format!("*l{}", i - 1); 10].join(", ");
        s.push_str(&format!("l{i}: &l{i} [{refs}]\n"));
    }
    s.push_str(
        "build:\n  image: gcr.io/kaniko-project/executor:debug\n  variables:\n    LAUGHS: *l6\n  \
         script:\n    - /kaniko/executor --context . --destination r/app:1\n",
    );
    write(dir, ".gitlab-ci.yml", s);
}

fn deep_nesting(dir: &Path) {
    let depth = 100_000;
    let s = format!(
        "{KANIKO}extra: {}{}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    write(dir, "cloudbuild.yaml", s);
}

fn deep_block_nesting(dir: &Path) {
    // `- - - … x`: a block sequence 100,000 levels deep on one line.
    let s = format!("{KANIKO}extra:\n  {}x\n", "- ".repeat(100_000));
    write(dir, "cloudbuild.yaml", s);
}

fn fifty_megabytes(dir: &Path) {
    let mut s = String::from(KANIKO);
    let line = "# padding padding padding padding padding padding padding padding\n";
    while s.len() < 50 * 1024 * 1024 {
        s.push_str(line);
    }
    write(dir, "cloudbuild.yaml", s);
}

fn assert_rewritten(path: &Path) {
    let text = fs::read_to_string(path).unwrap();
    assert!(text.contains("buildx"), "not rewritten:\n{text}");
    assert!(!text.contains("kaniko-project/executor"), "{text}");
}

const ROWS: &[Row] = &[
    Row {
        name: "invalid YAML",
        setup: |d| {
            write(
                d,
                "cloudbuild.yaml",
                format!("{KANIKO}  - [unclosed\n- id: x\n  : :\n"),
            )
        },
        args: &["check", "cloudbuild.yaml"],
        code: 2,
        stderr: &["cloudbuild.yaml:", "cannot be parsed"],
        after: After::Unchanged,
    },
    Row {
        name: "invalid YAML, rewrite",
        setup: |d| {
            write(
                d,
                "cloudbuild.yaml",
                format!("{KANIKO}  - [unclosed\n- id: x\n  : :\n"),
            )
        },
        args: &["rewrite", "cloudbuild.yaml"],
        code: 2,
        stderr: &["cloudbuild.yaml:"],
        after: After::Unchanged,
    },
    Row {
        name: "billion laughs (10^6 expansion)",
        setup: billion_laughs,
        args: &["rewrite", "--check", ".gitlab-ci.yml"],
        code: 2,
        stderr: &[".gitlab-ci.yml:1:", "alias"],
        after: After::Unchanged,
    },
    Row {
        name: "100,000-deep flow nesting",
        setup: deep_nesting,
        args: &["check", "cloudbuild.yaml"],
        code: 2,
        stderr: &["cloudbuild.yaml:9:", "nesting is deeper"],
        after: After::Unchanged,
    },
    Row {
        name: "100,000-deep block nesting, rewrite",
        setup: deep_block_nesting,
        args: &["rewrite", "cloudbuild.yaml"],
        code: 2,
        stderr: &["cloudbuild.yaml:"],
        after: After::Unchanged,
    },
    Row {
        name: "a 50 MB file",
        setup: fifty_megabytes,
        args: &["rewrite", "cloudbuild.yaml"],
        code: 2,
        stderr: &["cloudbuild.yaml: is 5", "byte limit"],
        after: After::Unchanged,
    },
    Row {
        name: "invalid UTF-8",
        setup: |d| {
            write(
                d,
                "cloudbuild.yaml",
                [KANIKO.as_bytes(), b"# caf\xe9\n"].concat(),
            )
        },
        args: &["check", "cloudbuild.yaml"],
        code: 2,
        stderr: &["cloudbuild.yaml:9:6: is not valid UTF-8"],
        after: After::Unchanged,
    },
    Row {
        name: "invalid UTF-8 in a file without Kaniko (not parsed, still refused)",
        setup: |d| write(d, "cloudbuild.yaml", b"steps: []\n# caf\xe9\n"),
        args: &["check", "."],
        code: 2,
        stderr: &["cloudbuild.yaml:2:6: is not valid UTF-8"],
        after: After::Unchanged,
    },
    Row {
        name: "a UTF-8 BOM is kept",
        setup: |d| write(d, "cloudbuild.yaml", format!("\u{feff}{KANIKO}")),
        args: &["rewrite", "cloudbuild.yaml"],
        code: 0,
        stderr: &[],
        after: After::Check(|d| {
            let p = d.join("cloudbuild.yaml");
            assert_rewritten(&p);
            assert!(
                fs::read(&p)
                    .unwrap()
                    .starts_with("\u{feff}# A Cloud".as_bytes())
            );
        }),
    },
    Row {
        name: "tabs for indentation",
        setup: |d| write(d, "cloudbuild.yaml", KANIKO.replace("  args:", "\targs:")),
        args: &["rewrite", "cloudbuild.yaml"],
        code: 2,
        stderr: &["cloudbuild.yaml:"],
        after: After::Unchanged,
    },
    Row {
        name: "CRLF round-trips",
        setup: |d| write(d, "cloudbuild.yaml", KANIKO.replace('\n', "\r\n")),
        args: &["rewrite", "cloudbuild.yaml"],
        code: 0,
        stderr: &[],
        after: After::Check(|d| {
            let p = d.join("cloudbuild.yaml");
            assert_rewritten(&p);
            let text = fs::read_to_string(&p).unwrap();
            assert_eq!(
                text.matches('\n').count(),
                text.matches("\r\n").count(),
                "{text:?}"
            );
        }),
    },
    Row {
        name: "read-only file on rewrite",
        setup: |d| {
            write(d, "cloudbuild.yaml", KANIKO);
            let p = d.join("cloudbuild.yaml");
            fs::set_permissions(p, fs::Permissions::from_mode(0o444)).unwrap();
        },
        args: &["rewrite", "cloudbuild.yaml"],
        code: 2,
        stderr: &["cloudbuild.yaml", "read-only"],
        after: After::Unchanged,
    },
    Row {
        name: "a symlink to a config: the target is rewritten, the link kept",
        setup: |d| {
            write(d, "real/target.yaml", KANIKO);
            std::os::unix::fs::symlink("real/target.yaml", d.join("cloudbuild.yaml")).unwrap();
        },
        args: &["rewrite", "cloudbuild.yaml"],
        code: 0,
        stderr: &[],
        after: After::Check(|d| {
            let link = d.join("cloudbuild.yaml");
            assert!(
                fs::symlink_metadata(&link)
                    .unwrap()
                    .file_type()
                    .is_symlink()
            );
            assert_eq!(fs::read_link(&link).unwrap(), Path::new("real/target.yaml"));
            assert_rewritten(&d.join("real/target.yaml"));
        }),
    },
    Row {
        // `check` walks a directory it is given, whatever its name.
        name: "a directory named cloudbuild.yaml, named to check",
        setup: |d| fs::create_dir_all(d.join("cloudbuild.yaml")).unwrap(),
        args: &["check", "cloudbuild.yaml"],
        code: 0,
        stderr: &["warning: no CI files", "under cloudbuild.yaml"],
        after: After::Unchanged,
    },
    Row {
        name: "a directory named cloudbuild.yaml, rewrite",
        setup: |d| fs::create_dir_all(d.join("cloudbuild.yaml")).unwrap(),
        args: &["rewrite", "cloudbuild.yaml"],
        code: 2,
        stderr: &["cloudbuild.yaml: is a directory"],
        after: After::Unchanged,
    },
    Row {
        name: "a directory named cloudbuild.yaml, walked past",
        setup: |d| {
            fs::create_dir_all(d.join("cloudbuild.yaml")).unwrap();
            write(d, "svc/cloudbuild.yaml", KANIKO);
        },
        args: &["check", "."],
        code: 1,
        stderr: &["1 file"],
        after: After::Unchanged,
    },
    Row {
        // Opening a FIFO for reading waits for a writer; kmigrate must not.
        // A walk takes regular files only.
        name: "a FIFO named cloudbuild.yaml, walked past",
        setup: |d| mkfifo(&d.join("svc/cloudbuild.yaml")),
        args: &["check", "."],
        code: 0,
        stderr: &["no CI files"],
        after: After::Unchanged,
    },
    Row {
        // Named, it is read: refused, without waiting for a writer.
        name: "a FIFO named cloudbuild.yaml, rewrite",
        setup: |d| mkfifo(&d.join("cloudbuild.yaml")),
        args: &["rewrite", "cloudbuild.yaml"],
        code: 2,
        stderr: &["cloudbuild.yaml: is not a regular file"],
        after: After::Unchanged,
    },
    Row {
        name: "an empty Cloud Build file: no build to run",
        setup: |d| write(d, "cloudbuild.yaml", ""),
        args: &["rewrite", "cloudbuild.yaml"],
        code: 2,
        stderr: &["cloudbuild.yaml: the file is empty"],
        after: After::Unchanged,
    },
    Row {
        name: "an empty Cloud Build file, walked",
        setup: |d| write(d, "svc/cloudbuild.yaml", ""),
        args: &["check", "."],
        code: 2,
        stderr: &["svc/cloudbuild.yaml: the file is empty"],
        after: After::Unchanged,
    },
    Row {
        name: "an empty GitLab file",
        setup: |d| write(d, ".gitlab-ci.yml", ""),
        args: &["check", ".gitlab-ci.yml"],
        code: 0,
        stderr: &[],
        after: After::Unchanged,
    },
    Row {
        name: "only comments",
        setup: |d| write(d, "cloudbuild.yaml", "# nothing yet\n# kaniko later\n"),
        args: &["rewrite", "cloudbuild.yaml"],
        code: 2,
        stderr: &["cloudbuild.yaml: the file is empty"],
        after: After::Unchanged,
    },
    Row {
        name: "only comments, check",
        setup: |d| write(d, ".gitlab-ci.yml", "# nothing yet\n"),
        args: &["check", "."],
        code: 0,
        stderr: &[],
        after: After::Unchanged,
    },
];

/// Every regular file under `dir` with its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out: Vec<(PathBuf, Vec<u8>)> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| (e.path().to_path_buf(), fs::read(e.path()).unwrap()))
        .collect();
    out.sort();
    out
}

#[test]
fn bad_inputs() {
    let mut failures = Vec::new();
    for row in ROWS {
        let dir = tempfile::tempdir().unwrap();
        (row.setup)(dir.path());
        let before = snapshot(dir.path());
        let out = kmigrate(dir.path(), row.args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let mut problems = Vec::new();
        if out.status.code() != Some(row.code) {
            problems.push(format!("exit {:?}, want {}", out.status.code(), row.code));
        }
        if stderr.contains("panicked") {
            problems.push("panicked".into());
        }
        for want in row.stderr {
            if !stderr.contains(want) {
                problems.push(format!("stderr lacks {want:?}"));
            }
        }
        match row.after {
            After::Unchanged => {
                if snapshot(dir.path()) != before {
                    problems.push("files changed".into());
                }
            }
            After::Check(check) => {
                if let Err(e) = std::panic::catch_unwind(|| check(dir.path())) {
                    problems.push(format!("after: {e:?}"));
                }
            }
        }
        // Let the temporary directory go even when a row made files read-only.
        for e in walkdir::WalkDir::new(dir.path()).into_iter().flatten() {
            let _ = fs::set_permissions(e.path(), fs::Permissions::from_mode(0o755));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{}: {}\n--- stderr (head)\n{}",
                row.name,
                problems.join("; "),
                stderr.chars().take(800).collect::<String>()
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

/// `rewrite` of 1,000 files killed with SIGKILL at pseudo-random moments:
/// every file is always either the original or the full rewrite.
#[test]
fn sigkill_during_rewrite_leaves_every_file_old_or_new() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..1000)
        .map(|i| format!("s{i:04}/cloudbuild.yaml"))
        .collect();
    let old: Vec<String> = (0..1000)
        .map(|i| KANIKO.replace("app:1", &format!("app{i}:1")))
        .collect();
    for (n, t) in names.iter().zip(&old) {
        write(dir.path(), n, t);
    }
    // The expected new text, from an uninterrupted run on a copy.
    let reference = tempfile::tempdir().unwrap();
    for (n, t) in names.iter().zip(&old) {
        write(reference.path(), n, t);
    }
    let mut args = vec!["rewrite"];
    args.extend(names.iter().map(String::as_str));
    let out = kmigrate(reference.path(), &args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new: Vec<String> = names
        .iter()
        .map(|n| fs::read_to_string(reference.path().join(n)).unwrap())
        .collect();
    assert!(
        new.iter()
            .zip(&old)
            .all(|(n, o)| n != o && n.contains("buildx"))
    );

    let mut seed: u64 = 0x5eed;
    let mut saw_partial_run = false;
    for round in 0..6 {
        // Restore every file, then kill a fresh run after 0-40 ms... 0-240 ms.
        for (n, t) in names.iter().zip(&old) {
            fs::write(dir.path().join(n), t).unwrap();
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_millis(seed % (40 * (round + 1)));
        let mut child = Command::new(env!("CARGO_BIN_EXE_kmigrate"))
            .args(&args)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let mut done = 0;
        for (i, n) in names.iter().enumerate() {
            let now = fs::read_to_string(dir.path().join(n)).unwrap();
            assert!(
                now == old[i] || now == new[i],
                "round {round}: {n} is neither old nor new:\n{now}"
            );
            done += usize::from(now == new[i]);
        }
        saw_partial_run |= done > 0 && done < names.len();
    }
    // Not asserted (timing-dependent), but worth knowing when it never happens.
    if !saw_partial_run {
        eprintln!("note: no round was killed in the middle of writing");
    }
}
