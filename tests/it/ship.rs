//! What kmigrate ships for CI users beside the binary — the GitLab CI/CD
//! component (`templates/kmigrate-check.yml`), the GitHub composite action
//! (`action.yml`) and the container image (`Dockerfile`) — each run here the
//! way its platform runs it, not only parsed.

use crate::support::*;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use kmigrate::builder::image::{ImageConfig, Index, Manifest};

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The directory of the binary under test, to put first on a script's PATH.
fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_kmigrate"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn path_with_kmigrate() -> String {
    format!("{}:{}", bin_dir().display(), std::env::var("PATH").unwrap())
}

/// A repository with one archived-Kaniko build, and one without.
fn repos() -> (tempfile::TempDir, tempfile::TempDir) {
    let dirty = tempfile::tempdir().unwrap();
    write_files(
        dirty.path(),
        &[(
            ".gitlab-ci.yml",
            "build:\n  image:\n    name: gcr.io/kaniko-project/executor:debug\n    entrypoint: [\"\"]\n  script:\n    - /kaniko/executor --context . --destination registry.example.com/app:1\n",
        )],
    );
    let clean = tempfile::tempdir().unwrap();
    write_files(
        clean.path(),
        &[(
            ".gitlab-ci.yml",
            "test:\n  image: alpine:3\n  script:\n    - make test\n",
        )],
    );
    (dirty, clean)
}

// ---------------------------------------------------------------------------
// GitLab CI/CD component

/// `$[[ inputs.NAME ]]`, GitLab's input interpolation.
fn input_ref() -> regex::Regex {
    regex::Regex::new(r"\$\[\[\s*inputs\.([A-Za-z0-9_-]+)\s*\]\]").unwrap()
}

/// The component's `spec: inputs:` (name → default) and its job document.
fn component() -> (BTreeMap<String, String>, String) {
    let text = std::fs::read_to_string(repo_file("templates/kmigrate-check.yml")).unwrap();
    let (header, jobs) = text.split_once("\n---\n").expect("a spec header, then ---");
    let spec: yaml_serde::Value = yaml_serde::from_str(header).unwrap();
    let inputs = spec["spec"]["inputs"].as_mapping().expect("spec: inputs:");
    let defaults = inputs
        .iter()
        .map(|(k, v)| {
            let default = v["default"].as_str().expect("every input has a default");
            (k.as_str().unwrap().to_string(), default.to_string())
        })
        .collect();
    (defaults, jobs.to_string())
}

/// The job document with every input replaced by `inputs`, as GitLab does
/// when the component is included.
fn interpolate(jobs: &str, inputs: &BTreeMap<String, String>) -> String {
    input_ref()
        .replace_all(jobs, |c: &regex::Captures| inputs[&c[1]].clone())
        .into_owned()
}

