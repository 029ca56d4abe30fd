//! GitLab pipelines as they are written every day, and as an attacker
//! writes them in a merge request: local includes stay inside the
//! repository (issue 13 item 11), a missing include is a finding rather
//! than the end of the check (issue 14 item 10). The real binary, every
//! output format.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// Text that appears only in files kmigrate must not show.
const SECRET: &str = "KMIGRATE-SECRET-6f1c";

fn kmigrate(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kmigrate"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("FORCE_COLOR")
        // Reachable through `/proc/self/environ` if that were read.
        .env("KMIGRATE_TEST_SECRET", SECRET)
        .stdin(Stdio::null())
        .output()
        .expect("kmigrate runs")
}

fn all_output(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// A visible Kaniko job, after the include on line 2.
const KANIKO_JOB: &str = "build:\n  image: gcr.io/kaniko-project/executor:debug\n  script:\n    - /kaniko/executor --destination registry.example.com/app\n";

/// A repository under `<tmp>/repo` (with `.git` whose config holds a
/// token, as a CI runner's checkout does), next to a secret outside it at
/// `<tmp>/secret.yml` that is valid YAML naming a job after the secret,
/// and links from inside the repository to outside.
fn hostile_repo() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    write(
        tmp.path(),
        "secret.yml",
        &format!("{SECRET}: 1\nother:\n  script: [\"{SECRET}\"]\n"),
    );
    write(
        &repo,
        ".git/config",
        &format!(
            "[remote \"origin\"]\n\turl = https://gitlab-ci-token:{SECRET}@gitlab.example.com/g/p.git\n"
        ),
    );
    std::fs::create_dir_all(repo.join("ci/dir")).unwrap();
    std::os::unix::fs::symlink(tmp.path().join("secret.yml"), repo.join("ci/link.yml")).unwrap();
    std::os::unix::fs::symlink("/proc/self/environ", repo.join("ci/environ.yml")).unwrap();
    std::os::unix::fs::symlink(tmp.path().join("gone.yml"), repo.join("ci/dangling.yml")).unwrap();
    // A directory outside (not an ancestor: the walk of `.` would loop).
    write(tmp.path(), "outside/secret.yml", &format!("{SECRET}: 1\n"));
    std::os::unix::fs::symlink(tmp.path().join("outside"), repo.join("ci/out")).unwrap();
    tmp
}

/// Every way an outside or unreadable file may be named; each must be
/// refused without showing any of its text.
fn hostile_locations(tmp: &Path) -> Vec<String> {
    let secret = tmp.join("secret.yml");
    let secret = secret.to_str().unwrap();
    vec![
        "../secret.yml".into(),
        format!("../../../../../../../../../../..{secret}"),
        format!("//../../../../../../../../../..{secret}"),
        "ci/link.yml".into(),
        "ci/out/secret.yml".into(),
        "ci/dir/../../../secret.yml".into(),
        "../../../../../../../../../../proc/self/environ".into(),
        "ci/environ.yml".into(),
        ".git/config".into(),
        "ci/dangling.yml".into(),
    ]
}

