//! Cloud Build configs written the way Google's docs write them: the real
//! binary on fixtures under tests/fixtures/cloudbuild-everyday/ (issue 14
//! items 8, 9, 12–15; issue 13 item 20).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value as Json;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kmigrate"))
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .expect("kmigrate runs")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/cloudbuild-everyday")
        .join(name)
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// `check --format json`: the findings, and the file's text.
fn findings(path: &Path) -> (Vec<Json>, String) {
    let o = run(&["check", "--format", "json", path.to_str().unwrap()]);
    let report: Json = serde_json::from_str(&stdout(&o))
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&o), stderr(&o)));
    let list = report["findings"].as_array().cloned().unwrap_or_default();
    (list, fs::read_to_string(path).unwrap())
}

/// The source text a finding points at.
fn spanned<'t>(f: &Json, text: &'t str) -> &'t str {
    let start = f["span"]["start"].as_u64().unwrap() as usize;
    let end = f["span"]["end"].as_u64().unwrap() as usize;
    &text[start..end]
}

fn rules_of(list: &[Json]) -> Vec<String> {
    list.iter()
        .map(|f| f["rule"].as_str().unwrap().to_string())
        .collect()
}

/// `rewrite --stdout`: the new text and the exit code.
fn rewritten(path: &Path) -> (String, String, i32) {
    let o = run(&["rewrite", "--stdout", path.to_str().unwrap()]);
    (stdout(&o), stderr(&o), o.status.code().unwrap())
}

fn scratch(text: &str, name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    fs::write(&path, text).unwrap();
    (dir, path)
}

// ---- issue 14 item 8: Cloud Build's `$$` ----

/// `$$X` in a script is the shell's `$X`: flags from a variable. The step
/// stays on Kaniko with a KM012 naming the word, and no word is dropped.
#[test]
fn dollar_dollar_flag_variables_keep_the_step_on_kaniko() {
    for (name, word) in [
        ("dollar-dollar-flags.yaml", "$$EXTRA"),
        ("dollar-dollar-braces.yaml", "$${EXTRA_FLAGS}"),
        ("dollar-dollar-quoted.yaml", "\"$$ONE_FLAG\""),
        ("dollar-dollar-args.yaml", "'$$EXTRA'"),
    ] {
        let path = fixture(name);
        let (list, text) = findings(&path);
        let rules = rules_of(&list);
        assert!(!rules.contains(&"KM013".to_string()), "{name}: {list:#?}");
        let km012 = list
            .iter()
            .find(|f| f["rule"] == "KM012")
            .unwrap_or_else(|| panic!("{name}: no KM012 in {list:#?}"));
        assert_eq!(spanned(km012, &text), word, "{name}");
        let km001 = list.iter().find(|f| f["rule"] == "KM001").unwrap();
        assert_eq!(km001["fixable"], false, "{name}: {km001:#?}");
        let (out, messages, code) = rewritten(&path);
        assert_eq!(code, 0, "{name}: {messages}");
        assert_eq!(out, text, "{name}: the step must stay as written");
    }
}

/// `$$` inside values is passed through as written.
#[test]
fn dollar_dollar_inside_values_is_kept() {
    let path = fixture("dollar-dollar-values.yaml");
    let (list, _) = findings(&path);
    assert!(
        !rules_of(&list).iter().any(|r| r == "KM012" || r == "KM013"),
        "{list:#?}"
    );
    let (out, messages, code) = rewritten(&path);
    assert_eq!(code, 0, "{messages}");
    for kept in [
        "gcr.io/p/app:$${TAG}",
        "VERSION=$$VERSION",
        "SHA=$${SHORT_SHA}",
    ] {
        assert!(out.contains(kept), "{kept} lost: {out}");
    }
    assert!(out.contains("docker buildx build"), "{out}");
}

// ---- issue 14 item 9: an ignore silences exactly the rules it lists ----

/// The findings of `path` as (rule, text under the span).
fn rule_texts(path: &Path) -> Vec<(String, String)> {
    let (list, text) = findings(path);
    list.iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                spanned(f, &text).to_string(),
            )
        })
        .collect()
}

#[test]
fn ignoring_km001_keeps_the_other_rules_of_the_step() {
    let found = rule_texts(&fixture("ignore-exact.yaml"));
    let rules: Vec<&str> = found.iter().map(|(r, _)| r.as_str()).collect();
    assert!(!rules.contains(&"KM001"), "{found:?}");
    // The gs:// context that keeps step 1 on Kaniko is still reported.
    assert!(
        found.contains(&("KM012".into(), "'--context=gs://bucket/ctx.tar.gz'".into())),
        "{found:?}"
    );
    // Step 2 stays on Kaniko, where `--cache true` still fails: reported,
    // with no fix (the rewrite it carried is withheld).
    let (list, _) = findings(&fixture("ignore-exact.yaml"));
    let km013 = list
        .iter()
        .find(|f| f["rule"] == "KM013")
        .unwrap_or_else(|| panic!("{found:?}"));
    assert_eq!(km013["fixable"], false, "{km013:#?}");
    // Notes about what the withheld rewrite would change are moot.
    assert!(
        !rules.contains(&"KM010") && !rules.contains(&"KM005"),
        "{found:?}"
    );
    // And `rewrite` leaves both steps alone.
    let (out, messages, code) = rewritten(&fixture("ignore-exact.yaml"));
    assert_eq!(code, 0, "{messages}");
    assert_eq!(
        out,
        fs::read_to_string(fixture("ignore-exact.yaml")).unwrap()
    );
}

#[test]
fn ignoring_a_gitlab_job_keeps_its_other_rules() {
    let found = rule_texts(&fixture("ignore-exact.gitlab-ci.yml"));
    let rules: Vec<&str> = found.iter().map(|(r, _)| r.as_str()).collect();
    assert!(!rules.contains(&"KM001"), "{found:?}");
    assert!(rules.contains(&"KM012"), "{found:?}");
}
