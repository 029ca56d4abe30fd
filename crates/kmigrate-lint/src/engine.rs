//! One file in, findings out: picks the platform, runs every rule on one
//! shared analysis, and applies fixes for `rewrite`.

use crate::options::Options;
use crate::platform::Platform;
use crate::platform::cloudbuild::{Build, migrate};
use crate::rules::{self, Finding};
use crate::source::patch::{self, Edit};
use crate::source::{SourceError, SourceFile};

/// Findings for one file, sorted by position.
pub fn analyze(
    source: &SourceFile,
    platform: Platform,
    opts: &Options,
) -> Result<Vec<Finding>, SourceError> {
    let mut findings = match platform {
        Platform::CloudBuild => {
            let build = Build::parse(source)?;
            let migration = migrate::plan(&build, opts);
            rules::cloudbuild_findings(&build, &migration)
        }
        Platform::GitLab => crate::platform::gitlab::file_findings(source, opts)?,
    };
    findings.sort_by(|a, b| (a.span.start, a.rule).cmp(&(b.span.start, b.rule)));
    Ok(findings)
}

/// The platform of a file: forced, or detected from its name and content.
pub fn platform_of(source: &SourceFile, forced: Option<Platform>) -> Result<Platform, SourceError> {
    forced.or_else(|| Platform::detect(source)).ok_or_else(|| {
        SourceError::new(&source.path, "not a Cloud Build or GitLab CI file").with_help(
            "name it cloudbuild.yaml / .gitlab-ci.yml, or pass --platform cloudbuild|gitlab",
        )
    })
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
