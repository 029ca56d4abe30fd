//! The CLI habits users bring from ruff, ripgrep and shellcheck (issue 17):
//! quiet exit on a closed pipe, `config` alone, exact YAML error positions in
//! every format, `rewrite` on a tree and on stdin, concise output and
//! statistics, the summary with `--output`. Each runs the real binary on the
//! fixtures under tests/fixtures/cli_habits/, copied to a temporary directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/cli_habits")
        .join(rel)
}

/// Copies a fixture tree; `gitignore.txt` becomes `.gitignore` (a real one
/// would keep the fixture's own ignored files out of this repository).
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = match entry.file_name().to_str() {
            Some("gitignore.txt") => ".gitignore".into(),
            _ => entry.file_name(),
        };
        let dest = to.join(name);
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &dest);
        } else {
            fs::copy(entry.path(), dest).unwrap();
        }
    }
}

fn tree(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture(name), dir.path());
    dir
}

fn command(cwd: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kmigrate"));
    c.args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("FORCE_COLOR")
        .stdin(Stdio::null());
    c
}

fn kmigrate(cwd: &Path, args: &[&str]) -> Output {
    command(cwd, args).output().expect("kmigrate runs")
}

fn kmigrate_stdin(cwd: &Path, args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = command(cwd, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Runs with stdout a pipe whose reading end is already closed: every
/// write gets EPIPE, as with `| head` once head has what it wants.
fn kmigrate_closed_stdout(cwd: &Path, args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    command(cwd, args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("kmigrate runs")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

// ---- item 3: a closed pipe ends every subcommand quietly -------------------

#[test]
fn every_subcommand_exits_quietly_when_its_reader_goes_away() {
    let dir = tree("repo");
    let broken = tree("broken");
    let cases: &[(&Path, &[&str])] = &[
        (dir.path(), &["rules"]),
        (dir.path(), &["rules", "--format", "json"]),
        (dir.path(), &["explain", "KM001"]),
        (dir.path(), &["explain", "--all"]),
        (dir.path(), &["config"]),
        (dir.path(), &["config", "--show"]),
        (dir.path(), &["check", "."]),
        (dir.path(), &["check", "--format", "json", "."]),
        (dir.path(), &["check", "--format", "concise", "."]),
        (dir.path(), &["check", "--statistics", "."]),
        (broken.path(), &["check", "--format", "sarif", "."]),
        (dir.path(), &["report", "."]),
        (dir.path(), &["report", "--format", "json", "."]),
        (dir.path(), &["rewrite", "--diff", "cloudbuild.yaml"]),
        (dir.path(), &["rewrite", "--stdout", "cloudbuild.yaml"]),
        (dir.path(), &["verify", "--format", "json", "missing.yaml"]),
        (dir.path(), &["--help"]),
        (dir.path(), &["build", "--help"]),
    ];
    for (cwd, args) in cases {
        let o = kmigrate_closed_stdout(cwd, args);
        let stderr = err(&o);
        assert!(
            o.status.code() == Some(0) && stderr.is_empty(),
            "kmigrate {args:?}: {:?}\n{stderr}",
            o.status
        );
    }
    // Nothing was written by the diff or stdout runs.
    assert_eq!(
        fs::read_to_string(dir.path().join("cloudbuild.yaml")).unwrap(),
        fs::read_to_string(fixture("repo/cloudbuild.yaml")).unwrap()
    );
}

// ---- item 5: `kmigrate config` alone shows the effective configuration ------

#[test]
fn config_alone_shows_the_effective_configuration() {
    let dir = tree("repo");
    let o = kmigrate(dir.path(), &["config"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let shown = out(&o);
    assert!(shown.starts_with("# from "), "{shown}");
    assert!(shown.contains("vendor/**"), "{shown}");
    // The flag it used to require still works, with the same output.
    let with_flag = kmigrate(dir.path(), &["config", "--show"]);
    assert_eq!(out(&with_flag), shown);
}

// ---- item 2: a YAML error at the parser's position, in every format ---------

#[test]
fn a_yaml_error_is_reported_at_the_parser_position_in_every_format() {
    let dir = tree("broken");
    let at = (7, 4);

    let human = kmigrate(dir.path(), &["check", "."]);
    assert_eq!(human.status.code(), Some(2));
    let stderr = err(&human);
    assert!(
        stderr.starts_with("error: cloudbuild.yaml:7:4: cannot be parsed: "),
        "{stderr}"
    );
    // The line, and a caret under the column.
    assert!(
        stderr.contains("\n  |\n7 |    bad: y\n  |    ^\n  help: "),
        "{stderr}"
    );

    let json: Value =
        serde_json::from_slice(&kmigrate(dir.path(), &["check", "--format", "json", "."]).stdout)
            .unwrap();
    let e = &json["errors"][0];
    assert_eq!(
        (e["line"].as_u64(), e["column"].as_u64()),
        (Some(7), Some(4))
    );

    let github = out(&kmigrate(dir.path(), &["check", "--format", "github", "."]));
    assert!(
        github.starts_with("::error file=cloudbuild.yaml,line=7,col=4,"),
        "{github}"
    );

    let sarif: Value =
        serde_json::from_slice(&kmigrate(dir.path(), &["check", "--format", "sarif", "."]).stdout)
            .unwrap();
    let region = &sarif["runs"][0]["invocations"][0]["toolExecutionNotifications"][0]["locations"]
        [0]["physicalLocation"]["region"];
    assert_eq!(
        (region["startLine"].as_u64(), region["startColumn"].as_u64()),
        (Some(7), Some(4)),
        "{sarif:#}"
    );

    // GitLab Code Quality shows the broken file as an issue at its line.
    let gitlab = kmigrate(dir.path(), &["check", "--format", "gitlab", "."]);
    assert_eq!(gitlab.status.code(), Some(2));
    let issues: Value = serde_json::from_slice(&gitlab.stdout).unwrap();
    let issue = &issues[0];
    assert_eq!(issue["check_name"], "kmigrate-not-checked", "{issues:#}");
    assert_eq!(issue["location"]["path"], "cloudbuild.yaml");
    assert_eq!(issue["location"]["lines"]["begin"].as_u64(), Some(at.0));
    assert!(
        issue["description"]
            .as_str()
            .unwrap()
            .contains("cannot be parsed"),
        "{issue}"
    );
}

#[test]
fn a_yaml_error_on_stdin_shows_the_line_it_read() {
    let dir = tempfile::tempdir().unwrap();
    let text = fs::read_to_string(fixture("broken/cloudbuild.yaml")).unwrap();
    let o = kmigrate_stdin(
        dir.path(),
        &["check", "--stdin-filename", "cloudbuild.yaml", "-"],
        &text,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err(&o).contains("cloudbuild.yaml:7:4: cannot be parsed")
            && err(&o).contains("7 |    bad: y"),
        "{}",
        err(&o)
    );
}

// ---- item 4: concise, statistics, rules as JSON, explain several ------------

#[test]
fn concise_output_is_one_line_per_finding() {
    let dir = tree("repo");
    let o = kmigrate(dir.path(), &["check", "--format", "concise", "."]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    let lines: Vec<String> = out(&o).lines().map(str::to_string).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("cloudbuild.yaml:4:11: KM001 [error] ")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("services/api/cloudbuild.yaml:4:11: KM001 [error] ")),
        "{lines:#?}"
    );
    for l in &lines {
        assert!(l.contains(": KM0") && l.contains(" ["), "{l}");
    }
    // The summary goes to stderr, as after human output.
    assert!(
        err(&o).starts_with("kmigrate: 2 files scanned"),
        "{}",
        err(&o)
    );
}

#[test]
fn statistics_count_findings_per_rule() {
    let dir = tree("repo");
    let o = kmigrate(dir.path(), &["check", "--statistics", "."]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    let table = out(&o);
    assert!(
        table.starts_with("COUNT  RULE   SEVERITY  FIXABLE  SUMMARY\n"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("    2  KM001  error     2 ")),
        "{table}"
    );

    let json: Value = serde_json::from_slice(
        &kmigrate(
            dir.path(),
            &["check", "--statistics", "--format", "json", "."],
        )
        .stdout,
    )
    .unwrap();
    let km001 = json
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "KM001")
        .unwrap();
    assert_eq!(km001["count"], 2);

    let sarif = kmigrate(dir.path(), &["check", "--statistics", "--format", "sarif"]);
    assert_eq!(sarif.status.code(), Some(2), "{}", err(&sarif));
}

#[test]
fn rules_as_json_and_explain_several_or_all() {
    let dir = tempfile::tempdir().unwrap();
    let o = kmigrate(dir.path(), &["rules", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0));
    let rules: Value = serde_json::from_slice(&o.stdout).unwrap();
    let first = &rules[0];
    assert_eq!(first["id"], "KM001");
    assert_eq!(first["severity"], "error");
    assert_eq!(first["fixable"], true);
    assert!(first["summary"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(first["url"].as_str().unwrap().ends_with("KM001.md"));
    let count = rules.as_array().unwrap().len();

    let two = kmigrate(dir.path(), &["explain", "KM001", "km002"]);
    assert_eq!(two.status.code(), Some(0), "{}", err(&two));
    let pages = out(&two);
    assert_eq!(pages.matches("\nOnline: ").count(), 2, "{pages}");
    assert!(pages.find("KM001.md").unwrap() < pages.find("KM002.md").unwrap());

    let all = out(&kmigrate(dir.path(), &["explain", "--all"]));
    assert_eq!(all.matches("\nOnline: ").count(), count);

    let unknown = kmigrate(dir.path(), &["explain", "KM001", "KM999"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(unknown.stdout.is_empty());
    assert!(
        err(&unknown).contains("no rule `KM999`"),
        "{}",
        err(&unknown)
    );
}

// ---- item 9: with --output, the summary still reaches the CI log ------------

#[test]
fn a_report_written_to_a_file_still_prints_the_summary() {
    let dir = tree("repo");
    for format in ["json", "sarif", "gitlab", "github"] {
        let o = kmigrate(
            dir.path(),
            &["check", "--format", format, "-o", "report.out", "."],
        );
        assert_eq!(o.status.code(), Some(1), "{format}: {}", err(&o));
        assert!(o.stdout.is_empty());
        assert!(
            err(&o).starts_with("kmigrate: 2 files scanned, 2 findings"),
            "{format}: {}",
            err(&o)
        );
        let quiet = kmigrate(
            dir.path(),
            &["check", "-q", "--format", format, "-o", "report.out", "."],
        );
        assert_eq!(quiet.status.code(), Some(1));
        assert_eq!(err(&quiet), "", "{format}");
    }
    // To stdout a machine format stays alone: its reader parses it.
    let json = kmigrate(dir.path(), &["check", "--format", "json", "."]);
    assert_eq!(err(&json), "");
}

// ---- item 1: `rewrite` on a tree, on stdin, with -q and rule selection ------

/// The files a unified diff on stdout changes, as its `+++ b/` headers say.
fn diffed(o: &Output) -> Vec<String> {
    out(o)
        .lines()
        .filter_map(|l| l.strip_prefix("+++ b/"))
        .map(str::to_string)
        .collect()
}

#[test]
fn rewrite_walks_a_directory_exactly_like_check() {
    let dir = tree("repo");
    // A broken YAML file without a Kaniko word: `check .` leaves it alone,
    // so does `rewrite .`.
    fs::create_dir_all(dir.path().join("docs")).unwrap();
    fs::write(
        dir.path().join("docs/cloudbuild.yaml"),
        "steps:\n  - name: x\n   bad: y\n",
    )
    .unwrap();

    let check = kmigrate(dir.path(), &["check", "--format", "concise", "."]);
    let mut checked: Vec<String> = out(&check)
        .lines()
        .map(|l| l.split(':').next().unwrap().to_string())
        .collect();
    checked.dedup();
    assert_eq!(
        checked,
        ["cloudbuild.yaml", "services/api/cloudbuild.yaml"],
        "vendor/ is excluded by paths.exclude, generated/ by .gitignore"
    );

    let diff = kmigrate(dir.path(), &["rewrite", "--diff", "."]);
    assert_eq!(diff.status.code(), Some(0), "{}", err(&diff));
    assert_eq!(diffed(&diff), checked);

    let check_mode = kmigrate(dir.path(), &["rewrite", "--check", "."]);
    assert_eq!(check_mode.status.code(), Some(1), "{}", err(&check_mode));

    // In place: then `check` finds nothing left, and the skipped files are
    // untouched.
    let rewrite = kmigrate(dir.path(), &["rewrite", "."]);
    assert_eq!(rewrite.status.code(), Some(0), "{}", err(&rewrite));
    let after = kmigrate(dir.path(), &["check", "."]);
    assert_eq!(
        after.status.code(),
        Some(0),
        "{}{}",
        out(&after),
        err(&after)
    );
    for skipped in ["vendor/cloudbuild.yaml", "generated/cloudbuild.yaml"] {
        assert_eq!(
            fs::read_to_string(dir.path().join(skipped)).unwrap(),
            fs::read_to_string(fixture("repo/services/api/cloudbuild.yaml")).unwrap(),
            "{skipped}"
        );
    }
    // A directory walked from elsewhere gives the same files.
    let sub = kmigrate(
        dir.path().parent().unwrap(),
        &[
            "rewrite",
            "--check",
            dir.path().join("services").to_str().unwrap(),
        ],
    );
    assert_eq!(sub.status.code(), Some(0), "{}", err(&sub));
}

#[test]
fn rewrite_reads_stdin_and_prints_the_result() {
    let dir = tree("repo");
    let text = fs::read_to_string(dir.path().join("cloudbuild.yaml")).unwrap();
    let piped = kmigrate_stdin(
        dir.path(),
        &["rewrite", "--stdin-filename", "cloudbuild.yaml", "-"],
        &text,
    );
    assert_eq!(piped.status.code(), Some(0), "{}", err(&piped));
    let named = kmigrate(dir.path(), &["rewrite", "--stdout", "cloudbuild.yaml"]);
    assert_eq!(out(&piped), out(&named));
    assert!(out(&piped).contains("docker buildx build") || out(&piped).contains("buildx"));
    // Nothing on disk changed.
    assert_eq!(
        fs::read_to_string(dir.path().join("cloudbuild.yaml")).unwrap(),
        text
    );
    // `--check` on stdin says whether it would change.
    let would = kmigrate_stdin(dir.path(), &["rewrite", "--check", "-"], &text);
    assert_eq!(would.status.code(), Some(1), "{}", err(&would));
    assert!(would.stdout.is_empty());
    // `-` is rewritten alone.
    let mixed = kmigrate_stdin(dir.path(), &["rewrite", "-", "cloudbuild.yaml"], &text);
    assert_eq!(mixed.status.code(), Some(2));
}

#[test]
fn rewrite_is_quiet_with_q_and_applies_only_the_selected_rules() {
    let dir = tree("repo");
    let quiet = kmigrate(dir.path(), &["rewrite", "-q", "--diff", "."]);
    assert_eq!(quiet.status.code(), Some(0));
    assert_eq!(err(&quiet), "");
    assert_eq!(diffed(&quiet).len(), 2);

    let ignored = kmigrate(
        dir.path(),
        &["rewrite", "--ignore", "KM001", "--check", "."],
    );
    assert_eq!(ignored.status.code(), Some(0), "{}", err(&ignored));
    let selected = kmigrate(
        dir.path(),
        &["rewrite", "--select", "km001", "--check", "."],
    );
    assert_eq!(selected.status.code(), Some(1), "{}", err(&selected));
    let unknown = kmigrate(
        dir.path(),
        &["rewrite", "--select", "KM999", "--check", "."],
    );
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        err(&unknown).contains("unknown rule `KM999`"),
        "{}",
        err(&unknown)
    );
}

#[test]
fn rewrite_of_a_directory_without_ci_files_is_an_error() {
    let dir = tree("repo");
    let o = kmigrate(dir.path(), &["rewrite", "--check", "vendor"]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(
        err(&o).contains("vendor: is a directory with no CI file to rewrite"),
        "{}",
        err(&o)
    );
}

// ---- item 8: consistency -----------------------------------------------------

#[test]
fn force_exclude_says_which_pattern_excluded_a_named_file() {
    let dir = tree("repo");
    for cmd in ["check", "rewrite"] {
        let o = kmigrate(
            dir.path(),
            &[cmd, "--force-exclude", "vendor/cloudbuild.yaml"],
        );
        assert_eq!(o.status.code(), Some(0), "{cmd}: {}", err(&o));
        assert!(
            err(&o).contains(
                "warning: vendor/cloudbuild.yaml is excluded by paths.exclude `vendor/**`"
            ),
            "{cmd}: {}",
            err(&o)
        );
    }
    assert_eq!(
        fs::read_to_string(dir.path().join("vendor/cloudbuild.yaml")).unwrap(),
        fs::read_to_string(fixture("repo/vendor/cloudbuild.yaml")).unwrap()
    );
}

#[test]
fn a_diff_of_an_absolute_path_names_it_as_given() {
    let dir = tree("repo");
    let abs = dir.path().join("cloudbuild.yaml");
    let o = kmigrate(dir.path(), &["rewrite", "--diff", abs.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let diff = out(&o);
    assert!(
        diff.starts_with(&format!("--- {0}\n+++ {0}\n", abs.display())),
        "{diff}"
    );
    let json: Value = serde_json::from_slice(
        &kmigrate(
            dir.path(),
            &["check", "--format", "json", abs.to_str().unwrap()],
        )
        .stdout,
    )
    .unwrap();
    let preview = json["findings"][0]["fix"]["preview"].as_str().unwrap();
    assert!(!preview.contains("a//"), "{preview}");
}

// ---- help texts are written for users, not rustdoc --------------------------

/// clap takes a flag's doc comment as its help: an intra-doc link or a
/// module path in one reaches the user verbatim (`build --help` said
/// "see [`crate::stand_in`]").
#[test]
fn help_texts_carry_no_rustdoc_syntax() {
    let dir = tree("repo");
    let top = out(&kmigrate(dir.path(), &["--help"]));
    let subcommands: Vec<String> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| {
            l.strip_prefix("  ")?
                .split_whitespace()
                .next()
                .map(String::from)
        })
        .filter(|c| c != "help")
        .collect();
    assert!(subcommands.len() >= 8, "{subcommands:?}");
    for sub in std::iter::once(None).chain(subcommands.iter().map(Some)) {
        let mut args: Vec<&str> = sub.map(String::as_str).into_iter().collect();
        args.push("--help");
        let help = out(&kmigrate(dir.path(), &args));
        for leak in ["[`", "crate::", "kmigrate_", "Self::"] {
            assert!(
                !help.contains(leak),
                "kmigrate {args:?} shows {leak:?}:\n{help}"
            );
        }
    }
}
