//! GitLab template fragments (issue 15 item 3): a file that `extends:` or
//! `!reference`s a template kmigrate did not read is checked and migrated
//! from what it says itself; the unknown template is one finding, never
//! the end of the check. The real binary, human and JSON output.

use std::path::Path;

use crate::support::kmigrate;

use serde_json::Value;

/// A checkout (with `.git`) holding a copy of fixture directory `case`.
fn checkout(case: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join(".git")).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gitlab-fragments")
        .join(case);
    copy_dir(&src, tmp.path());
    tmp
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn text(b: &[u8]) -> String {
    let re = regex::Regex::new(r" in \d+\.\d\ds").unwrap();
    re.replace_all(&String::from_utf8_lossy(b), " in [TIME]")
        .into_owned()
}

/// `check --format json` of `file`: the exit code and the findings.
fn check_json(dir: &Path, file: &str) -> (i32, Vec<Value>) {
    let o = kmigrate(dir, &["check", "--format", "json", file]);
    let json: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&o.stdout), text(&o.stderr)));
    let findings = json["findings"].as_array().cloned().unwrap_or_default();
    (o.status.code().unwrap(), findings)
}

fn with_rule<'a>(findings: &'a [Value], rule: &str) -> Vec<&'a Value> {
    findings.iter().filter(|f| f["rule"] == rule).collect()
}

fn message(f: &Value) -> &str {
    f["message"].as_str().unwrap()
}

/// Checks `file` in human format and snapshots it, with its exit code.
fn check_human(dir: &Path, file: &str, name: &str) -> i32 {
    let o = kmigrate(dir, &["check", file]);
    snapshot!(name, format!("{}{}", text(&o.stdout), text(&o.stderr)));
    o.status.code().unwrap()
}

fn rewrite_diff(dir: &Path, file: &str) -> (i32, String) {
    let o = kmigrate(dir, &["rewrite", "--diff", file]);
    (o.status.code().unwrap(), text(&o.stdout))
}

#[test]
fn a_fragment_extending_a_missing_template_reports_its_kaniko_job() {
    let d = checkout("base-env");
    let (code, findings) = check_json(d.path(), "ci/build.yml");
    assert_eq!(code, 1);
    let km001 = with_rule(&findings, "KM001");
    assert_eq!(km001.len(), 1);
    assert_eq!(km001[0]["fixable"], true);
    let km014 = with_rule(&findings, "KM014");
    assert_eq!(km014.len(), 1, "{km014:?}");
    assert_eq!(km014[0]["severity"], "info");
    // What the job does not set itself may come from the template.
    let m = message(km014[0]);
    assert!(
        m.contains("services, variables, before_script and after_script may come from `.base-env`"),
        "{m}"
    );
    assert!(!m.contains("image,"), "the job sets its own image: {m}");
    assert_eq!(
        check_human(d.path(), "ci/build.yml", "fragment-base-env"),
        1
    );
    let (code, diff) = rewrite_diff(d.path(), "ci/build.yml");
    assert_eq!(code, 0, "{diff}");
    assert!(diff.contains("+    - docker buildx build"), "{diff}");
    assert!(diff.contains(" build:\n   extends: .base-env\n"), "{diff}");
    snapshot!("fragment-base-env.diff", diff);
}

#[test]
fn a_job_whose_image_comes_from_a_missing_template_gets_its_own_and_is_told_so() {
    let d = checkout("base-env");
    let (code, findings) = check_json(d.path(), "ci/noimage.yml");
    assert_eq!(code, 1);
    let km014 = with_rule(&findings, "KM014");
    let m: Vec<&str> = km014.iter().map(|f| message(f)).collect();
    assert!(
        m.iter().any(|m| m.contains(
            "image, services, variables, before_script and after_script may come from `.base-env`"
        )),
        "{m:?}"
    );
    // The fix replaces the template's image and services: said so.
    let over = with_rule(&findings, "KM001")[0]["help"]
        .as_str()
        .unwrap()
        .to_string()
        + &m.join("\n");
    assert!(
        over.contains(
            "sets the job's own `image` and `services`, which replace those of `.base-env`"
        ),
        "{over}"
    );
    let (code, diff) = rewrite_diff(d.path(), "ci/noimage.yml");
    assert_eq!(code, 0, "{diff}");
    assert!(diff.contains("+  image: docker:"), "{diff}");
    // A `before_script` of its own would replace the template's: the
    // setup goes at the start of the script instead.
    assert!(!diff.contains("+  before_script:"), "{diff}");
    snapshot!("fragment-noimage.diff", diff);
}

