//! The fork target (`--gitlab-target fork`, `--cloudbuild-target fork`):
//! Kaniko jobs and steps keep their executor call and run a pinned,
//! maintained Kaniko fork instead of the archived image. Golden rewrites of
//! the standard GitLab job, the seed-003 shape (two cached builds in one
//! job) and a Cloud Build step; the output is idempotent, has no KM001
//! (a fork is not the archived image) and still has KM002 where a job
//! builds several images with the cache on.

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::{kmigrate, output_text, write_files};

const FORK: &str = "ghcr.io/osscontainertools/kaniko:v1.28.3";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A copy of `.gitlab-ci.yml` from `case` (under tests/fixtures) in a temp dir.
fn gitlab_copy(case: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::copy(
        fixtures().join(case).join(".gitlab-ci.yml"),
        dir.path().join(".gitlab-ci.yml"),
    )
    .unwrap();
    dir
}

fn stderr_of(o: &std::process::Output, dir: &Path) -> String {
    String::from_utf8_lossy(&o.stderr).replace(&format!("{}/", dir.display()), "")
}

/// `check --format json` findings' rule ids.
fn rules(dir: &Path, file: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["check", "--format", "json"];
    args.extend(extra);
    args.push(file);
    let o = kmigrate(dir, &args);
    let v: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", output_text(&o)));
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap().to_string())
        .collect()
}

