//! The rule model every detector and report imports: [`Rule`] (generated
//! from the pages in `rules/`), [`Severity`], and [`Finding`]s with
//! optional [`Fix`]es. A leaf: it imports nothing of the crate but the
//! text [`Edit`] a fix is made of; the detectors live with their platform
//! (`platform::cloudbuild::findings`, `platform::gitlab::findings`).
//!
//! Detectors never edit text: a finding's fix is a list of [`Edit`]s on the
//! original text that `rewrite` applies together.

pub mod meta;
#[cfg(test)]
mod page;

use std::fmt;
use std::ops::Range;

use serde::Serialize;

pub use crate::source::patch::Edit;
pub use meta::{Rule, RuleKind, RuleMeta, UnknownRule};

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

/// How faithfully a fix carries a build over (ruff's fix applicability,
/// in a migration's terms). Ordered: `Exact < ChangesBehaviour`.
///
/// There is no display-only kind: where kmigrate cannot write the
/// migration, the finding has no fix and its help says what to do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Applicability {
    /// The new build does what the Kaniko build did.
    #[default]
    Exact,
    /// The new build differs (a flag translated or removed with a change,
    /// registry credentials Kaniko found by itself: the KM011 notes say
    /// how). `kmigrate rewrite` applies it; `--only-exact` leaves the build
    /// as it is.
    ChangesBehaviour,
}

impl Applicability {
    /// `ChangesBehaviour` when `changes`, else `Exact`.
    pub fn changing_behaviour_if(changes: bool) -> Self {
        if changes {
            Applicability::ChangesBehaviour
        } else {
            Applicability::Exact
        }
    }
}

/// Text edits that resolve a finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fix {
    /// One line saying what the fix does.
    pub description: String,
    pub edits: Vec<Edit>,
    pub applicability: Applicability,
}

impl Fix {
    /// An exact fix.
    pub fn new(description: impl Into<String>, edits: Vec<Edit>) -> Self {
        Fix {
            description: description.into(),
            edits,
            applicability: Applicability::Exact,
        }
    }

    pub fn with_applicability(mut self, applicability: Applicability) -> Self {
        self.applicability = applicability;
        self
    }
}

/// One problem at one place in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule: Rule,
    pub severity: Severity,
    /// Byte range in the file the finding points at.
    pub span: Range<usize>,
    pub message: String,
    pub help: Option<String>,
    pub fix: Option<Fix>,
}

impl Finding {
    /// A finding with the rule's default severity and no fix.
    pub fn new(rule: Rule, span: Range<usize>, message: impl Into<String>) -> Self {
        Finding {
            rule,
            severity: rule.severity(),
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
        // The rule's page says whether it is fixable: one source of truth.
        debug_assert!(
            self.rule.meta().fixable,
            "{} has a fix but its page says it is not fixable",
            self.rule
        );
        self.fix = Some(fix);
        self
    }
}
