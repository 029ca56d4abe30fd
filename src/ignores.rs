//! Inline ignores: `# kmigrate: ignore[KM001,KM003] reason`.
//!
//! A comment on the offending line, or on the line above it, silences the
//! named rules for findings that start there (a comment inside a finding's
//! multi-line span silences it too). Only real YAML comments count: the
//! comment spans come from the parsed tree, so a `#` inside a quoted string
//! or a block scalar (a shell script line) is never an ignore. An ignore that
//! silences nothing is reported as KM020.

use std::ops::Range;
use std::sync::OnceLock;

use regex::Regex;

use crate::rules::{Finding, meta};
use crate::source::SourceFile;

/// The rule an unused ignore is reported under.
pub const UNUSED_IGNORE: &str = "KM020";

/// One rule id inside one ignore comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignore {
    /// 1-based line of the comment.
    pub line: usize,
    pub rule: String,
    /// Byte span of the id inside the comment.
    pub span: Range<usize>,
    /// The reason written after the brackets, if any.
    pub reason: Option<String>,
}

fn pattern() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^#+\s*kmigrate:\s*ignore\[([^\]]*)\]\s*(.*)$").expect("valid regex")
    })
}

/// Every ignore written in `source`'s comments.
pub fn parse(source: &SourceFile) -> Vec<Ignore> {
    let mut out = Vec::new();
    for span in &source.tree.comments {
        let Some(comment) = source.text.get(span.clone()) else {
            continue;
        };
        let comment = comment.trim_end_matches(['\r', '\n']);
        let Some(caps) = pattern().captures(comment) else {
            continue;
        };
        let list = caps.get(1).expect("group 1 always matches");
        let reason = caps
            .get(2)
            .map(|m| m.as_str().trim())
            .filter(|r| !r.is_empty())
            .map(str::to_string);
        let (line, _) = source.position(span.start);
        let mut offset = list.start();
        for part in list.as_str().split(',') {
            let id = part.trim();
            if !id.is_empty() {
                let lead = part.len() - part.trim_start().len();
                let start = span.start + offset + lead;
                out.push(Ignore {
                    line,
                    rule: id.to_string(),
                    span: start..start + id.len(),
                    reason: reason.clone(),
                });
            }
            offset += part.len() + 1;
        }
    }
    out
}

