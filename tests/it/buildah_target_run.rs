//! The Buildah target's output, run for real (issue 19 item 5): GitLab's
//! documented Kaniko job (a Docker config written under `/kaniko/.docker`)
//! and a job that relied on Kaniko's GitLab credential helper are
//! rewritten with `--gitlab-target buildah`, and each rewritten job's
//! `before_script` + `script` runs with `sh` as a runner would, with the
//! `CI_*` variables pointing at a loopback `docker-registry`. The image is
//! pushed, and a second run on an empty local storage is served from the
//! registry cache. `verify` reads the rewritten file's builds too.

use std::path::Path;
use std::process::Output;

use crate::buildah_env::{BuildahEnv, text};
use crate::support::{Registry, have, kmigrate, push_busybox_with_history, write_files};

/// GitLab's documented Kaniko job (two destinations, a digest file) and a
/// job that pushed with the credentials Kaniko's GitLab helper found.
const PIPELINE: &str = r#"build:
  image:
    name: gcr.io/kaniko-project/executor:v1.23.2-debug
    entrypoint: [""]
  script:
    - mkdir -p /kaniko/.docker
    - echo "{\"auths\":{\"${CI_REGISTRY}\":{\"auth\":\"$(printf "%s:%s" "${CI_REGISTRY_USER}" "${CI_REGISTRY_PASSWORD}" | base64 | tr -d '\n')\"}}}" > /kaniko/.docker/config.json
    - /kaniko/executor
      --context "${CI_PROJECT_DIR}"
      --dockerfile "${CI_PROJECT_DIR}/Dockerfile"
      --destination "${CI_REGISTRY_IMAGE}:${CI_COMMIT_SHORT_SHA}"
      --destination "${CI_REGISTRY_IMAGE}:latest"
      --cache=true
      --digest-file "${CI_PROJECT_DIR}/digest.txt"
helper:
  image: gcr.io/kaniko-project/executor:debug
  script:
    - /kaniko/executor --context "${CI_PROJECT_DIR}/tool" --dockerfile "${CI_PROJECT_DIR}/tool/Dockerfile" --destination "${CI_REGISTRY_IMAGE}/tool:${CI_COMMIT_SHORT_SHA}" --cache=true
tarball:
  image: gcr.io/kaniko-project/executor:debug
  script:
    - /kaniko/executor --context "${CI_PROJECT_DIR}" --cache=true --no-push --destination "${CI_REGISTRY_IMAGE}/tarball:${CI_COMMIT_SHORT_SHA}" --tar-path "${CI_PROJECT_DIR}/image.tar"
"#;

const SHA: &str = "0a1b2c3d";

/// A registry manifest: its digest and its JSON.
fn manifest(reg: &str, repo: &str, tag: &str) -> Option<(String, serde_json::Value)> {
    let mut r = ureq::get(&format!("http://{reg}/v2/{repo}/manifests/{tag}"))
        .header(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json",
        )
        .call()
        .ok()?;
    let digest = r
        .headers()
        .get("Docker-Content-Digest")?
        .to_str()
        .ok()?
        .to_string();
    let body = r.body_mut().read_to_string().ok()?;
    Some((digest, serde_json::from_str(&body).ok()?))
}

