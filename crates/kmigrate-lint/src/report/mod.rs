//! Printing the result of a `kmigrate check` run in the formats users and
//! CI systems read: `human` (miette diagnostics), `json` (versioned schema),
//! `sarif` (2.1.0), `gitlab` (Code Quality) and `github` (workflow
//! commands).
//!
//! Every format gets the same [`Run`]: files sorted by path, findings in each
//! file sorted by position, so output is deterministic however many threads
//! checked the files.

pub mod concise;
pub mod github;
pub mod gitlab;
pub mod human;
pub mod json;
pub mod migration;
pub mod plain;
mod preview;
pub mod sarif;
pub mod snippet;
pub mod statistics;
pub mod terminal;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::rules::{Finding, Severity};
use crate::source::{SourceError, SourceFile};

/// Output formats of `kmigrate check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Diagnostics with the source span (miette); summary on stderr.
    Human,
    /// One line per finding: `path:line:col: KM001 [error] message`.
    Concise,
    /// Versioned JSON document (JSON Schema: `schemas/check-json-v1.schema.json` in the
    /// kmigrate source tree).
    Json,
    /// SARIF 2.1.0 log (GitHub code scanning and others).
    Sarif,
    /// GitLab Code Quality report.
    Gitlab,
    /// GitHub Actions workflow commands (annotations).
    Github,
}

/// One checked file.
#[derive(Debug, Clone)]
pub struct FileResult {
    /// The path as shown to the user.
    pub path: PathBuf,
    /// The loaded file; `check` keeps it only for a file with findings
    /// (reports show their source), so a clean file's text is not held.
    pub source: Option<Arc<SourceFile>>,
    /// Findings, sorted by position.
    pub findings: Vec<Finding>,
}

impl FileResult {
    /// This file's findings with their positions.
    pub fn located(&self) -> impl Iterator<Item = Located<'_>> {
        self.source.iter().flat_map(move |source| {
            self.findings.iter().map(move |f| Located {
                path: &self.path,
                source,
                finding: f,
                start: source.position(f.span.start),
                end: source.position(f.span.end.max(f.span.start)),
            })
        })
    }
}

/// A whole run.
#[derive(Debug, Clone, Default)]
pub struct Run {
    /// Checked files, sorted by path.
    pub files: Vec<FileResult>,
    /// Files or paths that could not be read, walked or parsed.
    pub errors: Vec<SourceError>,
    pub elapsed: Duration,
}

/// A finding with everything a format prints about it.
#[derive(Debug, Clone)]
pub struct Located<'a> {
    pub path: &'a Path,
    pub source: &'a SourceFile,
    pub finding: &'a Finding,
    /// 1-based line and column of the start.
    pub start: (usize, usize),
    /// 1-based line and column just past the end.
    pub end: (usize, usize),
}

impl<'a> Located<'a> {
    pub fn help_url(&self) -> String {
        self.finding.rule.meta().help_url()
    }

    /// The file's text with this finding's fix applied alone, as a unified
    /// diff (`None` without a fix or when its edits conflict).
    pub fn fix_preview(&self) -> Option<String> {
        let fix = self.finding.fix.as_ref()?;
        let (old, new) = diff_headers(&display_path(self.path));
        preview::unified(self.source, &fix.edits, &old, &new)
    }

    /// The finding's source text with runs of whitespace collapsed: what a
    /// fingerprint is made of, so it survives re-indentation and line shifts.
    pub fn normalised_snippet(&self) -> String {
        let text = self
            .source
            .text
            .get(self.finding.span.clone())
            .unwrap_or_default();
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

/// The `---`/`+++` names of a diff of the file `name`: `a/name` and
/// `b/name` as git writes them, or an absolute path as given (`a//tmp/x`
/// would be neither).
pub fn diff_headers(name: &str) -> (String, String) {
    if name.starts_with('/') {
        (name.to_string(), name.to_string())
    } else {
        (format!("a/{name}"), format!("b/{name}"))
    }
}

/// A path as printed in every format: forward slashes, no leading `./`.
pub fn display_path(path: &Path) -> String {
    let s = path.to_string_lossy().replace('\\', "/");
    match s.strip_prefix("./") {
        Some(rest) if !rest.is_empty() => rest.to_string(),
        _ => s,
    }
}

impl Run {
    /// Every finding of every file, in output order.
    pub fn located(&self) -> impl Iterator<Item = Located<'_>> {
        self.files.iter().flat_map(FileResult::located)
    }

    /// A stable fingerprint per finding, in [`Run::located`] order: a hash of
    /// the rule, the path, the finding's source text with whitespace
    /// collapsed, and its rank among identical (rule, path, text) findings;
    /// never a line number, so it survives lines moving and re-indentation.
    pub fn fingerprints(&self) -> Vec<String> {
        let mut seen: std::collections::HashMap<(String, String, String), usize> =
            std::collections::HashMap::new();
        self.located()
            .map(|l| {
                let key = (
                    l.finding.rule.to_string(),
                    display_path(l.path),
                    l.normalised_snippet(),
                );
                let rank = seen.entry(key.clone()).or_insert(0);
                let fp = fingerprint(&[&key.0, &key.1, &key.2, &rank.to_string()]);
                *rank += 1;
                fp
            })
            .collect()
    }

    /// The run's counts.
    pub fn tally(&self) -> Tally {
        let mut t = Tally::default();
        for f in &self.files {
            t.add(f);
        }
        t
    }

    /// Number of files checked (files that could not be are in `errors`).
    pub fn files_scanned(&self) -> usize {
        self.files.len()
    }

    /// Count of findings at each severity (info, warning, error).
    pub fn counts(&self) -> [usize; 3] {
        self.tally().counts
    }

    pub fn fixable(&self) -> usize {
        self.tally().fixable
    }

    /// The most severe finding, if any.
    pub fn max_severity(&self) -> Option<Severity> {
        self.tally().max_severity()
    }

    /// The summary line printed on stderr after human output.
    pub fn summary(&self) -> String {
        self.tally().summary(self.errors.len(), self.elapsed)
    }
}

/// What a run's summary counts, kept apart from the files so a streamed
/// check (see `kmigrate check`) can drop each file once it is printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Files checked.
    pub files: usize,
    /// Findings at each severity (info, warning, error).
    pub counts: [usize; 3],
    /// Findings with a fix.
    pub fixable: usize,
}

