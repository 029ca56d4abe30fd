//! `kmigrate verify` end to end on fixtures: a Cloud Build Kaniko config
//! rewritten in memory and verified (registry-mapped and embedded store,
//! with `--compare-original`), a GitLab multi-build job split and verified,
//! a failing Dockerfile (exit 1 with the step's output) and an unresolved
//! substitution (exit 2 naming it).

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use support::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/verify")
        .join(name)
}

/// Copies a fixture directory into a fresh temp dir (verify writes its
/// store under the context by default).
pub fn copy_fixture(name: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    copy_dir(&fixture(name), d.path());
    d
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

fn verify(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kmigrate"))
        .arg("verify")
        .args(args)
        // The default store lives under the user's cache: keep it in /tmp.
        .env(
            "XDG_CACHE_HOME",
            std::env::temp_dir().join("kmigrate-verify-e2e-cache"),
        )
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("DOCKER_HOST")
        .output()
        .unwrap()
}

/// The embedded store the human report names.
fn store_of(report: &str) -> PathBuf {
    report
        .lines()
        .find_map(|l| l.strip_prefix("store: "))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("the report names its store:\n{report}"))
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The digest a registry serves for `repo:tag`.
fn registry_digest(addr: &str, repo: &str, tag: &str) -> Option<String> {
    let r = ureq::get(&format!("http://{addr}/v2/{repo}/manifests/{tag}"))
        .header(
            "Accept",
            "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
        )
        .call()
        .ok()?;
    r.headers()
        .get("Docker-Content-Digest")
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}

fn assert_pass_cold_warm(b: &Value) {
    assert_eq!(b["status"], "pass", "{b:#}");
    let cold = &b["cold"];
    let warm = &b["warm"];
    assert!(cold["executed"].as_u64().unwrap() > 0, "{b:#}");
    assert_eq!(warm["executed"], 0, "{b:#}");
    assert!(warm["cached"].as_u64().unwrap() > 0, "{b:#}");
    assert_eq!(cold["digest"], warm["digest"], "{b:#}");
    assert!(cold["digest"].as_str().unwrap().starts_with("sha256:"));
}

#[test]
fn cloudbuild_kaniko_config_is_rewritten_and_verified_against_a_mapped_registry() {
    if !(have("docker-registry") && have("busybox") && have("root")) {
        return;
    }
    let reg = Registry::start();
    let base = push_busybox(&reg);
    let repo = copy_fixture("cloudbuild");
    let store = tempfile::tempdir().unwrap();
    let cfg = repo.path().join("cloudbuild.yaml");
    let out = verify(&[
        cfg.to_str().unwrap(),
        "--substitution",
        &format!("_BASE={base}"),
        "--substitution",
        "PROJECT_ID=my-proj",
        "--registry-map",
        &format!("europe-west1-docker.pkg.dev/my-proj={}/my-proj", reg.addr),
        "--store",
        store.path().to_str().unwrap(),
        "--format",
        "json",
    ]);
    let j = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    assert_eq!(j["rewritten_in_memory"], true);
    let builds = j["builds"].as_array().unwrap();
    assert_eq!(builds.len(), 1, "{j:#}");
    let b = &builds[0];
    assert_eq!(b["unit"], "build");
    assert_eq!(b["kind"], "buildx");
    assert_pass_cold_warm(b);
    assert!(b["cold"]["bytes_exported"].as_u64().unwrap() > 0);
    // Everything went to the loopback registry, nothing to the store.
    let refs = b["refs"].as_array().unwrap();
    assert!(refs.len() >= 2, "{b:#}");
    assert!(refs.iter().all(|r| r["embedded"] == false), "{b:#}");
    // The image is in the registry with the verified digest, and the cache too.
    let tag = b["tags"][0].as_str().unwrap();
    let t = tag.rsplit(':').next().unwrap();
    assert_eq!(
        registry_digest(&reg.addr, "my-proj/app", t).as_deref(),
        b["cold"]["digest"].as_str(),
        "{b:#}"
    );
    let cache = refs
        .iter()
        .find(|r| r["original"].as_str().unwrap().contains("/cache"))
        .expect("a cache ref");
    let cache_target = cache["target"].as_str().unwrap();
    let (cache_repo, cache_tag) = cache_target
        .strip_prefix(&format!("{}/", reg.addr))
        .unwrap()
        .rsplit_once(':')
        .unwrap();
    assert!(
        registry_digest(&reg.addr, cache_repo, cache_tag).is_some(),
        "cache {cache_target} not in the registry"
    );
    // The source file was not touched.
    assert_eq!(
        std::fs::read_to_string(&cfg).unwrap(),
        std::fs::read_to_string(fixture("cloudbuild/cloudbuild.yaml")).unwrap()
    );
}

#[test]
fn cloudbuild_default_store_and_compare_original() {
    if !(have("busybox") && have("root") && have("docker-registry")) {
        return;
    }
    let reg = Registry::start();
    let base = push_busybox(&reg);
    let repo = copy_fixture("cloudbuild");
    let cfg = repo.path().join("cloudbuild.yaml");
    let out = verify(&[
        cfg.to_str().unwrap(),
        "--substitution",
        &format!("_BASE={base}"),
        "--compare-original",
    ]);
    let t = output_text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("PASS  build ("), "{t}");
    assert!(t.contains("still uses Kaniko"), "{t}");
    assert!(t.contains("(embedded store)"), "{t}");
    assert!(
        t.contains("same image config and layer files as the Kaniko build"),
        "{t}"
    );
    assert!(t.contains("placeholder value for"), "{t}");
    assert!(t.contains("PROJECT_ID"), "{t}");
    // The image is an OCI layout in the default store, which the report
    // names and which lies outside the repository.
    let store = store_of(&t);
    assert!(!store.starts_with(repo.path()), "{}", store.display());
    assert!(!repo.path().join(".kmigrate").exists());
    let images = store.join("images");
    let entries: Vec<_> = std::fs::read_dir(&images).unwrap().collect();
    assert_eq!(entries.len(), 1);
    let dir = entries[0].as_ref().unwrap().path();
    assert!(dir.join("index.json").is_file());
    assert!(dir.join("oci-layout").is_file());
    let cache = store.join("cache");
    assert!(std::fs::read_dir(&cache).unwrap().count() >= 1);
}

