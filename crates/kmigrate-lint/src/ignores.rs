//! Inline ignores: `# kmigrate: ignore[KM001,KM003] reason`.
//!
//! A comment on the offending line, or on the line above it, silences the
//! named rules for findings that start there (a comment inside a finding's
//! multi-line span silences it too). A comment on the line above a block
//! sequence item or mapping entry (a Cloud Build step, a GitLab job, a
//! `script:` key) covers that whole item: `# kmigrate: ignore[KM001]` above
//! `- id: legacy` silences the step's image finding three lines further down.
//! An ignore silences exactly the rules it lists. A build rule (KM001, KM002,
//! KM003) ignored there keeps the build as it is, which makes the notes about
//! what its rewrite would change moot (KM004, KM005, KM010, KM011): those go
//! with it. What is true of the call as written stays reported (KM012, what
//! keeps it on Kaniko; KM013, a word Kaniko itself fails on) unless the
//! comment lists it too. Only real YAML comments count: the
//! comment spans come from the parsed tree, so a `#` inside a quoted string
//! or a block scalar (a shell script line) is never an ignore. An ignore that
//! silences nothing is reported as KM020. Which rules are builds and which
//! notes their rewrite makes moot is each rule page's `kind`.

use std::ops::Range;
use std::sync::OnceLock;

use regex::Regex;

use crate::rules::{Finding, Rule, RuleKind};
use crate::source::{Node, SourceFile, Value};

/// The rule an unused ignore is reported under.
pub const UNUSED_IGNORE: Rule = Rule::Km020;

/// One rule id inside one ignore comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignore {
    /// 1-based line of the comment.
    pub line: usize,
    pub rule: String,
    /// The rule `rule` names; `None` when it names none (reported as KM020).
    pub known: Option<Rule>,
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
        // The pattern needs this word: most files never compile it.
        if !comment.contains("kmigrate:") {
            continue;
        }
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
                    known: id.parse().ok(),
                    span: start..start + id.len(),
                    reason: reason.clone(),
                });
            }
            offset += part.len() + 1;
        }
    }
    out
}

/// The outermost block sequence item or mapping entry that starts at byte
/// `at`, if any.
fn block_starting_at(node: &Node, at: usize) -> Option<Range<usize>> {
    let mut best: Option<Range<usize>> = None;
    let mut consider = |span: &Range<usize>| {
        if span.start == at && best.as_ref().is_none_or(|b| span.end > b.end) {
            best = Some(span.clone());
        }
    };
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        if n.span.end < at || n.span.start > at && n.full_span.start > at {
            continue;
        }
        match &n.value {
            Value::Seq(seq) => {
                for item in &seq.items {
                    consider(&item.span);
                    stack.push(&item.node);
                }
            }
            Value::Map(map) => {
                for entry in &map.entries {
                    consider(&entry.span);
                    stack.push(&entry.key);
                    stack.push(&entry.value);
                }
            }
            _ => {}
        }
    }
    best
}

/// What an ignore on 1-based `line` covers besides its own line and the
/// next: the block item or entry that begins on the next line.
fn covered_block(source: &SourceFile, line: usize) -> Option<Range<usize>> {
    let start = source.line_start(line + 1);
    if start >= source.text.len() {
        return None;
    }
    let rest = &source.text[start..];
    let indent = rest.len() - rest.trim_start_matches([' ', '\t']).len();
    let at = start + indent;
    source
        .tree
        .documents
        .iter()
        .find_map(|doc| block_starting_at(doc, at))
}

/// The findings of a file sorted by its ignore comments.
#[derive(Debug, Default)]
pub struct Applied {
    /// Findings no ignore silences.
    pub kept: Vec<Finding>,
    /// Findings an ignore silences.
    pub silenced: Vec<Finding>,
    /// KM020 findings for ignores that silenced nothing.
    pub unused: Vec<Finding>,
}