/// Removes the findings that an ignore silences and returns KM020 findings
/// for ignores that silenced nothing. `rule_enabled` says which rules ran: an
/// ignore for a rule that is switched off is not "unused".
pub fn apply(
    source: &SourceFile,
    findings: Vec<Finding>,
    rule_enabled: &dyn Fn(&str) -> bool,
) -> (Vec<Finding>, Vec<Finding>) {
    let ignores = parse(source);
    if ignores.is_empty() {
        return (findings, Vec::new());
    }
    let mut used = vec![false; ignores.len()];
    let mut kept = Vec::with_capacity(findings.len());
    for f in findings {
        let (start_line, _) = source.position(f.span.start);
        let (end_line, _) = source.position(f.span.end.max(f.span.start));
        let mut silenced = false;
        for (i, ig) in ignores.iter().enumerate() {
            let covers = ig.line + 1 == start_line || (start_line..=end_line).contains(&ig.line);
            if covers && ig.rule.eq_ignore_ascii_case(f.rule) {
                used[i] = true;
                silenced = true;
            }
        }
        if !silenced {
            kept.push(f);
        }
    }
    let mut unused = Vec::new();
    for (ig, used) in ignores.iter().zip(used) {
        if used {
            continue;
        }
        let known = meta::get(&ig.rule.to_ascii_uppercase()).is_some();
        if known && !rule_enabled(&ig.rule.to_ascii_uppercase()) {
            continue;
        }
        let message = if known {
            format!(
                "`ignore[{}]` silences nothing: {} reports nothing on this line or the next",
                ig.rule, ig.rule
            )
        } else {
            format!("`ignore[{}]` names no kmigrate rule", ig.rule)
        };
        unused.push(Finding::new(UNUSED_IGNORE, ig.span.clone(), message).with_help(
            if known {
                "remove the id from the comment (or the whole comment), or move it next to the finding"
            } else {
                "use a rule id from `kmigrate rules`"
            },
        ));
    }
    (kept, unused)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn src(text: &str) -> SourceFile {
        SourceFile::from_text(Path::new("cloudbuild.yaml"), text.to_string()).unwrap()
    }

    fn finding_at(source: &SourceFile, needle: &str, rule: &'static str) -> Finding {
        let start = source.text.find(needle).unwrap();
        Finding::new(rule, start..start + needle.len(), "m")
    }

    const TEXT: &str = "steps:
  # kmigrate: ignore[KM001, KM005] pinned until Q3
  - name: gcr.io/kaniko-project/executor:latest
    args: ['--cache-ttl=6h']  # kmigrate: ignore[KM010]
  - name: 'x # kmigrate: ignore[KM001] not a comment'
  - name: gcr.io/kaniko-project/executor:debug
";

    #[test]
    fn parses_ids_spans_and_reason() {
        let s = src(TEXT);
        let ig = parse(&s);
        let rules: Vec<_> = ig.iter().map(|i| (i.line, i.rule.as_str())).collect();
        assert_eq!(rules, [(2, "KM001"), (2, "KM005"), (4, "KM010")]);
        for i in &ig {
            assert_eq!(&s.text[i.span.clone()], i.rule);
        }
        assert_eq!(ig[0].reason.as_deref(), Some("pinned until Q3"));
        assert_eq!(ig[2].reason, None);
    }

    #[test]
    fn silences_line_below_and_same_line_and_reports_unused() {
        let s = src(TEXT);
        let findings = vec![
            finding_at(&s, "gcr.io/kaniko-project/executor:latest", "KM001"),
            finding_at(&s, "--cache-ttl=6h", "KM005"),
            finding_at(&s, "gcr.io/kaniko-project/executor:debug", "KM001"),
        ];
        let (kept, unused) = apply(&s, findings, &|_| true);
        // KM001 on line 3 silenced by the comment above; KM005 on line 4 is
        // two lines below its ignore and stays; the string that merely
        // contains the ignore text silences nothing.
        let kept: Vec<_> = kept
            .iter()
            .map(|f| (f.rule, s.position(f.span.start).0))
            .collect();
        assert_eq!(kept, [("KM005", 4), ("KM001", 6)]);
        let unused: Vec<_> = unused
            .iter()
            .map(|f| (f.rule, &s.text[f.span.clone()]))
            .collect();
        assert_eq!(unused, [("KM020", "KM005"), ("KM020", "KM010")]);
    }

    #[test]
    fn same_line_ignore_silences() {
        let s = src(TEXT);
        let f = finding_at(&s, "--cache-ttl=6h", "KM010");
        let (kept, unused) = apply(&s, vec![f], &|_| true);
        assert!(kept.is_empty());
        assert_eq!(unused.len(), 2, "the two ids on line 2 are unused");
    }

    #[test]
    fn ignores_for_disabled_rules_are_not_unused_but_unknown_ids_are() {
        let s = src("# kmigrate: ignore[KM003,KM777]\nsteps: []\n");
        let (_, unused) = apply(&s, vec![], &|r| r != "KM003");
        assert_eq!(unused.len(), 1);
        assert!(unused[0].message.contains("KM777"), "{}", unused[0].message);
    }

    #[test]
    fn crlf_files() {
        let s = src("steps:\r\n  # kmigrate: ignore[KM001] why\r\n  - name: x\r\n");
        let ig = parse(&s);
        assert_eq!(ig.len(), 1);
        assert_eq!(ig[0].reason.as_deref(), Some("why"));
        let f = finding_at(&s, "x", "KM001");
        let (kept, unused) = apply(&s, vec![f], &|_| true);
        assert!(kept.is_empty() && unused.is_empty());
    }

    #[test]
    fn gitlab_comments_count_but_script_text_does_not() {
        let text = "build:
  # kmigrate: ignore[KM002] split by hand next sprint
  image: gcr.io/kaniko-project/executor:debug
  script:
    - |
      # kmigrate: ignore[KM001] inside a block scalar: shell text
      /kaniko/executor --context . --destination x
    - echo '# kmigrate: ignore[KM005]'
";
        let s = SourceFile::from_text(Path::new(".gitlab-ci.yml"), text.to_string()).unwrap();
        let ig = parse(&s);
        assert_eq!(
            ig.iter()
                .map(|i| (i.line, i.rule.as_str()))
                .collect::<Vec<_>>(),
            [(2, "KM002")]
        );
        let f = finding_at(&s, "/kaniko/executor", "KM001");
        let g = finding_at(&s, "gcr.io/kaniko-project/executor:debug", "KM002");
        let (kept, unused) = apply(&s, vec![f, g], &|_| true);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].rule, "KM001");
        assert!(unused.is_empty());
    }

    #[test]
    fn multi_line_finding_is_silenced_from_inside_its_span() {
        let s = src("steps:\n  - name: a\n    # kmigrate: ignore[KM003]\n    args: [b]\n");
        let f = Finding::new("KM003", 9..s.text.len() - 1, "m");
        let (kept, unused) = apply(&s, vec![f], &|_| true);
        assert!(kept.is_empty() && unused.is_empty());
    }
}
