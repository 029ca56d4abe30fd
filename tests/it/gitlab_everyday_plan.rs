//! GitLab jobs written the way GitLab's own docs write them: every fix of
//! one job is one plan, rendered once, and `check`, `rewrite` and `report`
//! agree on what is fixable and how many builds there are.
//!
//! Fixtures live under `tests/fixtures/gitlab-plan/<case>/`; each test runs
//! the real binary on a copy in a temporary directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gitlab-plan")
}

/// Every YAML file of a case, relative to its directory, sorted (the
/// pipeline's `.gitlab-ci.yml` first).
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort_by_key(|p| (p != Path::new(".gitlab-ci.yml"), p.clone()));
    out
}

/// A copy of a case in a temp dir (rewrites happen in place there), with a
/// `kmigrate.toml` choosing `target` so `check` and `report` see the same
/// rewrite as `rewrite --gitlab-target`.
fn copy_case(case: &str, target: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = fixtures_dir().join(case);
    for rel in yaml_files(&src) {
        let to = dir.path().join(&rel);
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::copy(src.join(&rel), to).unwrap();
    }
    fs::write(
        dir.path().join("kmigrate.toml"),
        format!("[rewrite]\ngitlab_target = \"{target}\"\n"),
    )
    .unwrap();
    dir
}

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kmigrate"))
        .env("NO_COLOR", "1")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("kmigrate runs")
}

fn run_on(dir: &Path, args: &[&str]) -> Output {
    let files: Vec<String> = yaml_files(dir)
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(files.iter().map(String::as_str));
    run(dir, &all)
}

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

/// All files of a case directory, each under a `=== path` header.
fn tree_text(dir: &Path) -> String {
    yaml_files(dir)
        .iter()
        .map(|rel| {
            let t = fs::read_to_string(dir.join(rel)).unwrap();
            format!("=== {}\n{}", rel.display(), t)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `check --format json` of the case's files, parsed.
fn check_json(dir: &Path) -> Value {
    let o = run_on(dir, &["check", "--format", "json"]);
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&o.stdout), text(&o.stderr)))
}

fn findings<'v>(report: &'v Value, rule: &str) -> Vec<&'v Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == rule)
        .collect()
}

/// Every fixable finding has a preview, and a finding with a fix is
/// fixable: the preview is the plan `rewrite` writes.
fn assert_fixable_means_previewed(report: &Value, what: &str) {
    for f in report["findings"].as_array().unwrap() {
        let fixable = f["fixable"].as_bool().unwrap();
        assert_eq!(fixable, !f["fix"].is_null(), "{what}: {f:#}");
        if fixable {
            assert!(f["fix"]["preview"].is_string(), "{what}: no preview: {f:#}");
        }
    }
}