#[test]
fn local_includes_outside_the_repository_are_refused_in_every_format() {
    let tmp = hostile_repo();
    let repo = tmp.path().join("repo");
    for location in hostile_locations(tmp.path()) {
        write(
            &repo,
            ".gitlab-ci.yml",
            &format!("include:\n  - local: '{location}'\n{KANIKO_JOB}"),
        );
        for format in ["human", "json", "sarif", "gitlab", "github"] {
            let out = kmigrate(&repo, &["check", "--format", format, "."]);
            let text = all_output(&out);
            assert!(!text.contains(SECRET), "{location} {format}: {text}");
            assert!(!text.contains("root:"), "{location} {format}: {text}");
            // A finding, not the end of the check: the visible job is
            // still reported, and the exit code says "findings".
            assert_eq!(out.status.code(), Some(1), "{location} {format}: {text}");
            assert!(text.contains("KM001"), "{location} {format}: {text}");
            assert!(text.contains("KM014"), "{location} {format}: {text}");
        }
        let out = kmigrate(&repo, &["check", "--format", "json", "."]);
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["errors"], Value::Array(vec![]), "{location}: {json}");
        assert_eq!(json["summary"]["files_scanned"], 1, "{location}: {json}");
        let refused: Vec<&Value> = json["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == "KM014")
            .collect();
        assert_eq!(refused.len(), 1, "{location}: {json}");
        let f = refused[0];
        assert_eq!(f["severity"], "error", "{location}: {f}");
        assert_eq!(f["path"], ".gitlab-ci.yml", "{location}: {f}");
        assert_eq!(f["start"]["line"], 2, "{location}: {f}");
        let message = f["message"].as_str().unwrap();
        assert!(message.contains("not read"), "{location}: {message}");
        // The message says where includes must stay.
        assert!(message.contains("repository root"), "{location}: {message}");

        for args in [
            &["rewrite", "--diff", ".gitlab-ci.yml"][..],
            &["rewrite", "--check", ".gitlab-ci.yml"],
            &["report", "."],
            &["report", "--format", "json", "."],
        ] {
            let out = kmigrate(&repo, args);
            let text = all_output(&out);
            assert!(!text.contains(SECRET), "{location} {args:?}: {text}");
        }
        // The secret and the repository are untouched.
        let out = kmigrate(&repo, &["rewrite", ".gitlab-ci.yml"]);
        assert!(!all_output(&out).contains(SECRET));
        assert!(
            std::fs::read_to_string(tmp.path().join("secret.yml"))
                .unwrap()
                .starts_with(SECRET)
        );
    }
}

#[test]
fn included_files_that_do_not_parse_are_named_by_position_only() {
    for (name, text) in [
        ("ci/bad.yml", format!("key: [{SECRET}\n")),
        ("ci/bad.yml", format!("a: *{SECRET}\n")),
        ("ci/bad.yml", format!("{SECRET}: 1\n")),
        ("ci/bad.yml", format!("- {SECRET}\n")),
        ("ci/bad.yml", format!("x: 1\nx: {SECRET}\n")),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path();
        write(
            repo,
            ".gitlab-ci.yml",
            &format!("include:\n  - local: {name}\n{KANIKO_JOB}"),
        );
        write(repo, name, &text);
        for format in ["human", "json", "sarif", "gitlab", "github"] {
            let out = kmigrate(repo, &["check", "--format", format, "."]);
            let all = all_output(&out);
            assert!(!all.contains(SECRET), "{text:?} {format}: {all}");
            assert!(all.contains("ci/bad.yml"), "{text:?} {format}: {all}");
        }
        for args in [
            &["rewrite", "--diff", ".gitlab-ci.yml"][..],
            &["report", "."],
        ] {
            let out = kmigrate(repo, args);
            let all = all_output(&out);
            assert!(!all.contains(SECRET), "{text:?} {args:?}: {all}");
        }
        // Named on the command line, the file is the user's own: its
        // parser message is shown in full.
        let out = kmigrate(repo, &["check", name]);
        assert_ne!(out.status.code(), Some(0));
    }
}