/// Rewrites a GitLab case with the fork target and checks the guarantees:
/// idempotent, no KM001 or KM002 left, the safety net quiet.
fn gitlab_golden(case: &str, name: &str) {
    let dir = gitlab_copy(case);
    let o = kmigrate(
        dir.path(),
        &["rewrite", "--gitlab-target", "fork", ".gitlab-ci.yml"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", output_text(&o));
    let text = fs::read_to_string(dir.path().join(".gitlab-ci.yml")).unwrap();
    assert!(text.contains(&format!("{FORK}-debug")), "{text}");
    assert!(!text.contains("kaniko-project"), "{text}");
    yaml_serde::from_str::<yaml_serde::Value>(&text).unwrap();
    snapshot!(
        format!("fork_target__gitlab_{name}"),
        format!("{text}\n----- stderr -----\n{}", stderr_of(&o, dir.path()))
    );
    let again = kmigrate(
        dir.path(),
        &[
            "rewrite",
            "--check",
            "--gitlab-target",
            "fork",
            ".gitlab-ci.yml",
        ],
    );
    assert_eq!(again.status.code(), Some(0), "{}", output_text(&again));
    // Whatever target `check` is told, a fork job is not the archived image.
    for target in ["buildx", "fork"] {
        write_files(
            dir.path(),
            &[(
                "kmigrate.toml",
                &format!("[rewrite]\ngitlab_target = \"{target}\"\n"),
            )],
        );
        let found = rules(dir.path(), ".gitlab-ci.yml", &[]);
        assert!(
            !found
                .iter()
                .any(|r| r == "KM001" || r == "KM002" || r == "KM012"),
            "{target}: {found:?}\n{text}"
        );
    }
}

#[test]
fn gitlab_seed_003_shape_moves_to_the_fork_and_splits() {
    gitlab_golden("gitlab/golden", "seed_003");
}

#[test]
fn gitlab_standard_kaniko_job_moves_to_the_fork() {
    gitlab_golden("gitlab-plan/kaniko-docs", "kaniko_docs");
}

#[test]
fn gitlab_fork_keeps_kaniko_credentials_and_config_path() {
    // The fork reads /kaniko/.docker and has Kaniko's credential helpers:
    // no login line, no config path move, no KM004 (no runner change).
    let dir = gitlab_copy("gitlab/golden");
    write_files(
        dir.path(),
        &[("kmigrate.toml", "[rewrite]\ngitlab_target = \"fork\"\n")],
    );
    let found = rules(dir.path(), ".gitlab-ci.yml", &[]);
    assert!(found.contains(&"KM001".to_string()), "{found:?}");
    assert!(found.contains(&"KM002".to_string()), "{found:?}");
    assert!(!found.contains(&"KM004".to_string()), "{found:?}");
    assert!(
        !found.iter().any(|r| r == "KM010" || r == "KM011"),
        "{found:?}"
    );
    let o = kmigrate(dir.path(), &["rewrite", ".gitlab-ci.yml"]);
    assert_eq!(o.status.code(), Some(0), "{}", output_text(&o));
    let text = fs::read_to_string(dir.path().join(".gitlab-ci.yml")).unwrap();
    assert!(text.contains("> /kaniko/.docker/config.json"), "{text}");
    assert!(!text.contains("docker login"), "{text}");
    assert!(!text.contains("services:"), "{text}");
}

#[test]
fn a_job_on_a_fork_is_not_km001_but_still_km002() {
    let dir = tempfile::tempdir().unwrap();
    let src = fs::read_to_string(fixtures().join("gitlab/golden/.gitlab-ci.yml"))
        .unwrap()
        .replace(
            "gcr.io/kaniko-project/executor:debug",
            "martizih/kaniko:v1.27.0-debug",
        );
    write_files(dir.path(), &[(".gitlab-ci.yml", &src)]);
    for target in ["buildx", "buildkit", "split", "fork"] {
        write_files(
            dir.path(),
            &[(
                "kmigrate.toml",
                &format!("[rewrite]\ngitlab_target = \"{target}\"\n"),
            )],
        );
        let found = rules(dir.path(), ".gitlab-ci.yml", &[]);
        assert_eq!(found, ["KM002"], "{target}");
        // Every target only splits it: the job stays on its fork.
        let o = kmigrate(
            dir.path(),
            &[
                "rewrite",
                "--stdout",
                "--gitlab-target",
                target,
                ".gitlab-ci.yml",
            ],
        );
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "{}", output_text(&o));
        assert!(out.contains("build-images-image-a:"), "{target}: {out}");
        assert!(
            out.contains("martizih/kaniko:v1.27.0-debug"),
            "{target}: {out}"
        );
        assert!(
            !out.contains("docker buildx") && !out.contains("buildctl"),
            "{target}: {out}"
        );
    }
}

#[test]
fn a_job_whose_executor_comes_from_an_unknown_image_says_why_it_stays() {
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[(
            ".gitlab-ci.yml",
            "build:\n  image: registry.example/tools/kaniko-plus:1\n  script:\n    - /kaniko/executor --context . --destination registry.example/app:1\n",
        )],
    );
    write_files(
        dir.path(),
        &[("kmigrate.toml", "[rewrite]\ngitlab_target = \"fork\"\n")],
    );
    let o = kmigrate(dir.path(), &["check", "--format", "json", ".gitlab-ci.yml"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let km001 = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "KM001")
        .expect("the archived executor is still named");
    assert_eq!(km001["fixable"], false, "{km001:#}");
    assert!(
        km001["help"]
            .as_str()
            .unwrap()
            .contains("not a Kaniko image kmigrate knows"),
        "{km001:#}"
    );
}

#[test]
fn fork_image_and_version_come_from_kmigrate_toml() {
    let dir = gitlab_copy("gitlab/golden");
    write_files(
        dir.path(),
        &[(
            "kmigrate.toml",
            "[rewrite]\ngitlab_target = \"fork\"\nfork_image = \"martizih/kaniko\"\nfork_version = \"v1.27.6\"\n",
        )],
    );
    let o = kmigrate(dir.path(), &["rewrite", ".gitlab-ci.yml"]);
    assert_eq!(o.status.code(), Some(0), "{}", output_text(&o));
    let text = fs::read_to_string(dir.path().join(".gitlab-ci.yml")).unwrap();
    assert!(
        text.contains("name: martizih/kaniko:v1.27.6-debug"),
        "{text}"
    );
    let shown = String::from_utf8_lossy(&kmigrate(dir.path(), &["config"]).stdout).into_owned();
    assert!(
        shown.contains("fork_image = \"martizih/kaniko\""),
        "{shown}"
    );
    assert!(shown.contains("cloudbuild_target = \"buildx\""), "{shown}");
    // A configured image that is not a fork is refused, naming the file.
    write_files(
        dir.path(),
        &[(
            "kmigrate.toml",
            "[rewrite]\nfork_image = \"gcr.io/kaniko-project/executor\"\n",
        )],
    );
    let o = kmigrate(dir.path(), &["rewrite", ".gitlab-ci.yml"]);
    assert_eq!(o.status.code(), Some(2), "{}", output_text(&o));
    assert!(
        output_text(&o).contains("kmigrate.toml"),
        "{}",
        output_text(&o)
    );
}

const CLOUD_BUILD: &str = "steps:
- name: gcr.io/kaniko-project/executor:latest
  args:
  - --destination=${_REGION}-docker.pkg.dev/$PROJECT_ID/app:${COMMIT_SHA}
  - --cache-repo=${_REGION}-docker.pkg.dev/$PROJECT_ID/app/buildcache
  - --cache=true
  - --cache-ttl=168h
  - --customPlatform=linux/amd64
  - --skip-unused-stages
  waitFor: ['-']
- id: debug-build
  name: 'gcr.io/kaniko-project/executor:v1.23.2-debug'
  entrypoint: /busybox/sh
  args: [-c, '/kaniko/executor --destination=gcr.io/$PROJECT_ID/b --tarPath=b.tar']
- name: ubuntu
  args: [echo, done]
substitutions:
  _REGION: us-central1
";

#[test]
fn cloud_build_kaniko_steps_move_to_the_fork() {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &[("cloudbuild.yaml", CLOUD_BUILD)]);
    let o = kmigrate(
        dir.path(),
        &["rewrite", "--cloudbuild-target", "fork", "cloudbuild.yaml"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", output_text(&o));
    let text = fs::read_to_string(dir.path().join("cloudbuild.yaml")).unwrap();
    assert!(
        !text.contains("setup-buildx") && !text.contains("kaniko-project"),
        "{text}"
    );
    assert!(text.contains(&format!("name: {FORK}\n")), "{text}");
    assert!(text.contains(&format!("name: '{FORK}-debug'")), "{text}");
    snapshot!(
        "fork_target__cloudbuild",
        format!("{text}\n----- stderr -----\n{}", stderr_of(&o, dir.path()))
    );
    let again = kmigrate(
        dir.path(),
        &[
            "rewrite",
            "--check",
            "--cloudbuild-target",
            "fork",
            "cloudbuild.yaml",
        ],
    );
    assert_eq!(again.status.code(), Some(0), "{}", output_text(&again));
    // Nothing left to report, under either target.
    assert_eq!(
        rules(dir.path(), "cloudbuild.yaml", &[]),
        Vec::<String>::new()
    );
    let o = kmigrate(dir.path(), &["rewrite", "--check", "cloudbuild.yaml"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "buildx leaves a fork step: {}",
        output_text(&o)
    );
}

#[test]
fn cloud_build_buildx_stays_the_default() {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &[("cloudbuild.yaml", CLOUD_BUILD)]);
    let o = kmigrate(dir.path(), &["rewrite", "--stdout", "cloudbuild.yaml"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("setup-buildx") && !out.contains("osscontainertools"),
        "{out}"
    );
}

#[test]
fn verify_builds_the_fork_target_output_and_hits_its_cache() {
    use crate::support::{Registry, have, push_busybox};
    if !(have("docker-registry") && have("busybox") && have("root")) {
        return;
    }
    let reg = Registry::start();
    push_busybox(&reg);
    let repo = tempfile::tempdir().unwrap();
    let src = fixtures().join("verify/gitlab");
    for rel in [
        ".gitlab-ci.yml",
        "a/Dockerfile",
        "a/a.txt",
        "b/Dockerfile",
        "b/b.txt",
    ] {
        let to = repo.path().join(rel);
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::copy(src.join(rel), &to).unwrap();
    }
    let o = kmigrate(
        repo.path(),
        &["rewrite", "--gitlab-target", "fork", ".gitlab-ci.yml"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", output_text(&o));
    let store = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kmigrate"))
        .current_dir(repo.path())
        .args(["verify", ".gitlab-ci.yml", "--variable"])
        .arg(format!("BASE_REGISTRY={}", reg.addr))
        .arg("--registry-map")
        .arg(format!("registry.gitlab.example.com={}", reg.addr))
        .args([
            "--store",
            store.path().to_str().unwrap(),
            "--format",
            "json",
        ])
        .env_remove("DOCKER_HOST")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let builds = j["builds"].as_array().unwrap();
    // The split jobs on the fork image, each built cold then served warm
    // from its registry cache.
    let units: Vec<&str> = builds.iter().map(|b| b["unit"].as_str().unwrap()).collect();
    assert_eq!(
        units,
        ["build-images-image-a", "build-images-image-b"],
        "{j:#}"
    );
    for b in builds {
        assert_eq!(b["status"], "pass", "{b:#}");
        assert_eq!(b["warm"]["executed"], 0, "{b:#}");
        assert!(b["warm"]["cached"].as_u64().unwrap() > 0, "{b:#}");
    }
}

#[test]
fn a_no_op_flag_on_its_own_folded_line_is_removed_with_its_line() {
    // `>-` folds lines into spaces: the flag goes with its line break, and
    // the command stays one line when GitLab folds it.
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[(
            ".gitlab-ci.yml",
            "build:\n  image:\n    name: gcr.io/kaniko-project/executor:debug\n    entrypoint: [\"\"]\n  script:\n    - >-\n      /kaniko/executor\n      --context .\n      --skip-unused-stages\n      --snapshotMode=redo\n      --destination r.example/a:1\n    - |\n      /kaniko/executor --context . \\\n        --force-build-metadata \\\n        --destination r.example/b:1\n",
        )],
    );
    let o = kmigrate(
        dir.path(),
        &["rewrite", "--gitlab-target", "fork", ".gitlab-ci.yml"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", output_text(&o));
    let text = fs::read_to_string(dir.path().join(".gitlab-ci.yml")).unwrap();
    assert!(
        text.contains("      /kaniko/executor\n      --context .\n      --snapshot-mode=redo\n      --destination r.example/a:1\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "      /kaniko/executor --context . \\\n        --destination r.example/b:1\n"
        ),
        "{text}"
    );
    let v: yaml_serde::Value = yaml_serde::from_str(&text).unwrap();
    assert_eq!(
        v["build"]["script"][0].as_str(),
        Some("/kaniko/executor --context . --snapshot-mode=redo --destination r.example/a:1")
    );
}

#[test]
fn without_the_split_km002_says_the_fork_still_leaks() {
    // BuildKit isolates the builds of an unsplit job; the fork does not
    // (kaniko#1829 is in the forks too): KM002 must not promise it.
    let dir = gitlab_copy("gitlab/golden");
    write_files(
        dir.path(),
        &[(
            "kmigrate.toml",
            "[rewrite]\ngitlab_target = \"fork\"\nsplit = false\n",
        )],
    );
    let o = kmigrate(dir.path(), &["check", "--format", "json", ".gitlab-ci.yml"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let km002 = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "KM002")
        .expect("KM002")
        .clone();
    let help = km002["help"].as_str().unwrap();
    assert!(!help.contains("BuildKit"), "{help}");
    assert!(help.contains("kaniko#1829"), "{help}");
}