/// The layer diff IDs of an image's config.
fn diff_ids(reg: &str, repo: &str, tag: &str) -> Vec<String> {
    let (_, m) = manifest(reg, repo, tag).unwrap_or_else(|| panic!("no {repo}:{tag}"));
    let config = m["config"]["digest"].as_str().unwrap();
    let mut r = ureq::get(&format!("http://{reg}/v2/{repo}/blobs/{config}"))
        .call()
        .unwrap();
    let c: serde_json::Value =
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    c["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect()
}

fn tags(reg: &str, repo: &str) -> Vec<String> {
    let Ok(mut r) = ureq::get(&format!("http://{reg}/v2/{repo}/tags/list")).call() else {
        return Vec::new();
    };
    let v: serde_json::Value =
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    v["tags"]
        .as_array()
        .map(|t| t.iter().map(|x| x.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// The shell text a runner runs for `job` of the rewritten pipeline (its
/// `before_script` and `script` lines, in one shell that stops at the
/// first failure), and the job's variables.
fn job_script(doc: &yaml_serde::Value, job: &str) -> (String, Vec<(String, String)>) {
    let j = &doc[job];
    let mut lines = vec!["set -e".to_string()];
    for key in ["before_script", "script"] {
        if let Some(items) = j[key].as_sequence() {
            lines.extend(items.iter().map(|l| l.as_str().unwrap().to_string()));
        }
    }
    // GitLab's `$CI_REGISTRY` speaks HTTPS; the test's loopback registry
    // speaks HTTP, which `buildah login` 1.28 accepts only with this flag
    // (it does not read registries.conf's `insecure`; build and push do).
    for l in &mut lines {
        *l = l.replace("buildah login ", "buildah login --tls-verify=false ");
    }
    let vars = j["variables"]
        .as_mapping()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.as_str().unwrap().into(), v.as_str().unwrap().into()))
                .collect()
        })
        .unwrap_or_default();
    (lines.join("\n"), vars)
}

/// Runs `job`'s script as a runner with an empty local storage would.
fn run_job(
    project: &Path,
    reg: &str,
    doc: &yaml_serde::Value,
    job: &str,
) -> Option<(Output, BuildahEnv)> {
    let env = BuildahEnv::new(reg)?;
    let (script, vars) = job_script(doc, job);
    let out = env
        .command("sh", project)
        .arg("-c")
        .arg(&script)
        .envs(vars)
        .env("CI_REGISTRY", reg)
        .env("CI_REGISTRY_IMAGE", format!("{reg}/group/project"))
        .env("CI_REGISTRY_USER", "gitlab-ci-token")
        .env("CI_REGISTRY_PASSWORD", "not-checked")
        .env("CI_PROJECT_DIR", project)
        .env("CI_COMMIT_SHORT_SHA", SHA)
        .output()
        .unwrap();
    Some((out, env))
}

