//! `--format json`: one JSON document, schema version 1.
//!
//! ```text
//! {
//!   "version": 1,                       // bumped on any incompatible change
//!   "tool": {"name": "kmigrate", "version": "0.1.0"},
//!   "summary": {"files_scanned", "not_checked", "error", "warning", "info", "fixable"},
//!   "findings": [{
//!     "rule": "KM001", "severity": "error|warning|info",
//!     "path": "ci/cloudbuild.yaml",
//!     "start": {"line": 2, "column": 11},   // 1-based, columns in characters
//!     "end":   {"line": 2, "column": 48},   // just past the last character
//!     "span":  {"start": 17, "end": 54},    // byte offsets, end exclusive
//!     "message": "...", "help": "..." | null, "help_url": "https://...",
//!     "fixable": true,
//!     "fix": {"description": "...", "preview": "unified diff"} | null
//!   }],
//!   "errors": [{"path", "line" | null, "column" | null, "message", "help" | null}]
//! }
//! ```
//! Fields may be added within a version; none is removed or renamed. The
//! JSON Schema is `schemas/check-json-v1.schema.json`.

use serde_json::{Value, json};

use super::{Run, display_path};

/// The schema version written in every document.
pub const VERSION: u32 = 1;

pub fn to_value(run: &Run) -> Value {
    let findings: Vec<Value> = run
        .located()
        .map(|l| {
            let f = l.finding;
            json!({
                "rule": f.rule,
                "severity": f.severity,
                "path": display_path(l.path),
                "start": {"line": l.start.0, "column": l.start.1},
                "end": {"line": l.end.0, "column": l.end.1},
                "span": {"start": f.span.start, "end": f.span.end},
                "message": f.message,
                "help": f.help,
                "help_url": l.help_url(),
                "fixable": f.fix.is_some(),
                "fix": f.fix.as_ref().map(|fix| json!({
                    "description": fix.description,
                    "preview": l.fix_preview(),
                })),
            })
        })
        .collect();
    let errors: Vec<Value> = run
        .errors
        .iter()
        .map(|e| {
            json!({
                "path": display_path(&e.path),
                "line": e.position.map(|p| p.0),
                "column": e.position.map(|p| p.1),
                "message": e.message,
                "help": e.help,
            })
        })
        .collect();
    let [info, warning, error] = run.counts();
    json!({
        "version": VERSION,
        "tool": {"name": "kmigrate", "version": env!("CARGO_PKG_VERSION")},
        "summary": {
            "files_scanned": run.files_scanned(),
            "not_checked": run.errors.len(),
            "error": error,
            "warning": warning,
            "info": info,
            "fixable": run.fixable(),
        },
        "findings": findings,
        "errors": errors,
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

    #[test]
    fn output_validates_against_the_shipped_schema() {
        let schema: Value = serde_json::from_str(include_str!(
            "../../../../schemas/check-json-v1.schema.json"
        ))
        .unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let doc = to_value(&testing::run());
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
        let mut bad = doc;
        bad["findings"][0]["severity"] = json!("fatal");
        assert!(!validator.is_valid(&bad));
    }

    #[test]
    fn document_has_every_documented_field() {
        let v: Value = serde_json::from_str(&render(&testing::run())).unwrap();
        assert_eq!(v["version"], 1);
        assert_eq!(v["summary"]["files_scanned"], 1);
        assert_eq!(v["summary"]["error"], 1);
        assert_eq!(v["summary"]["fixable"], 1);
        let f = &v["findings"][0];
        assert_eq!(f["rule"], "KM001");
        assert_eq!(f["severity"], "error");
        assert_eq!(f["path"], "ci/cloudbuild.yaml");
        assert_eq!(f["start"], json!({"line": 2, "column": 11}));
        assert_eq!(f["end"], json!({"line": 2, "column": 48}));
        assert_eq!(f["span"], json!({"start": 17, "end": 54}));
        assert_eq!(f["fixable"], true);
        assert!(f["help_url"].as_str().unwrap().ends_with("/rules/KM001.md"));
        assert!(
            f["fix"]["preview"]
                .as_str()
                .unwrap()
                .contains("+  - name: gcr.io/cloud-builders/docker")
        );
        let g = &v["findings"][1];
        assert_eq!(g["rule"], "KM005");
        assert_eq!(g["fix"], Value::Null);
        assert_eq!(g["help"], Value::Null);
        assert_eq!(v["errors"][0]["line"], 3);
        assert_eq!(v["errors"][0]["path"], "bad/cloudbuild.yaml");
    }
}