#[test]
fn gitlab_component_declares_every_input_it_uses_and_passes_its_own_check() {
    let (defaults, jobs) = component();
    let used: std::collections::BTreeSet<String> = input_ref()
        .captures_iter(&jobs)
        .map(|c| c[1].to_string())
        .collect();
    let declared: std::collections::BTreeSet<String> = defaults.keys().cloned().collect();
    assert_eq!(used, declared, "inputs used vs declared");

    // kmigrate's own GitLab reader sees the job, its script and its report.
    let dir = tempfile::tempdir().unwrap();
    let ci = dir.path().join(".gitlab-ci.yml");
    std::fs::write(&ci, interpolate(&jobs, &defaults)).unwrap();
    let pipeline = kmigrate::platform::gitlab::Pipeline::load(&ci).unwrap();
    let job = pipeline
        .jobs
        .iter()
        .find(|j| j.name == "kmigrate-check")
        .expect("the component's job");
    assert!(!job.hidden);
    assert_eq!(job.stage.as_ref().unwrap().value, "test");
    assert_eq!(job.script.len(), 2);
    assert!(
        job.script[1]
            .text
            .contains("kmigrate check --format gitlab")
    );
    let report = job.config.get("artifacts").unwrap().get("reports").unwrap();
    assert_eq!(
        report.get("codequality").unwrap().as_str(),
        Some("gl-code-quality-report.json")
    );

    // And the file itself, as shipped, is clean under `kmigrate check`.
    let out = kmigrate(
        &repo_file("."),
        &[
            "check",
            "--platform",
            "gitlab",
            "templates/kmigrate-check.yml",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
}

/// Runs the component's job script in `repo` the way a GitLab runner does
/// (one shell, stop at the first failing line), with `kmigrate` on the PATH.
fn run_component(repo: &Path, inputs: &BTreeMap<String, String>) -> std::process::Output {
    let (_, jobs) = component();
    let doc: yaml_serde::Value = yaml_serde::from_str(&interpolate(&jobs, inputs)).unwrap();
    let job = &doc["kmigrate-check"];
    let mut cmd = Command::new("sh");
    cmd.current_dir(repo).env("PATH", path_with_kmigrate());
    for (k, v) in job["variables"].as_mapping().unwrap() {
        cmd.env(k.as_str().unwrap(), v.as_str().unwrap());
    }
    let script: Vec<&str> = job["script"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    cmd.arg("-ec").arg(script.join("\n")).output().unwrap()
}

#[test]
fn gitlab_component_job_fails_on_kaniko_and_writes_the_code_quality_report() {
    let (defaults, _) = component();
    let (dirty, clean) = repos();

    let out = run_component(dirty.path(), &defaults);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dirty.path().join("gl-code-quality-report.json")).unwrap(),
    )
    .unwrap();
    let rules: Vec<&str> = report
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["check_name"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"KM001"), "{report}");

    let out = run_component(clean.path(), &defaults);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    let report = std::fs::read_to_string(clean.path().join("gl-code-quality-report.json")).unwrap();
    assert_eq!(report.trim(), "[]");

    // Inputs change what runs: two paths, a report elsewhere, a lower bar.
    let mut inputs = defaults.clone();
    inputs.insert("paths".into(), ".gitlab-ci.yml nested".into());
    inputs.insert("report".into(), "out/cq.json".into());
    std::fs::create_dir_all(clean.path().join("nested")).unwrap();
    std::fs::create_dir_all(clean.path().join("out")).unwrap();
    let out = run_component(clean.path(), &inputs);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    assert!(clean.path().join("out/cq.json").exists());
}

// ---------------------------------------------------------------------------
// GitHub composite action

fn action() -> yaml_serde::Value {
    yaml_serde::from_str(&std::fs::read_to_string(repo_file("action.yml")).unwrap()).unwrap()
}

/// `${{ inputs.NAME }}` / `${{ steps.ID.outputs.NAME }}` in an `env:` value,
/// resolved the way the runner would for this test's inputs and outputs.
fn expression(
    value: &str,
    inputs: &BTreeMap<String, String>,
    outputs: &BTreeMap<String, String>,
) -> String {
    let re = regex::Regex::new(r"\$\{\{\s*([a-z]+)\.([A-Za-z0-9_.-]+)\s*\}\}").unwrap();
    re.replace_all(value, |c: &regex::Captures| match &c[1] {
        "inputs" => inputs[&c[2]].clone(),
        "steps" => {
            let (_, name) = c[2].split_once(".outputs.").expect("steps.ID.outputs.NAME");
            outputs.get(name).cloned().unwrap_or_default()
        }
        other => panic!("unexpected context {other}"),
    })
    .into_owned()
}

struct ActionRun {
    /// The exit status of the last step that ran.
    code: Option<i32>,
    /// `uses:` steps the runner would have run, with their `with:`.
    uses: Vec<(String, BTreeMap<String, String>)>,
    outputs: BTreeMap<String, String>,
}