/// A registry with the base image, and a project rewritten to the Buildah
/// target: the rewritten `.gitlab-ci.yml` text.
fn rewritten_project() -> (Registry, tempfile::TempDir, String) {
    let reg = Registry::start();
    // Buildah 1.28 refuses a base image whose config lists no history
    // ("history lists 0 non-empty layers, but we have 1 layers on disk").
    let base = push_busybox_with_history(&reg);
    let project = tempfile::tempdir().unwrap();
    let p = project.path();
    write_files(
        p,
        &[
            (".gitlab-ci.yml", PIPELINE),
            (
                "Dockerfile",
                &format!(
                    "FROM {base}\nRUN echo $((6*7))-ran && echo 42 > /answer\nCOPY app.txt /app.txt\n"
                ),
            ),
            ("app.txt", "app\n"),
            (
                "tool/Dockerfile",
                &format!("FROM {base}\nRUN echo $((7*8))-tool > /tool\n"),
            ),
        ],
    );
    let o = kmigrate(
        p,
        &["rewrite", "--gitlab-target", "buildah", ".gitlab-ci.yml"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let rewritten = std::fs::read_to_string(p.join(".gitlab-ci.yml")).unwrap();
    assert!(!rewritten.contains("/kaniko/executor"), "{rewritten}");
    (reg, project, rewritten)
}

#[test]
fn buildah_target_jobs_push_and_the_second_run_is_served_from_the_registry_cache() {
    if !(have("docker-registry") && have("busybox") && have("buildah") && have("root")) {
        return;
    }
    let (reg, project, rewritten) = rewritten_project();
    let p = project.path();
    let doc: yaml_serde::Value = yaml_serde::from_str(&rewritten).unwrap();

    let (cold, _env) = run_job(p, &reg.addr, &doc, "build").unwrap();
    let cold_text = text(&cold);
    assert!(cold.status.success(), "{rewritten}\n{cold_text}");
    assert!(
        cold_text.contains("42-ran"),
        "the RUN step ran: {cold_text}"
    );
    assert!(cold_text.contains("Pushing cache"), "{cold_text}");
    let (digest, m) = manifest(&reg.addr, "group/project", SHA).expect("pushed");
    assert_eq!(
        m["mediaType"], "application/vnd.docker.distribution.manifest.v2+json",
        "Docker media types, as Kaniko pushed"
    );
    let (latest, _) = manifest(&reg.addr, "group/project", "latest").expect("pushed");
    assert_eq!(latest, digest, "both destinations name one image");
    let written = std::fs::read_to_string(p.join("digest.txt")).unwrap();
    assert_eq!(written.trim(), digest, "the digest file holds the digest");
    assert!(
        !tags(&reg.addr, "group/project/cache").is_empty(),
        "the cache repository got its per-layer tags"
    );
    let cold_layers = diff_ids(&reg.addr, "group/project", SHA);
    assert_eq!(cold_layers.len(), 3, "{cold_layers:?}");

    // A second runner, empty local storage: every step from the cache.
    let (warm, _env2) = run_job(p, &reg.addr, &doc, "build").unwrap();
    let warm_text = text(&warm);
    assert!(warm.status.success(), "{warm_text}");
    assert_eq!(
        warm_text.matches("Cache pulled from remote").count(),
        2,
        "RUN and COPY from the registry cache: {warm_text}"
    );
    assert!(!warm_text.contains("42-ran"), "RUN ran again: {warm_text}");
    assert_eq!(diff_ids(&reg.addr, "group/project", SHA), cold_layers);

    // The job that relied on Kaniko's GitLab helper logs in with
    // `buildah login` and pushes.
    let (helper, _env3) = run_job(p, &reg.addr, &doc, "helper").unwrap();
    let helper_text = text(&helper);
    assert!(helper.status.success(), "{rewritten}\n{helper_text}");
    assert!(helper_text.contains("Login Succeeded"), "{helper_text}");
    assert!(manifest(&reg.addr, "group/project/tool", SHA).is_some());

    // `--no-push --tar-path`: a Docker archive naming the image, nothing
    // pushed; a second run replaces the archive, as Kaniko did.
    for round in 1..=2 {
        let (tar, _env4) = run_job(p, &reg.addr, &doc, "tarball").unwrap();
        assert!(
            tar.status.success(),
            "round {round}: {rewritten}\n{}",
            text(&tar)
        );
    }
    let listing = std::process::Command::new("tar")
        .args(["-xOf", "image.tar", "manifest.json"])
        .current_dir(p)
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&listing.stdout);
    assert!(
        names.contains(&format!("{}/group/project/tarball:{SHA}", reg.addr)),
        "{names}"
    );
    assert!(manifest(&reg.addr, "group/project/tarball", SHA).is_none());
}

/// `verify` reads the Buildah target's shape (`buildah build` with the
/// `buildah push` commands after it) and runs those builds through the
/// embedded builder, cold then warm, pushing to the mapped registry.
#[test]
fn buildah_target_output_is_accepted_by_verify() {
    if !(have("docker-registry") && have("busybox") && have("root")) {
        return;
    }
    let (reg, project, _) = rewritten_project();
    let p = project.path();
    let store = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kmigrate"))
        .args(["verify", ".gitlab-ci.yml", "--format", "json", "--store"])
        .arg(store.path())
        .arg("--registry-map")
        .arg(format!("registry.gitlab.example.com={}", reg.addr))
        .current_dir(p)
        .env("XDG_CACHE_HOME", store.path())
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("DOCKER_HOST")
        .output()
        .unwrap();
    let j: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out)));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(j["rewritten_in_memory"], false, "{j:#}");
    let builds = j["builds"].as_array().unwrap();
    let units: Vec<&str> = builds.iter().map(|b| b["unit"].as_str().unwrap()).collect();
    assert_eq!(units, ["build", "helper", "tarball"], "{j:#}");
    for b in builds {
        assert_eq!(b["status"], "pass", "{b:#}");
        assert_eq!(b["warm"]["executed"], 0, "{b:#}");
        let pushed = b["cold"]["pushed"].as_array().map_or(0, Vec::len);
        // The tarball job pushes nothing.
        assert_eq!(pushed > 0, b["unit"] != "tarball", "{b:#}");
    }
    assert_eq!(builds[0]["tags"].as_array().unwrap().len(), 2, "{j:#}");
}
