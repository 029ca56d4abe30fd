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

/// The characters that must never reach a terminal raw: controls other
/// than line breaks and tabs (a `\r` only in `\r\n`), and, in human-facing
/// output, bidi controls and the Unicode line separators.
fn assert_terminal_safe(what: &str, bytes: &[u8], human: bool) {
    let s = String::from_utf8_lossy(bytes);
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let control = c.is_control()
            && c != '\n'
            && c != '\t'
            && !(c == '\r' && chars.get(i + 1) == Some(&'\n'));
        let bidi = matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
                | '\u{2028}' | '\u{2029}'
        );
        assert!(
            !(control || (human && bidi)),
            "{what}: raw {c:?} at char {i}:\n{}",
            s.escape_debug()
        );
    }
}

/// A Cloud Build config whose step id, arguments and comments carry
/// terminal escapes (YAML-escaped and raw, where YAML allows raw), under a
/// file name that carries them too.
const HOSTILE_CLOUDBUILD: &str = concat!(
    "# raw in a comment: \u{1b}]0;OWNED\u{7}\u{1b}[2J \u{9b}31m \u{202e}\r\n",
    "steps:\n",
    "  - id: \"s\\e]0;OWNED\\a\\e[2J\\x9b31m\\u202e\\u2066\\0\"\n",
    "    name: gcr.io/kaniko-project/executor # \u{1b}]0;OWNED\u{7}\u{1b}[2J \u{9b}31m \u{202e}\n",
    "    args:\n",
    "      - \"--destination=r/app\\e]0;OWNED\\a\"\n",
    "      - \"--cache=true\"\n",
    "      - \"--cache-ttl=6h\\e[2J\"\n",
    "      - \"--custom-platform=linux/\\x9b\\u202e\\0\"\n",
    "      - \"--unknown-flag\\e]0;OWNED\\a\\e[2J\"\n",
    "  - id: \"\u{202e}bidi\u{2066}\"\n",
    "    name: gcr.io/kaniko-project/executor\n",
    "    args: [\"--destination=r/b\\e[2J\", \"--reproducible\"]\n",
);

const HOSTILE_GITLAB: &str = concat!(
    "\"build\\e]0;OWNED\\a\\e[2J\\x9b\\u202e\\0\":\n",
    "  image: gcr.io/kaniko-project/executor:debug\n",
    "  script:\n",
    "    - /kaniko/executor --destination \"r/a\\e[2J\" --cache=true --context .\n",
    "    - /kaniko/executor --destination r/b --cache=true --unknown \"\\e]0;x\\a\"\n",
    "\"\u{202e}other\":\n",
    "  image: gcr.io/kaniko-project/executor:debug\n",
    "  script:\n",
    "    - /kaniko/executor --destination r/c $KANIKO_ARGS\n",
);

/// A name with an OSC title change, a screen clear, a C1 CSI and a bidi
/// override (file names may hold any byte but `/` and NUL).
const HOSTILE_NAME: &str = "cloudbuild-\u{1b}]0;OWNED\u{7}\u{1b}[2J\u{9b}\u{202e}.yaml";

fn hostile_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(HOSTILE_NAME), HOSTILE_CLOUDBUILD).unwrap();
    fs::write(dir.path().join("cloudbuild.yaml"), HOSTILE_CLOUDBUILD).unwrap();
    fs::write(dir.path().join(".gitlab-ci.yml"), HOSTILE_GITLAB).unwrap();
    fs::create_dir_all(dir.path().join("bad")).unwrap();
    // Unparseable, so its error message quotes what the parser saw.
    fs::write(
        dir.path().join("bad/cloudbuild-\u{1b}[2J.yaml"),
        "steps:\n  - name: gcr.io/kaniko-project/executor\n    args: [\"\\e[2J\u{202e}\n",
    )
    .unwrap();
    dir
}

#[test]
fn no_terminal_escape_from_input_reaches_any_human_output() {
    let d = hostile_repo();
    let p = d.path();
    let mut runs: Vec<(Vec<&str>, bool)> = vec![
        (vec!["check"], true),
        (vec!["check", "--format", "human", "-q"], true),
        (vec!["check", "--format", "github"], true),
        (vec!["check", "--format", "json"], false),
        (vec!["check", "--format", "sarif"], false),
        (vec!["check", "--format", "gitlab"], false),
        (vec!["check", HOSTILE_NAME, ".gitlab-ci.yml"], true),
        (vec!["check", "--format", "github", HOSTILE_NAME], true),
        (vec!["check", "does-not-exist-\u{1b}[2J\u{202e}"], true),
        (vec!["check", "--select", "KM001,\u{1b}[2J"], true),
        (vec!["report"], true),
        (vec!["report", "--format", "json"], false),
        (
            vec!["rewrite", "--diff", HOSTILE_NAME, ".gitlab-ci.yml"],
            true,
        ),
        (
            vec!["rewrite", "--check", HOSTILE_NAME, ".gitlab-ci.yml"],
            true,
        ),
        (
            vec!["rewrite", "--diff", "bad/cloudbuild-\u{1b}[2J.yaml"],
            true,
        ),
        (vec!["explain", "KM\u{1b}]0;OWNED\u{7}"], true),
        (vec!["explain", "KM001"], true),
    ];
    // Last, as it changes the files: the in-place rewrite's summary and notes.
    runs.push((
        vec!["rewrite", HOSTILE_NAME, "cloudbuild.yaml", ".gitlab-ci.yml"],
        true,
    ));
    let mut saw_escapes = false;
    for (args, human) in &runs {
        let o = kmigrate(p, args);
        assert!(o.status.code().is_some(), "{args:?} was killed");
        let what = format!("kmigrate {args:?}");
        assert_terminal_safe(&format!("{what} stdout"), &o.stdout, *human);
        assert_terminal_safe(&format!("{what} stderr"), &o.stderr, *human);
        let all = format!("{}{}", text(&o.stdout), text(&o.stderr));
        saw_escapes |= all.contains("\\u{1b}");
    }
    assert!(saw_escapes, "the hostile text is shown, escaped");
}