/// Runs the action's `run:` steps with bash in `workspace`, as GitHub's
/// runner does: `GITHUB_OUTPUT`/`GITHUB_PATH` files, inputs through `env:`,
/// stop at the first failing step.
fn run_action(workspace: &Path, inputs: &BTreeMap<String, String>) -> ActionRun {
    let doc = action();
    assert_eq!(doc["runs"]["using"].as_str(), Some("composite"));
    let files = tempfile::tempdir().unwrap();
    let mut run = ActionRun {
        code: None,
        uses: Vec::new(),
        outputs: BTreeMap::new(),
    };
    for step in doc["runs"]["steps"].as_sequence().unwrap() {
        if let Some(uses) = step["uses"].as_str() {
            let with = step["with"]
                .as_mapping()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| {
                            let v = expression(v.as_str().unwrap(), inputs, &run.outputs);
                            (k.as_str().unwrap().to_string(), v)
                        })
                        .collect()
                })
                .unwrap_or_default();
            run.uses.push((uses.to_string(), with));
            continue;
        }
        let script = step["run"].as_str().expect("a run: step");
        // Expressions inside `run:` become shell code before bash sees
        // them (template injection): inputs must go through `env:`.
        assert!(!script.contains("${{"), "expression inside run: {script}");
        assert_eq!(step["shell"].as_str(), Some("bash"));
        let output_file = files.path().join("output");
        std::fs::write(&output_file, "").unwrap();
        let mut cmd = Command::new("bash");
        cmd.current_dir(workspace)
            .env("PATH", path_with_kmigrate())
            .env("GITHUB_OUTPUT", &output_file)
            .env("GITHUB_PATH", files.path().join("path"))
            .env("GITHUB_ACTION_PATH", repo_file("."));
        if let Some(env) = step["env"].as_mapping() {
            for (k, v) in env {
                cmd.env(
                    k.as_str().unwrap(),
                    expression(v.as_str().unwrap(), inputs, &run.outputs),
                );
            }
        }
        // GitHub runs bash steps as `bash --noprofile --norc -eo pipefail {0}`.
        let out = cmd
            .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
            .output()
            .unwrap();
        run.code = out.status.code();
        for line in std::fs::read_to_string(&output_file).unwrap().lines() {
            let (k, v) = line.split_once('=').unwrap();
            run.outputs.insert(k.to_string(), v.to_string());
        }
        if run.code != Some(0) {
            break;
        }
    }
    run
}

fn action_defaults() -> BTreeMap<String, String> {
    action()["inputs"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let default = v["default"].as_str().expect("every input has a default");
            (k.as_str().unwrap().to_string(), default.to_string())
        })
        .collect()
}

#[test]
fn github_action_uploads_sarif_then_fails_on_kaniko() {
    let inputs = action_defaults();
    let (dirty, clean) = repos();

    let run = run_action(dirty.path(), &inputs);
    assert_eq!(run.code, Some(1), "the last step fails the job on findings");
    assert_eq!(run.outputs.get("exit-code").map(String::as_str), Some("1"));
    let sarif: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dirty.path().join("kmigrate.sarif")).unwrap())
            .unwrap();
    let rules: Vec<&str> = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ruleId"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"KM001"), "{rules:?}");
    // The upload comes before the failing step, and runs even after a failure.
    let doc = action();
    let upload = doc["runs"]["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("github/codeql-action/upload-sarif@"))
        })
        .expect("an upload-sarif step");
    assert!(upload["if"].as_str().unwrap().starts_with("always()"));
    assert_eq!(run.uses.len(), 1);
    assert_eq!(run.uses[0].1["sarif_file"], "kmigrate.sarif");

    let run = run_action(clean.path(), &inputs);
    assert_eq!(run.code, Some(0));
    assert_eq!(run.outputs.get("exit-code").map(String::as_str), Some("0"));
    assert!(clean.path().join("kmigrate.sarif").exists());
}

#[test]
fn github_action_inputs_reach_kmigrate_as_data_not_code() {
    let (dirty, _) = repos();
    let mut inputs = action_defaults();
    // A crafted input stays a (missing) path: no shell runs it.
    inputs.insert("paths".into(), "$(touch pwned) ;touch pwned2".into());
    inputs.insert("sarif-file".into(), "report.sarif".into());
    let run = run_action(dirty.path(), &inputs);
    assert_eq!(run.outputs.get("exit-code").map(String::as_str), Some("2"));
    assert_eq!(run.code, Some(2));
    assert!(!dirty.path().join("pwned").exists());
    assert!(!dirty.path().join("pwned2").exists());

    // A lower bar: info findings fail too; a path list is split.
    inputs.insert("paths".into(), ".gitlab-ci.yml .".into());
    inputs.insert("fail-on".into(), "info".into());
    let run = run_action(dirty.path(), &inputs);
    assert_eq!(run.code, Some(1));
    assert!(dirty.path().join("report.sarif").exists());
}

// ---------------------------------------------------------------------------
// Container image

