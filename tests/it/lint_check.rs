//! `kmigrate check` as users run it: the real binary over fixture trees
//! copied to a temporary directory (so paths in the output are relative and
//! stable), every output format snapshotted, exit codes, ignores, config,
//! stdin and bad input.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::kmigrate;

use serde_json::Value;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/lint")
        .join(rel)
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &dest);
        } else {
            fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// The fixture repository in a fresh temporary directory.
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture("repo"), dir.path());
    dir
}

fn kmigrate_stdin(cwd: &Path, args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_kmigrate"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn err(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// Replaces the time in the summary line.
fn normalise(s: &str) -> String {
    let re = regex::Regex::new(r" in \d+\.\d\ds").unwrap();
    re.replace_all(s, " in [TIME]").into_owned()
}

fn rules_of(json: &Value) -> Vec<(String, String)> {
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["rule"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn walks_the_repo_and_reports_in_human_format() {
    let dir = repo();
    let o = kmigrate(dir.path(), &["check"]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    let stdout = out(&o);
    // Skipped: node_modules, .gitignored generated/, excluded legacy/, and
    // docs/build.yaml (not a CI file name). services/api's Kaniko step is
    // silenced by its ignore comment; its stale KM003 ignore is KM020.
    for absent in [
        "node_modules",
        "generated",
        "legacy",
        "docs/",
        "api/cloudbuild.yaml:3",
    ] {
        assert!(!stdout.contains(absent), "{absent} in\n{stdout}");
    }
    snapshot!("lint_repo_human", stdout);
    snapshot!("lint_repo_human_stderr", normalise(&err(&o)));
    assert!(err(&o).starts_with(
        "kmigrate: 3 files scanned, 4 findings (2 errors, 1 warning, 1 info), 2 fixable"
    ));
}

#[test]
fn json_format() {
    let dir = repo();
    let o = kmigrate(dir.path(), &["check", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).is_empty(),
        "no summary for machine formats: {}",
        err(&o)
    );
    let v: Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(v["version"], 1);
    let schema: Value = serde_json::from_str(
        &fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/check-json-v1.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    assert!(
        validator.is_valid(&v),
        "output matches schemas/check-json-v1.schema.json"
    );
    assert_eq!(
        rules_of(&v),
        [
            ("cloudbuild.yaml".into(), "KM001".into()),
            ("cloudbuild.yaml".into(), "KM005".into()),
            ("services/api/cloudbuild.yaml".into(), "KM020".into()),
            (
                "services/web/cloudbuild-release.json".into(),
                "KM003".into()
            ),
        ]
    );
    for f in v["findings"].as_array().unwrap() {
        let url = f["help_url"].as_str().unwrap();
        assert!(url.ends_with(&format!("/rules/{}.md", f["rule"].as_str().unwrap())));
        assert_eq!(f["fixable"], f["fix"].is_object());
    }
    snapshot!("lint_repo_json", out(&o));
}

#[test]
fn sarif_format_is_valid_sarif_2_1_0() {
    let dir = repo();
    let o = kmigrate(dir.path(), &["check", "--format", "sarif"]);
    assert_eq!(o.status.code(), Some(1));
    let log: Value = serde_json::from_str(&out(&o)).unwrap();
    let schema: Value =
        serde_json::from_str(&fs::read_to_string(fixture("sarif-schema-2.1.0.json")).unwrap())
            .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&log)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let results = log["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    let rules = log["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap();
    for r in results {
        let rule = &rules[r["ruleIndex"].as_u64().unwrap() as usize];
        assert_eq!(rule["id"], r["ruleId"]);
        assert!(rule["helpUri"].as_str().unwrap().starts_with("https://"));
    }
    // The rule pages are embedded whole as each rule's help; they change with
    // the docs, so the snapshot checks they are there and elides them.
    let mut shown = log.clone();
    for rule in shown["runs"][0]["tool"]["driver"]["rules"]
        .as_array_mut()
        .unwrap()
    {
        let id = rule["id"].as_str().unwrap().to_string();
        for key in ["text", "markdown"] {
            let page = rule["help"][key].as_str().unwrap();
            assert!(page.starts_with(&format!("# {id}: ")), "{page}");
            rule["help"][key] = Value::String(format!("[rules/{id}.md]"));
        }
    }
    snapshot!(
        "lint_repo_sarif",
        serde_json::to_string_pretty(&shown).unwrap()
    );
}

#[test]
fn gitlab_format_and_fingerprints_survive_line_shifts() {
    let dir = repo();
    let o = kmigrate(dir.path(), &["check", "--format", "gitlab"]);
    assert_eq!(o.status.code(), Some(1));
    snapshot!("lint_repo_gitlab", out(&o));
    let before: Value = serde_json::from_str(&out(&o)).unwrap();
    // Shift every line of the root file down by three.
    let root = dir.path().join("cloudbuild.yaml");
    let text = fs::read_to_string(&root).unwrap();
    fs::write(&root, format!("# one\n# two\n\n{text}")).unwrap();
    let after: Value = serde_json::from_str(&out(&kmigrate(
        dir.path(),
        &["check", "--format", "gitlab"],
    )))
    .unwrap();
    let (b, a) = (before.as_array().unwrap(), after.as_array().unwrap());
    assert_eq!(a.len(), b.len());
    for (x, y) in b.iter().zip(a) {
        assert_eq!(x["fingerprint"], y["fingerprint"]);
        assert_eq!(x["check_name"], y["check_name"]);
    }
    assert_eq!(
        a[0]["location"]["lines"]["begin"].as_u64().unwrap(),
        b[0]["location"]["lines"]["begin"].as_u64().unwrap() + 3
    );
    let fps: std::collections::HashSet<_> = b.iter().map(|i| i["fingerprint"].clone()).collect();
    assert_eq!(fps.len(), b.len(), "fingerprints are distinct");
}

#[test]
fn github_format() {
    let dir = repo();
    let o = kmigrate(dir.path(), &["check", "--format", "github"]);
    assert_eq!(o.status.code(), Some(1));
    let stdout = out(&o);
    assert!(stdout.lines().all(|l| l.starts_with("::")), "{stdout}");
    assert!(stdout.contains("::error file=cloudbuild.yaml,line=4,col=11,"));
    snapshot!("lint_repo_github", stdout);
}

#[test]
fn output_is_deterministic_over_many_files() {
    // More files than `check` handles per parallel batch (256), created out
    // of order, so batching and scheduling would show in the output.
    const N: usize = 600;
    let dir = tempfile::tempdir().unwrap();
    let text = fs::read_to_string(fixture("repo/cloudbuild.yaml")).unwrap();
    for i in 0..N {
        let sub = dir.path().join(format!("svc{:03}", (i * 7) % N));
        fs::create_dir_all(&sub).unwrap();
        fs::write(sub.join("cloudbuild.yaml"), &text).unwrap();
    }
    let first = out(&kmigrate(dir.path(), &["check", "--format", "json"]));
    assert_eq!(
        first,
        out(&kmigrate(dir.path(), &["check", "--format", "json"]))
    );
    let v: Value = serde_json::from_str(&first).unwrap();
    let paths: Vec<String> = rules_of(&v).into_iter().map(|(p, _)| p).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);
    assert_eq!(v["summary"]["files_scanned"], N);
    assert_eq!(paths.len(), 2 * N);

    // The human report is written as batches finish: same order, same
    // diagnostics, whether to stdout or to a file.
    let human = kmigrate(dir.path(), &["check"]);
    assert_eq!(human.status.code(), Some(1));
    let shown: Vec<String> = out(&human)
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("╭─["))
        .map(|l| l.split(':').next().unwrap().to_string())
        .collect();
    assert_eq!(shown, paths);
    assert!(
        err(&human).contains(&format!("{N} files scanned, {} findings", 2 * N)),
        "{}",
        err(&human)
    );
    let to_file = kmigrate(dir.path(), &["check", "-o", "report.txt"]);
    assert_eq!(to_file.status.code(), Some(1));
    assert_eq!(
        fs::read_to_string(dir.path().join("report.txt")).unwrap(),
        out(&human)
    );
}

#[test]
fn exit_codes_follow_fail_on_and_exit_zero() {
    let dir = repo();
    let d = dir.path();
    // Only a warning (KM005) once KM001 is ignored by the command line.
    let only_warning = ["check", "cloudbuild.yaml", "--ignore", "km001"];
    assert_eq!(kmigrate(d, &only_warning).status.code(), Some(0));
    let mut args = only_warning.to_vec();
    args.extend(["--fail-on", "warning"]);
    assert_eq!(kmigrate(d, &args).status.code(), Some(1));
    assert_eq!(
        kmigrate(d, &["check", "cloudbuild.yaml"]).status.code(),
        Some(1)
    );
    assert_eq!(
        kmigrate(d, &["check", "cloudbuild.yaml", "--exit-zero"])
            .status
            .code(),
        Some(0)
    );
    // A clean file named explicitly (detected as Cloud Build by content).
    assert_eq!(
        kmigrate(d, &["check", "services/clean.yaml"]).status.code(),
        Some(0)
    );
    // Info only (KM020): fails only with --fail-on info.
    let api = ["check", "services/api/cloudbuild.yaml"];
    assert_eq!(kmigrate(d, &api).status.code(), Some(0));
    let mut args = api.to_vec();
    args.extend(["--fail-on", "info"]);
    assert_eq!(kmigrate(d, &args).status.code(), Some(1));
    // Nothing to check is not an error, but it is said.
    let empty = tempfile::tempdir().unwrap();
    let o = kmigrate(empty.path(), &["check"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(err(&o).contains("warning: no CI files"), "{}", err(&o));
    // Usage errors.
    assert_eq!(
        kmigrate(d, &["check", "--format", "xml"]).status.code(),
        Some(2)
    );
    assert_eq!(
        kmigrate(d, &["check", "--select", "KM999"]).status.code(),
        Some(2)
    );
    // --help documents the exit codes.
    let help = out(&kmigrate(d, &["check", "--help"]));
    assert!(
        help.contains("Exit codes:") && help.contains("--fail-on"),
        "{help}"
    );
}

#[test]
fn named_files_whatever_their_name_and_forced_platform() {
    let dir = repo();
    let d = dir.path();
    let o = kmigrate(d, &["check", "docs/build.yaml", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(rules_of(&v), [("docs/build.yaml".into(), "KM001".into())]);
    // Excludes apply to walks, not to files named on the command line.
    let o = kmigrate(d, &["check", "legacy/cloudbuild.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    // Not recognisable as CI: an error unless --platform says what it is.
    fs::write(d.join("odd.yaml"), "a: 1\n").unwrap();
    let o = kmigrate(d, &["check", "odd.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("odd.yaml"), "{}", err(&o));
    let o = kmigrate(d, &["check", "odd.yaml", "--platform", "cloudbuild"]);
    assert_ne!(o.status.code(), Some(1), "{}", err(&o));
}

#[test]
fn stdin_with_a_filename() {
    let dir = repo();
    let text = fs::read(fixture("repo/cloudbuild.yaml")).unwrap();
    let o = kmigrate_stdin(
        dir.path(),
        &[
            "check",
            "-",
            "--stdin-filename",
            "ci/cloudbuild.yaml",
            "--format",
            "github",
        ],
        &text,
    );
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(
        out(&o).contains("::error file=ci/cloudbuild.yaml,line=4,col=11,"),
        "{}",
        out(&o)
    );
    // Without a name, content decides.
    let o = kmigrate_stdin(dir.path(), &["check", "-"], &text);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(out(&o).contains("KM001"));
    let o = kmigrate(
        dir.path(),
        &["check", "x.yaml", "--stdin-filename", "a.yaml"],
    );
    assert_eq!(o.status.code(), Some(2));
    // The configuration is found from the stdin file name: legacy/ has its
    // own kmigrate.toml here that switches KM001 off.
    fs::write(
        dir.path().join("legacy/kmigrate.toml"),
        "[rules]\nignore = [\"KM001\"]\n",
    )
    .unwrap();
    let o = kmigrate_stdin(
        dir.path(),
        &[
            "check",
            "-",
            "--stdin-filename",
            "legacy/cloudbuild.yaml",
            "--format",
            "json",
        ],
        &text,
    );
    let v: Value = serde_json::from_str(&out(&o)).unwrap();
    assert!(
        !rules_of(&v).iter().any(|(_, r)| r == "KM001"),
        "{:?}",
        rules_of(&v)
    );
    assert!(rules_of(&v).iter().any(|(_, r)| r == "KM005"));
}

#[test]
fn no_ignores_reports_what_the_comments_silence() {
    let dir = repo();
    let o = kmigrate(
        dir.path(),
        &[
            "check",
            "services/api/cloudbuild.yaml",
            "--no-ignores",
            "--format",
            "json",
        ],
    );
    let v: Value = serde_json::from_str(&out(&o)).unwrap();
    let rules: Vec<String> = rules_of(&v).into_iter().map(|(_, r)| r).collect();
    assert!(rules.contains(&"KM001".to_string()), "{rules:?}");
    assert!(!rules.contains(&"KM020".to_string()), "{rules:?}");
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn config_selects_rules_overrides_severity_and_rejects_unknown_keys() {
    let dir = repo();
    let d = dir.path();
    fs::write(
        d.join("kmigrate.toml"),
        "[rules]\nignore = [\"KM001\", \"KM003\"]\n[rules.severity]\nKM005 = \"error\"\n",
    )
    .unwrap();
    let o = kmigrate(d, &["check", "--format", "json"]);
    let v: Value = serde_json::from_str(&out(&o)).unwrap();
    let found: Vec<(String, String)> = rules_of(&v);
    // The KM003 ignore in services/api is not reported as unused: KM003
    // is switched off, so the comment may still be needed.
    assert_eq!(found, [("cloudbuild.yaml".into(), "KM005".into())]);
    assert_eq!(v["findings"][0]["severity"], "error");
    assert_eq!(o.status.code(), Some(1), "KM005 is an error now");
    // The exclude is gone with the old file: legacy/ is walked again.
    fs::write(d.join("kmigrate.toml"), "[rules]\nselect = [\"KM001\"]\n").unwrap();
    let v: Value =
        serde_json::from_str(&out(&kmigrate(d, &["check", "--format", "json"]))).unwrap();
    assert_eq!(
        rules_of(&v),
        [
            ("cloudbuild.yaml".into(), "KM001".into()),
            ("legacy/cloudbuild.yaml".into(), "KM001".into()),
        ]
    );
    // Unknown keys name the key and the file; exit 2.
    fs::write(d.join("kmigrate.toml"), "[rules]\nselct = [\"KM001\"]\n").unwrap();
    let o = kmigrate(d, &["check"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("kmigrate.toml"), "{}", err(&o));
    assert!(err(&o).contains("`selct`"), "{}", err(&o));
    // --config and --no-config.
    fs::write(d.join("other.toml"), "[rules]\nselect = [\"KM003\"]\n").unwrap();
    let v: Value = serde_json::from_str(&out(&kmigrate(
        d,
        &["check", "--format", "json", "--config", "other.toml"],
    )))
    .unwrap();
    assert_eq!(
        rules_of(&v),
        [(
            "services/web/cloudbuild-release.json".into(),
            "KM003".into()
        )]
    );
    let o = kmigrate(d, &["check", "--no-config", "--format", "json"]);
    let v: Value = serde_json::from_str(&out(&o)).unwrap();
    assert!(
        rules_of(&v)
            .iter()
            .any(|(p, _)| p == "legacy/cloudbuild.yaml")
    );
}

#[test]
fn config_is_found_upward_from_the_checked_path() {
    let dir = repo();
    let sub = dir.path().join("services");
    // Run from the subdirectory: the repo root's kmigrate.toml still applies
    // to the walk of `..`.
    let o = kmigrate(&sub, &["check", "..", "--format", "json"]);
    let v: Value = serde_json::from_str(&out(&o)).unwrap();
    assert!(!rules_of(&v).iter().any(|(p, _)| p.contains("legacy")));
}

#[test]
fn config_show_prints_the_effective_configuration() {
    let dir = repo();
    fs::write(
        dir.path().join("kmigrate.toml"),
        "[rewrite]\nbuilder = \"ci\"\nsplit = false\n[paths]\nexclude = [\"legacy\"]\n",
    )
    .unwrap();
    let o = kmigrate(dir.path(), &["config", "--show"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let text = out(&o).replace(&dir.path().display().to_string(), "[REPO]");
    snapshot!("lint_config_show", text);
    let o = kmigrate(dir.path(), &["config", "--show", "--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2));
    let empty = tempfile::tempdir().unwrap();
    let o = kmigrate(empty.path(), &["config", "--show"]);
    assert!(
        out(&o).starts_with("# no kmigrate.toml found"),
        "{}",
        out(&o)
    );
}

#[test]
fn rewrite_reads_the_configuration() {
    let dir = repo();
    fs::write(
        dir.path().join("kmigrate.toml"),
        "[rewrite]\nbuilder = \"from-config\"\ncache_tag = \"cfgcache\"\n",
    )
    .unwrap();
    let o = kmigrate(dir.path(), &["rewrite", "--stdout", "cloudbuild.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let text = out(&o);
    assert!(text.contains("from-config"), "{text}");
    assert!(text.contains(":cfgcache"), "{text}");
    let o = kmigrate(
        dir.path(),
        &[
            "rewrite",
            "--stdout",
            "--builder",
            "flag",
            "cloudbuild.yaml",
        ],
    );
    assert!(out(&o).contains("flag") && !out(&o).contains("from-config"));
}

#[test]
fn output_file() {
    let dir = repo();
    let o = kmigrate(
        dir.path(),
        &["check", "--format", "gitlab", "-o", "gl-code-quality.json"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(out(&o).is_empty());
    let v: Value =
        serde_json::from_str(&fs::read_to_string(dir.path().join("gl-code-quality.json")).unwrap())
            .unwrap();
    assert_eq!(v.as_array().unwrap().len(), 4);
}

#[test]
fn bad_input_is_reported_and_the_rest_of_the_run_continues() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = fs::read_to_string(fixture("repo/cloudbuild.yaml")).unwrap();
    fs::create_dir_all(d.join("good")).unwrap();
    fs::write(d.join("good/cloudbuild.yaml"), &good).unwrap();
    fs::create_dir_all(d.join("binary")).unwrap();
    fs::write(
        d.join("binary/cloudbuild.yaml"),
        b"\x7fELF\x02\x01\x01\x00\x00\x00",
    )
    .unwrap();
    fs::create_dir_all(d.join("latin1")).unwrap();
    fs::write(d.join("latin1/cloudbuild.yaml"), b"steps: []\n# caf\xe9\n").unwrap();
    fs::create_dir_all(d.join("huge")).unwrap();
    let mut big = String::from("steps:\n");
    while big.len() < 50 * 1024 * 1024 {
        big.push_str("  - name: gcr.io/cloud-builders/docker\n    args: ['version']\n");
    }
    fs::write(d.join("huge/cloudbuild.yaml"), big).unwrap();
    fs::create_dir_all(d.join("broken")).unwrap();
    // Broken and about Kaniko: a walked file without Kaniko is not parsed
    // (see `walked_files_without_kaniko_are_not_parsed`).
    fs::write(
        d.join("broken/cloudbuild.yaml"),
        "steps: [\n  - name: gcr.io/kaniko-project/executor\n",
    )
    .unwrap();
    fs::create_dir_all(d.join("loop")).unwrap();
    std::os::unix::fs::symlink(d.join("loop"), d.join("loop/again")).unwrap();
    fs::create_dir_all(d.join("dangling")).unwrap();
    std::os::unix::fs::symlink(d.join("nowhere"), d.join("dangling/cloudbuild.yaml")).unwrap();
    let locked = d.join("locked");
    fs::create_dir_all(&locked).unwrap();
    fs::write(locked.join("cloudbuild.yaml"), &good).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    // Root reads through permissions: run kmigrate as an unprivileged user
    // in a user namespace (`unshare -U`, uid nobody) so the directory really
    // is unreadable; without unshare the directory is simply checked.
    fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
    let as_nobody = fs::read_dir(&locked).is_ok()
        && Command::new("unshare")
            .args(["-U", "true"])
            .status()
            .is_ok_and(|s| s.success());
    let unreadable = fs::read_dir(&locked).is_err() || as_nobody;
    if !unreadable {
        eprintln!("note: cannot make a directory unreadable here (root without unshare)");
    }
    let o = if as_nobody {
        Command::new("unshare")
            .arg("-U")
            .arg(env!("CARGO_BIN_EXE_kmigrate"))
            .args(["check", "--format", "json"])
            .current_dir(d)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    } else {
        kmigrate(d, &["check", "--format", "json"])
    };
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    let v: Value = serde_json::from_str(&out(&o)).unwrap();
    let mut checked = vec![("good/cloudbuild.yaml".to_string(), "KM001".to_string())];
    if !unreadable {
        checked.push(("locked/cloudbuild.yaml".into(), "KM001".into()));
    }
    let found: Vec<_> = rules_of(&v)
        .into_iter()
        .filter(|(_, r)| r == "KM001")
        .collect();
    assert_eq!(found, checked);
    let errors: Vec<(String, String)> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["path"].as_str().unwrap().to_string(),
                e["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let has = |path: &str, words: &str| {
        assert!(
            errors
                .iter()
                .any(|(p, m)| p.starts_with(path) && m.contains(words)),
            "{path}: {words} not in {errors:#?}"
        )
    };
    has("binary/cloudbuild.yaml", "binary");
    has("latin1/cloudbuild.yaml", "UTF-8");
    has("huge/cloudbuild.yaml", "byte limit");
    has("broken/cloudbuild.yaml", "cannot be parsed");
    // A format without a place for errors (GitLab Code Quality) still
    // lists them on stderr.
    let o = kmigrate(d, &["check", "--format", "gitlab"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err(&o).contains("error: binary/cloudbuild.yaml"),
        "{}",
        err(&o)
    );
    assert!(serde_json::from_str::<Value>(&out(&o)).is_ok());
    has("loop/again", "symbolic link loop");
    has("dangling/cloudbuild.yaml", "broken symbolic link");
    if unreadable {
        has("locked", "permission denied");
    }
    // Human output lists the same errors on stderr.
    let o = kmigrate(d, &["check"]);
    assert_eq!(o.status.code(), Some(2));
    let e = err(&o);
    assert!(e.contains("error: binary/cloudbuild.yaml"), "{e}");
    assert!(e.contains("files not checked"), "{e}");
    assert!(out(&o).contains("good/cloudbuild.yaml"));
}

#[test]
fn gitlab_pipeline_walk_follows_local_includes_and_honours_ignores() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture("gitlab"), dir.path());
    let d = dir.path();
    let o = kmigrate(d, &["check", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    let v: Value = serde_json::from_str(&out(&o)).unwrap();
    // ci/build.yml is found through `include: local`, not by its name; the
    // ignore above `deploy-image` silences its KM001 and its runner note.
    assert_eq!(
        rules_of(&v),
        [
            (".gitlab-ci.yml".into(), "KM014".into()),
            ("ci/build.yml".into(), "KM004".into()),
            ("ci/build.yml".into(), "KM001".into()),
            ("ci/build.yml".into(), "KM002".into()),
        ]
    );
    assert_eq!(v["summary"]["files_scanned"], 2);
    // Naming the included file and walking too reports it once.
    let o = kmigrate(d, &["check", "ci/build.yml", ".", "--format", "json"]);
    let again: Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(rules_of(&again), rules_of(&v));
    // The inline ignore works in GitLab YAML comments: without it the
    // deploy job is reported too.
    let o = kmigrate(d, &["check", "--no-ignores", "--format", "json"]);
    let all: Value = serde_json::from_str(&out(&o)).unwrap();
    let gitlab_ci: Vec<String> = rules_of(&all)
        .into_iter()
        .filter(|(p, _)| p == ".gitlab-ci.yml")
        .map(|(_, r)| r)
        .collect();
    assert!(gitlab_ci.contains(&"KM001".to_string()), "{gitlab_ci:?}");
    // And rewrite leaves the ignored job as it is.
    let o = kmigrate(d, &["rewrite", ".gitlab-ci.yml", "ci/build.yml"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let main = fs::read_to_string(d.join(".gitlab-ci.yml")).unwrap();
    assert_eq!(
        main,
        fs::read_to_string(fixture("gitlab/.gitlab-ci.yml")).unwrap()
    );
    let build = fs::read_to_string(d.join("ci/build.yml")).unwrap();
    assert!(!build.contains("kaniko"), "{build}");
}

#[test]
fn walked_files_without_kaniko_are_not_parsed_but_named_ones_are() {
    // The prefilter: a walked CI file with no Kaniko, docker, include or
    // kmigrate word cannot have a finding, so a scan skips its parse (and
    // its syntax errors); named on the command line, it is parsed.
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    fs::create_dir_all(d.join("svc")).unwrap();
    fs::write(
        d.join("svc/cloudbuild.yaml"),
        "steps: [\n  - name: golang\n",
    )
    .unwrap();
    fs::write(d.join(".gitlab-ci.yml"), "test:\n  script: [make\n").unwrap();
    let o = kmigrate(d, &["check", "."]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(
        err(&o).contains("2 files scanned, 0 findings"),
        "{}",
        err(&o)
    );
    for name in ["svc/cloudbuild.yaml", ".gitlab-ci.yml"] {
        let o = kmigrate(d, &["check", name]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", err(&o));
        assert!(err(&o).contains(&format!("{name}:")), "{}", err(&o));
    }
    // Encoding is still checked, and a file without `steps` still parsed.
    fs::write(d.join("svc/cloudbuild.yaml"), b"steps: []\n# caf\xe9\n").unwrap();
    fs::create_dir_all(d.join("empty")).unwrap();
    fs::write(d.join("empty/cloudbuild.yaml"), "# soon\n").unwrap();
    let o = kmigrate(d, &["check", "."]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("svc/cloudbuild.yaml:2:"), "{}", err(&o));
    assert!(
        err(&o).contains("empty/cloudbuild.yaml: the file is empty"),
        "{}",
        err(&o)
    );
}

#[test]
fn a_report_that_cannot_be_written_is_an_error() {
    let dir = repo();
    let d = dir.path();
    for format in ["human", "json"] {
        // An output file in a directory that does not exist.
        let o = kmigrate(
            d,
            &["check", "--format", format, "-o", "missing/report.txt"],
        );
        assert_eq!(o.status.code(), Some(2), "{format}: {}", err(&o));
        assert!(
            err(&o).contains("cannot write missing/report.txt"),
            "{format}: {}",
            err(&o)
        );
        // stdout on a full device.
        let full = fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_kmigrate"))
            .args(["check", "--format", format])
            .current_dir(d)
            .env("NO_COLOR", "1")
            .stdout(full)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{format}: {}", err(&o));
        assert!(
            err(&o).contains("cannot write the report"),
            "{format}: {}",
            err(&o)
        );
    }
}