#[test]
fn a_missing_local_include_is_an_error_finding_and_the_rest_is_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path();
    write(
        repo,
        ".gitlab-ci.yml",
        &format!("include:\n  - local: ci/templates.yml\n{KANIKO_JOB}"),
    );
    let out = kmigrate(repo, &["check", "--format", "json", "."]);
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["summary"]["files_scanned"], 1, "{json}");
    assert_eq!(json["errors"], Value::Array(vec![]), "{json}");
    let rules: Vec<(&str, &str, u64)> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap(),
                f["severity"].as_str().unwrap(),
                f["start"]["line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(rules.contains(&("KM014", "error", 2)), "{rules:?}");
    assert!(rules.contains(&("KM001", "error", 4)), "{rules:?}");
    let missing = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "KM014")
        .unwrap();
    let message = missing["message"].as_str().unwrap();
    assert!(
        message.contains("ci/templates.yml") && message.contains("does not exist"),
        "{message}"
    );

    // Human output names the include line; rewrite still migrates the job.
    let out = kmigrate(repo, &["check", "."]);
    let text = all_output(&out);
    assert!(text.contains(".gitlab-ci.yml:2:"), "{text}");
    assert!(text.contains("ci/templates.yml"), "{text}");
    let out = kmigrate(repo, &["rewrite", "--diff", ".gitlab-ci.yml"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("docker buildx build"),
        "{}",
        all_output(&out)
    );
    // The string form too, and in a file checked on its own.
    write(
        repo,
        ".gitlab-ci.yml",
        &format!("include: ci/templates.yml\n{KANIKO_JOB}"),
    );
    let out = kmigrate(repo, &["check", "--format", "json", ".gitlab-ci.yml"]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["summary"]["files_scanned"], 1, "{json}");
    assert!(
        json["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "KM014" && f["severity"] == "error" && f["start"]["line"] == 1),
        "{json}"
    );
}

#[test]
fn includes_inside_the_repository_still_work_through_dots_and_inner_links() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path();
    write(
        repo,
        ".gitlab-ci.yml",
        "include:\n  - local: /ci/./sub/../build.yml\n  - local: ci/alias.yml\nstages: [build]\n",
    );
    write(repo, "ci/build.yml", KANIKO_JOB);
    write(
        repo,
        "ci/real.yml",
        "other:\n  image: gcr.io/kaniko-project/executor:debug\n  script: [/kaniko/executor --destination registry.example.com/o]\n",
    );
    std::os::unix::fs::symlink("real.yml", repo.join("ci/alias.yml")).unwrap();
    let out = kmigrate(repo, &["check", "--format", "json", "."]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let km001: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "KM001")
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert_eq!(km001.len(), 2, "{json}");
    assert!(
        !json["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "KM014" && f["severity"] == "error"),
        "{json}"
    );
}

#[test]
fn the_missing_include_fixture_is_a_finding_and_rewrite_writes_nothing_else() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gitlab/bad-missing-include/.gitlab-ci.yml");
    let tmp = tempfile::tempdir().unwrap();
    let before = std::fs::read(&fixture).unwrap();
    std::fs::write(tmp.path().join(".gitlab-ci.yml"), &before).unwrap();
    let out = kmigrate(tmp.path(), &["check", "."]);
    let text = all_output(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains(".gitlab-ci.yml:2:5"), "{text}");
    assert!(
        text.contains("local include `ci/missing.yml` is not read: it does not exist"),
        "{text}"
    );
    let out = kmigrate(tmp.path(), &["rewrite", ".gitlab-ci.yml"]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert_eq!(
        std::fs::read(tmp.path().join(".gitlab-ci.yml")).unwrap(),
        before
    );
}

/// `(rule, severity, message)` of every finding of `check --format json`.
fn findings(repo: &Path, args: &[&str]) -> Vec<(String, String, String)> {
    let mut all = vec!["check", "--format", "json"];
    all.extend_from_slice(args);
    let out = kmigrate(repo, &all);
    let json: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", all_output(&out)));
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn hidden_templates_are_reported_through_the_jobs_that_use_them() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path();
    // GitLab's documented shape: the executor image as the default, a
    // login template pulled in with `!reference`.
    write(
        repo,
        ".gitlab-ci.yml",
        r#"default:
  image:
    name: gcr.io/kaniko-project/executor:v1.23.2-debug
    entrypoint: [""]

.registry-login:
  before_script:
    - echo "{\"auths\":{\"$CI_REGISTRY\":{\"auth\":\"$(printf "%s:%s" "$CI_REGISTRY_USER" "$CI_REGISTRY_PASSWORD" | base64 | tr -d '\n')\"}}}" > /kaniko/.docker/config.json

build:
  before_script:
    - !reference [.registry-login, before_script]
  script:
    - /kaniko/executor --context "$CI_PROJECT_DIR" --destination "$CI_REGISTRY_IMAGE:$CI_COMMIT_SHA"
"#,
    );
    let found = findings(repo, &["."]);
    assert!(
        !found.iter().any(|(_, _, m)| m.contains(".registry-login")),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .any(|(r, s, m)| r == "KM001" && s == "error" && m.contains("`build`")),
        "{found:#?}"
    );
    // After the rewrite nothing is left to report as an error.
    let out = kmigrate(repo, &["rewrite", ".gitlab-ci.yml"]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let out = kmigrate(repo, &["check", "."]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));

    // A template nobody uses never runs: at most info.
    write(
        repo,
        ".gitlab-ci.yml",
        ".kaniko:\n  image: gcr.io/kaniko-project/executor:debug\n  script:\n    - /kaniko/executor --destination registry.example.com/app\ntest:\n  script: [make]\n",
    );
    let found = findings(repo, &["."]);
    assert!(!found.is_empty());
    assert!(found.iter().all(|(_, s, _)| s == "info"), "{found:#?}");
    let out = kmigrate(repo, &["check", "."]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));

    // A file of templates only (a template library, or a fragment whose
    // users are elsewhere) ships its templates: they are reported as jobs
    // are, so a CI gate on the library fails while it uses Kaniko.
    write(
        repo,
        ".gitlab-ci.yml",
        ".kaniko:\n  image: gcr.io/kaniko-project/executor:debug\n  script:\n    - /kaniko/executor --destination registry.example.com/app\n",
    );
    let found = findings(repo, &["."]);
    assert!(
        found
            .iter()
            .any(|(r, s, m)| r == "KM001" && s == "error" && m.contains("`.kaniko`")),
        "{found:#?}"
    );
    let out = kmigrate(repo, &["check", "."]);
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
}