/// The Kaniko job of GitLab's docs (a Docker config written under
/// `/kaniko/.docker`, two cached executor calls) rewrites in every target:
/// one job per image, each logging in under `$HOME/.docker`.
#[test]
fn the_documented_kaniko_job_rewrites_in_every_target() {
    for target in ["buildx", "buildkit", "buildah", "split"] {
        let dir = copy_case("kaniko-docs", target);
        let before = check_json(dir.path());
        assert_fixable_means_previewed(&before, target);
        let km001 = findings(&before, "KM001");
        let km002 = findings(&before, "KM002");
        assert_eq!((km001.len(), km002.len()), (1, 1), "{target}: {before:#}");
        // The split is part of the plan `rewrite` writes.
        assert_eq!(km002[0]["fixable"], true, "{target}: {before:#}");
        if target != "split" {
            assert_eq!(km001[0]["fixable"], true, "{target}: {before:#}");
        }

        let o = run_on(dir.path(), &["rewrite", "--gitlab-target", target]);
        let messages = text(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{target}: {messages}");
        let t = fs::read_to_string(dir.path().join(".gitlab-ci.yml")).unwrap();
        let doc: yaml_serde::Value = yaml_serde::from_str(&t).unwrap();
        for job in ["build-api", "build-worker"] {
            let script: Vec<&str> = doc[job]["script"]
                .as_sequence()
                .unwrap_or_else(|| panic!("{target}: no job {job}:\n{t}"))
                .iter()
                .map(|s| s.as_str().unwrap())
                .collect();
            assert_eq!(script.len(), 3, "{target}: {t}");
            if target == "split" {
                assert!(script[1].ends_with("> /kaniko/.docker/config.json"), "{t}");
            } else {
                assert_eq!(script[0], "mkdir -p $HOME/.docker", "{target}: {t}");
                assert!(script[1].ends_with("> $HOME/.docker/config.json"), "{t}");
            }
            assert_eq!(doc[job]["extends"].as_str(), Some(".build"), "{t}");
        }
        assert!(!t.contains("/kaniko/executor") || target == "split", "{t}");
        snapshot!(
            format!("gitlab_everyday_plan__kaniko-docs__{target}"),
            format!("{}\n----- stderr -----\n{messages}", tree_text(dir.path()))
        );
        // Done: nothing fixable is left, and a second rewrite changes nothing.
        let after = check_json(dir.path());
        assert_fixable_means_previewed(&after, target);
        if target != "split" {
            assert!(findings(&after, "KM001").is_empty(), "{after:#}");
        }
        assert!(findings(&after, "KM002").is_empty(), "{after:#}");
        let again = run_on(
            dir.path(),
            &["rewrite", "--check", "--gitlab-target", target],
        );
        assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    }
}

/// `rewrite --check` agrees with `check`: a KM001 that `check` calls
/// fixable is one `rewrite` changes, and the rewrite's own count says one
/// job migrated and one split.
#[test]
fn rewrite_summary_counts_the_documented_job_once() {
    let dir = copy_case("kaniko-docs", "buildx");
    let o = run_on(dir.path(), &["rewrite", "--check"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let messages = text(&o.stderr);
    assert!(
        messages.contains(".gitlab-ci.yml: would rewrite 1 Kaniko job; split 1 multi-build job into one job per image"),
        "{messages}"
    );
}

/// KM002 is fixable in `check` exactly where `rewrite` splits the job, and
/// the rule's page (`rules`, `explain`) says it is fixable.
#[test]
fn km002_is_fixable_where_rewrite_splits_and_the_page_agrees() {
    let dir = copy_case("kaniko-docs", "buildx");
    let rules = text(&run(dir.path(), &["rules"]).stdout);
    let km002 = rules.lines().find(|l| l.starts_with("KM002")).unwrap();
    assert!(km002.contains(" yes "), "{km002}");
    let explain = text(&run(dir.path(), &["explain", "KM002"]).stdout);
    assert!(
        explain.contains("Fixable by `kmigrate rewrite`: yes"),
        "{explain}"
    );
    let report = check_json(dir.path());
    assert_eq!(findings(&report, "KM002")[0]["fixable"], true, "{report:#}");

    // Without the split, the calls are migrated in place: KM002 has no fix
    // of its own, and `rewrite` splits nothing.
    fs::write(
        dir.path().join("kmigrate.toml"),
        "[rewrite]\nsplit = false\n",
    )
    .unwrap();
    let report = check_json(dir.path());
    assert_eq!(
        findings(&report, "KM002")[0]["fixable"],
        false,
        "{report:#}"
    );
    assert_fixable_means_previewed(&report, "no split");
    let o = run_on(dir.path(), &["rewrite", "--check"]);
    let messages = text(&o.stderr);
    assert!(
        messages.contains("would rewrite 1 Kaniko job"),
        "{messages}"
    );
    assert!(!messages.contains("split 1"), "{messages}");
}

/// Split jobs are named as the README and KM002 promise: `.<job>` and
/// `<job>-<image>`; two calls building one image add the target or the
/// Dockerfile's directory, never a bare number.
#[test]
fn split_jobs_follow_the_documented_names() {
    for target in ["split", "buildx"] {
        let dir = copy_case("split-names", target);
        let o = run_on(dir.path(), &["rewrite", "--gitlab-target", target]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        let t = fs::read_to_string(dir.path().join(".gitlab-ci.yml")).unwrap();
        let doc: yaml_serde::Value = yaml_serde::from_str(&t).unwrap();
        let names: Vec<&str> = doc
            .as_mapping()
            .unwrap()
            .keys()
            .filter_map(|k| k.as_str())
            .collect();
        assert_eq!(
            names,
            [
                ".images",
                "images-api-test",
                "images-api-release",
                "images-web",
                ".build-images",
                "build-images-alpine",
                "build-images-debian",
                "deploy"
            ],
            "{target}: {t}"
        );
        let needs: Vec<&str> = doc["deploy"]["needs"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        assert_eq!(
            needs,
            [
                "images-api-test",
                "images-api-release",
                "images-web",
                "build-images-alpine",
                "build-images-debian"
            ]
        );
    }
}

/// A value shared by a job that stays on Kaniko (its flags come from a
/// variable) and one that migrates is never edited: the migrated job gets
/// its own copy, for an anchor, an `extends` template, a `!reference`
/// target and `default:`.
#[test]
fn shared_values_of_a_job_that_stays_are_not_edited() {
    for case in ["anchors", "extends", "reference", "default"] {
        let case = format!("shared-{case}");
        let dir = copy_case(&case, "buildx");
        let original = fs::read_to_string(dir.path().join(".gitlab-ci.yml")).unwrap();
        let o = run_on(dir.path(), &["rewrite"]);
        let messages = text(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{case}: {messages}");
        assert!(
            messages.contains("rewrote 1 Kaniko job"),
            "{case}: {messages}"
        );
        let t = fs::read_to_string(dir.path().join(".gitlab-ci.yml")).unwrap();
        // The shared value and the job that stays: byte for byte.
        let kept = &original[..original.find("\nbuild-tag:").unwrap()];
        assert!(t.starts_with(kept), "{case}:\n{t}");
        let migrated = &t[kept.len()..];
        assert!(
            migrated.contains("docker buildx build --tag"),
            "{case}:\n{t}"
        );
        assert!(
            migrated.contains("> $HOME/.docker/config.json\n    - docker buildx create"),
            "{case}:\n{t}"
        );
        assert!(
            !migrated.contains("/kaniko/") && !migrated.contains("kaniko-project"),
            "{case}:\n{t}"
        );
        snapshot!(format!("gitlab_everyday_plan__{case}"), t);
        // The job that stays is still reported, by name, as left unchanged.
        let report = check_json(dir.path());
        assert_fixable_means_previewed(&report, &case);
        let km001 = findings(&report, "KM001");
        assert_eq!(km001.len(), 1, "{case}: {report:#}");
        assert!(
            km001[0]["message"].as_str().unwrap().contains("`build`"),
            "{case}: {report:#}"
        );
        assert_eq!(km001[0]["fixable"], false, "{case}: {report:#}");
    }
}

/// Builds are counted and named per job that runs, the same in `rewrite`,
/// `check` and `report`: a template shared by two jobs of `ci/build.yml`
/// and one job of `.gitlab-ci.yml` is three builds, each named once.
#[test]
fn builds_are_counted_per_job_that_runs() {
    let dir = copy_case("counts", "buildx");
    let o = run(
        dir.path(),
        &["rewrite", "--check", ".gitlab-ci.yml", "ci/build.yml"],
    );
    let messages = text(&o.stderr);
    assert!(
        messages.contains(".gitlab-ci.yml: would rewrite 1 Kaniko job;"),
        "{messages}"
    );
    assert!(
        messages.contains(
            "ci/build.yml: would rewrite 2 Kaniko jobs; would rewrite the part of 1 Kaniko job written in this file;"
        ),
        "{messages}"
    );

    let report = check_json(dir.path());
    let mut named: Vec<String> = findings(&report, "KM001")
        .iter()
        .filter(|f| !f["message"].as_str().unwrap().contains("(the part written"))
        .map(|f| {
            let m = f["message"].as_str().unwrap();
            m.split('`').nth(1).unwrap().to_string()
        })
        .collect();
    named.sort();
    assert_eq!(
        named,
        ["build-api", "build-docs", "build-web"],
        "{report:#}"
    );

    let o = run(dir.path(), &["report", "--format", "json", "."]);
    let audit: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(audit["summary"]["builds"], 3, "{audit:#}");
    let destination = audit["flags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["flag"] == "--destination")
        .unwrap();
    assert_eq!(destination["uses"], 3, "{audit:#}");
}

/// `verify` runs the rewrite `rewrite` would write, so the documented job
/// verifies too: one build per split job, each passing.
#[test]
fn the_documented_kaniko_job_verifies() {
    let dir = copy_case("kaniko-docs", "buildx");
    for app in ["api", "worker"] {
        let d = dir.path().join(app);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("Dockerfile"), "FROM scratch\nCOPY hello.txt /\n").unwrap();
        fs::write(d.join("hello.txt"), app).unwrap();
    }
    let store = tempfile::tempdir().unwrap();
    let o = run(
        dir.path(),
        &[
            "verify",
            ".gitlab-ci.yml",
            "--store",
            store.path().to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    let units: Vec<&str> = j["builds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["unit"].as_str().unwrap())
        .collect();
    assert_eq!(units, ["build-api", "build-worker"], "{j:#}");
}
