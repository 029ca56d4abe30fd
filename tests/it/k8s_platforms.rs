//! Tekton and Kubernetes manifests (issue 20 items 2 and 5): steps and
//! containers that run Kaniko are found by content anywhere in a walk,
//! reported in every format, silenced by inline ignores, counted by
//! `report`; a container whose executor flags are its `args:` is rewritten
//! to a rootless BuildKit container with the guarantees every platform
//! keeps (idempotent, the output parses and is clean of KM001 under
//! `check`, the builds read back the same).

use std::fs;
use std::path::{Path, PathBuf};

use kmigrate::buildx::equivalence::Explained;
use kmigrate::platform::Platform;
use kmigrate::verify::equivalence;

use crate::support::{concise_lines, kmigrate, output_text, run_in};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Rewrites `rel` (under `tests/fixtures/<area>`), snapshots the result and
/// checks idempotence, `check` after the rewrite and the read-back.
fn rewrite_keeps_the_guarantees(area: &str, rel: &str, platform: Platform) {
    let dir = fixtures().join(area);
    let path = dir.join(rel);
    let original = fs::read_to_string(&path).unwrap();
    let (text, messages, code) = run_in(&dir, &["rewrite", "--stdout", rel]);
    assert_eq!(code, 0, "{rel}: {messages}");
    assert_ne!(text, original, "{rel}: nothing rewritten");
    snapshot!(
        format!("k8s_platforms__{area}__{}", rel.replace('/', "__")),
        format!("{text}\n----- stderr -----\n{messages}")
    );
    for doc in text.split("\n---\n") {
        yaml_serde::from_str::<yaml_serde::Value>(doc)
            .unwrap_or_else(|e| panic!("{rel}: rewritten text does not parse: {e}"));
    }

    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join(path.file_name().unwrap());
    fs::write(&copy, &text).unwrap();
    let name = copy.file_name().unwrap().to_str().unwrap();
    let (again, _, _) = run_in(tmp.path(), &["rewrite", "--stdout", name]);
    assert_eq!(again, text, "{rel}: rewrite is not idempotent");

    // Only the builds left for a human still run Kaniko.
    let (before, _, _) = run_in(&dir, &["check", "--format", "concise", rel]);
    let (after, _, _) = run_in(tmp.path(), &["check", "--format", "concise", "."]);
    let fixable = before
        .lines()
        .filter(|l| l.contains(" KM001 ") && !l.contains("runs the Kaniko executor"))
        .count();
    assert!(
        concise_lines(&after, "KM001").len() < concise_lines(&before, "KM001").len() && fixable > 0,
        "{rel}: {after}"
    );

    let m = equivalence::texts(&path, platform, &original, &text, &Explained::default()).unwrap();
    assert!(m.is_empty(), "{rel}: {m:?}");
}

#[test]
fn k8s_tekton_task_rewrites_to_rootless_buildkit() {
    rewrite_keeps_the_guarantees("tekton", "ci/kaniko-task.yaml", Platform::Tekton);
}

#[test]
fn k8s_kubernetes_job_rewrites_to_rootless_buildkit() {
    rewrite_keeps_the_guarantees("k8s", "deploy/build-job.yaml", Platform::Kubernetes);
}

/// The Tekton digest result is written from buildctl's metadata file, not
/// dropped.
#[test]
fn k8s_tekton_digest_result_is_written_after_the_build() {
    let dir = fixtures().join("tekton");
    let (text, _, _) = run_in(&dir, &["rewrite", "--stdout", "ci/kaniko-task.yaml"]);
    assert!(
        text.contains("--metadata-file \"$(results.IMAGE_DIGEST.path).metadata.json\"\n")
            && text.contains("> \"$(results.IMAGE_DIGEST.path)\""),
        "{text}"
    );
    // A result Kaniko writes as `repo@digest` lines is left for a human.
    let task = "apiVersion: tekton.dev/v1\nkind: Task\nmetadata:\n  name: t\nspec:\n  steps:\n    - name: b\n      image: gcr.io/kaniko-project/executor:v1.23.2\n      args:\n        - --destination=r.example/a:1\n        - --image-name-with-digest-file=$(results.IMAGE_URL.path)\n";
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("task.yaml"), task).unwrap();
    let (out, _, _) = run_in(tmp.path(), &["check", "--format", "concise", "."]);
    assert_eq!(concise_lines(&out, "KM012"), ["task.yaml:11"], "{out}");
    let (text, _, _) = run_in(tmp.path(), &["rewrite", "--stdout", "task.yaml"]);
    assert_eq!(text, task);
}

/// Found by content under any path; comments, `echo`, a ConfigMap that
/// only mentions the words, and an ignored container never count.
#[test]
fn k8s_detection_by_content_with_precision() {
    let (out, err, code) = run_in(
        &fixtures(),
        &["check", "--format", "concise", "tekton", "k8s"],
    );
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        concise_lines(&out, "KM001"),
        [
            "k8s/deploy/build-job.yaml:19",
            "k8s/deploy/build-job.yaml:56",
            "k8s/jenkins/pod.yaml:12",
            "tekton/ci/kaniko-task.yaml:26",
            "tekton/ci/kaniko-task.yaml:52",
            "tekton/ci/pipeline.yaml:17",
            "tekton/ci/pipeline.yaml:26",
            "tekton/ci/pipeline.yaml:34",
            "tekton/ci/pipeline.yaml:46",
        ],
        "{out}"
    );
    assert!(!out.contains("not-tekton"), "{out}");
    assert_eq!(concise_lines(&out, "KM020"), Vec::<String>::new(), "{out}");
}