#[test]
fn a_reference_to_a_missing_template_is_a_finding_and_stays_in_the_rewrite() {
    let d = checkout("reference");
    let (code, findings) = check_json(d.path(), "ci/build.yml");
    assert_eq!(code, 1, "{findings:?}");
    assert_eq!(with_rule(&findings, "KM001").len(), 1);
    let km014 = with_rule(&findings, "KM014");
    let m: Vec<&str> = km014.iter().map(|f| message(f)).collect();
    assert_eq!(m.len(), 2, "{m:?}");
    assert!(
        m.iter().any(
            |m| m.contains("!reference [.other, before_script]` points into `.other`")
                && m.contains("did not read")
        ),
        "{m:?}"
    );
    assert!(km014.iter().all(|f| f["severity"] == "info"));
    assert_eq!(
        check_human(d.path(), "ci/build.yml", "fragment-reference"),
        1
    );
    let (code, diff) = rewrite_diff(d.path(), "ci/build.yml");
    assert_eq!(code, 0, "{diff}");
    assert!(diff.contains("+    - docker buildx build"), "{diff}");
    assert!(!diff.contains("-    - !reference"), "{diff}");
    let help = with_rule(&findings, "KM001")[0]["help"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(help.contains("the lines of `!reference [.other, before_script]` and `!reference [.other, script]` (not read) now run in the new image"), "{help}");
    snapshot!("fragment-reference.diff", diff);
}

#[test]
fn a_job_whose_kaniko_image_is_only_in_the_missing_template_is_reported_not_rewritten() {
    let d = checkout("image-from-template");
    let (code, findings) = check_json(d.path(), "ci/build.yml");
    assert_eq!(code, 1, "{findings:?}");
    let km001 = with_rule(&findings, "KM001");
    let jobs: Vec<&str> = km001.iter().map(|f| message(f)).collect();
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    assert!(
        jobs[0].contains("`build`") && jobs[0].contains("KANIKO_DESTINATION"),
        "{jobs:?}"
    );
    assert!(
        jobs[1].contains("`publish`") && jobs[1].contains("`executor`"),
        "{jobs:?}"
    );
    assert!(km001.iter().all(|f| f["fixable"] == false));
    assert_eq!(
        check_human(d.path(), "ci/build.yml", "fragment-image-from-template"),
        1
    );
    let (_, diff) = rewrite_diff(d.path(), "ci/build.yml");
    assert!(!diff.contains("+++"), "nothing can be rewritten: {diff}");
}

#[test]
fn a_chain_with_one_missing_level_reports_it_once() {
    let d = checkout("chain");
    let (code, findings) = check_json(d.path(), "ci/build.yml");
    assert_eq!(code, 1);
    let km014 = with_rule(&findings, "KM014");
    assert_eq!(km014.len(), 1, "{km014:?}");
    assert!(message(km014[0]).contains("`.missing-base`"));
    assert_eq!(with_rule(&findings, "KM001").len(), 1);
}

#[test]
fn a_whole_pipeline_extending_an_undefined_template_is_a_finding_not_exit_2() {
    let d = checkout("complete");
    let (code, findings) = check_json(d.path(), ".gitlab-ci.yml");
    assert_eq!(code, 1);
    let km014 = with_rule(&findings, "KM014");
    assert_eq!(km014.len(), 1, "{km014:?}");
    // GitLab rejects this pipeline: an error, but the Kaniko job is shown.
    assert_eq!(km014[0]["severity"], "error");
    assert!(message(km014[0]).contains("`.base-env`"));
    assert_eq!(with_rule(&findings, "KM001").len(), 1);
}

#[test]
fn a_missing_extends_in_a_whole_pipeline_is_an_error_finding_and_nothing_is_written() {
    // Was a load error (exit 2, zero findings) before issue 15 item 3.
    let tmp = tempfile::tempdir().unwrap();
    let src =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gitlab/bad-missing-extends");
    copy_dir(&src, tmp.path());
    let before = std::fs::read(tmp.path().join(".gitlab-ci.yml")).unwrap();
    let (code, findings) = check_json(tmp.path(), ".gitlab-ci.yml");
    assert_eq!(code, 1);
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0]["rule"], "KM014");
    assert_eq!(findings[0]["severity"], "error");
    assert_eq!(findings[0]["start"]["line"], 2);
    assert!(message(&findings[0]).contains("`.kaniko`, which is not defined in this pipeline"));
    let o = kmigrate(tmp.path(), &["rewrite", ".gitlab-ci.yml"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(
        std::fs::read(tmp.path().join(".gitlab-ci.yml")).unwrap(),
        before
    );
}
