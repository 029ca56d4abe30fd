//! One fixture directory per rule (`tests/fixtures/rules/KMxxx/`), in the
//! spirit of zizmor's per-audit integration tests: adding a rule means a
//! page in `rules/`, its detector, and a directory here — the first test
//! fails until the directory exists.

use crate::support::*;

use std::path::{Path, PathBuf};

use kmigrate::rules::meta as rules;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rules")
}

/// The platform a case's file name starts with.
fn platform_of(name: &str) -> &'static str {
    for p in [
        "cloudbuild",
        "drone",
        "github",
        "gitlab",
        "jenkins",
        "kubernetes",
        "skaffold",
        "tekton",
    ] {
        if name.starts_with(&format!("{p}_")) {
            return p;
        }
    }
    panic!(
        "{name}: a case's name starts with its platform (cloudbuild_, drone_, github_, gitlab_, jenkins_, kubernetes_, skaffold_, tekton_)"
    )
}

/// Each case of a rule's directory with its concise findings.
fn cases(id: &str) -> Vec<(String, String)> {
    let dir = fixtures().join(id);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (every rule needs fixtures)", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let out = kmigrate(
                &dir,
                &[
                    "check",
                    "--no-config",
                    "--format",
                    "concise",
                    "--platform",
                    platform_of(&name),
                    &name,
                ],
            );
            assert!(
                matches!(out.status.code(), Some(0 | 1)),
                "{id}/{name}: {}",
                output_text(&out)
            );
            (name, String::from_utf8(out.stdout).unwrap())
        })
        .collect()
}

#[test]
fn every_rule_has_a_case_that_reports_it_and_clean_cases_do_not() {
    for meta in rules::all() {
        let id = meta.id;
        let cases = cases(id);
        let marker = format!(": {id} [");
        let mut reporting = 0;
        for (name, found) in &cases {
            if name.contains("_clean") {
                assert!(
                    !found.contains(&marker),
                    "{id}/{name} must not report {id}:\n{found}"
                );
            } else {
                assert!(
                    found.contains(&marker),
                    "{id}/{name} must report {id}:\n{found}"
                );
                reporting += 1;
            }
        }
        assert!(reporting > 0, "{id}: no case reports it");
    }
}

#[test]
fn rule_fixture_findings() {
    for meta in rules::all() {
        let text: String = cases(meta.id)
            .into_iter()
            .map(|(name, found)| format!("== {name}\n{found}"))
            .collect();
        snapshot!(format!("rule_fixtures_{}", meta.id), text);
    }
}

#[test]
fn every_fixture_directory_is_a_rule() {
    let ids: Vec<&str> = rules::all().iter().map(|m| m.id).collect();
    for e in std::fs::read_dir(fixtures()).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(
                ids.contains(&name.as_str()),
                "tests/fixtures/rules/{name} is no rule"
            );
        }
    }
}
