//! The migration figure (issue 15, "Done when"): over a set of CI files,
//! how many files and Kaniko builds (steps and jobs) there are, how many
//! migrate automatically — the file's rewrite leaves no Kaniko, builds
//! what the original built (plan equivalence), passes `check` and is
//! idempotent — and why the others are left.
//!
//! The figure of a fixed list of the project's own fixtures is kept in
//! tests/fixtures/plan_equiv/FIGURE, the line the README quotes; this test
//! recomputes it. When a change moves it, the test prints the new line:
//! update FIGURE (and the README) in the same change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kmigrate::buildx::equivalence::Explained;
use kmigrate::engine;
use kmigrate::options::Options;
use kmigrate::rules::{Finding, Severity};
use kmigrate::source::SourceFile;
use kmigrate::verify::equivalence;

use crate::plan_equiv_common;

/// What a set of files comes to.
#[derive(Debug, Default, PartialEq, Eq)]
struct Figure {
    files: usize,
    /// Files with at least one Kaniko build.
    kaniko_files: usize,
    builds: usize,
    automatic: usize,
    /// Builds left for a human, by reason.
    left: BTreeMap<String, usize>,
}

impl Figure {
    /// The line FIGURE holds and the README quotes.
    fn line(&self) -> String {
        let pct = (100 * self.automatic)
            .checked_div(self.builds)
            .unwrap_or(100);
        format!(
            "{} files ({} with Kaniko), {} Kaniko builds, {} migrated automatically ({pct}%)",
            self.files, self.kaniko_files, self.builds, self.automatic
        )
    }
}

/// A Kaniko step or job, counted where its own KM001 is (the part of a
/// job's fix written in another file is not another build).
fn is_build(f: &Finding) -> bool {
    f.rule.id() == "KM001" && !f.message.ends_with("(the part written in this file)")
}

/// Why a build is left: the first clause of its finding's help.
fn reason(f: &Finding) -> String {
    let help = f.help.as_deref().unwrap_or("no automatic fix");
    let help = help
        .trim_start_matches("not rewritten automatically: ")
        .trim_start_matches("left unchanged: ");
    let cut = help.find([';', '(', ':']).unwrap_or(help.len());
    help[..cut].trim().to_string()
}

fn analyze(path: &Path, text: &str) -> Option<(SourceFile, Vec<Finding>)> {
    let source = SourceFile::from_text(path, text.to_string()).ok()?;
    let platform = engine::platform_of(&source, None).ok()?;
    let findings = engine::analyze(&source, platform, &Options::default()).ok()?;
    Some((source, findings))
}

/// Why the rewrite of a file is not a full migration, if it is not.
fn not_migrated(source: &SourceFile, findings: &[Finding]) -> Option<String> {
    let platform = engine::platform_of(source, None).ok()?;
    let Ok(Some(after)) = engine::apply_fixes(source, findings) else {
        return Some("no rewrite".into());
    };
    let Some((_, again)) = analyze(&source.path, &after) else {
        return Some("the rewrite does not read back".into());
    };
    // What the rewrite leaves must be the builds left for a human, no more.
    let left = |fs: &[Finding], only_unfixed: bool| {
        let errors = fs
            .iter()
            .filter(|f| f.severity == Severity::Error && !(only_unfixed && f.fix.is_some()));
        (
            fs.iter()
                .filter(|f| is_build(f) && !(only_unfixed && f.fix.is_some()))
                .count(),
            errors.count(),
        )
    };
    let (kaniko_before, errors_before) = left(findings, true);
    let (kaniko_after, errors_after) = left(&again, false);
    if kaniko_after > kaniko_before {
        return Some("Kaniko left after the rewrite".into());
    }
    if errors_after > errors_before {
        return Some("`check` fails on the rewrite".into());
    }
    let rewritten = SourceFile::from_text(&source.path, after.clone()).ok()?;
    if !matches!(engine::apply_fixes(&rewritten, &again), Ok(None)) {
        return Some("the rewrite is not idempotent".into());
    }
    let explained = Explained::from_notes(
        findings.iter().map(|f| f.message.as_str()),
        &Options::default().cache_tag,
    );
    match equivalence::texts(&source.path, platform, &source.text, &after, &explained) {
        Ok(m) if m.is_empty() => None,
        _ => Some("the rewrite is not plan-equivalent".into()),
    }
}

