//! `kmigrate verify --engine docker`: the Cloud Build Kaniko fixture,
//! rewritten in memory, built by a real `dockerd` (private socket, temporary
//! data root) through bollard, pushed to a loopback registry, removed,
//! pulled back and rebuilt with the pushed image as the cache.

use crate::support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::*;

#[test]
fn cloudbuild_kaniko_config_verified_with_a_docker_engine() {
    if !(have("docker-registry") && have("busybox") && have("root") && have("dockerd")) {
        return;
    }
    let reg = Registry::start();
    let base = push_busybox_with_history(&reg);
    let d = Dockerd::start();
    let repo = tempfile::tempdir().unwrap();
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/verify/cloudbuild-docker");
    let cp = Command::new("cp")
        .arg("-r")
        .arg(format!("{}/.", fixture.display()))
        .arg(repo.path())
        .status()
        .unwrap();
    assert!(cp.success());
    let store = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kmigrate"))
        .arg("verify")
        .arg(repo.path().join("cloudbuild.yaml"))
        .args(["--engine", "docker", "--docker-host", &d.sock])
        .args(["--docker-network", "none"])
        .args(["--substitution", &format!("_BASE={base}")])
        .args(["--substitution", "PROJECT_ID=my-proj"])
        .args([
            "--registry-map",
            &format!("europe-west1-docker.pkg.dev/my-proj={}/my-proj", reg.addr),
        ])
        .arg("--store")
        .arg(store.path())
        .args(["--format", "json"])
        .env_remove("DOCKER_HOST")
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{all}");
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["engine"], "docker");
    let notes = j["notes"].to_string();
    assert!(
        notes.contains("Cache export is not supported for the docker driver"),
        "{notes}"
    );
    assert!(notes.contains("inline cache"), "{notes}");
    let b = &j["builds"][0];
    assert_eq!(b["status"], "pass", "{b:#}");
    assert!(b["cold"]["executed"].as_u64().unwrap() >= 2, "{b:#}");
    assert_eq!(b["warm"]["executed"], 0, "{b:#}");
    assert!(b["warm"]["cached"].as_u64().unwrap() >= 2, "{b:#}");
    assert_eq!(b["cold"]["digest"], b["warm"]["digest"], "{b:#}");
    let pushed = b["cold"]["pushed"][0].as_str().unwrap();
    assert!(
        pushed.starts_with(&format!("{}/my-proj/app@sha256:", reg.addr)),
        "{pushed}"
    );
    // The image the engine built runs and carries the build arg and target.
    let tag = b["refs"][0]["target"].as_str().unwrap();
    let run = d.docker(&["run", "--rm", "--network", "none", tag]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("hello-from-cloudbuild"), "{stdout}");
    assert!(stdout.contains("built by kmigrate verify"), "{stdout}");

    // The failing fixture on the same engine: exit 1 with the step's output.
    let failing = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/verify/failing");
    let out = Command::new(env!("CARGO_BIN_EXE_kmigrate"))
        .arg("verify")
        .arg(failing.join("cloudbuild.yaml"))
        .args(["--engine", "docker", "--docker-host", &d.sock])
        .args(["--docker-network", "none"])
        .args(["--substitution", &format!("_BASE={base}")])
        .args([
            "--registry-map",
            &format!("europe-west1-docker.pkg.dev={}", reg.addr),
        ])
        .arg("--store")
        .arg(store.path())
        .env_remove("DOCKER_HOST")
        .output()
        .unwrap();
    let t = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("FAIL  Step #0 ("), "{t}");
    assert!(t.contains("config.yaml is missing"), "{t}");
    assert!(t.contains("non-zero code: 3"), "{t}");
}
