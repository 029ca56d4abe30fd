//! Runs the real binary on Cloud Build fixtures: rewritten text and
//! diagnostics are snapshotted, and the formatting guarantees are checked on
//! every fixture (no-op files byte-identical, idempotent, output parses and
//! is clean under `check`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kmigrate"));
    c.env("NO_COLOR", "1");
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("kmigrate runs")
}

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cloudbuild");
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// Copies a fixture into a temp dir (so in-place rewrites are safe).
fn scratch(text: &str, name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    fs::write(&path, text).unwrap();
    (dir, path)
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// The file's text after `rewrite --stdout`, plus what it said on stderr.
fn rewrite_stdout(path: &Path) -> (String, String, i32) {
    let o = run(&["rewrite", "--stdout", path.to_str().unwrap()]);
    (stdout(&o), stderr(&o), o.status.code().unwrap())
}

#[test]
fn every_fixture_rewrites_as_snapshotted_and_keeps_the_guarantees() {
    for path in fixtures() {
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let original = fs::read_to_string(&path).unwrap();
        let (text, messages, code) = rewrite_stdout(&path);
        assert_eq!(code, 0, "{name}: {messages}");
        let messages = messages.replace(path.to_str().unwrap(), &name);
        snapshot!(
            format!("cloudbuild_rewrite__{name}"),
            format!("{text}\n----- stderr -----\n{messages}")
        );

        // Output parses as YAML and a second rewrite changes nothing.
        let (_dir, out) = scratch(&text, &name);
        yaml_serde::from_str::<yaml_serde::Value>(&text)
            .unwrap_or_else(|e| panic!("{name}: rewritten text does not parse: {e}"));
        let (again, _, _) = rewrite_stdout(&out);
        assert_eq!(again, text, "{name}: rewrite is not idempotent");

        // check on the output: no archived image left unless a step had to
        // stay for a human, and never a docker-driver cache export.
        let check = run(&["check", out.to_str().unwrap()]);
        let report = stdout(&check);
        assert!(!report.contains("KM003"), "{name}: {report}");
        let manual_left =
            messages.contains("KM012") || messages.contains("not rewritten automatically");
        if !manual_left {
            assert!(!report.contains("KM001"), "{name}: {report}");
        }
        if text == original {
            assert!(
                !original.contains("kaniko-project/executor\n") || name.starts_with("no-"),
                "{name}"
            );
        }
    }
}

#[test]
fn files_without_findings_are_byte_identical() {
    let path = fixtures()
        .into_iter()
        .find(|p| p.ends_with("no-kaniko.yaml"))
        .unwrap();
    let original = fs::read(&path).unwrap();
    let (_dir, copy) = scratch(std::str::from_utf8(&original).unwrap(), "cloudbuild.yaml");
    let o = run(&["rewrite", copy.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(fs::read(&copy).unwrap(), original);
    assert!(stderr(&o).contains("nothing to rewrite"));
    let o = run(&["check", copy.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

/// The worked example from the problem statement, checked by structure.
#[test]
fn golden_cloud_build_example() {
    let src = "steps:\n- name: gcr.io/kaniko-project/executor:latest\n  args:\n  - --destination=${_REGION}-docker.pkg.dev/$PROJECT_ID/app:${COMMIT_SHA}\n  - --cache-repo=${_REGION}-docker.pkg.dev/$PROJECT_ID/app/buildcache\n  - --cache=true\n  - --cache-ttl=168h\n  waitFor: ['-']\n";
    let (_dir, path) = scratch(src, "cloudbuild.yaml");
    let o = run(&["rewrite", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let warnings = stderr(&o);
    assert!(
        warnings.contains("KM005") && warnings.contains("\"olderThan\": \"168h\""),
        "{warnings}"
    );
    let text = fs::read_to_string(&path).unwrap();
    let doc: yaml_serde::Value = yaml_serde::from_str(&text).unwrap();
    let steps = doc["steps"].as_sequence().unwrap();
    assert_eq!(steps.len(), 2);
    let strs = |v: &yaml_serde::Value| -> Vec<String> {
        v.as_sequence()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    let setup = &steps[0];
    assert_eq!(setup["id"].as_str(), Some("setup-buildx"));
    assert_eq!(setup["name"].as_str(), Some("gcr.io/cloud-builders/docker"));
    assert_eq!(
        strs(&setup["args"]),
        [
            "buildx",
            "create",
            "--name",
            "kmigrate",
            "--driver",
            "docker-container",
            "--driver-opt",
            "network=cloudbuild",
            "--use"
        ]
    );
    assert_eq!(strs(&setup["waitFor"]), ["-"]);
    let build = &steps[1];
    assert_eq!(build["name"].as_str(), Some("gcr.io/cloud-builders/docker"));
    let r = "${_REGION}-docker.pkg.dev/$PROJECT_ID/app/buildcache:buildcache";
    assert_eq!(
        strs(&build["args"]),
        [
            "buildx",
            "build",
            "--builder",
            "kmigrate",
            "--tag",
            "${_REGION}-docker.pkg.dev/$PROJECT_ID/app:${COMMIT_SHA}",
            "--cache-from",
            &format!("type=registry,ref={r}"),
            "--cache-to",
            &format!("type=registry,ref={r},mode=max"),
            "--push",
            "--provenance=false",
            ".",
        ]
    );
    assert_eq!(strs(&build["waitFor"]), ["setup-buildx"]);
    snapshot!("cloudbuild_rewrite__golden", text);
}

#[test]
fn crlf_and_missing_final_newline_survive() {
    let src = "# build\r\nsteps:\r\n  - name: gcr.io/kaniko-project/executor\r\n    args: [--destination=gcr.io/p/a, --cache]\r\n  - name: ubuntu\r\n    args: [echo, hi]";
    let (_dir, path) = scratch(src, "cloudbuild.yml");
    let o = run(&["rewrite", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = fs::read_to_string(&path).unwrap();
    assert!(
        !text.replace("\r\n", "").contains('\n'),
        "a bare LF slipped in: {text:?}"
    );
    assert!(
        text.ends_with("args: [echo, hi]"),
        "final line changed: {text:?}"
    );
    assert!(
        text.starts_with("# build\r\nsteps:\r\n  - id: setup-buildx\r\n"),
        "{text:?}"
    );
    snapshot!("cloudbuild_rewrite__crlf", text.replace('\r', "␍"));
}

#[test]
fn check_and_diff_modes_write_nothing() {
    let src =
        "steps:\n- name: gcr.io/kaniko-project/executor\n  args: [--destination=gcr.io/p/a]\n";
    let (_dir, path) = scratch(src, "cloudbuild.yaml");
    let p = path.to_str().unwrap();
    let o = run(&["rewrite", "--check", p]);
    assert_eq!(o.status.code(), Some(1));
    let o = run(&["rewrite", "--diff", p]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stdout(&o).contains("+- name: gcr.io/cloud-builders/docker")
            || stdout(&o).contains("+  name: gcr.io/cloud-builders/docker"),
        "{}",
        stdout(&o)
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), src);
    let o = run(&["check", p]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("KM001"));
    assert!(stdout(&o).contains("cloudbuild.yaml:2:9"), "{}", stdout(&o));
}

#[test]
fn in_place_rewrite_keeps_the_mode() {
    use std::os::unix::fs::PermissionsExt;
    let src =
        "steps:\n- name: gcr.io/kaniko-project/executor\n  args: [--destination=gcr.io/p/a]\n";
    let (_dir, path) = scratch(src, "cloudbuild.yaml");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        run(&["rewrite", path.to_str().unwrap()]).status.code(),
        Some(0)
    );
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(fs::read_to_string(&path).unwrap().contains("buildx"));
}

#[test]
fn bad_input_is_a_clear_error_and_the_file_is_untouched() {
    let cases: &[(&str, &[u8], &str)] = &[
        (
            "invalid.yaml",
            b"steps:\n  - name: [unclosed\n",
            "cloudbuild.yaml:",
        ),
        ("list-top.yaml", b"- name: x\n", "not a mapping"),
        (
            "steps-scalar.yaml",
            b"steps: build\n",
            "`steps` is a string",
        ),
        ("utf8.yaml", b"steps:\n- name: \xff\xfe\n", "UTF-8"),
    ];
    for (label, bytes, expect) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cloudbuild.yaml");
        fs::write(&path, bytes).unwrap();
        for mode in [&["rewrite"][..], &["check"][..]] {
            let mut args = mode.to_vec();
            args.push(path.to_str().unwrap());
            let o = run(&args);
            assert_eq!(o.status.code(), Some(2), "{label} {mode:?}");
            let err = stderr(&o);
            assert!(err.contains(expect), "{label}: {err}");
            assert!(err.contains("cloudbuild.yaml"), "{label}: {err}");
            assert!(!err.contains("panicked"), "{label}: {err}");
        }
        assert_eq!(fs::read(&path).unwrap(), *bytes, "{label} was modified");
    }
    let dir = tempfile::tempdir().unwrap();
    let as_dir = dir.path().join("cloudbuild.yaml");
    fs::create_dir(&as_dir).unwrap();
    let o = run(&["rewrite", as_dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("directory"), "{}", stderr(&o));
    let o = run(&["check", dir.path().join("missing.yaml").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn script_cache_export_on_the_docker_driver_is_reported_at_the_command() {
    let src = "steps:\n- name: gcr.io/cloud-builders/docker\n  entrypoint: bash\n  args:\n  - -c\n  - |\n    set -e\n    docker buildx build --cache-to type=registry,ref=gcr.io/p/c,mode=max -t gcr.io/p/a .\n";
    let (_dir, path) = scratch(src, "cloudbuild.yaml");
    let o = run(&["check", "--format", "json", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let finding = &report["findings"][0];
    assert_eq!(finding["rule"], "KM003", "{report}");
    assert_eq!(finding["start"]["line"], 8, "{report}");
    assert_eq!(finding["start"]["column"], 5, "{report}");
    assert_eq!(finding["fixable"], false, "{report}");
    // Reported, not rewritten: the script's own flow decides where a builder goes.
    let o = run(&["rewrite", "--check", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn many_files_are_rewritten_as_each_alone_and_reported_in_argument_order() {
    // More files than one parallel batch (256), named out of path order, a
    // file without Kaniko and a missing one among them: every file ends up
    // exactly as a rewrite of it alone makes it, messages and diffs come in
    // the order the files were named, and the missing file is an error.
    const N: usize = 300;
    let fixtures = fixtures();
    let dir = tempfile::tempdir().unwrap();
    let mut names = Vec::new();
    let mut expected = Vec::new();
    for i in 0..N {
        let k = (i * 7) % N;
        let source = &fixtures[k % fixtures.len()];
        let name = format!("cloudbuild-{k:03}.yaml");
        fs::copy(source, dir.path().join(&name)).unwrap();
        expected.push(rewrite_stdout(&dir.path().join(&name)).0);
        names.push(name);
    }
    fs::write(
        dir.path().join("cloudbuild-clean.yaml"),
        "steps:\n- name: golang\n",
    )
    .unwrap();
    names.insert(N / 2, "cloudbuild-clean.yaml".into());
    expected.insert(N / 2, "steps:\n- name: golang\n".into());
    let args = |mode: &[&'static str]| {
        let mut a: Vec<String> = vec!["rewrite".into()];
        a.extend(mode.iter().map(|s| s.to_string()));
        a.extend(names.iter().cloned());
        a
    };

    let o = bin()
        .args(args(&["--diff"]))
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let diff = stdout(&o);
    let diffed: Vec<&str> = diff
        .lines()
        .filter_map(|l| l.strip_prefix("--- a/"))
        .collect();
    let changed: Vec<&str> = names
        .iter()
        .zip(&expected)
        .filter(|(n, e)| fs::read_to_string(dir.path().join(n)).unwrap() != **e)
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(diffed, changed);
    let reported: Vec<String> = stderr(&o)
        .lines()
        .filter_map(|l| l.split_once(": ").map(|(p, _)| p.to_string()))
        .filter(|p| p.starts_with("cloudbuild-") && !p.contains(' '))
        .collect();
    assert_eq!(reported, names);

    let mut with_missing = args(&[]);
    with_missing.push("cloudbuild-missing.yaml".into());
    let o = bin()
        .args(with_missing)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("cloudbuild-missing.yaml"),
        "{}",
        stderr(&o)
    );
    for (name, want) in names.iter().zip(&expected) {
        assert_eq!(
            &fs::read_to_string(dir.path().join(name)).unwrap(),
            want,
            "{name}"
        );
    }
}

#[test]
fn stdout_that_cannot_be_written_is_an_error_not_a_panic() {
    let fixture = &fixtures()[0];
    let full = fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let o = bin()
        .args(["rewrite", "--stdout", fixture.to_str().unwrap()])
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("cannot write to stdout"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
}
