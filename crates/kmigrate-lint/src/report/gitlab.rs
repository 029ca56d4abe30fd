//! `--format gitlab`: a GitLab Code Quality report (a JSON array of
//! CodeClimate issues: `description`, `check_name`, `fingerprint`,
//! `severity`, `location.path`, `location.lines.begin`).
//!
//! The fingerprint is what GitLab uses to tell a new finding from one it saw
//! on the target branch, so it must not change when lines move: see
//! [`Run::fingerprints`].

use serde_json::{Value, json};

use super::{Run, display_path};
use crate::rules::Severity;

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Error => "major",
        Severity::Warning => "minor",
        Severity::Info => "info",
    }
}

pub fn to_value(run: &Run) -> Value {
    let issues: Vec<Value> = run
        .located()
        .zip(run.fingerprints())
        .map(|(l, fp)| {
            let mut description = format!("{}: {}", l.finding.rule, l.finding.message);
            if l.finding.fix.is_some() {
                description.push_str(" (fixable with `kmigrate rewrite`)");
            }
            json!({
                "type": "issue",
                "description": description,
                "check_name": l.finding.rule,
                "categories": ["Compatibility"],
                "content": {"body": format!("{}\n\nSee {}", l.finding.help.as_deref().unwrap_or(&l.finding.message), l.help_url())},
                "fingerprint": fp,
                "severity": severity(l.finding.severity),
                "location": {
                    "path": display_path(l.path),
                    "lines": {"begin": l.start.0, "end": l.end.0},
                },
            })
        })
        .collect();
    Value::Array(issues.into_iter().chain(not_checked(run)).collect())
}

/// The check name of a file that could not be read or parsed.
pub const NOT_CHECKED: &str = "kmigrate-not-checked";

/// One issue per file that could not be checked: the merge request shows
/// that the file hides whatever it holds, at the parser's position. Its
/// fingerprint is the path's (a file has one such error), so it is the same
/// issue while the file stays broken, wherever the error moves.
fn not_checked(run: &Run) -> impl Iterator<Item = Value> + '_ {
    run.errors.iter().map(|e| {
        let path = display_path(&e.path);
        let line = e.position.map_or(1, |p| p.0);
        json!({
            "type": "issue",
            "description": format!("kmigrate could not check this file: {}", e.message),
            "check_name": NOT_CHECKED,
            "categories": ["Bug Risk"],
            "content": {"body": e.help.as_deref().unwrap_or(&e.message)},
            "fingerprint": super::fingerprint(&[NOT_CHECKED, &path]),
            "severity": "critical",
            "location": {"path": path, "lines": {"begin": line, "end": line}},
        })
    })
}

pub fn render(run: &Run) -> String {
    let mut s = serde_json::to_string_pretty(&to_value(run)).expect("JSON serialises");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::super::testing;
    use super::*;
    use crate::source::SourceFile;

    fn shifted(prefix: &str) -> Run {
        let mut run = testing::run();
        let file = &mut run.files[0];
        let text = format!("{prefix}{}", testing::TEXT);
        file.source = Some(Arc::new(
            SourceFile::from_text(Path::new("ci/cloudbuild.yaml"), text).unwrap(),
        ));
        for f in &mut file.findings {
            f.span = f.span.start + prefix.len()..f.span.end + prefix.len();
        }
        run
    }

    #[test]
    fn issues_have_the_required_fields() {
        let v = to_value(&testing::run());
        let i = &v[0];
        assert_eq!(i["check_name"], "KM001");
        assert_eq!(i["severity"], "major");
        assert_eq!(i["location"]["path"], "ci/cloudbuild.yaml");
        assert_eq!(i["location"]["lines"]["begin"], 2);
        assert!(i["description"].as_str().unwrap().starts_with("KM001: "));
        assert_eq!(i["fingerprint"].as_str().unwrap().len(), 32);
        assert_eq!(v[1]["severity"], "minor");
    }

    #[test]
    fn a_file_not_checked_is_an_issue_at_the_parser_position() {
        let v = to_value(&testing::run());
        let i = &v[2];
        assert_eq!(i["check_name"], NOT_CHECKED);
        assert_eq!(i["severity"], "critical");
        assert_eq!(i["location"]["path"], "bad/cloudbuild.yaml");
        assert_eq!(i["location"]["lines"]["begin"], 3);
        assert!(
            i["description"]
                .as_str()
                .unwrap()
                .contains("cannot be parsed: bad")
        );
        assert_eq!(i["fingerprint"].as_str().unwrap().len(), 32);
    }

    #[test]
    fn fingerprints_are_stable_across_runs_and_line_shifts_but_distinct() {
        let a = to_value(&testing::run());
        let b = to_value(&testing::run());
        let c = to_value(&shifted("# a comment\n\n"));
        assert_eq!(c[0]["location"]["lines"]["begin"], 4, "the lines did move");
        for i in 0..2 {
            assert_eq!(a[i]["fingerprint"], b[i]["fingerprint"]);
            assert_eq!(a[i]["fingerprint"], c[i]["fingerprint"]);
        }
        assert_ne!(a[0]["fingerprint"], a[1]["fingerprint"]);
    }

    #[test]
    fn identical_findings_get_distinct_fingerprints() {
        let mut run = testing::run();
        let dup = run.files[0].findings[0].clone();
        run.files[0].findings.push(dup);
        let v = to_value(&run);
        assert_ne!(v[0]["fingerprint"], v[2]["fingerprint"]);
    }
}