/// Sorts `findings` into those an ignore comment silences and the rest,
/// with KM020 findings for ignores that silenced nothing. `rule_enabled`
/// says which rules ran: an ignore for a rule that is switched off is not
/// "unused".
///
/// Ignoring a build rule (kind `build`) above a step or job makes the notes
/// about what its rewrite changes (kind `rewrite-note`) moot in that step
/// or job: it stays as it is. Notes about the call as written (kind
/// `call-note`) stay unless named.
pub fn apply(
    source: &SourceFile,
    findings: Vec<Finding>,
    rule_enabled: &dyn Fn(Rule) -> bool,
) -> Applied {
    let ignores = parse(source);
    if ignores.is_empty() {
        return Applied {
            kept: findings,
            ..Applied::default()
        };
    }
    let blocks: Vec<Option<Range<usize>>> = ignores
        .iter()
        .map(|ig| covered_block(source, ig.line))
        .collect();
    let mut used = vec![false; ignores.len()];
    let mut kept = Vec::with_capacity(findings.len());
    let mut silenced_findings = Vec::new();
    for f in findings {
        let (start_line, _) = source.position(f.span.start);
        let (end_line, _) = source.position(f.span.end.max(f.span.start));
        let mut silenced = false;
        for (i, ig) in ignores.iter().enumerate() {
            let in_block = blocks[i]
                .as_ref()
                .is_some_and(|b| b.contains(&f.span.start));
            let covers =
                ig.line + 1 == start_line || (start_line..=end_line).contains(&ig.line) || in_block;
            let named = ig.known == Some(f.rule);
            let moot = in_block
                && f.rule.kind() == RuleKind::RewriteNote
                && ig.known.is_some_and(Rule::is_build);
            if (covers && named) || moot {
                used[i] = true;
                silenced = true;
            }
        }
        if silenced {
            silenced_findings.push(f);
        } else {
            kept.push(f);
        }
    }
    let mut unused = Vec::new();
    for (ig, used) in ignores.iter().zip(used) {
        if used {
            continue;
        }
        let known = ig.known.is_some();
        if ig.known.is_some_and(|r| !rule_enabled(r)) {
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
    Applied {
        kept,
        silenced: silenced_findings,
        unused,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn src(text: &str) -> SourceFile {
        SourceFile::from_text(Path::new("cloudbuild.yaml"), text.to_string()).unwrap()
    }

    fn finding_at(source: &SourceFile, needle: &str, rule: Rule) -> Finding {
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
            finding_at(&s, "gcr.io/kaniko-project/executor:latest", Rule::Km001),
            finding_at(&s, "--cache-ttl=6h", Rule::Km005),
            finding_at(&s, "gcr.io/kaniko-project/executor:debug", Rule::Km001),
        ];
        let Applied { kept, unused, .. } = apply(&s, findings, &|_| true);
        // KM001 on line 3 silenced by the comment above; KM005 on line 4
        // too, as it is in the step the comment sits on; the string that
        // merely contains the ignore text silences nothing.
        let kept: Vec<_> = kept
            .iter()
            .map(|f| (f.rule.id(), s.position(f.span.start).0))
            .collect();
        assert_eq!(kept, [("KM001", 6)]);
        let unused: Vec<_> = unused
            .iter()
            .map(|f| (f.rule.id(), &s.text[f.span.clone()]))
            .collect();
        assert_eq!(unused, [("KM020", "KM010")]);
    }

    #[test]
    fn a_blank_line_ends_the_reach_of_an_ignore() {
        let s = src("steps:\n  # kmigrate: ignore[KM001]\n\n  - name: x\n");
        let f = finding_at(&s, "x", Rule::Km001);
        let Applied { kept, unused, .. } = apply(&s, vec![f], &|_| true);
        assert_eq!(kept.len(), 1);
        assert_eq!(unused.len(), 1);
    }

    #[test]
    fn same_line_ignore_silences() {
        let s = src(TEXT);
        let f = finding_at(&s, "--cache-ttl=6h", Rule::Km010);
        let Applied { kept, unused, .. } = apply(&s, vec![f], &|_| true);
        assert!(kept.is_empty());
        // KM001 on line 2 covers the step's migration notes, so only
        // KM005 there is unused.
        assert_eq!(unused.len(), 1);
        assert_eq!(&s.text[unused[0].span.clone()], "KM005");
    }

    #[test]
    fn ignores_for_disabled_rules_are_not_unused_but_unknown_ids_are() {
        let s = src("# kmigrate: ignore[KM003,KM777]\nsteps: []\n");
        let Applied { unused, .. } = apply(&s, vec![], &|r| r != Rule::Km003);
        assert_eq!(unused.len(), 1);
        assert!(unused[0].message.contains("KM777"), "{}", unused[0].message);
    }

    #[test]
    fn an_ignore_above_a_step_covers_the_whole_step() {
        let text = "steps:
  # kmigrate: ignore[KM001]
  - id: legacy
    name: gcr.io/kaniko-project/executor:latest
    args: ['--destination=gcr.io/p/legacy']
  - id: app
    name: gcr.io/kaniko-project/executor:latest
";
        let s = src(text);
        let legacy = finding_at(&s, "gcr.io/kaniko-project/executor:latest", Rule::Km001);
        let app_at = s.text.rfind("gcr.io/kaniko").unwrap();
        let app = Finding::new(Rule::Km001, app_at..app_at + 10, "m");
        let Applied { kept, unused, .. } = apply(&s, vec![legacy, app], &|_| true);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].span.start, app_at, "the next step is not covered");
        assert!(unused.is_empty());
    }

    #[test]
    fn an_ignore_above_a_gitlab_job_covers_the_job() {
        let text = "# kmigrate: ignore[KM002]
build:
  image: gcr.io/kaniko-project/executor:debug
  script:
    - /kaniko/executor --destination a
test:
  script: [make]
";
        let s = SourceFile::from_text(Path::new(".gitlab-ci.yml"), text.to_string()).unwrap();
        let inside = finding_at(&s, "/kaniko/executor", Rule::Km002);
        let outside = finding_at(&s, "make", Rule::Km002);
        let Applied { kept, .. } = apply(&s, vec![inside, outside], &|_| true);
        assert_eq!(kept.len(), 1);
        assert_eq!(&s.text[kept[0].span.clone()], "make");
    }

    #[test]
    fn ignoring_a_build_above_it_silences_its_migration_notes() {
        let text = "steps:
  # kmigrate: ignore[KM001]
  - name: gcr.io/kaniko-project/executor:latest
    args: ['--cache-ttl=6h', '--snapshot-mode=redo']
  - name: gcr.io/kaniko-project/executor:latest
    args: ['--cache-ttl=1h']
";
        let s = src(text);
        let ttl_at = |n: usize| s.text.match_indices("--cache-ttl").nth(n).unwrap().0;
        let findings = vec![
            finding_at(&s, "gcr.io/kaniko-project/executor:latest", Rule::Km001),
            Finding::new(Rule::Km005, ttl_at(0)..ttl_at(0) + 5, "m"),
            finding_at(&s, "--snapshot-mode=redo", Rule::Km010),
            Finding::new(Rule::Km005, ttl_at(1)..ttl_at(1) + 5, "m"),
        ];
        let Applied { kept, unused, .. } = apply(&s, findings, &|_| true);
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert_eq!(
            kept[0].span.start,
            ttl_at(1),
            "the next step keeps its note"
        );
        assert!(unused.is_empty());
        // A note rule named alone does not reach other notes.
        let s =
            src("steps:\n  # kmigrate: ignore[KM010]\n  - name: x\n    args: ['--cache-ttl=6h']\n");
        let f = finding_at(&s, "--cache-ttl=6h", Rule::Km005);
        let Applied { kept, .. } = apply(&s, vec![f], &|_| true);
        assert_eq!(kept.len(), 1);
    }

    #[test]
    fn ignoring_a_build_keeps_what_is_true_of_the_call_as_written() {
        let text = "steps:
  # kmigrate: ignore[KM001]
  - name: gcr.io/kaniko-project/executor:latest
    args: ['--context=gs://b/c.tgz', '--cache', 'true']
  # kmigrate: ignore[KM001,KM012]
  - name: gcr.io/kaniko-project/executor:latest
    args: ['--context=gs://b/d.tgz']
";
        let s = src(text);
        let second = s.text.rfind("gcr.io/kaniko").unwrap();
        let findings = vec![
            finding_at(&s, "gcr.io/kaniko-project/executor:latest", Rule::Km001),
            finding_at(&s, "--context=gs://b/c.tgz", Rule::Km012),
            finding_at(&s, "'--cache', 'true'", Rule::Km013),
            Finding::new(Rule::Km001, second..second + 10, "m"),
            finding_at(&s, "--context=gs://b/d.tgz", Rule::Km012),
        ];
        let Applied { kept, unused, .. } = apply(&s, findings, &|_| true);
        let kept: Vec<_> = kept
            .iter()
            .map(|f| (f.rule.id(), &s.text[f.span.clone()]))
            .collect();
        assert_eq!(
            kept,
            [
                ("KM012", "--context=gs://b/c.tgz"),
                ("KM013", "'--cache', 'true'")
            ]
        );
        assert!(unused.is_empty(), "{unused:?}");
    }

    #[test]
    fn crlf_files() {
        let s = src("steps:\r\n  # kmigrate: ignore[KM001] why\r\n  - name: x\r\n");
        let ig = parse(&s);
        assert_eq!(ig.len(), 1);
        assert_eq!(ig[0].reason.as_deref(), Some("why"));
        let f = finding_at(&s, "x", Rule::Km001);
        let Applied { kept, unused, .. } = apply(&s, vec![f], &|_| true);
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
        let f = finding_at(&s, "/kaniko/executor", Rule::Km001);
        let g = finding_at(&s, "gcr.io/kaniko-project/executor:debug", Rule::Km002);
        let Applied { kept, unused, .. } = apply(&s, vec![f, g], &|_| true);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].rule, Rule::Km001);
        assert!(unused.is_empty());
    }

    #[test]
    fn multi_line_finding_is_silenced_from_inside_its_span() {
        let s = src("steps:\n  - name: a\n    # kmigrate: ignore[KM003]\n    args: [b]\n");
        let f = Finding::new(Rule::Km003, 9..s.text.len() - 1, "m");
        let Applied { kept, unused, .. } = apply(&s, vec![f], &|_| true);
        assert!(kept.is_empty() && unused.is_empty());
    }
}
