//! The rule engine: findings with optional fixes, one detector per rule.
//!
//! Detectors never edit text: a finding's fix is a list of [`Edit`]s on the
//! original text that `rewrite` applies together.

mod cloudbuild;
pub mod meta;

use std::fmt;
use std::ops::Range;

use serde::Serialize;

use crate::source::patch::Edit;

pub use cloudbuild::findings as cloudbuild_findings;
pub use meta::RuleMeta;

/// How serious a finding is. Ordered: `Info < Warning < Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// Text edits that resolve a finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fix {
    /// One line saying what the fix does.
    pub description: String,
    pub edits: Vec<Edit>,
}

/// One problem at one place in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    /// Byte range in the file the finding points at.
    pub span: Range<usize>,
    pub message: String,
    pub help: Option<String>,
    pub fix: Option<Fix>,
}

impl Finding {
    /// A finding with the rule's default severity and no fix.
    pub fn new(rule: &'static str, span: Range<usize>, message: impl Into<String>) -> Self {
        let severity = meta::get(rule)
            .map(|m| m.severity)
            .unwrap_or_else(|| panic!("rule {rule} has no page in rules/"));
        Finding {
            rule,
            severity,
            span,
            message: message.into(),
            help: None,
            fix: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn with_fix(mut self, fix: Fix) -> Self {
        self.fix = Some(fix);
        self
    }
}