#[test]
fn k8s_manual_tasks_say_what_to_do() {
    let (out, _, _) = run_in(
        &fixtures().join("tekton"),
        &["check", "--format", "json", "ci/pipeline.yaml"],
    );
    for needle in [
        "`buildah` task",
        "BUILD_EXTRA_ARGS",
        "IMAGE_DIGEST",
        "buildctl-daemonless.sh build",
    ] {
        assert!(out.contains(needle), "{needle}: {out}");
    }
    let (out, _, _) = run_in(&fixtures().join("k8s"), &["check", "--format", "json", "."]);
    for needle in [
        "moby/buildkit:v0.23.2-rootless",
        "BUILDKITD_FLAGS=--oci-worker-no-process-sandbox",
        "Jenkinsfile",
        // why the script's call has no translation
        "the remote context `https://example.com/app.git` needs a local checkout",
    ] {
        assert!(out.contains(needle), "{needle}: {out}");
    }
}

#[test]
fn k8s_platform_flag_and_content_detection_of_a_named_file() {
    let dir = fixtures().join("k8s");
    let (out, _, code) = run_in(
        &dir,
        &[
            "check",
            "--platform",
            "kubernetes",
            "--format",
            "concise",
            "jenkins/pod.yaml",
        ],
    );
    assert_eq!(code, 1, "{out}");
    let (out2, _, _) = run_in(&dir, &["check", "--format", "concise", "jenkins/pod.yaml"]);
    assert_eq!(out, out2);
    let (out, _, code) = run_in(
        &fixtures().join("tekton"),
        &[
            "check",
            "--platform",
            "tekton",
            "--format",
            "concise",
            "ci/pipeline.yaml",
        ],
    );
    assert_eq!(code, 1, "{out}");
}

#[test]
fn k8s_every_format_and_report() {
    for (area, file) in [
        ("tekton", "ci/kaniko-task.yaml"),
        ("k8s", "deploy/build-job.yaml"),
    ] {
        let dir = fixtures().join(area);
        for format in ["json", "sarif", "gitlab", "github"] {
            let (out, err, code) = run_in(&dir, &["check", "--format", format, file]);
            assert_eq!(code, 1, "{format}: {err}");
            assert!(out.contains("KM001"), "{format}: {out}");
        }
        let o = kmigrate(&dir, &["report", "."]);
        snapshot!(format!("k8s_platforms__report_{area}"), output_text(&o));
    }
}

/// Jenkins: executor calls in `sh` steps and Kaniko images in pod
/// templates, by file name; comments, `echo` and a `// kmigrate:
/// ignore[KM001]` line never count; nothing is rewritten.
#[test]
fn k8s_jenkins_detection_ignores_formats_and_report() {
    let dir = fixtures().join("jenkins");
    let (out, err, code) = run_in(&dir, &["check", "--format", "concise", "."]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        concise_lines(&out, "KM001"),
        [
            "app/Jenkinsfile:9",
            "app/Jenkinsfile:18",
            "jenkins/pipelines/release.groovy:4",
            "jenkins/pipelines/release.groovy:11",
        ],
        "{out}"
    );
    for format in ["json", "sarif", "gitlab", "github"] {
        let (out, err, code) = run_in(&dir, &["check", "--format", format, "app/Jenkinsfile"]);
        assert_eq!(code, 1, "{format}: {err}");
        assert!(out.contains("KM001"), "{format}: {out}");
    }
    let (json, _, _) = run_in(&dir, &["check", "--format", "json", "app/Jenkinsfile"]);
    assert!(
        json.contains("moby/buildkit:v0.23.2-rootless") && json.contains("--export-cache type=registry,ref=registry.example.com/app/cache:buildcache,mode=max"),
        "{json}"
    );
    let (text, _, code) = run_in(&dir, &["rewrite", "--stdout", "app/Jenkinsfile"]);
    assert_eq!(code, 0);
    assert_eq!(
        text,
        fs::read_to_string(dir.join("app/Jenkinsfile")).unwrap()
    );
    let o = kmigrate(&dir, &["report", "."]);
    snapshot!("k8s_platforms__report_jenkins", output_text(&o));
}

/// `verify` builds the rootless BuildKit container `rewrite` would write
/// (read back from its buildctl args), cold then warm, for a Kubernetes
/// container whose paths are relative to the Kaniko image's /workspace and
/// for a Tekton step.
#[test]
fn k8s_verify_builds_the_rewritten_containers() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY hello.txt /\n",
    )
    .unwrap();
    fs::write(dir.path().join("hello.txt"), "hi").unwrap();
    fs::write(
        dir.path().join("pod.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: kaniko\nspec:\n  containers:\n  - name: kaniko\n    image: gcr.io/kaniko-project/executor:v1.23.2\n    args:\n      - --context=dir:///workspace\n      - --dockerfile=Dockerfile\n      - --destination=registry.example.com/app:1\n      - --cache=true\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("task.yaml"),
        "apiVersion: tekton.dev/v1\nkind: Task\nmetadata:\n  name: build\nspec:\n  steps:\n    - name: build\n      image: gcr.io/kaniko-project/executor:v1.23.2\n      args: [--context=/workspace, --destination=registry.example.com/app:2, --cache=true]\n",
    )
    .unwrap();
    for config in ["pod.yaml", "task.yaml"] {
        let store = tempfile::tempdir().unwrap();
        let (out, err, code) = run_in(
            dir.path(),
            &["verify", config, "--store", store.path().to_str().unwrap()],
        );
        assert_eq!(code, 0, "{config}: {out}{err}");
        assert!(out.contains("1 passed, 0 failed"), "{config}: {out}");
    }
}
