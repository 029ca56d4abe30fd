//! Runs the real binary on GitLab fixtures (each a small repository under
//! `tests/fixtures/gitlab/<case>/`): rewritten files and messages are
//! snapshotted, and the guarantees are checked on every case (no-op files
//! byte-identical, idempotent, output parses, no fixable finding left, the
//! job graph stays valid, bad input leaves files untouched).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kmigrate"));
    c.env("NO_COLOR", "1");
    c
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gitlab")
}

fn cases() -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("bad-"))
        .collect();
    v.sort();
    v
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

/// A copy of a case in a temp dir (rewrites happen in place there).
fn copy_case(case: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = fixtures_dir().join(case);
    for rel in yaml_files(&src) {
        let to = dir.path().join(&rel);
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::copy(src.join(&rel), to).unwrap();
    }
    dir
}

fn run_in(dir: &Path, args: &[&str], files: &[PathBuf]) -> Output {
    bin()
        .current_dir(dir)
        .args(args)
        .args(files)
        .output()
        .expect("kmigrate runs")
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
            format!("=== {}\n{}", rel.display(), t.replace('\r', "␍"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Rewrites a copy of `case` with `target`, returning the directory,
/// the messages and the original texts.
fn rewrite_case(case: &str, target: &str) -> (tempfile::TempDir, String) {
    let dir = copy_case(case);
    let files = yaml_files(dir.path());
    let o = run_in(dir.path(), &["rewrite", "--gitlab-target", target], &files);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{case}/{target}: {}",
        text(&o.stderr)
    );
    (dir, text(&o.stderr))
}

fn assert_guarantees(case: &str, target: &str, dir: &Path, original: &Path) {
    let files = yaml_files(dir);
    for rel in &files {
        let t = fs::read_to_string(dir.join(rel)).unwrap();
        // Every document of the output parses.
        for doc in t.split("\n---\n") {
            yaml_serde::from_str::<yaml_serde::Value>(doc).unwrap_or_else(|e| {
                panic!(
                    "{case}/{target}/{}: does not parse: {e}\n{t}",
                    rel.display()
                )
            });
        }
        let before = fs::read_to_string(original.join(rel)).unwrap();
        if before.contains("\r\n") {
            assert!(
                !t.replace("\r\n", "").contains('\n'),
                "{case}: a bare LF slipped in"
            );
        }
    }
    // A second rewrite changes nothing.
    let again = run_in(
        dir,
        &["rewrite", "--check", "--gitlab-target", target],
        &files,
    );
    assert_eq!(
        again.status.code(),
        Some(0),
        "{case}/{target}: not idempotent: {}",
        text(&again.stderr)
    );
    // No fixable finding is left.
    let check = run_in(dir, &["check"], &files);
    let report = text(&check.stdout);
    if target != "split" {
        assert!(
            !report.contains("fixable: run"),
            "{case}/{target}: {report}"
        );
        assert!(!report.contains("KM003"), "{case}/{target}: {report}");
    }
    assert_graph_valid(case, dir);
}

/// Every `extends`, `needs` and `dependencies` name is a job of the
/// rewritten pipeline (local includes merged).
fn assert_graph_valid(case: &str, dir: &Path) {
    let mut jobs = Vec::new();
    let mut refs = Vec::new();
    for rel in yaml_files(dir) {
        let t = fs::read_to_string(dir.join(&rel)).unwrap();
        let body = t.rsplit("\n---\n").next().unwrap();
        let v: yaml_serde::Value = yaml_serde::from_str(body).unwrap();
        let Some(m) = v.as_mapping() else { continue };
        for (k, job) in m {
            let Some(name) = k.as_str() else { continue };
            jobs.push(name.to_string());
            for key in ["extends", "needs", "dependencies"] {
                match &job[key] {
                    yaml_serde::Value::String(s) => refs.push((name.to_string(), s.clone())),
                    yaml_serde::Value::Sequence(items) => {
                        for i in items {
                            if let Some(s) = i.as_str().or_else(|| i["job"].as_str()) {
                                refs.push((name.to_string(), s.to_string()));
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    for (from, to) in refs {
        // Templates from includes kmigrate does not read are out of scope.
        if case == "includes" {
            continue;
        }
        assert!(
            jobs.contains(&to),
            "{case}: `{from}` refers to missing `{to}`; jobs: {jobs:?}"
        );
    }
}

#[test]
fn every_case_rewrites_as_snapshotted_and_keeps_the_guarantees() {
    for case in cases() {
        let targets: &[&str] = if case == "golden" {
            &["split", "buildx", "buildkit", "buildah"]
        } else {
            &["buildx"]
        };
        for target in targets {
            let (dir, messages) = rewrite_case(&case, target);
            let messages = messages.replace(&format!("{}/", dir.path().display()), "");
            snapshot!(
                format!("gitlab_rewrite__{case}__{target}"),
                format!("{}\n----- stderr -----\n{messages}", tree_text(dir.path()))
            );
            assert_guarantees(&case, target, dir.path(), &fixtures_dir().join(&case));
        }
    }
}

#[test]
fn files_without_findings_are_byte_identical() {
    for case in ["no-kaniko", "includes"] {
        let dir = copy_case(case);
        let files = yaml_files(dir.path());
        let before: Vec<Vec<u8>> = files
            .iter()
            .map(|f| fs::read(dir.path().join(f)).unwrap())
            .collect();
        let o = run_in(dir.path(), &["rewrite"], &files);
        assert_eq!(o.status.code(), Some(0));
        let after: Vec<Vec<u8>> = files
            .iter()
            .map(|f| fs::read(dir.path().join(f)).unwrap())
            .collect();
        assert_eq!(before, after, "{case}");
        assert!(text(&o.stderr).contains("nothing to rewrite"), "{case}");
    }
    let dir = copy_case("no-kaniko");
    let o = run_in(dir.path(), &["check"], &yaml_files(dir.path()));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
}

/// The worked example from the problem statement, checked by structure.
#[test]
fn golden_split_example() {
    let (dir, _) = rewrite_case("golden", "split");
    let t = fs::read_to_string(dir.path().join(".gitlab-ci.yml")).unwrap();
    let doc: yaml_serde::Value = yaml_serde::from_str(&t).unwrap();
    let m = doc.as_mapping().unwrap();
    let names: Vec<&str> = m.keys().filter_map(|k| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "stages",
            ".build-images",
            "build-images-image-a",
            "build-images-image-b",
            "deploy"
        ]
    );
    let tpl = &doc[".build-images"];
    assert_eq!(tpl["stage"].as_str(), Some("build"));
    assert_eq!(
        tpl["image"]["name"].as_str(),
        Some("gcr.io/kaniko-project/executor:debug")
    );
    assert_eq!(tpl["image"]["entrypoint"][0].as_str(), Some(""));
    assert_eq!(tpl["before_script"].as_sequence().unwrap().len(), 2);
    assert!(
        tpl["before_script"][1]
            .as_str()
            .unwrap()
            .contains("/kaniko/.docker/config.json")
    );
    assert!(tpl.get("script").is_none());
    for image in ["image-a", "image-b"] {
        let job = &doc[format!("build-images-{image}").as_str()];
        assert_eq!(job["extends"].as_str(), Some(".build-images"));
        let script = job["script"].as_sequence().unwrap();
        assert_eq!(script.len(), 1, "{image}");
        let call = script[0].as_str().unwrap();
        assert!(
            call.starts_with("/kaniko/executor --cache=true --context \"${CI_PROJECT_DIR}\""),
            "{call}"
        );
        assert_eq!(call.matches("--destination").count(), 2);
        assert_eq!(call.matches(&format!("/{image}:")).count(), 2, "{call}");
    }
    let needs: Vec<&str> = doc["deploy"]["needs"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(needs, ["build-images-image-a", "build-images-image-b"]);
}

#[test]
fn golden_buildx_example_has_the_documented_shape() {
    let (dir, messages) = rewrite_case("golden", "buildx");
    assert!(messages.contains("KM004"), "{messages}");
    let t = fs::read_to_string(dir.path().join(".gitlab-ci.yml")).unwrap();
    let doc: yaml_serde::Value = yaml_serde::from_str(&t).unwrap();
    let tpl = &doc[".build-images"];
    assert_eq!(tpl["image"].as_str(), Some("docker:28.5-cli"));
    assert_eq!(tpl["services"][0].as_str(), Some("docker:28.5-dind"));
    assert_eq!(
        tpl["variables"]["DOCKER_TLS_CERTDIR"].as_str(),
        Some("/certs")
    );
    let before: Vec<&str> = tpl["before_script"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(
        before[1].ends_with("> $HOME/.docker/config.json"),
        "{before:?}"
    );
    assert_eq!(
        before[2],
        "docker buildx create --use --driver docker-container --name kmigrate"
    );
    // The job wrote its own config.json, so no extra login; never a password argument.
    assert!(!t.contains("docker login") && !t.contains("--password "));
    let call = doc["build-images-image-b"]["script"][0].as_str().unwrap();
    assert_eq!(
        call,
        "docker buildx build --tag \"${CI_REGISTRY_IMAGE}/image-b:${CI_COMMIT_SHORT_SHA}\" --tag \"${CI_REGISTRY_IMAGE}/image-b:latest\" --cache-from \"type=registry,ref=${CI_REGISTRY_IMAGE}/image-b/cache:buildcache\" --cache-to \"type=registry,ref=${CI_REGISTRY_IMAGE}/image-b/cache:buildcache,mode=max\" --push --provenance=false ."
    );
}

#[test]
fn no_split_rewrites_calls_in_place() {
    let dir = copy_case("golden");
    let files = yaml_files(dir.path());
    let o = run_in(dir.path(), &["rewrite", "--no-split"], &files);
    assert_eq!(o.status.code(), Some(0));
    let t = fs::read_to_string(dir.path().join(".gitlab-ci.yml")).unwrap();
    assert!(t.contains("\nbuild-images:\n"), "{t}");
    assert_eq!(t.matches("docker buildx build").count(), 2);
    assert!(!t.contains("extends"));
}

#[test]
fn bad_input_is_a_located_error_and_nothing_is_written() {
    for (case, needle, line) in [
        ("bad-cycle", "`extends` cycle", ":4:"),
        // `bad-missing-extends` is a KM014 error finding since issue 15
        // item 3: tests/gitlab_fragments.rs.
        ("bad-yaml", "cannot be parsed", ":"),
    ] {
        let dir = copy_case(case);
        let files = yaml_files(dir.path());
        let before = fs::read(dir.path().join(".gitlab-ci.yml")).unwrap();
        for args in [&["rewrite"][..], &["check"][..]] {
            let o = run_in(dir.path(), args, &files);
            assert_eq!(o.status.code(), Some(2), "{case}");
            let err = text(&o.stderr);
            assert!(err.contains(needle), "{case}: {err}");
            assert!(
                err.contains(&format!(".gitlab-ci.yml{line}")),
                "{case}: {err}"
            );
            assert!(err.contains("help:"), "{case}: {err}");
        }
        assert_eq!(
            fs::read(dir.path().join(".gitlab-ci.yml")).unwrap(),
            before,
            "{case}"
        );
    }
}

#[test]
fn an_unknown_target_is_refused() {
    let dir = copy_case("golden");
    let o = run_in(
        dir.path(),
        &["rewrite", "--gitlab-target", "kaniko"],
        &yaml_files(dir.path()),
    );
    assert_eq!(o.status.code(), Some(2));
}
