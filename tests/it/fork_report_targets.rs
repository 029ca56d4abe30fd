//! `kmigrate report` recommends a target per GitLab job from what its
//! configuration shows (services, variables, runner tags), with the reason
//! and the runner change; `kmigrate explain target:NAME` shows each
//! target's page.

use std::path::{Path, PathBuf};

use crate::support::{kmigrate, output_text};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lint/report-targets")
}

#[test]
fn the_report_recommends_a_target_per_job_with_its_reason() {
    let o = kmigrate(&fixture(), &["report"]);
    assert_eq!(o.status.code(), Some(0), "{}", output_text(&o));
    let md = String::from_utf8(o.stdout).unwrap();
    for needle in [
        "| `.gitlab-ci.yml:11` `with-dind` | buildx |",
        "(`docker:27.3-dind`)",
        "| `.gitlab-ci.yml:19` `on-kubernetes` | fork |",
        "`KUBERNETES_MEMORY_REQUEST`",
        "| `.gitlab-ci.yml:27` `tagged-k8s` | fork |",
        "| `.gitlab-ci.yml:34` `hosted` | buildx |",
        "| `.gitlab-ci.yml:41` `plain` | fork |",
        "| buildkit | no privileged mode, but the runner must start containers with seccomp and AppArmor unconfined |",
    ] {
        assert!(md.contains(needle), "{needle} not in\n{md}");
    }
    // A job already on a fork needs no advice; a job without Kaniko none.
    assert!(!md.contains("`on-fork`") && !md.contains("`test`"), "{md}");
    snapshot!("fork_report_targets__markdown", md);
    // The same run gives the same report (the advice is deterministic).
    let again = kmigrate(&fixture(), &["report"]);
    assert_eq!(String::from_utf8(again.stdout).unwrap(), md);
}

#[test]
fn the_json_report_carries_the_targets() {
    let o = kmigrate(&fixture(), &["report", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", output_text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows: Vec<(String, String, String, Option<String>)> = v["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["job"].as_str().unwrap().to_string(),
                r["target"].as_str().unwrap().to_string(),
                r["runner"].as_str().unwrap().to_string(),
                r["signal"].as_str().map(String::from),
            )
        })
        .collect();
    let row = |j: &str, t: &str, r: &str, s: Option<&str>| {
        (
            j.to_string(),
            t.to_string(),
            r.to_string(),
            s.map(String::from),
        )
    };
    assert_eq!(
        rows,
        [
            row("with-dind", "buildx", "privileged", Some("dind-service")),
            row("on-kubernetes", "fork", "none", Some("kubernetes-variable")),
            row("tagged-k8s", "fork", "none", Some("kubernetes-tag")),
            row("hosted", "buildx", "privileged", Some("hosted-runner-tag")),
            row("plain", "fork", "none", None),
        ]
    );
}

#[test]
fn a_cloud_build_report_keeps_its_shape() {
    // Cloud Build steps get no per-step advice (buildx stays the default:
    // the workers run Docker): no `targets` key, no section.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lint/report");
    let o = kmigrate(&dir, &["report", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v.get("targets").is_none(), "{v:#}");
    let md = String::from_utf8(kmigrate(&dir, &["report"]).stdout).unwrap();
    assert!(!md.contains("## Targets"), "{md}");
}

#[test]
fn explain_has_a_page_per_target() {
    for (name, runner) in [
        ("buildx", "privileged containers"),
        ("buildkit", "seccomp and AppArmor unconfined"),
        ("buildah", "chroot isolation"),
        ("fork", "none: the fork runs where Kaniko ran"),
        ("split", "keep running Kaniko"),
    ] {
        let o = kmigrate(&fixture(), &["explain", &format!("target:{name}")]);
        assert_eq!(o.status.code(), Some(0), "{}", output_text(&o));
        let page = String::from_utf8(o.stdout).unwrap();
        assert!(page.starts_with(&format!("target:{name}")), "{page}");
        assert!(page.contains("Runner requirement\n──"), "{page}");
        assert!(page.contains(runner), "{name}: {page}");
        assert!(
            page.contains(&format!("rules/targets/{name}.md")),
            "{name}: {page}"
        );
    }
    let o = kmigrate(&fixture(), &["explain", "target:fork"]);
    snapshot!(
        "fork_report_targets__explain_fork",
        String::from_utf8(o.stdout).unwrap()
    );
    // Rules and targets mix; an unknown target lists the real ones.
    let o = kmigrate(&fixture(), &["explain", "KM002", "target:buildah"]);
    assert_eq!(o.status.code(), Some(0));
    let both = String::from_utf8(o.stdout).unwrap();
    assert!(
        both.starts_with("KM002") && both.contains("target:buildah"),
        "{both}"
    );
    let o = kmigrate(&fixture(), &["explain", "target:kaniko"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains("no target `kaniko`") && err.contains("target:fork"),
        "{err}"
    );
}
