//! The rewrite's safety net: every build a rewrite changes is read back
//! from the rewritten text with the extractor `verify` uses and compared
//! with the original build (its Kaniko call read through the flag table).
//! A difference no note explains names the build, and the platform keeps
//! that build as it was instead of writing it (rule KM012).
//!
//! Both sides are read the same way, in memory: no git, no network, the
//! config's directory standing for the workspace. Variables without a
//! value are given a stand-in value so their builds are compared too.

use std::collections::BTreeMap;
use std::path::Path;

use super::extract::{self, Extracted, Inputs};
use super::vars::GitInfo;
use crate::buildx::equivalence::{self, Explained, Field};
use crate::platform::Platform;
use crate::platform::gitlab::{Job, Pipeline};

/// A build whose rewrite does not reproduce it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The original build's unit (step id, `step N`, job name); for a
    /// build only the rewritten text runs, its unit there.
    pub unit: String,
    /// True when `unit` names an original build.
    pub original: bool,
    pub fields: Vec<Field>,
}

impl Mismatch {
    /// The KM012 message for a build whose rewrite was withheld.
    pub fn message(&self, what: &str) -> String {
        format!(
            "the rewrite of {what} was withheld: the translation did not reproduce the build (different {}); the build is left as it was",
            equivalence::describe(&self.fields),
        )
    }
}

/// What to ask the user, said once with every withheld rewrite.
pub const REPORT_HELP: &str = "this is a bug in kmigrate: please report it with the file (https://github.com/kmigrate/kmigrate/issues); migrate this build by hand meanwhile";

/// The stand-in value of a variable without one: a word with no `$`, no
/// space, so both sides read it as the same literal.
fn stand_in(name: &str) -> String {
    kmigrate_plan::stand_in::word(name)
}

/// Runs `read` (which extracts the original and the rewritten builds with
/// the given variable overrides) and compares the builds. Variables neither
/// side can resolve get a stand-in and are read again, once.
pub fn compare_with<F>(read: F, explained: &dyn Fn(&str) -> Explained) -> Vec<Mismatch>
where
    F: Fn(&BTreeMap<String, String>) -> (Vec<Extracted>, Vec<Extracted>),
{
    let mut overrides = BTreeMap::new();
    let (mut original, mut rewritten) = read(&overrides);
    for e in original.iter().chain(&rewritten) {
        for name in &e.unresolved {
            // `$(…)` substitutions are named in words, not by a variable name.
            if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                overrides.insert(name.clone(), stand_in(name));
            }
        }
    }
    if !overrides.is_empty() {
        (original, rewritten) = read(&overrides);
    }
    compare_builds(&original, &rewritten, explained)
}

/// Whether `a` and `b` are the same build read the same way (a build the
/// rewrite did not touch).
fn unchanged(a: &Extracted, b: &Extracted) -> bool {
    a.unit == b.unit
        && a.kind == b.kind
        && a.plan == b.plan
        && a.error == b.error
        && a.unresolved == b.unresolved
}

/// Pairs every build the rewrite changed with the original it comes from
/// (same tags, else same unit, else the next one in order) and compares
/// each pair.
pub fn compare_builds(
    original: &[Extracted],
    rewritten: &[Extracted],
    explained: &dyn Fn(&str) -> Explained,
) -> Vec<Mismatch> {
    let mut used_o = vec![false; original.len()];
    let mut used_r = vec![false; rewritten.len()];
    for (j, r) in rewritten.iter().enumerate() {
        if let Some(i) = (0..original.len()).find(|&i| !used_o[i] && unchanged(&original[i], r)) {
            used_o[i] = true;
            used_r[j] = true;
        }
    }
    let mut out = Vec::new();
    for (i, o) in original.iter().enumerate() {
        if used_o[i] {
            continue;
        }
        let tags = o.plan.as_ref().map(|p| p.tags.as_slice()).unwrap_or(&[]);
        let free = |j: &usize| !used_r[*j];
        let partner = (0..rewritten.len())
            .filter(free)
            .find(|&j| {
                !tags.is_empty() && rewritten[j].plan.as_ref().is_some_and(|p| p.tags == tags)
            })
            .or_else(|| {
                (0..rewritten.len())
                    .filter(free)
                    .find(|&j| rewritten[j].unit == o.unit)
            })
            .or_else(|| (0..rewritten.len()).find(free));
        let Some(j) = partner else {
            out.push(Mismatch {
                unit: o.unit.clone(),
                original: true,
                fields: vec![Field::Build],
            });
            continue;
        };
        used_r[j] = true;
        // An original kmigrate cannot read (a `$(…)` in a flag, a call
        // Kaniko itself rejects) has no plan to hold the rewrite to.
        let Some(before) = &o.plan else { continue };
        let fields = match &rewritten[j].plan {
            Some(after) => equivalence::differences(before, after, &explained(&o.unit)),
            None => vec![Field::Build],
        };
        if !fields.is_empty() {
            out.push(Mismatch {
                unit: o.unit.clone(),
                original: true,
                fields,
            });
        }
    }
    for (j, r) in rewritten.iter().enumerate() {
        if !used_r[j] {
            out.push(Mismatch {
                unit: r.unit.clone(),
                original: false,
                fields: vec![Field::Build],
            });
        }
    }
    out
}

