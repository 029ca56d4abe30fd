//! Plan equivalence as a property (issue 15 item 5): for every CI file
//! under tests/fixtures and ../shared/corpus, every build the rewrite
//! changes builds what the original built, up to what the notes explain,
//! and the rewrite never had to withhold a build (a withheld build is a
//! translation bug the safety net caught).
//!
//! The corpus is not part of the repository: it is read where it is, and
//! when it is missing (a fresh clone in CI) the test says so and checks
//! the project's own fixtures only.

use std::path::{Path, PathBuf};

use kmigrate::buildx::equivalence::Explained;
use kmigrate::engine;
use kmigrate::options::Options;
use kmigrate::source::SourceFile;
use kmigrate::verify::equivalence;

use crate::plan_equiv_common;
use plan_equiv_common::corpus_dir;

/// Every file under `dir` that may be a CI config, sorted.
fn ci_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(
                p.extension().and_then(|x| x.to_str()),
                Some("yml" | "yaml" | "json")
            ) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// What checking one file found.
#[derive(Default, Debug)]
struct Tally {
    /// Files read, once per setting.
    files: usize,
    /// Files rewritten, once per setting.
    rewritten: usize,
    problems: Vec<String>,
}

/// The rewrite settings the property holds under: the defaults, another
/// cache tag, no split, GitLab's other targets (rootless BuildKit, Buildah,
/// and `split`, which keeps Kaniko), the fork targets of both platforms and
/// GitHub Actions' cache service.
fn settings() -> Vec<Options> {
    let d = Options::default;
    vec![
        d(),
        Options {
            cache_tag: "ci-cache".into(),
            ..d()
        },
        Options {
            split: false,
            ..d()
        },
        Options {
            gitlab_target: kmigrate::platform::gitlab::target::Target::Split,
            ..d()
        },
        Options {
            gitlab_target: kmigrate::platform::gitlab::target::Target::Buildkit,
            ..d()
        },
        Options {
            gitlab_target: kmigrate::platform::gitlab::target::Target::Buildah,
            ..d()
        },
        // The fork targets keep the executor call on a maintained fork.
        Options {
            gitlab_target: kmigrate::platform::gitlab::target::Target::Fork,
            cloudbuild_target: kmigrate::options::CloudbuildTarget::Fork,
            ..d()
        },
        // GitHub Actions' cache service instead of the registry cache.
        Options {
            github_cache: kmigrate::options::GithubCache::Gha,
            ..d()
        },
    ]
}

fn check_file(path: &Path, t: &mut Tally) {
    for opts in settings() {
        check_file_with(path, &opts, t);
    }
}

fn check_file_with(path: &Path, opts: &Options, t: &mut Tally) {
    let Ok(source) = SourceFile::load(path) else {
        return;
    };
    let Ok(platform) = engine::platform_of(&source, None) else {
        return;
    };
    let Ok(findings) = engine::analyze(&source, platform, opts) else {
        return;
    };
    t.files += 1;
    for f in findings
        .iter()
        .filter(|f| f.rule == kmigrate::rules::Rule::Km012 && f.message.contains("was withheld"))
    {
        t.problems.push(format!(
            "{} ({opts:?}): the safety net withheld a rewrite: {}",
            path.display(),
            f.message
        ));
    }
    let Ok(Some(after)) = engine::apply_fixes(&source, &findings) else {
        return;
    };
    t.rewritten += 1;
    let explained =
        Explained::from_notes(findings.iter().map(|f| f.message.as_str()), &opts.cache_tag);
    match equivalence::texts(path, platform, &source.text, &after, &explained) {
        Ok(mismatches) => {
            for m in mismatches {
                t.problems.push(format!(
                    "{} ({opts:?}): build `{}` differs after the rewrite in {:?}",
                    path.display(),
                    m.unit,
                    m.fields
                ));
            }
        }
        Err(e) => t.problems.push(format!(
            "{}: the rewrite cannot be read: {e}",
            path.display()
        )),
    }
}

#[test]
fn every_fixture_rewrite_builds_what_the_original_built() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut t = Tally::default();
    for p in ci_files(&dir) {
        check_file(&p, &mut t);
    }
    let n = settings().len();
    assert!(t.files > 50 * n, "too few fixtures read: {t:?}");
    assert!(t.rewritten > 20 * n, "too few fixtures rewritten: {t:?}");
    assert!(t.problems.is_empty(), "{}", t.problems.join("\n"));
}

#[test]
fn every_corpus_rewrite_builds_what_the_original_built() {
    let Some(dir) = corpus_dir() else {
        // CI runs on a fresh clone, where the corpus is not: the fixtures
        // test above still holds the property.
        println!(
            "../shared/corpus not found (set KMIGRATE_CORPUS to its path): the corpus property is checked only where the corpus is"
        );
        return;
    };
    let mut t = Tally::default();
    for p in ci_files(&dir) {
        check_file(&p, &mut t);
    }
    let n = settings().len();
    println!(
        "corpus: {} files read, {} rewritten (under each of {n} settings)",
        t.files / n,
        t.rewritten / n
    );
    assert!(t.problems.is_empty(), "{}", t.problems.join("\n"));
}
