//! One file in, findings out: picks the platform, runs every rule on one
//! shared analysis, and applies fixes for `rewrite`.

use crate::options::Options;
use crate::platform::Platform;
use crate::rules::{Applicability, Finding};
use crate::source::patch::{self, Edit};
use crate::source::{SourceError, SourceFile};

/// Findings for one file, sorted by position.
pub fn analyze(
    source: &SourceFile,
    platform: Platform,
    opts: &Options,
) -> Result<Vec<Finding>, SourceError> {
    let mut findings = platform.support().findings(source, opts)?;
    findings.sort_by_key(|f| (f.span.start, f.rule));
    Ok(findings)
}

/// The platform of a file: forced, or detected from its name and content.
pub fn platform_of(source: &SourceFile, forced: Option<Platform>) -> Result<Platform, SourceError> {
    forced.or_else(|| Platform::detect(source)).ok_or_else(|| {
        let names: Vec<&str> = Platform::ALL
            .iter()
            .map(|p| p.support().display_name())
            .collect();
        let flags: Vec<&str> = Platform::ALL.iter().map(|p| p.support().cli_name()).collect();
        SourceError::new(
            &source.path,
            match names.split_last() {
                Some((last, rest)) if !rest.is_empty() => {
                    format!("not a {} or {last} file", rest.join(", "))
                }
                _ => format!("not a {} file", names.join("")),
            },
        )
        .with_help(format!(
            "name it cloudbuild.yaml / .github/workflows/NAME.yml / .drone.yml / .woodpecker.yml / .gitlab-ci.yml, or pass --platform {}",
            flags.join("|")
        ))
    })
}

/// Leaves out the fixes that change behaviour (`rewrite --only-exact`): a
/// build whose rewrite changes what it does stays as it is, with its
/// finding (its help says why), and so does every note whose fix is that
/// rewrite. Edits it shares with a build that translates exactly (the
/// Cloud Build setup step) stay with that build.
pub fn keep_exact_fixes(findings: &mut [Finding]) {
    use std::collections::HashSet;

    let changes = |f: &Finding| {
        f.fix
            .as_ref()
            .is_some_and(|x| x.applicability == Applicability::ChangesBehaviour)
    };
    let needed: HashSet<Edit> = findings
        .iter()
        .filter(|f| f.rule.is_build() && !changes(f))
        .flat_map(|f| f.fix.iter().flat_map(|x| x.edits.iter().cloned()))
        .collect();
    let withheld: HashSet<Edit> = findings
        .iter()
        .filter(|f| changes(f))
        .flat_map(|f| f.fix.iter().flat_map(|x| x.edits.iter().cloned()))
        .filter(|e| !needed.contains(e))
        .collect();
    for f in findings.iter_mut() {
        if changes(f) {
            f.fix = None;
            if f.rule.is_build() {
                f.help = Some(
                    "left unchanged by `--only-exact`: its rewrite changes what the build does (the KM011 notes say how); run `kmigrate rewrite` without `--only-exact` to apply it".into(),
                );
            }
        } else if let Some(fix) = &mut f.fix {
            fix.edits.retain(|e| !withheld.contains(e));
            if fix.edits.is_empty() {
                f.fix = None;
            }
        }
    }
}

/// The text after applying every fix in `findings`; `None` when nothing
/// changes. The result is parsed again before it is returned, so a rewrite
/// never produces a file kmigrate itself cannot read.
pub fn apply_fixes(
    source: &SourceFile,
    findings: &[Finding],
) -> Result<Option<String>, SourceError> {
    let edits: Vec<Edit> = findings
        .iter()
        .filter_map(|f| f.fix.as_ref())
        .flat_map(|f| f.edits.iter().cloned())
        .collect();
    if edits.is_empty() {
        return Ok(None);
    }
    let text = patch::apply(&source.text, &edits).map_err(|c| {
        source
            .error_at(
                c.second.start,
                "two fixes edit the same text; nothing was changed",
            )
            .with_help(
                "please report this with the file; rewrite the steps one at a time meanwhile",
            )
    })?;
    if text == source.text {
        return Ok(None);
    }
    if let Err(e) = SourceFile::from_text(&source.path, text.clone()) {
        return Err(SourceError::new(
            &source.path,
            format!(
                "the rewritten text does not parse ({}); nothing was written",
                e.message
            ),
        )
        .with_help("please report this with the file"));
    }
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::rules::Rule;

    const TWO_STEPS: &str = "steps:
  - id: api
    name: gcr.io/kaniko-project/executor:latest
    args: ['--destination=gcr.io/p/api']
  - id: arm
    name: gcr.io/kaniko-project/executor:latest
    args: ['--destination=gcr.io/p/arm', '--custom-platform=linux/arm64', '--single-snapshot']
";

    fn findings(text: &str) -> (SourceFile, Vec<Finding>) {
        let source = SourceFile::from_text(Path::new("cloudbuild.yaml"), text.into()).unwrap();
        let f = analyze(&source, Platform::CloudBuild, &Options::default()).unwrap();
        (source, f)
    }

    #[test]
    fn a_step_with_a_behaviour_change_has_fixes_that_change_behaviour() {
        let (source, all) = findings(TWO_STEPS);
        let applicability = |step: &str| -> Vec<(Rule, Applicability)> {
            let at = source.text.find(step).unwrap();
            let end = source.text[at..]
                .find("\n  - ")
                .map_or(source.text.len(), |i| at + i);
            all.iter()
                .filter(|f| (at..end).contains(&f.span.start))
                .filter_map(|f| Some((f.rule, f.fix.as_ref()?.applicability)))
                .collect()
        };
        assert_eq!(
            applicability("id: api"),
            [(Rule::Km001, Applicability::Exact)]
        );
        let arm = applicability("id: arm");
        assert!(arm.len() >= 2, "{arm:?}");
        assert!(
            arm.iter()
                .all(|(_, a)| *a == Applicability::ChangesBehaviour),
            "{arm:?}"
        );
    }

    #[test]
    fn keeping_exact_fixes_leaves_the_changing_step_and_keeps_the_shared_setup() {
        let (source, mut all) = findings(TWO_STEPS);
        keep_exact_fixes(&mut all);
        let text = apply_fixes(&source, &all).unwrap().unwrap();
        assert!(text.contains("id: setup-buildx"), "{text}");
        assert!(
            text.ends_with("  - id: arm\n    name: gcr.io/kaniko-project/executor:latest\n    args: ['--destination=gcr.io/p/arm', '--custom-platform=linux/arm64', '--single-snapshot']\n"),
            "{text}"
        );
        let arm = all
            .iter()
            .find(|f| f.rule == Rule::Km001 && f.fix.is_none())
            .unwrap();
        assert!(arm.help.as_deref().unwrap().contains("--only-exact"));
        // With only the changing step, nothing is written: not even the
        // setup step it alone needed.
        let only_arm = TWO_STEPS.replace(
            "  - id: api\n    name: gcr.io/kaniko-project/executor:latest\n    args: ['--destination=gcr.io/p/api']\n",
            "",
        );
        let (source, mut all) = findings(&only_arm);
        keep_exact_fixes(&mut all);
        assert_eq!(apply_fixes(&source, &all).unwrap(), None);
        assert!(all.iter().all(|f| f.fix.is_none()));
    }
}
