//! `kmigrate verify` of four parallel Cloud Build steps that shared one
//! Kaniko cache repository (issue 15 item 4): the rewrite gives each build
//! its own registry cache tag, so every build's warm run, which starts
//! after all the cold runs as the next run of the config does, hits.

use crate::support;

use std::process::Command;

use serde_json::Value;
use support::*;

const SERVICES: [&str; 4] = ["orders", "billing", "frontend", "search"];

#[test]
fn parallel_steps_sharing_a_cache_repo_all_hit_their_warm_cache() {
    if !(have("docker-registry") && have("busybox") && have("root")) {
        return;
    }
    let reg = Registry::start();
    let base = push_busybox(&reg);
    let repo = tempfile::tempdir().unwrap();
    let mut config = String::from("# Four services built at once, one cache repository.\nsteps:\n");
    for s in SERVICES {
        write_files(
            repo.path(),
            &[
                (
                    &format!("{s}/Dockerfile"),
                    "ARG BASE\nFROM ${BASE}\nCOPY message.txt /srv/message.txt\nRUN cat /srv/message.txt > /srv/out.txt\n",
                ),
                (&format!("{s}/message.txt"), &format!("this is {s}\n")),
            ],
        );
        config.push_str(&format!(
            "- id: {s}\n  name: gcr.io/kaniko-project/executor:v1.23.2\n  args:\n  - --context=dir:///workspace/{s}\n  - --destination=europe-docker.pkg.dev/shop/images/{s}:1\n  - --build-arg=BASE=${{_BASE}}\n  - --cache=true\n  - --cache-repo=europe-docker.pkg.dev/shop/images/kaniko-cache\n  waitFor: ['-']\n"
        ));
    }
    let cfg = repo.path().join("cloudbuild.yaml");
    std::fs::write(&cfg, &config).unwrap();
    let store = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kmigrate"))
        .args([
            "verify",
            cfg.to_str().unwrap(),
            "--substitution",
            &format!("_BASE={base}"),
            "--registry-map",
            &format!("europe-docker.pkg.dev/shop={}/shop", reg.addr),
            "--store",
            store.path().to_str().unwrap(),
            "--format",
            "json",
        ])
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("DOCKER_HOST")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    let j: Value = serde_json::from_str(&report)
        .unwrap_or_else(|e| panic!("{e}: {report}{}", String::from_utf8_lossy(&out.stderr)));
    let builds = j["builds"].as_array().unwrap();
    assert_eq!(builds.len(), 4, "{j:#}");
    let mut cache_refs = Vec::new();
    for b in builds {
        assert!(b["cold"]["executed"].as_u64().unwrap() > 0, "{b:#}");
        assert_eq!(b["warm"]["executed"], 0, "{}: {b:#}", b["unit"]);
        assert_eq!(b["status"], "pass", "{b:#}");
        let cache = b["refs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["original"].as_str().unwrap().contains("kaniko-cache"))
            .map(|r| r["original"].as_str().unwrap().to_string())
            .expect("a cache ref");
        cache_refs.push(cache);
    }
    cache_refs.sort();
    cache_refs.dedup();
    assert_eq!(cache_refs.len(), 4, "{cache_refs:?}");
    assert_eq!(out.status.code(), Some(0), "{j:#}");
}
