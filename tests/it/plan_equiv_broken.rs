//! A deliberately broken translation is caught (issue 15 item 5): rewrites
//! broken by hand (a lost `--tag`, a lost `--push`, a lost `--target`) fed
//! to the comparison the rewrite runs before it offers a fix, next to the
//! rewrite kmigrate really makes, which passes.
//!
//! The engine itself under a broken translation (rendered plans losing
//! their tags) is tested in `verify::equivalence`'s unit tests: `check`
//! and `rewrite` withhold the build with KM012 and write nothing of it.

use std::path::{Path, PathBuf};

use kmigrate::buildx::equivalence::{Explained, Field};
use kmigrate::engine;
use kmigrate::options::Options;
use kmigrate::source::SourceFile;
use kmigrate::verify::equivalence::{self, Mismatch};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/plan_equiv/broken")
        .join(name)
}

/// The comparison of `original` with `rewritten`, explained by the notes
/// of the original's findings.
fn compare(original: &str, rewritten: &str) -> Vec<Mismatch> {
    let path = fixture(original);
    let source = SourceFile::load(&path).unwrap();
    let platform = engine::platform_of(&source, None).unwrap();
    let findings = engine::analyze(&source, platform, &Options::default()).unwrap();
    let explained = Explained::from_notes(
        findings.iter().map(|f| f.message.as_str()),
        &Options::default().cache_tag,
    );
    let after = match rewritten {
        // The rewrite kmigrate makes.
        "" => engine::apply_fixes(&source, &findings).unwrap().unwrap(),
        name => std::fs::read_to_string(fixture(name)).unwrap(),
    };
    equivalence::texts(&path, platform, &source.text, &after, &explained).unwrap()
}

fn mismatch(unit: &str, fields: &[Field]) -> Mismatch {
    Mismatch {
        unit: unit.into(),
        original: true,
        fields: fields.to_vec(),
    }
}

#[test]
fn the_real_rewrites_reproduce_their_builds() {
    assert_eq!(compare("cloudbuild.yaml", ""), []);
    assert_eq!(compare(".gitlab-ci.yml", ""), []);
}

#[test]
fn a_cloud_build_rewrite_that_loses_a_tag_and_a_push_is_caught() {
    assert_eq!(
        compare("cloudbuild.yaml", "cloudbuild-rewritten-broken.yaml"),
        [
            mismatch("api", &[Field::Tags]),
            mismatch("web", &[Field::Output])
        ]
    );
}

#[test]
fn a_gitlab_rewrite_that_loses_the_target_is_caught() {
    let got = compare(".gitlab-ci.yml", "gitlab-rewritten-broken.yml");
    assert_eq!(got, [mismatch("build", &[Field::Target])]);
    let message = got[0].message("job `build`");
    assert!(
        message.contains("withheld") && message.contains("(different target)"),
        "{message}"
    );
}

/// Found by the safety net: rewriting the args of a step that are an
/// anchor another step aliases handed that step buildx args under the
/// Kaniko image. The step is now left for a human, with the reason.
#[test]
fn an_anchored_args_list_another_step_uses_is_not_rewritten() {
    let text = "steps:\n- id: build-0\n  name: gcr.io/kaniko-project/executor:latest\n  args: &a ['--destination=gcr.io/p/app:1', '--context=.']\n- id: build-1\n  name: gcr.io/kaniko-project/executor:latest\n  args: *a\n";
    let source = SourceFile::from_text(Path::new("cloudbuild.yaml"), text.into()).unwrap();
    let platform = engine::platform_of(&source, None).unwrap();
    let findings = engine::analyze(&source, platform, &Options::default()).unwrap();
    assert!(
        !findings.iter().any(|f| f.rule.id() == "KM012"),
        "{findings:#?}"
    );
    let first = findings
        .iter()
        .find(|f| f.rule.id() == "KM001" && f.message.contains("build-0"))
        .unwrap();
    assert!(first.fix.is_none(), "{first:#?}");
    assert!(
        first.help.as_deref().unwrap_or("").contains("anchor `&a`"),
        "{first:#?}"
    );
    assert_eq!(engine::apply_fixes(&source, &findings).unwrap(), None);
}