/// The figure of `files` (each read where it is, never copied).
fn figure(files: &[PathBuf]) -> Figure {
    let mut fig = Figure::default();
    for path in files {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        let Some((source, findings)) = analyze(path, &text) else {
            continue;
        };
        fig.files += 1;
        let builds: Vec<&Finding> = findings.iter().filter(|f| is_build(f)).collect();
        if builds.is_empty() {
            continue;
        }
        fig.kaniko_files += 1;
        fig.builds += builds.len();
        let whole = not_migrated(&source, &findings);
        for b in builds {
            match (&b.fix, &whole) {
                (Some(_), None) => fig.automatic += 1,
                (Some(_), Some(why)) => *fig.left.entry(why.clone()).or_default() += 1,
                (None, _) => *fig.left.entry(reason(b)).or_default() += 1,
            }
        }
    }
    fig
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The fixed list of fixtures the kept figure is about.
fn listed() -> Vec<PathBuf> {
    let list = std::fs::read_to_string(fixtures().join("plan_equiv/FILES")).unwrap();
    list.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| fixtures().join(l))
        .collect()
}

#[test]
fn the_kept_figure_is_the_figure_of_the_listed_fixtures() {
    let files = listed();
    for f in &files {
        assert!(
            f.is_file(),
            "{} is listed in FILES but missing",
            f.display()
        );
    }
    let fig = figure(&files);
    println!("{}\nleft: {:#?}", fig.line(), fig.left);
    let kept = std::fs::read_to_string(fixtures().join("plan_equiv/FIGURE")).unwrap();
    assert_eq!(
        kept.trim(),
        fig.line(),
        "the figure moved: write the new line into tests/fixtures/plan_equiv/FIGURE and the README"
    );
}

#[test]
fn a_file_left_for_a_human_is_counted_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let migrates = dir.path().join("cloudbuild.yaml");
    std::fs::write(
        &migrates,
        "steps:\n- name: gcr.io/kaniko-project/executor:latest\n  args: ['--destination=r.example/a:1', '--context=.']\n",
    )
    .unwrap();
    let stays = dir.path().join("cloudbuild-bucket.yaml");
    std::fs::write(
        &stays,
        "steps:\n- name: gcr.io/kaniko-project/executor:latest\n  args: ['--destination=r.example/b:1', '--context=gs://bucket/ctx.tar.gz']\n",
    )
    .unwrap();
    let plain = dir.path().join("cloudbuild-plain.yaml");
    std::fs::write(&plain, "steps:\n- name: alpine\n  args: [echo, hi]\n").unwrap();
    let fig = figure(&[migrates, stays, plain]);
    assert_eq!(
        (fig.files, fig.kaniko_files, fig.builds, fig.automatic),
        (3, 2, 2, 1),
        "{fig:#?}"
    );
    assert_eq!(fig.left.values().sum::<usize>(), 1, "{fig:#?}");
    assert_eq!(
        fig.line(),
        "3 files (2 with Kaniko), 2 Kaniko builds, 1 migrated automatically (50%)"
    );
}

#[test]
fn the_corpus_figure_is_printed_where_the_corpus_is() {
    let Some(dir) = plan_equiv_common::corpus_dir() else {
        println!("../shared/corpus not found (set KMIGRATE_CORPUS): no corpus figure");
        return;
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| matches!(p.extension().and_then(|x| x.to_str()), Some("yml" | "yaml")))
        .collect();
    files.sort();
    let fig = figure(&files);
    println!("corpus: {}\nleft: {:#?}", fig.line(), fig.left);
    assert!(fig.builds > 0);
}