#[test]
fn destinations_through_variables_resolve_before_the_registry_is_decided() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path();
    let job = |vars_global: &str, vars_job: &str, dest: &str| {
        format!(
            "{vars_global}build:\n  image:\n    name: gcr.io/kaniko-project/executor:debug\n    entrypoint: [\"\"]\n{vars_job}  script:\n    - /kaniko/executor --context . --destination {dest}\n"
        )
    };
    for text in [
        job(
            "variables:\n  IMAGE: $CI_REGISTRY_IMAGE/app\n",
            "",
            "$IMAGE:$CI_COMMIT_SHA",
        ),
        job(
            "",
            "  variables:\n    IMAGE: \"${CI_REGISTRY_IMAGE}/app\"\n",
            "\"${IMAGE}:$CI_COMMIT_SHA\"",
        ),
        job(
            "variables:\n  REG: $CI_REGISTRY\n  IMAGE: $REG/group/app\n",
            "",
            "$IMAGE:1",
        ),
    ] {
        write(repo, ".gitlab-ci.yml", &text);
        let found = findings(repo, &["."]);
        assert!(
            !found.iter().any(|(r, _, _)| r == "KM011"),
            "{text}\n{found:#?}"
        );
        let out = kmigrate(repo, &["rewrite", "--diff", ".gitlab-ci.yml"]);
        let diff = String::from_utf8_lossy(&out.stdout);
        assert!(
            diff.contains(r#"docker login "$CI_REGISTRY""#),
            "{text}\n{diff}"
        );
    }
    // Written out through a variable, Docker Hub is still Docker Hub.
    write(
        repo,
        ".gitlab-ci.yml",
        &job("variables:\n  IMAGE: myuser/app\n", "", "$IMAGE:1"),
    );
    let found = findings(repo, &["."]);
    assert!(
        found
            .iter()
            .any(|(r, _, m)| r == "KM011" && m.contains("`docker.io`")),
        "{found:#?}"
    );
    // Set outside the file: kmigrate says it cannot know, never guesses.
    for dest in ["$TARGET:1", "${TARGET}/app:1", "registry.$DOMAIN/app:1"] {
        write(repo, ".gitlab-ci.yml", &job("", "", dest));
        let found = findings(repo, &["."]);
        let km011: Vec<&(String, String, String)> =
            found.iter().filter(|(r, _, _)| r == "KM011").collect();
        assert_eq!(km011.len(), 1, "{dest}: {found:#?}");
        let message = &km011[0].2;
        assert!(!message.contains("docker.io"), "{dest}: {message}");
        assert!(message.contains("cannot tell"), "{dest}: {message}");
        let out = kmigrate(repo, &["rewrite", "--diff", ".gitlab-ci.yml"]);
        assert!(!String::from_utf8_lossy(&out.stdout).contains("docker login"));
    }
}