impl Tally {
    /// Counts one checked file.
    pub fn add(&mut self, file: &FileResult) {
        self.files += 1;
        for f in &file.findings {
            self.counts[f.severity as usize] += 1;
            self.fixable += usize::from(f.fix.is_some());
        }
    }

    /// Adds another tally's counts.
    pub fn merge(&mut self, other: Tally) {
        self.files += other.files;
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts) {
            *mine += theirs;
        }
        self.fixable += other.fixable;
    }

    /// The most severe finding counted, if any.
    pub fn max_severity(&self) -> Option<Severity> {
        [Severity::Error, Severity::Warning, Severity::Info]
            .into_iter()
            .find(|s| self.counts[*s as usize] > 0)
    }

    /// The summary line printed on stderr after human output; `not_checked`
    /// files could not be read, walked or parsed.
    pub fn summary(&self, not_checked: usize, elapsed: Duration) -> String {
        let [info, warning, error] = self.counts;
        let total = info + warning + error;
        let files = self.files;
        let mut s = format!(
            "kmigrate: {files} file{} scanned, {total} finding{}",
            plural(files),
            plural(total)
        );
        if total > 0 {
            s += &format!(
                " ({error} error{}, {warning} warning{}, {info} info)",
                plural(error),
                plural(warning)
            );
            s += &format!(", {} fixable with `kmigrate rewrite`", self.fixable);
        }
        if not_checked > 0 {
            s += &format!(", {not_checked} file{} not checked", plural(not_checked));
        }
        s += &format!(" in {:.2}s", elapsed.as_secs_f64());
        s
    }
}

/// A hash of `parts` (each ended by a NUL), as 32 hex digits.
pub fn fingerprint(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in parts {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Renders `run` in `format`. Human output takes `color`.
pub fn render(format: Format, run: &Run, color: bool) -> String {
    match format {
        Format::Human => human::render(run, color),
        Format::Concise => concise::render(run),
        Format::Json => terminal::escape_json(json::render(run)),
        Format::Sarif => terminal::escape_json(sarif::render(run)),
        Format::Gitlab => terminal::escape_json(gitlab::render(run)),
        Format::Github => github::render(run),
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A small run shared by the format tests.
    use super::*;
    use crate::rules::Fix;
    use crate::source::patch::Edit;

    pub const TEXT: &str = "steps:
  - name: gcr.io/kaniko-project/executor:latest
    args: ['--destination=img', '--cache-ttl=6h']
";

    pub fn run() -> Run {
        let source = Arc::new(
            SourceFile::from_text(Path::new("ci/cloudbuild.yaml"), TEXT.to_string()).unwrap(),
        );
        let image = "gcr.io/kaniko-project/executor:latest";
        let at = TEXT.find(image).unwrap();
        let km001 = Finding::new(
            crate::rules::Rule::Km001,
            at..at + image.len(),
            "Cloud Build step runs Kaniko",
        )
        .with_help("rewrite the step to docker buildx build")
        .with_fix(Fix::new(
            "use the docker builder",
            vec![Edit::replace(
                at..at + image.len(),
                "gcr.io/cloud-builders/docker",
            )],
        ));
        let ttl = "'--cache-ttl=6h'";
        let t = TEXT.find(ttl).unwrap();
        let km005 = Finding::new(
            crate::rules::Rule::Km005,
            t..t + ttl.len(),
            "--cache-ttl has no equivalent",
        );
        Run {
            files: vec![FileResult {
                path: PathBuf::from("./ci/cloudbuild.yaml"),
                source: Some(source),
                findings: vec![km001, km005],
            }],
            errors: vec![SourceError {
                path: PathBuf::from("bad/cloudbuild.yaml"),
                position: Some((3, 5)),
                message: "cannot be parsed: bad".into(),
                help: Some("fix it".into()),
            }],
            elapsed: Duration::from_millis(12),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_by_severity_and_fixable() {
        let run = testing::run();
        assert_eq!(run.counts(), [0, 1, 1]);
        assert_eq!(run.max_severity(), Some(Severity::Error));
        assert_eq!(
            run.summary(),
            "kmigrate: 1 file scanned, 2 findings (1 error, 1 warning, 0 info), \
             1 fixable with `kmigrate rewrite`, 1 file not checked in 0.01s"
        );
    }

    #[test]
    fn located_positions_and_preview() {
        let run = testing::run();
        let l: Vec<_> = run.located().collect();
        assert_eq!((l[0].start, l[0].end), ((2, 11), (2, 48)));
        assert_eq!(l[1].start, (3, 33));
        let preview = l[0].fix_preview().unwrap();
        assert!(preview.starts_with("--- a/ci/cloudbuild.yaml\n+++ b/ci/cloudbuild.yaml\n"));
        assert!(preview.contains("\n-  - name: gcr.io/kaniko-project/executor:latest\n"));
        assert!(preview.contains("\n+  - name: gcr.io/cloud-builders/docker\n"));
        assert!(l[1].fix_preview().is_none());
        assert_eq!(l[1].normalised_snippet(), "'--cache-ttl=6h'");
        assert_eq!(display_path(l[0].path), "ci/cloudbuild.yaml");
    }
}