/// kmigrate linked statically, as the Dockerfile's compile stage links it
/// (`+crt-static`, no Docker Engine backend), in a target dir of its own.
/// The compile stage itself needs a Rust image from Docker Hub, which the
/// test machines cannot reach; the packaging stages run for real.
fn static_kmigrate() -> PathBuf {
    let target_dir = bin_dir().parent().unwrap().join("static-image");
    let host = String::from_utf8(Command::new("rustc").arg("-vV").output().unwrap().stdout)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .unwrap();
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(repo_file("."))
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        // A test-sized binary: no debug info (the image stays a few MB).
        .env("CARGO_PROFILE_DEV_DEBUG", "0")
        .env("CARGO_PROFILE_DEV_STRIP", "true")
        .args([
            "build",
            "--locked",
            "--offline",
            "--no-default-features",
            "--bin",
            "kmigrate",
        ])
        .args(["-p", "kmigrate", "--target", &host])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    target_dir.join(&host).join("debug/kmigrate")
}

#[test]
fn dockerfile_packages_a_static_kmigrate_whose_entrypoint_runs() {
    // The image is built FROM scratch: no registry, no base image.
    if !have("root") {
        return;
    }
    let binary = static_kmigrate();
    // The prebuilt path: a context holding only the binary.
    let ctx = tempfile::tempdir().unwrap();
    std::fs::copy(&binary, ctx.path().join("kmigrate")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let oci = out.path().join("oci");
    let state = tempfile::tempdir().unwrap();
    let dockerfile = repo_file("Dockerfile");
    ok(&kmigrate_build(
        state.path(),
        &[
            "-f",
            dockerfile.to_str().unwrap(),
            "--build-arg",
            "BINARY_FROM=prebuilt",
            "-o",
            &format!("type=oci,dest={},tar=false", oci.display()),
            ctx.path().to_str().unwrap(),
        ],
    ));

    let idx: Index =
        serde_json::from_slice(&std::fs::read(oci.join("index.json")).unwrap()).unwrap();
    let blob = |d: &str| {
        oci.join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let manifest: Manifest =
        serde_json::from_slice(&std::fs::read(blob(&idx.manifests[0].digest)).unwrap()).unwrap();
    let config: ImageConfig =
        serde_json::from_slice(&std::fs::read(blob(&manifest.config.digest)).unwrap()).unwrap();
    let run = &config.config;
    assert_eq!(
        run.entrypoint.as_deref(),
        Some(&["/kmigrate".to_string()][..])
    );
    assert_eq!(
        run.cmd.as_deref(),
        Some(&["check".to_string(), ".".to_string()][..])
    );
    assert_eq!(run.working_dir.as_deref(), Some("/repo"));
    // One layer (the binary) on an empty base: nothing else in the image.
    assert_eq!(manifest.layers.len(), 1, "{manifest:?}");

    // Unpack it and run the entrypoint with the image's default command on
    // a repository mounted at /repo, the way `docker run -v` would.
    let root = out.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let layer = std::fs::File::open(blob(&manifest.layers[0].digest)).unwrap();
    tar::Archive::new(flate2::read::GzDecoder::new(layer))
        .unpack(&root)
        .unwrap();
    let names: Vec<String> = walkdir::WalkDir::new(&root)
        .min_depth(1)
        .into_iter()
        .map(|e| {
            e.unwrap()
                .path()
                .strip_prefix(&root)
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    // The binary and the working directory, nothing else.
    assert!(names.contains(&"kmigrate".to_string()), "{names:?}");
    assert!(
        names.iter().all(|n| n == "kmigrate" || n == "repo"),
        "{names:?}"
    );
    let (dirty, _) = repos();
    let repo = root.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::copy(
        dirty.path().join(".gitlab-ci.yml"),
        repo.join(".gitlab-ci.yml"),
    )
    .unwrap();
    let mut argv = run.entrypoint.clone().unwrap();
    argv.extend(run.cmd.clone().unwrap());
    let workdir = run.working_dir.clone().unwrap();
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]).env_clear().env("NO_COLOR", "1");
    let chroot_to = root.clone();
    // SAFETY: between fork and exec the child only makes two system calls
    // (chroot, chdir); nothing allocates or takes a lock.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            nix::unistd::chroot(&chroot_to)?;
            nix::unistd::chdir(workdir.as_str())?;
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("KM001"), "{text}");
}