#[test]
fn gitlab_multi_build_job_is_split_and_each_image_verified() {
    if !(have("docker-registry") && have("busybox") && have("root")) {
        return;
    }
    let reg = Registry::start();
    push_busybox(&reg);
    let repo = copy_fixture("gitlab");
    let store = tempfile::tempdir().unwrap();
    let cfg = repo.path().join(".gitlab-ci.yml");
    let out = verify(&[
        cfg.to_str().unwrap(),
        "--variable",
        &format!("BASE_REGISTRY={}", reg.addr),
        "--registry-map",
        &format!("registry.gitlab.example.com={}", reg.addr),
        "--store",
        store.path().to_str().unwrap(),
        "--format",
        "json",
    ]);
    let j = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    assert_eq!(j["platform"], "gitlab");
    assert_eq!(j["rewritten_in_memory"], true);
    let builds = j["builds"].as_array().unwrap();
    assert_eq!(builds.len(), 2, "{j:#}");
    // The split jobs, each one build, each on its own state.
    assert_eq!(builds[0]["unit"], "build-images-image-a");
    assert_eq!(builds[1]["unit"], "build-images-image-b");
    // Each split job points back at its executor call in the file as written.
    assert!(
        builds[0]["location"]
            .as_str()
            .unwrap()
            .ends_with(".gitlab-ci.yml:16"),
        "{j:#}"
    );
    assert!(
        builds[1]["location"]
            .as_str()
            .unwrap()
            .ends_with(".gitlab-ci.yml:22"),
        "{j:#}"
    );
    for b in builds {
        assert_pass_cold_warm(b);
    }
    assert_ne!(builds[0]["cold"]["digest"], builds[1]["cold"]["digest"]);
    assert!(
        builds[0]["tags"][0]
            .as_str()
            .unwrap()
            .starts_with("registry.gitlab.example.com/group/")
    );
    // Pushed to the mapped registry.
    let pushed = builds[1]["cold"]["pushed"][0].as_str().unwrap();
    assert!(pushed.starts_with(&reg.addr), "{pushed}");
    assert!(pushed.contains("/image-b@sha256:"), "{pushed}");
}

#[test]
fn failing_dockerfile_exits_1_with_the_step_output() {
    if !(have("docker-registry") && have("busybox") && have("root")) {
        return;
    }
    let reg = Registry::start();
    let base = push_busybox(&reg);
    let repo = copy_fixture("failing");
    let cfg = repo.path().join("cloudbuild.yaml");
    let out = verify(&[
        cfg.to_str().unwrap(),
        "--substitution",
        &format!("_BASE={base}"),
    ]);
    let t = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("FAIL  Step #0 ("), "{t}");
    assert!(t.contains("cold build failed"), "{t}");
    assert!(t.contains("exit code 3"), "{t}");
    assert!(t.contains("checking configuration"), "{t}");
    assert!(t.contains("config.yaml is missing"), "{t}");
    assert!(t.contains("Dockerfile:3"), "{t}");
    // The report itself (stdout) carries the failing step's output.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("    | config.yaml is missing"), "{stdout}");
    assert!(!store_of(&t).join("images").exists());
}

#[test]
fn unresolved_substitution_is_reported_by_name_and_exits_2() {
    let repo = copy_fixture("unresolved");
    let cfg = repo.path().join("cloudbuild.yaml");
    let out = verify(&[cfg.to_str().unwrap()]);
    let t = output_text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("NOT RUN  Step #0 ("), "{t}");
    assert!(t.contains("unresolved: _DEPLOY_REGION"), "{t}");
    // The location is the step in the file as written, not in the rewrite.
    assert!(t.contains("cloudbuild.yaml:3)"), "{t}");
    assert!(t.contains("--substitution NAME=VALUE"), "{t}");
    let out = verify(&[cfg.to_str().unwrap(), "--format", "json"]);
    let j = json_of(&out);
    assert_eq!(j["exit_code"], 2);
    assert_eq!(j["builds"][0]["status"], "not-run");
    assert_eq!(j["builds"][0]["unresolved"][0], "_DEPLOY_REGION");
}

#[test]
fn bad_flags_and_configs_exit_2_with_why() {
    let out = verify(&["/nonexistent/cloudbuild.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(output_text(&out).contains("/nonexistent/cloudbuild.yaml"));
    let repo = copy_fixture("unresolved");
    let cfg = repo.path().join("cloudbuild.yaml");
    let out = verify(&[cfg.to_str().unwrap(), "--registry-map", "nothing"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        output_text(&out).contains("write FROM=TO"),
        "{}",
        output_text(&out)
    );
    let out = verify(&[
        cfg.to_str().unwrap(),
        "--engine",
        "docker",
        "--substitution",
        "_DEPLOY_REGION=eu",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        output_text(&out).contains("--registry-map"),
        "{}",
        output_text(&out)
    );
}