/// The inputs both sides are read with: `dir` stands for the workspace.
fn inputs<'a>(
    dir: &'a Path,
    git: &'a GitInfo,
    overrides: &'a BTreeMap<String, String>,
) -> Inputs<'a> {
    Inputs {
        context_dir: dir,
        git,
        overrides,
    }
}

/// The directory a config's paths are relative to.
fn config_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Compares a Cloud Build config's text with its rewrite.
pub fn cloudbuild(
    path: &Path,
    before: &str,
    after: &str,
    explained: &dyn Fn(&str) -> Explained,
) -> Vec<Mismatch> {
    one_file(Platform::CloudBuild, path, before, after, explained)
}

/// Compares the text of a config that holds all its builds (Cloud Build,
/// GitHub Actions) with its rewrite.
pub fn one_file(
    platform: Platform,
    path: &Path,
    before: &str,
    after: &str,
    explained: &dyn Fn(&str) -> Explained,
) -> Vec<Mismatch> {
    let git = GitInfo::default();
    let dir = config_dir(path);
    compare_with(
        |overrides| {
            let read = |text: &str| {
                extract::extract(path, text, platform, &inputs(dir, &git, overrides))
                    .unwrap_or_default()
            };
            (read(before), read(after))
        },
        explained,
    )
}

/// Compares a GitLab pipeline with its rewrite (`after`: the pipeline
/// with the edited files replaced): the jobs and templates `before_jobs`
/// and `after_jobs` select (the ones a rewrite may have changed).
pub fn gitlab(
    before: &Pipeline,
    after: &Pipeline,
    before_jobs: &dyn Fn(&Job) -> bool,
    after_jobs: &dyn Fn(&Job) -> bool,
    explained: &dyn Fn(&str) -> Explained,
) -> Vec<Mismatch> {
    let git = GitInfo::default();
    let dir = before.root_dir.as_path();
    compare_with(
        |overrides| {
            let i = inputs(dir, &git, overrides);
            (
                extract::pipeline_builds(before, &i, before_jobs),
                extract::pipeline_builds(after, &i, after_jobs),
            )
        },
        explained,
    )
}