#[test]
fn the_human_report_shows_escapes_visibly() {
    let d = hostile_repo();
    let o = kmigrate(d.path(), &["check", HOSTILE_NAME]);
    let out = text(&o.stdout);
    // The name in the header, the decoded step id in the message and the
    // raw comment on the source line, escaped as `\u{…}`.
    for shown in [
        "cloudbuild-\\u{1b}]0;OWNED\\u{7}\\u{1b}[2J\\u{9b}\\u{202e}.yaml:4:11]",
        "step `s\\u{1b}]0;OWNED\\u{7}\\u{1b}[2J\\u{9b}31m\\u{202e}\\u{2066}\\u{0}`",
        "executor # \\u{1b}]0;OWNED\\u{7}\\u{1b}[2J \\u{9b}31m \\u{202e}",
    ] {
        assert!(out.contains(shown), "{shown} not in\n{out}");
    }
}

/// A one-line JSON Cloud Build config with `n` Kaniko steps.
fn one_line_json(n: usize) -> String {
    let steps: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "{{\"id\": \"s{i}\", \"name\": \"gcr.io/kaniko-project/executor\", \"args\": [\"--destination=r/app{i}\", \"--cache=true\"]}}"
            )
        })
        .collect();
    format!("{{\"steps\": [{}]}}\n", steps.join(", "))
}

#[test]
fn a_one_line_config_prints_a_bounded_excerpt_per_finding() {
    let d = tempfile::tempdir().unwrap();
    let config = one_line_json(2000);
    fs::write(d.path().join("cloudbuild.json"), &config).unwrap();
    for args in [
        vec!["check", "-q", "cloudbuild.json"],
        vec!["rewrite", "--check", "cloudbuild.json"],
    ] {
        let o = kmigrate_within(d.path(), &args, Duration::from_secs(120));
        let all = o.stdout.len() + o.stderr.len();
        let findings =
            text(&o.stdout).matches("KM0").count() + text(&o.stderr).matches("KM0").count();
        assert!(
            findings >= 2000 || args[0] == "rewrite",
            "{args:?}: {findings} findings"
        );
        // A whole line is ~200 KB; an excerpt is a few hundred bytes.
        assert!(
            all < 2000 * 2500,
            "{args:?}: {all} bytes of output for a {} byte file",
            config.len()
        );
    }
    // One windowed diagnostic, as drawn.
    let padded = one_line_json(2).replacen(
        "{",
        &format!(
            "{{\"substitutions\": {{\"_PAD\": \"{}\"}}, ",
            "x".repeat(300)
        ),
        1,
    );
    fs::write(d.path().join("cloudbuild.json"), padded).unwrap();
    let o = kmigrate(
        d.path(),
        &["check", "-q", "--select", "KM001", "cloudbuild.json"],
    );
    let out = text(&o.stdout);
    insta::with_settings!({snapshot_path => "../../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("security_lint_io__windowed_diagnostic", out);
    });
}

fn leftovers(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".kmigrate-"))
        .collect()
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) -> bool {
    xattr::set(path, name, value).is_ok()
}

fn get_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    xattr::get(path, name).ok().flatten()
}

