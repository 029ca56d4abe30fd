//! Distinct registry cache refs per build across one config or pipeline
//! (issue 15 item 4): the real binary on fixtures under
//! tests/fixtures/cache-refs/.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kmigrate"))
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .expect("kmigrate runs")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/cache-refs")
        .join(name)
}

fn rewritten(path: &Path) -> String {
    let o = run(&["rewrite", "--stdout", path.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// `check --format json` findings as (rule, message).
fn findings(path: &Path) -> Vec<(String, String)> {
    let o = run(&["check", "--format", "json", path.to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The word after each `--tag` and every `ref=` value, per build: a build
/// is a top-level Cloud Build step, or a GitLab script line.
fn builds(text: &str, gitlab: bool) -> Vec<(BTreeSet<String>, BTreeSet<String>)> {
    let chunks: Vec<&str> = if gitlab {
        text.lines()
            .filter(|l| l.contains("buildx build"))
            .collect()
    } else {
        text.split("\n- ")
            .filter(|c| c.contains("--cache-to"))
            .collect()
    };
    let word = |s: &str| {
        s.trim_start_matches(['-', ' ', '\'', '"', ',', '\n'])
            .split(['\'', '"', ' ', '\n', ','])
            .next()
            .unwrap_or("")
            .to_string()
    };
    chunks
        .iter()
        .map(|c| {
            let tags = c.split("--tag").skip(1).map(word).collect();
            let refs = c.split("ref=").skip(1).map(word).collect();
            (tags, refs)
        })
        .collect()
}

/// Every cache ref is used by builds of one set of tags only, and each
/// tag is a valid OCI tag.
fn assert_distinct(builds: &[(BTreeSet<String>, BTreeSet<String>)]) {
    let mut by_ref: BTreeMap<&str, BTreeSet<&BTreeSet<String>>> = BTreeMap::new();
    for (tags, refs) in builds {
        assert!(!refs.is_empty(), "a build without a cache: {builds:?}");
        assert!(
            !tags.is_empty() && tags.iter().all(|t| !t.is_empty()),
            "{builds:?}"
        );
        for r in refs {
            by_ref.entry(r).or_default().insert(tags);
            let tag = r.rsplit_once(':').unwrap().1;
            assert!(
                tag.len() <= 128
                    && tag
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
                    && !tag.starts_with(['.', '-']),
                "{tag} is not a valid tag"
            );
        }
    }
    for (r, users) in &by_ref {
        assert_eq!(users.len(), 1, "{r} is shared by {users:?}");
    }
}

fn refs_of(builds: &[(BTreeSet<String>, BTreeSet<String>)]) -> Vec<String> {
    builds
        .iter()
        .map(|(_, r)| r.iter().next().unwrap().clone())
        .collect()
}

#[test]
fn parallel_steps_sharing_a_cache_repo_get_one_tag_each() {
    let path = fixture("parallel-steps.cloudbuild.yaml");
    let out = rewritten(&path);
    let b = builds(&out, false);
    assert_eq!(b.len(), 4, "{out}");
    assert_distinct(&b);
    assert_eq!(
        refs_of(&b),
        [
            "europe-docker.pkg.dev/shop/images/kaniko-cache:buildcache-orders",
            "europe-docker.pkg.dev/shop/images/kaniko-cache:buildcache-billing",
            "europe-docker.pkg.dev/shop/images/kaniko-cache:buildcache-Front-End",
            "europe-docker.pkg.dev/shop/images/kaniko-cache:buildcache-search",
        ]
    );
    // Each step says why its tag is not the cache tag.
    let notes: Vec<String> = findings(&path)
        .into_iter()
        .filter(|(r, m)| r == "KM011" && m.contains("one manifest per ref"))
        .map(|(_, m)| m)
        .collect();
    assert_eq!(notes.len(), 4, "{notes:?}");
    assert!(
        notes[0].contains("not `europe-docker.pkg.dev/shop/images/kaniko-cache:buildcache`")
            && notes[0].contains("`billing`, `Front End` and `search`"),
        "{}",
        notes[0]
    );
}

#[test]
fn tags_of_one_image_repository_get_one_cache_tag_each() {
    let out = rewritten(&fixture("mono-repository.cloudbuild.yaml"));
    let b = builds(&out, false);
    assert_eq!(b.len(), 3, "{out}");
    assert_distinct(&b);
    assert_eq!(
        refs_of(&b),
        [
            "gcr.io/p/mono/cache:buildcache-api",
            "gcr.io/p/mono/cache:buildcache-worker",
            "gcr.io/p/mono/cache:buildcache-web",
        ]
    );
}

#[test]
fn a_retry_step_keeps_sharing_its_builds_cache() {
    let out = rewritten(&fixture("retry-step.cloudbuild.yaml"));
    let b = builds(&out, false);
    assert_eq!(b.len(), 3, "{out}");
    assert_distinct(&b);
    let refs = refs_of(&b);
    assert_eq!(refs[0], refs[1], "the retry shares the build's cache");
    assert_eq!(refs[0], "us-docker.pkg.dev/acme/app/cache:buildcache-build");
    assert_eq!(
        refs[2],
        "us-docker.pkg.dev/acme/app/cache:buildcache-migrate"
    );
    // Only retries: today's output, unchanged.
    let path = fixture("retry-only.cloudbuild.yaml");
    let out = rewritten(&path);
    assert_eq!(
        refs_of(&builds(&out, false)),
        [
            "us-docker.pkg.dev/acme/app/cache:buildcache",
            "us-docker.pkg.dev/acme/app/cache:buildcache"
        ]
    );
    assert!(
        !findings(&path)
            .iter()
            .any(|(_, m)| m.contains("one manifest per ref"))
    );
}

#[test]
fn rewritten_configs_are_stable() {
    for name in [
        "parallel-steps.cloudbuild.yaml",
        "mono-repository.cloudbuild.yaml",
        "retry-step.cloudbuild.yaml",
    ] {
        let out = rewritten(&fixture(name));
        let dir = tempfile::tempdir().unwrap();
        let again = dir.path().join("cloudbuild.yaml");
        fs::write(&again, &out).unwrap();
        assert_eq!(rewritten(&again), out, "{name} is not idempotent");
        // Another run of the same config gives the same refs.
        assert_eq!(rewritten(&fixture(name)), out);
    }
}

#[test]
fn a_pipeline_with_includes_and_a_split_job_gets_one_tag_per_build() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join("ci")).unwrap();
    for f in [".gitlab-ci.yml", "ci/tools.yml"] {
        fs::copy(fixture("gitlab").join(f), root.join(f)).unwrap();
    }
    let main = root.join(".gitlab-ci.yml");
    let o = run(&["rewrite", main.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = fs::read_to_string(&main).unwrap()
        + &fs::read_to_string(root.join("ci/tools.yml")).unwrap();
    let b = builds(&text, true);
    assert_eq!(b.len(), 4, "{text}");
    assert_distinct(&b);
    assert_eq!(
        refs_of(&b),
        [
            "$CI_REGISTRY_IMAGE/kaniko-cache:buildcache-build-api",
            "$CI_REGISTRY_IMAGE/kaniko-cache:buildcache-build-web",
            "$CI_REGISTRY_IMAGE/kaniko-cache:buildcache-tools-lint",
            "$CI_REGISTRY_IMAGE/kaniko-cache:buildcache-tools-migrate",
        ]
    );
    assert!(text.contains("tools-lint:\n  extends: .tools"), "{text}");
    // The rewritten pipeline needs nothing more.
    let o = run(&["rewrite", "--check", main.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "not idempotent");
}