#[test]
fn rewriting_a_pipeline_rewrites_its_included_files() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path();
    let pipeline = "include:\n  - local: ci/build.yml\nstages: [build]\n";
    write(repo, ".gitlab-ci.yml", pipeline);
    write(repo, "ci/build.yml", KANIKO_JOB);
    // --check counts the included file.
    let out = kmigrate(repo, &["rewrite", "--check", ".gitlab-ci.yml"]);
    let text = all_output(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("ci/build.yml: would rewrite 1 Kaniko job"),
        "{text}"
    );
    // --diff shows it.
    let out = kmigrate(repo, &["rewrite", "--diff", ".gitlab-ci.yml"]);
    let diff = String::from_utf8_lossy(&out.stdout);
    assert!(diff.contains("+++ b/ci/build.yml"), "{diff}");
    // Named together, each file is rewritten once and nobody asks to pass
    // a file that was passed.
    for args in [
        &["rewrite", ".gitlab-ci.yml"][..],
        &["rewrite", ".gitlab-ci.yml", "ci/build.yml"],
    ] {
        write(repo, "ci/build.yml", KANIKO_JOB);
        let out = kmigrate(repo, args);
        let text = all_output(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {text}");
        assert!(!text.contains("pass `ci/build.yml`"), "{args:?}: {text}");
        assert_eq!(text.matches("ci/build.yml: rewrote").count(), 1, "{text}");
        let built = std::fs::read_to_string(repo.join("ci/build.yml")).unwrap();
        assert!(built.contains("docker buildx build"), "{built}");
        assert_eq!(
            std::fs::read_to_string(repo.join(".gitlab-ci.yml")).unwrap(),
            pipeline
        );
        let out = kmigrate(repo, &["rewrite", "--check", ".gitlab-ci.yml"]);
        assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    }
}

#[test]
fn keys_added_to_a_job_go_after_its_leading_extends() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path();
    for text in [
        // The image comes from the template: services and variables are new.
        ".kaniko:\n  image:\n    name: gcr.io/kaniko-project/executor:debug\n    entrypoint: [\"\"]\nbuild:\n  extends: .kaniko\n  script:\n    - /kaniko/executor --destination registry.example.com/app\n",
        // The image comes from `default:`: the job gets its own.
        "default:\n  image: gcr.io/kaniko-project/executor:debug\n.base:\n  stage: build\nbuild:\n  extends: .base\n  script:\n    - /kaniko/executor --destination registry.example.com/app\n",
    ] {
        write(repo, ".gitlab-ci.yml", text);
        let out = kmigrate(repo, &["rewrite", ".gitlab-ci.yml"]);
        assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
        let new = std::fs::read_to_string(repo.join(".gitlab-ci.yml")).unwrap();
        assert!(new.contains("docker buildx build"), "{new}");
        let job = &new[new.find("\nbuild:\n").expect("job kept")..];
        assert!(job.starts_with("\nbuild:\n  extends: "), "{new}");
        if text.starts_with("default:") {
            assert!(job.contains("  image: docker:"), "{new}");
        }
    }
}

