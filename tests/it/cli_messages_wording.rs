//! Messages a user can read and fixes a user can paste (issue 17 items 6,
//! 7, 10, 8): KM001 names the image in plain words the same way on GitLab
//! and Cloud Build, Cloud Build steps are named as Cloud Build's own logs
//! name them, the KM005 cleanup policy substitutes visible defaults and
//! marks the rest as placeholders, and human output never wraps code.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/cli_messages")
        .join(rel)
}

/// A temporary checkout holding the Cloud Build and GitLab fixtures.
fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::copy(
        fixture("cloudbuild.yaml"),
        dir.path().join("cloudbuild.yaml"),
    )
    .unwrap();
    fs::copy(fixture("gitlab-ci.yml"), dir.path().join(".gitlab-ci.yml")).unwrap();
    dir
}

fn kmigrate(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kmigrate"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("FORCE_COLOR")
        .stdin(Stdio::null())
        .output()
        .expect("kmigrate runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `check --format json`'s findings.
fn findings(cwd: &Path, file: &str) -> Vec<Value> {
    let out = kmigrate(cwd, &["check", "--format", "json", file]);
    let v: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
    v["findings"].as_array().expect("findings").clone()
}

fn messages(found: &[Value], rule: &str) -> Vec<String> {
    found
        .iter()
        .filter(|f| f["rule"] == rule)
        .map(|f| f["message"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn cli_messages_km001_names_the_image_in_plain_words_on_both_platforms() {
    let dir = tree();
    let gitlab = messages(&findings(dir.path(), ".gitlab-ci.yml"), "KM001");
    let cloudbuild = messages(&findings(dir.path(), "cloudbuild.yaml"), "KM001");
    assert_eq!(gitlab.len(), 1, "{gitlab:?}");
    assert_eq!(cloudbuild.len(), 2, "{cloudbuild:?}");
    for m in gitlab.iter().chain(&cloudbuild) {
        assert!(!m.contains("upstream-executor"), "internal table id: {m}");
        assert!(!m.contains("registry proxies"), "table comment: {m}");
        assert!(
            m.contains("`gcr.io/kaniko-project/executor:debug`"),
            "names the image: {m}"
        );
    }
    // The same image is described with the same words on both platforms.
    let what = |m: &str| m.split_once(" runs ").map(|(_, w)| w.to_string());
    assert_eq!(
        what(&gitlab[0]),
        what(&cloudbuild[0]),
        "{gitlab:?} {cloudbuild:?}"
    );
}

#[test]
fn cli_messages_cloudbuild_steps_are_named_as_cloud_build_logs_name_them() {
    let dir = tree();
    let found = findings(dir.path(), "cloudbuild.yaml");
    let km001 = messages(&found, "KM001");
    // The second step has no id: Cloud Build's logs call it `Step #1`.
    assert!(km001[0].starts_with("Step #1 runs"), "{km001:?}");
    // The third has an id: named by it.
    assert!(km001[1].starts_with("step `img` runs"), "{km001:?}");
    let fixes: Vec<&str> = found
        .iter()
        .filter_map(|f| f["fix"]["description"].as_str())
        .collect();
    assert!(
        fixes.contains(&"rewrite Step #1 to docker buildx build"),
        "{fixes:?}"
    );
    assert!(
        fixes.contains(&"rewrite step `img` to docker buildx build"),
        "{fixes:?}"
    );
    let all = serde_json::to_string(&found).unwrap();
    assert!(!all.contains("step 2") && !all.contains("step 3"), "{all}");
}

/// The KM005 help, as `check --format json` gives it.
fn km005_help(dir: &Path) -> String {
    let found = findings(dir, "cloudbuild.yaml");
    let f = found
        .iter()
        .find(|f| f["rule"] == "KM005")
        .expect("a KM005 finding");
    f["help"].as_str().unwrap().to_string()
}

#[test]
fn cli_messages_cleanup_policy_substitutes_visible_defaults() {
    let dir = tree();
    let help = km005_help(dir.path());
    // `_SERVICE` and `_REGION` have defaults under `substitutions:`.
    assert!(
        help.contains(r#""packageNamePrefixes": ["web/cache"]"#),
        "{help}"
    );
    assert!(help.contains("--location=europe-west1"), "{help}");
    // `_REPO` and the built-in `$PROJECT_ID` have none: placeholders the
    // user must fill, and the help says so.
    assert!(help.contains("set-cleanup-policies <_REPO> "), "{help}");
    assert!(help.contains("--project=<PROJECT_ID>"), "{help}");
    assert!(!help.contains("${_"), "{help}");
    assert!(help.contains("replace each `<…>` placeholder"), "{help}");
}

#[test]
fn cli_messages_human_output_never_wraps_code() {
    let dir = tree();
    let help = km005_help(dir.path());
    let code: Vec<&str> = help
        .lines()
        .filter(|l| l.trim_start().starts_with("[{") || l.contains("gcloud "))
        .collect();
    assert_eq!(code.len(), 2, "{help}");
    let out = kmigrate(dir.path(), &["check", "cloudbuild.yaml"]);
    let human = stdout(&out);
    for line in code {
        let line = line.trim_start().trim_start_matches("then run: ");
        assert!(human.contains(line), "`{line}` is wrapped in:\n{human}");
    }
    // Prose still wraps at the terminal's width.
    assert!(
        human.lines().filter(|l| l.contains("KM001")).count() >= 2,
        "{human}"
    );
    // Messages and help: the lines miette wraps (not the source excerpt).
    let prose = human
        .lines()
        .filter(|l| {
            ["  × ", "  ⚠ ", "  │ ", "  help: ", "        "]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .filter(|l| !l.contains("[{") && !l.contains("gcloud "))
        .map(|l| l.chars().count())
        .max()
        .unwrap();
    assert!(prose <= 100, "prose line of {prose} columns:\n{human}");
}

#[test]
fn cli_messages_help_points_to_the_json_schema_and_names_placeholders() {
    let dir = tree();
    let out = kmigrate(dir.path(), &["check", "--help"]);
    assert!(stdout(&out).contains("schemas/"), "{}", stdout(&out));
    // The cleanup policies `report` lists may hold placeholders.
    let out = kmigrate(dir.path(), &["--help"]);
    assert!(
        stdout(&out).contains("`<NAME>` placeholder"),
        "{}",
        stdout(&out)
    );
}

/// Every `cloudbuild.yaml:N` location in `text`.
fn locations(text: &str) -> Vec<&str> {
    text.match_indices("cloudbuild.yaml:")
        .map(|(at, m)| {
            let rest = &text[at + m.len()..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            &text[at..at + m.len() + digits]
        })
        .collect()
}

#[test]
fn cli_messages_verify_progress_and_result_name_the_same_step_and_line() {
    // The file still uses Kaniko: verify checks the rewrite in memory,
    // where a setup step comes first and the build moves down.
    let dir = tempfile::tempdir().unwrap();
    fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/verify/unresolved/cloudbuild.yaml"),
        dir.path().join("cloudbuild.yaml"),
    )
    .unwrap();
    let store = dir.path().join("store");
    let out = kmigrate(
        dir.path(),
        &[
            "verify",
            "cloudbuild.yaml",
            "--store",
            store.to_str().unwrap(),
        ],
    );
    let (progress, result) = (String::from_utf8_lossy(&out.stderr), stdout(&out));
    assert_eq!(out.status.code(), Some(2), "{progress}{result}");
    // The step as written in the user's file, in progress and result alike.
    assert!(result.contains("Step #0 (cloudbuild.yaml:3)"), "{result}");
    assert!(
        progress.contains("Step #0 (cloudbuild.yaml:3): not run"),
        "{progress}"
    );
    let all = format!("{progress}{result}");
    assert!(
        locations(&all).iter().all(|l| *l == "cloudbuild.yaml:3"),
        "{all}"
    );
}

/// A checkout whose `deploy/cloudbuild.yaml` is a symlink to the top-level
/// `cloudbuild.yaml`: walking `.` reaches the file by its own name.
#[cfg(unix)]
fn linked_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::copy(
        fixture("cloudbuild.yaml"),
        dir.path().join("cloudbuild.yaml"),
    )
    .unwrap();
    fs::create_dir(dir.path().join("deploy")).unwrap();
    std::os::unix::fs::symlink(
        "../cloudbuild.yaml",
        dir.path().join("deploy/cloudbuild.yaml"),
    )
    .unwrap();
    dir
}

#[cfg(unix)]
#[test]
fn cli_messages_a_file_named_and_walked_is_reported_once_under_the_name_given() {
    let dir = linked_tree();
    for order in [
        [".", "deploy/cloudbuild.yaml"],
        ["deploy/cloudbuild.yaml", "."],
    ] {
        let mut args = vec!["check", "--format", "concise"];
        args.extend(order);
        let out = stdout(&kmigrate(dir.path(), &args));
        assert!(!out.is_empty(), "{order:?}");
        assert!(
            out.lines()
                .all(|l| l.starts_with("deploy/cloudbuild.yaml:")),
            "{order:?}:\n{out}"
        );
        let mut args = vec!["rewrite", "--diff"];
        args.extend(order);
        let out = stdout(&kmigrate(dir.path(), &args));
        let headers: Vec<&str> = out.lines().filter(|l| l.starts_with("+++ ")).collect();
        assert_eq!(
            headers,
            ["+++ b/deploy/cloudbuild.yaml"],
            "{order:?}:\n{out}"
        );
        let mut args = vec!["report"];
        args.extend(order);
        let out = stdout(&kmigrate(dir.path(), &args));
        assert!(
            out.contains("`deploy/cloudbuild.yaml`"),
            "{order:?}:\n{out}"
        );
        assert!(!out.contains("`cloudbuild.yaml"), "{order:?}:\n{out}");
    }
}

#[test]
fn cli_messages_rewrite_notes_never_wrap_code() {
    // Names long enough that the policy is wider than any terminal.
    let long = "a-service-with-a-rather-long-name-".repeat(4);
    let dir = tempfile::tempdir().unwrap();
    let text = fs::read_to_string(fixture("cloudbuild.yaml"))
        .unwrap()
        .replace("_SERVICE: web", &format!("_SERVICE: {long}"));
    fs::write(dir.path().join("cloudbuild.yaml"), text).unwrap();
    let help = km005_help(dir.path());
    let code: Vec<&str> = help
        .lines()
        .filter(|l| l.trim_start().starts_with("[{") || l.contains("gcloud "))
        .map(str::trim_start)
        .collect();
    assert_eq!(code.len(), 2, "{help}");
    let out = kmigrate(dir.path(), &["rewrite", "--diff", "cloudbuild.yaml"]);
    let notes = String::from_utf8_lossy(&out.stderr);
    for line in code {
        assert!(notes.contains(line), "`{line}` is wrapped in:\n{notes}");
    }
}

#[test]
fn cli_messages_gitlab_cleanup_policy_substitutes_visible_variables() {
    let dir = tempfile::tempdir().unwrap();
    fs::copy(
        fixture("gitlab-ttl-ci.yml"),
        dir.path().join(".gitlab-ci.yml"),
    )
    .unwrap();
    let found = findings(dir.path(), ".gitlab-ci.yml");
    let help = found
        .iter()
        .find(|f| f["rule"] == "KM005")
        .and_then(|f| f["help"].as_str())
        .expect("a KM005 help")
        .to_string();
    // `REGION` (global) and `SERVICE` (the job's) are defined in the file.
    assert!(
        help.contains(r#""packageNamePrefixes": ["web/cache"]"#),
        "{help}"
    );
    assert!(help.contains("--location=europe-west1 "), "{help}");
    // `GCP_PROJECT` is set elsewhere (CI/CD settings): a placeholder.
    assert!(help.contains("--project=<GCP_PROJECT> "), "{help}");
    assert!(help.contains("replace each `<…>` placeholder"), "{help}");
}
