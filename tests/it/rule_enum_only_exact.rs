//! Fix applicability: `kmigrate rewrite --only-exact` (alias `--only-safe`)
//! applies only the translations that keep the build's behaviour; a build
//! whose translation changes behaviour (KM011) stays as it is, with its
//! finding. `kmigrate report` counts the fixes of each kind.

use std::path::Path;

use crate::support::kmigrate;

/// A copy of the fixture directory: one exact build and one whose
/// `--custom-platform` translation changes behaviour, on each platform.
fn fixtures() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rule_enum");
    for name in ["cloudbuild.yaml", ".gitlab-ci.yml"] {
        std::fs::copy(from.join(name), dir.path().join(name)).unwrap();
    }
    dir
}

fn stdout_of(dir: &Path, args: &[&str]) -> (String, String) {
    let o = kmigrate(dir, args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
    (String::from_utf8(o.stdout).unwrap(), err)
}

#[test]
fn cloud_build_only_exact_keeps_the_step_whose_translation_changes_behaviour() {
    let d = fixtures();
    let (all, _) = stdout_of(d.path(), &["rewrite", "--stdout", "cloudbuild.yaml"]);
    assert!(!all.contains("kaniko-project/executor"), "{all}");
    assert!(all.contains("--platform"), "{all}");

    for flag in ["--only-exact", "--only-safe"] {
        let (text, err) = stdout_of(d.path(), &["rewrite", "--stdout", flag, "cloudbuild.yaml"]);
        // `api` translates exactly: rewritten, with the builder setup step.
        assert!(text.contains("id: setup-buildx"), "{flag}: {text}");
        assert!(
            text.contains("gcr.io/p/api") && text.matches("'buildx', 'build'").count() == 1,
            "{flag}: {text}"
        );
        // `arm` would change behaviour: left on Kaniko, untouched.
        assert!(
            text.contains("  - id: arm\n    name: gcr.io/kaniko-project/executor:latest\n    args: ['--destination=gcr.io/p/arm', '--custom-platform=linux/arm64']\n"),
            "{flag}: {text}"
        );
        // Its finding is still reported, saying why it was left.
        assert!(err.contains("would rewrite 1 Kaniko step"), "{flag}: {err}");
        assert!(
            err.contains("KM001") && err.contains("KM011"),
            "{flag}: {err}"
        );
        assert!(err.contains("--only-exact"), "{flag}: {err}");
    }
}

#[test]
fn gitlab_only_exact_keeps_the_job_whose_translation_changes_behaviour() {
    let d = fixtures();
    let (all, _) = stdout_of(d.path(), &["rewrite", "--stdout", ".gitlab-ci.yml"]);
    assert!(!all.contains("/kaniko/executor"), "{all}");

    let (text, err) = stdout_of(
        d.path(),
        &["rewrite", "--stdout", "--only-exact", ".gitlab-ci.yml"],
    );
    assert!(
        text.contains("docker buildx build") && text.contains("$CI_REGISTRY_IMAGE/api:1"),
        "{text}"
    );
    assert!(
        text.ends_with("arm:\n  image:\n    name: gcr.io/kaniko-project/executor:debug\n    entrypoint: [\"\"]\n  script:\n    - /kaniko/executor --context . --destination $CI_REGISTRY_IMAGE/arm:1 --custom-platform=linux/arm64\n"),
        "{text}"
    );
    assert!(err.contains("would rewrite 1 Kaniko job"), "{err}");
}

/// The exit code of `kmigrate args` in `dir`.
fn exit_code(dir: &Path, args: &[&str]) -> Option<i32> {
    let o = kmigrate(dir, args);
    eprintln!("{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    o.status.code()
}

#[test]
fn only_exact_in_place_then_again_changes_nothing_more() {
    let d = fixtures();
    let files = ["cloudbuild.yaml", ".gitlab-ci.yml"];
    let run = |flags: &[&str]| exit_code(d.path(), &[&["rewrite"], flags, &files[..]].concat());
    assert_eq!(run(&["--only-exact"]), Some(0));
    assert_eq!(run(&["--check", "--only-exact"]), Some(0));
    // Without the flag, what is left is still rewritten.
    assert_eq!(run(&["--check"]), Some(1));
}

#[test]
fn report_counts_fixes_by_applicability() {
    let d = fixtures();
    let (json, _) = stdout_of(d.path(), &["report", "--format", "json", "."]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let summary = &v["summary"];
    assert_eq!(summary["builds"], 4, "{summary}");
    assert_eq!(summary["fixes"]["exact"], 2, "{summary}");
    assert_eq!(summary["fixes"]["changes_behaviour"], 2, "{summary}");
    let (md, _) = stdout_of(d.path(), &["report", "."]);
    assert!(
        md.contains(
            "Of the 4 builds `kmigrate rewrite` fixes, 2 translate exactly and 2 change behaviour"
        ),
        "{md}"
    );
}