/// How to run pre-commit, when it is installed (scripts/test.sh installs it).
fn pre_commit_cmd() -> Option<Vec<&'static str>> {
    [&["pre-commit"][..], &["python3", "-m", "pre_commit"][..]]
        .into_iter()
        .find(|cmd| {
            Command::new(cmd[0])
                .args(&cmd[1..])
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(<[&str]>::to_vec)
}

fn git(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@kmigrate.invalid"])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "git {args:?}: {}", all_output(&o));
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

#[test]
fn pre_commit_hooks_act_on_a_commit_that_touches_only_an_included_file() {
    let Some(cmd) = pre_commit_cmd() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "pre-commit is not installed"
        );
        eprintln!("skipping: pre-commit is not installed (run scripts/test.sh)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let hooks = tmp.path().join("hooks");
    let manifest = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(".pre-commit-hooks.yaml"),
    )
    .unwrap()
    .replace("\n  language: rust\n", "\n  language: system\n")
    .replace(
        "\n  entry: kmigrate ",
        &format!("\n  entry: {} ", env!("CARGO_BIN_EXE_kmigrate")),
    );
    write(&hooks, ".pre-commit-hooks.yaml", &manifest);
    git(&hooks, &["init", "-q"]);
    git(&hooks, &["add", "-A"]);
    git(&hooks, &["commit", "-q", "-m", "hooks"]);
    let rev = git(&hooks, &["rev-parse", "HEAD"]);

    let project = tmp.path().join("project");
    let pipeline = "include:\n  - local: ci/build.yml\nstages: [build]\n";
    write(&project, ".gitlab-ci.yml", pipeline);
    write(&project, "ci/build.yml", KANIKO_JOB);
    // Not CI files: never an error, never touched.
    write(&project, "k8s/pod.yaml", "apiVersion: v1\nkind: Pod\n");
    write(&project, "chart/templates/x.yaml", "a: {{ .Values.x }}\n");
    write(
        &project,
        "notes.yaml",
        "steps:\n  - name: gcr.io/kaniko-project/executor\n",
    );
    git(&project, &["init", "-q"]);
    let run = |hook: &str| {
        write(
            &project,
            ".pre-commit-config.yaml",
            &format!(
                "repos:\n  - repo: {}\n    rev: {rev}\n    hooks:\n      - id: {hook}\n",
                hooks.display()
            ),
        );
        git(&project, &["add", "-A"]);
        // What a commit touching only these files runs.
        let o = Command::new(cmd[0])
            .args(&cmd[1..])
            .args(["run", "--files", "ci/build.yml", "k8s/pod.yaml"])
            .args(["chart/templates/x.yaml", "notes.yaml"])
            .current_dir(&project)
            .env("PRE_COMMIT_HOME", tmp.path().join("home"))
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        (o.status.code(), all_output(&o))
    };
    let (code, out) = run("kmigrate-check");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("KM001") && out.contains("ci/build.yml"),
        "{out}"
    );
    for other in ["pod.yaml", "x.yaml", "notes.yaml"] {
        assert!(!out.contains(other), "{other}: {out}");
    }
    let (code, out) = run("kmigrate-rewrite");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("files were modified by this hook"), "{out}");
    let built = std::fs::read_to_string(project.join("ci/build.yml")).unwrap();
    assert!(built.contains("docker buildx build"), "{built}");
    assert_eq!(
        std::fs::read_to_string(project.join("k8s/pod.yaml")).unwrap(),
        "apiVersion: v1\nkind: Pod\n"
    );
    let (code, out) = run("kmigrate-check");
    assert_eq!(code, Some(0), "{out}");
}