#[test]
fn a_rewrite_keeps_owner_group_mode_and_xattrs() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("cloudbuild.yaml");
    fs::write(&f, KANIKO_STEP).unwrap();
    fs::set_permissions(&f, fs::Permissions::from_mode(0o640)).unwrap();
    let as_root = nix::unistd::geteuid().is_root();
    if as_root {
        std::os::unix::fs::chown(&f, Some(1234), Some(1234)).unwrap();
    }
    let xattrs = set_xattr(&f, "user.kmigrate-test", b"kept");
    let o = kmigrate(d.path(), &["rewrite", "cloudbuild.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(fs::read_to_string(&f).unwrap().contains("buildx"));
    let meta = fs::metadata(&f).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
    if as_root {
        assert_eq!((meta.uid(), meta.gid()), (1234, 1234));
    } else {
        eprintln!("note: not root, the owner change is not exercised");
    }
    if xattrs {
        assert_eq!(
            get_xattr(&f, "user.kmigrate-test").as_deref(),
            Some(&b"kept"[..])
        );
    } else {
        eprintln!("note: no user xattrs on this file system");
    }
    assert_eq!(leftovers(d.path()), Vec::<String>::new());
}

#[test]
fn a_hard_linked_file_is_refused_and_both_names_keep_their_text() {
    use std::os::unix::fs::MetadataExt;
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("cloudbuild.yaml");
    fs::write(&f, KANIKO_STEP).unwrap();
    fs::hard_link(&f, d.path().join("copy.yaml")).unwrap();
    let o = kmigrate(d.path(), &["rewrite", "cloudbuild.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("cloudbuild.yaml") && err.contains("hard links"),
        "{err}"
    );
    assert_eq!(fs::read_to_string(&f).unwrap(), KANIKO_STEP);
    assert_eq!(fs::metadata(&f).unwrap().nlink(), 2);
    assert_eq!(leftovers(d.path()), Vec::<String>::new());
}

#[test]
fn a_signal_during_a_rewrite_leaves_no_temporary_file() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::ExitStatusExt;
    for signal in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGINT,
    ] {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("cloudbuild.yaml");
        fs::write(&f, KANIKO_STEP).unwrap();
        let mut child = bin()
            .args(["rewrite", "cloudbuild.yaml"])
            .current_dir(d.path())
            .env("KMIGRATE_TEST_PAUSE_BEFORE_RENAME", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        assert!(line.contains("paused before renaming"), "{line}");
        assert_eq!(leftovers(d.path()).len(), 1, "the temporary file exists");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(signal as i32), "{status:?}");
        assert_eq!(leftovers(d.path()), Vec::<String>::new(), "{signal:?}");
        assert_eq!(fs::read_to_string(&f).unwrap(), KANIKO_STEP);
    }
}

const PIPELINE_ROOT: &str = "include:\n  - local: ci/build.yml\n\nroot-image:\n  image:\n    name: gcr.io/kaniko-project/executor:debug\n    entrypoint: [\"\"]\n  script:\n    - /kaniko/executor --context . --destination r/root\n";
const PIPELINE_INCLUDED: &str = "included-image:\n  image:\n    name: gcr.io/kaniko-project/executor:debug\n    entrypoint: [\"\"]\n  script:\n    - /kaniko/executor --context . --destination r/included\n";

#[test]
fn a_pipeline_with_a_file_that_cannot_be_written_is_not_rewritten_at_all() {
    use std::os::unix::fs::PermissionsExt;
    // A read-only mode (which kmigrate refuses even as root) and an
    // immutable file (which stops root itself), when `chattr` works here.
    for how in ["mode 0444", "chattr +i"] {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join(".gitlab-ci.yml");
        let included = d.path().join("ci/build.yml");
        fs::create_dir_all(d.path().join("ci")).unwrap();
        fs::write(&root, PIPELINE_ROOT).unwrap();
        fs::write(&included, PIPELINE_INCLUDED).unwrap();
        // Both files have something to rewrite.
        let o = kmigrate(
            d.path(),
            &["rewrite", "--check", ".gitlab-ci.yml", "ci/build.yml"],
        );
        assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
        if how == "mode 0444" {
            fs::set_permissions(&included, fs::Permissions::from_mode(0o444)).unwrap();
        } else if !Command::new("chattr")
            .arg("+i")
            .arg(&included)
            .status()
            .is_ok_and(|s| s.success())
        {
            eprintln!("note: chattr +i does not work here");
            continue;
        }
        let o = kmigrate(d.path(), &["rewrite", ".gitlab-ci.yml", "ci/build.yml"]);
        if how == "chattr +i" {
            let _ = Command::new("chattr").arg("-i").arg(&included).status();
        }
        assert_eq!(o.status.code(), Some(2), "{how}: {}", text(&o.stderr));
        let err = text(&o.stderr);
        assert!(
            err.contains("ci/build.yml") && err.contains("nothing was rewritten"),
            "{how}: {err}"
        );
        assert_eq!(fs::read_to_string(&root).unwrap(), PIPELINE_ROOT, "{how}");
        assert_eq!(
            fs::read_to_string(&included).unwrap(),
            PIPELINE_INCLUDED,
            "{how}"
        );
        assert_eq!(leftovers(d.path()), Vec::<String>::new());
        assert_eq!(leftovers(&d.path().join("ci")), Vec::<String>::new());
    }
}

#[test]
fn a_configuration_that_is_a_device_is_refused_without_reading_it() {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("cloudbuild.yaml"), KANIKO_STEP).unwrap();
    std::os::unix::fs::symlink("/dev/zero", d.path().join("kmigrate.toml")).unwrap();
    // Discovery takes regular files only; named, it is read with a limit.
    let o = kmigrate_within(d.path(), &["check", "."], Duration::from_secs(30));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    for args in [
        vec!["check", "--config", "kmigrate.toml", "."],
        vec!["config", "--show", "--config", "kmigrate.toml"],
    ] {
        let o = kmigrate_within(d.path(), &args, Duration::from_secs(30));
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
        let err = text(&o.stderr);
        assert!(
            err.contains("kmigrate.toml") && err.contains("not a regular file"),
            "{err}"
        );
    }
}
