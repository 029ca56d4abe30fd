//! Variables that hold Kaniko flags in GitLab CI (issue 15 item 1): a
//! variable whose every definition kmigrate can see has its definitions
//! translated to buildx spelling and stays in the new call; one set outside
//! the files read is passed through unchanged with a KM015 warning; one it
//! cannot translate leaves the build on Kaniko with KM012 naming the line.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/vars_gitlab")
        .join(case)
}

/// Runs kmigrate in `dir` on its `.gitlab-ci.yml`.
fn run_in(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_kmigrate"))
        .env("NO_COLOR", "1")
        .current_dir(dir)
        .args(args)
        .arg(".gitlab-ci.yml")
        .output()
        .expect("kmigrate runs");
    (o.status.code(), String::from_utf8(o.stdout).unwrap())
}

/// `check --format json`: each finding as (rule, message, line).
fn findings(dir: &Path) -> Vec<(String, String, u64)> {
    let (_, out) = run_in(dir, &["check", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["message"].as_str().unwrap().to_string(),
                f["start"]["line"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn rules(f: &[(String, String, u64)]) -> Vec<&str> {
    let mut r: Vec<&str> = f.iter().map(|(r, _, _)| r.as_str()).collect();
    r.sort();
    r.dedup();
    r
}

/// The rewritten text; checks it is `check`-clean and a fixed point.
fn rewritten(case: &str) -> String {
    let (code, out) = run_in(&fixture(case), &["rewrite", "--stdout"]);
    assert_eq!(code, Some(0), "{case}: rewrite --stdout");
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join(".gitlab-ci.yml"), &out).unwrap();
    let again = findings(tmp.path());
    assert!(
        again.iter().all(|(r, _, _)| r != "KM001" && r != "KM012"),
        "{case}: the rewrite still runs Kaniko: {again:?}"
    );
    let (_, twice) = run_in(tmp.path(), &["rewrite", "--stdout"]);
    assert_eq!(twice, out, "{case}: rewrite is not idempotent");
    out
}

#[test]
fn a_yaml_variable_defined_in_the_job_is_translated_where_it_is_written() {
    let f = findings(&fixture("defined"));
    assert!(!rules(&f).contains(&"KM012"), "{f:?}");
    assert!(!rules(&f).contains(&"KM015"), "{f:?}");
    // `--single-snapshot` is removed from the variable, with its note.
    assert!(
        f.iter()
            .any(|(r, m, l)| r == "KM011" && m.contains("--single-snapshot") && *l == 11),
        "{f:?}"
    );
    let out = rewritten("defined");
    assert!(out.contains(
        r#"BUILD_FLAGS: "--file web/Containerfile --tag $APP_IMAGE:$CI_COMMIT_SHORT_SHA --build-arg MODE=release""#
    ), "{out}");
    assert!(
        out.contains(r#"echo "building with $BUILD_FLAGS""#),
        "{out}"
    );
    assert!(
        out.contains("--push --provenance=false $BUILD_FLAGS web"),
        "{out}"
    );
    snapshot!("vars_gitlab_defined", out);
}

#[test]
fn a_variable_set_outside_the_file_is_passed_through_with_km015() {
    let f = findings(&fixture("outside"));
    assert!(!rules(&f).contains(&"KM012"), "{f:?}");
    let km015: Vec<_> = f.iter().filter(|(r, _, _)| r == "KM015").collect();
    assert_eq!(km015.len(), 1, "{f:?}");
    assert!(km015[0].1.contains("`$EXTRA_BUILD_FLAGS`"), "{f:?}");
    assert_eq!(km015[0].2, 7);
    let out = rewritten("outside");
    assert!(
        out.contains("--push --provenance=false $EXTRA_BUILD_FLAGS ."),
        "the variable stays an unquoted word of the new call: {out}"
    );
    snapshot!("vars_gitlab_outside", out);
}

#[test]
fn definitions_in_loops_and_if_branches_are_all_translated() {
    let f = findings(&fixture("accumulated"));
    assert!(!rules(&f).contains(&"KM012"), "{f:?}");
    assert!(!rules(&f).contains(&"KM015"), "{f:?}");
    let out = rewritten("accumulated");
    for line in [
        r#"TARGETS="$TARGETS --tag $CI_REGISTRY_IMAGE:$t""#,
        r#"TARGETS+=" --tag=$CI_REGISTRY_IMAGE:$CI_COMMIT_TAG""#,
        r#"export TARGETS="$TARGETS --tag $CI_REGISTRY_IMAGE:stable""#,
        r#"TARGETS="${TARGETS} --label channel=dev""#,
        r#"TARGETS="""#,
        "--push --provenance=false ${TARGETS} .",
        // The tags the variable holds are in GitLab's registry: log in.
        "docker login \"$CI_REGISTRY\"",
    ] {
        assert!(out.contains(line), "{line}: {out}");
    }
    snapshot!("vars_gitlab_accumulated", out);
}

#[test]
fn a_variable_another_command_reads_is_passed_through_not_translated() {
    let f = findings(&fixture("used-elsewhere"));
    assert!(!rules(&f).contains(&"KM012"), "{f:?}");
    assert!(
        f.iter().any(|(r, m, _)| r == "KM015"
            && m.contains("`$OPTS`")
            && m.contains("lint-build-options")),
        "{f:?}"
    );
    let out = rewritten("used-elsewhere");
    assert!(out.contains(r#"OPTS="--build-arg CHANNEL=beta""#), "{out}");
    assert!(out.contains("./tools/lint-build-options $OPTS"), "{out}");
    assert!(out.contains("--provenance=false $OPTS ."), "{out}");
}

#[test]
fn a_definition_that_cannot_be_translated_keeps_the_build_and_names_its_line() {
    let dir = fixture("untranslatable");
    let f = findings(&dir);
    let km012: Vec<_> = f.iter().filter(|(r, _, _)| r == "KM012").collect();
    assert_eq!(km012.len(), 1, "{f:?}");
    assert!(km012[0].1.contains("`$CACHE_FLAGS`"), "{f:?}");
    assert!(km012[0].1.contains("line 8"), "{f:?}");
    assert!(km012[0].1.contains("--cache-repo"), "{f:?}");
    let (_, out) = run_in(&dir, &["rewrite", "--stdout"]);
    let src = std::fs::read_to_string(dir.join(".gitlab-ci.yml")).unwrap();
    assert_eq!(out, src, "the build stays as it is");
}

#[test]
fn an_empty_yaml_default_is_visible_but_its_real_value_comes_from_elsewhere() {
    let f = findings(&fixture("empty-default"));
    assert!(!rules(&f).contains(&"KM012"), "{f:?}");
    let km015: Vec<_> = f.iter().filter(|(r, _, _)| r == "KM015").collect();
    assert_eq!(km015.len(), 1, "{f:?}");
    assert!(km015[0].1.contains("`$USER_KANIKO_FLAGS`"), "{f:?}");
    let out = rewritten("empty-default");
    assert!(out.contains(r#"USER_KANIKO_FLAGS: """#), "{out}");
    assert!(out.contains("$USER_KANIKO_FLAGS tools"), "{out}");
}

#[test]
fn component_input_defaults_are_translated_and_inputs_without_one_pass_through() {
    let f = findings(&fixture("component"));
    assert!(!rules(&f).contains(&"KM012"), "{f:?}");
    let km015: Vec<&str> = f
        .iter()
        .filter(|(r, _, _)| r == "KM015")
        .map(|(_, m, _)| m.as_str())
        .collect();
    assert_eq!(km015.len(), 3, "{f:?}");
    assert!(
        km015[0].contains("`$[[ inputs.image_args ]]` gets its default (line 4) translated"),
        "{km015:?}"
    );
    assert!(
        km015[2].contains("`$[[ inputs.caller_args ]]` is set by the component's caller"),
        "{km015:?}"
    );
    let out = rewritten("component");
    assert!(
        out.contains(r#"default: "--tag $CI_REGISTRY_IMAGE:from-input --label team=infra""#),
        "{out}"
    );
    assert!(
        out.contains("--push --provenance=false $[[ inputs.image_args ]] $[[ inputs.more_args ]] $[[ inputs.caller_args ]] ."),
        "{out}"
    );
    snapshot!("vars_gitlab_component", out);
}
