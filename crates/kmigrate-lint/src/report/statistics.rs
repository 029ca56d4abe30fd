//! `kmigrate check --statistics`: how many findings each rule has, instead
//! of the findings themselves (like ruff's `--statistics`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use super::Run;
use crate::rules::{Rule, Severity};

/// One rule's count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleCount {
    pub rule: Rule,
    /// The most severe of the rule's findings (configuration may change a
    /// rule's severity).
    pub severity: Severity,
    pub count: usize,
    /// How many of them `kmigrate rewrite` fixes.
    pub fixable: usize,
}

/// Every rule with at least one finding, most findings first, then by id.
pub fn count(run: &Run) -> Vec<RuleCount> {
    let mut by_rule: BTreeMap<Rule, RuleCount> = BTreeMap::new();
    for f in run.files.iter().flat_map(|file| &file.findings) {
        let c = by_rule.entry(f.rule).or_insert(RuleCount {
            rule: f.rule,
            severity: f.severity,
            count: 0,
            fixable: 0,
        });
        c.severity = c.severity.max(f.severity);
        c.count += 1;
        c.fixable += usize::from(f.fix.is_some());
    }
    let mut counts: Vec<RuleCount> = by_rule.into_values().collect();
    counts.sort_by(|a, b| b.count.cmp(&a.count).then(a.rule.cmp(&b.rule)));
    counts
}

fn summary(rule: Rule) -> &'static str {
    rule.meta().summary
}

/// The counts as a table.
pub fn render_text(run: &Run) -> String {
    let mut out = String::from("COUNT  RULE   SEVERITY  FIXABLE  SUMMARY\n");
    for c in count(run) {
        let _ = writeln!(
            out,
            "{:>5}  {:<6} {:<9} {:<8} {}",
            c.count,
            c.rule.id(),
            c.severity.to_string(),
            c.fixable,
            summary(c.rule)
        );
    }
    out
}

/// The counts as a JSON array of `{rule, severity, count, fixable, summary}`.
pub fn render_json(run: &Run) -> String {
    let rows: Vec<Value> = count(run)
        .into_iter()
        .map(|c| {
            json!({
                "rule": c.rule,
                "severity": c.severity,
                "count": c.count,
                "fixable": c.fixable,
                "summary": summary(c.rule),
            })
        })
        .collect();
    let mut s = serde_json::to_string_pretty(&Value::Array(rows)).expect("JSON serialises");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::super::testing;
    use super::*;

    #[test]
    fn counts_per_rule_most_first() {
        let mut run = testing::run();
        let extra = run.files[0].findings[1].clone();
        run.files[0].findings.push(extra);
        let counts = count(&run);
        assert_eq!(
            counts
                .iter()
                .map(|c| (c.rule.id(), c.count, c.fixable))
                .collect::<Vec<_>>(),
            [("KM005", 2, 0), ("KM001", 1, 1)]
        );
        let text = render_text(&run);
        assert!(
            text.lines()
                .nth(1)
                .unwrap()
                .starts_with("    2  KM005  warning   0"),
            "{text}"
        );
        let json: Value = serde_json::from_str(&render_json(&run)).unwrap();
        assert_eq!(json[1]["rule"], "KM001");
        assert_eq!(json[1]["severity"], "error");
    }
}