/// Compares any config's text with its rewrite: the form the property
/// tests use on whole files.
pub fn texts(
    path: &Path,
    platform: Platform,
    before: &str,
    after: &str,
    explained: &Explained,
) -> Result<Vec<Mismatch>, String> {
    let explained = |_: &str| explained.clone();
    match platform {
        Platform::GitLab => {
            let root = crate::platform::gitlab::include::project_root(path);
            let load = |text: &str| {
                Pipeline::from_text(&root, path, text.to_string())
                    .map_err(|e| format!("{}: {}", e.path.display(), e.message))
            };
            let every = |_: &Job| true;
            Ok(gitlab(
                &load(before)?,
                &load(after)?,
                &every,
                &every,
                &explained,
            ))
        }
        // Every other platform reads one file on its own.
        _ => Ok(one_file(platform, path, before, after, &explained)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KANIKO: &str = "steps:\n- id: app\n  name: gcr.io/kaniko-project/executor:latest\n  args: ['--destination=r.example/app:1', '--context=dir:///workspace/app', '--cache=true']\n";

    fn buildx(args: &str) -> String {
        format!(
            "steps:\n- id: app\n  name: gcr.io/cloud-builders/docker\n  args: [buildx, build, {args}]\n"
        )
    }

    /// The engine `check` and `rewrite` run, with a broken translation:
    /// the build is withheld with a KM012 finding and the text keeps it.
    fn withheld_under_a_broken_translation(path: &str, text: &str, unit_word: &str) {
        use crate::buildx::plan::fault;
        use crate::engine;
        let source = crate::source::SourceFile::from_text(Path::new(path), text.into()).unwrap();
        let platform = engine::platform_of(&source, None).unwrap();
        let opts = crate::options::Options::default();
        // The same text migrates when the translation is right.
        let good = engine::analyze(&source, platform, &opts).unwrap();
        let fixed = engine::apply_fixes(&source, &good)
            .unwrap()
            .expect("a rewrite");
        assert!(fixed.contains("--tag"), "{fixed}");
        assert!(
            !good.iter().any(|f| f.rule == crate::rules::Rule::Km012),
            "{good:#?}"
        );

        let findings = fault::dropping_tags(|| engine::analyze(&source, platform, &opts)).unwrap();
        let km012: Vec<_> = findings
            .iter()
            .filter(|f| f.rule == crate::rules::Rule::Km012)
            .collect();
        assert_eq!(km012.len(), 1, "{findings:#?}");
        let m = &km012[0].message;
        assert!(m.contains("was withheld") && m.contains("tags"), "{m}");
        assert!(m.contains(unit_word), "{m}");
        assert!(
            km012[0].help.as_deref().unwrap_or("").contains("report"),
            "{:?}",
            km012[0].help
        );
        // Nothing of the build's broken rewrite is written.
        let after = fault::dropping_tags(|| engine::apply_fixes(&source, &findings)).unwrap();
        if let Some(after) = &after {
            assert!(after.contains("--destination"), "{after}");
            assert!(!after.contains("buildx build"), "{after}");
        }
    }

    #[test]
    fn a_broken_cloud_build_translation_is_withheld() {
        withheld_under_a_broken_translation("cloudbuild.yaml", KANIKO, "step `app`");
    }

    #[test]
    fn a_broken_gitlab_translation_is_withheld() {
        withheld_under_a_broken_translation(
            "/nonexistent-kmigrate-test/.gitlab-ci.yml",
            "build:\n  image: {name: gcr.io/kaniko-project/executor:debug, entrypoint: [\"\"]}\n  script:\n    - /kaniko/executor --context \"$CI_PROJECT_DIR\" --destination \"$CI_REGISTRY_IMAGE:1\"\n",
            "job `build`",
        );
    }

    #[test]
    fn a_faithful_rewrite_has_no_mismatch() {
        let after = buildx(
            "--builder, kmigrate, --tag, r.example/app:1, --cache-from, 'type=registry,ref=r.example/app/cache:buildcache', --cache-to, 'type=registry,ref=r.example/app/cache:buildcache,mode=max', --push, --provenance=false, app",
        );
        let got = cloudbuild(Path::new("cloudbuild.yaml"), KANIKO, &after, &|_: &str| {
            Explained::default()
        });
        assert_eq!(got, []);
    }

    #[test]
    fn a_dropped_destination_is_named() {
        let after = buildx(
            "--builder, kmigrate, --cache-from, 'type=registry,ref=r.example/app/cache:buildcache', --cache-to, 'type=registry,ref=r.example/app/cache:buildcache,mode=max', --push, --provenance=false, app",
        );
        let got = cloudbuild(Path::new("cloudbuild.yaml"), KANIKO, &after, &|_: &str| {
            Explained::default()
        });
        assert_eq!(
            got,
            [Mismatch {
                unit: "app".into(),
                original: true,
                fields: vec![Field::Tags]
            }]
        );
        assert!(got[0].message("Step #0").contains("(different tags)"));
    }

    #[test]
    fn a_lost_build_and_an_unreadable_one_are_named() {
        let gone = "steps:\n- id: app\n  name: gcr.io/cloud-builders/docker\n  args: [version]\n";
        let got = cloudbuild(Path::new("c.yaml"), KANIKO, gone, &|_: &str| {
            Explained::default()
        });
        assert_eq!(got[0].fields, [Field::Build]);
        let bad = buildx("--no-such-flag, app");
        let got = cloudbuild(Path::new("c.yaml"), KANIKO, &bad, &|_: &str| {
            Explained::default()
        });
        assert_eq!(got[0].fields, [Field::Build]);
    }

    #[test]
    fn variables_without_a_value_are_compared_through_a_stand_in() {
        let before = KANIKO.replace("r.example/app:1", "${_IMAGE}:1");
        let after = buildx(
            "--builder, kmigrate, --tag, '${_IMAGE}:2', --cache-from, 'type=registry,ref=${_IMAGE}/cache:buildcache', --cache-to, 'type=registry,ref=${_IMAGE}/cache:buildcache,mode=max', --push, --provenance=false, app",
        );
        let got = cloudbuild(Path::new("c.yaml"), &before, &after, &|_: &str| {
            Explained::default()
        });
        assert_eq!(got[0].fields, [Field::Tags]);
        let after = after.replace(":2'", ":1'");
        assert_eq!(
            cloudbuild(Path::new("c.yaml"), &before, &after, &|_: &str| {
                Explained::default()
            }),
            []
        );
    }
}
