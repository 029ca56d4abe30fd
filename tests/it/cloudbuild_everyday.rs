//! Cloud Build configs written the way Google's docs write them: the real
//! binary on fixtures under tests/fixtures/cloudbuild-everyday/ (issue 14
//! items 8, 9, 12–15; issue 13 item 20).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value as Json;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kmigrate"))
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .expect("kmigrate runs")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/cloudbuild-everyday")
        .join(name)
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// `check --format json`: the findings, and the file's text.
fn findings(path: &Path) -> (Vec<Json>, String) {
    let o = run(&["check", "--format", "json", path.to_str().unwrap()]);
    let report: Json = serde_json::from_str(&stdout(&o))
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&o), stderr(&o)));
    let list = report["findings"].as_array().cloned().unwrap_or_default();
    (list, fs::read_to_string(path).unwrap())
}

/// The source text a finding points at.
fn spanned<'t>(f: &Json, text: &'t str) -> &'t str {
    let start = f["span"]["start"].as_u64().unwrap() as usize;
    let end = f["span"]["end"].as_u64().unwrap() as usize;
    &text[start..end]
}

fn rules_of(list: &[Json]) -> Vec<String> {
    list.iter()
        .map(|f| f["rule"].as_str().unwrap().to_string())
        .collect()
}

/// `rewrite --stdout`: the new text and the exit code.
fn rewritten(path: &Path) -> (String, String, i32) {
    let o = run(&["rewrite", "--stdout", path.to_str().unwrap()]);
    (stdout(&o), stderr(&o), o.status.code().unwrap())
}

fn scratch(text: &str, name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    fs::write(&path, text).unwrap();
    (dir, path)
}

// ---- issue 14 item 8: Cloud Build's `$$` ----

/// `$$X` in a script is the shell's `$X`: flags from a variable. The step
/// stays on Kaniko with a KM012 naming the word, and no word is dropped.
#[test]
fn dollar_dollar_flag_variables_keep_the_step_on_kaniko() {
    for (name, word) in [
        ("dollar-dollar-flags.yaml", "$$EXTRA"),
        ("dollar-dollar-braces.yaml", "$${EXTRA_FLAGS}"),
        ("dollar-dollar-quoted.yaml", "\"$$ONE_FLAG\""),
        ("dollar-dollar-args.yaml", "'$$EXTRA'"),
    ] {
        let path = fixture(name);
        let (list, text) = findings(&path);
        let rules = rules_of(&list);
        assert!(!rules.contains(&"KM013".to_string()), "{name}: {list:#?}");
        let km012 = list
            .iter()
            .find(|f| f["rule"] == "KM012")
            .unwrap_or_else(|| panic!("{name}: no KM012 in {list:#?}"));
        assert_eq!(spanned(km012, &text), word, "{name}");
        let km001 = list.iter().find(|f| f["rule"] == "KM001").unwrap();
        assert_eq!(km001["fixable"], false, "{name}: {km001:#?}");
        let (out, messages, code) = rewritten(&path);
        assert_eq!(code, 0, "{name}: {messages}");
        assert_eq!(out, text, "{name}: the step must stay as written");
    }
}

/// `$$` inside values is passed through as written.
#[test]
fn dollar_dollar_inside_values_is_kept() {
    let path = fixture("dollar-dollar-values.yaml");
    let (list, _) = findings(&path);
    assert!(
        !rules_of(&list).iter().any(|r| r == "KM012" || r == "KM013"),
        "{list:#?}"
    );
    let (out, messages, code) = rewritten(&path);
    assert_eq!(code, 0, "{messages}");
    for kept in [
        "gcr.io/p/app:$${TAG}",
        "VERSION=$$VERSION",
        "SHA=$${SHORT_SHA}",
    ] {
        assert!(out.contains(kept), "{kept} lost: {out}");
    }
    assert!(out.contains("docker buildx build"), "{out}");
}

// ---- issue 14 item 9: an ignore silences exactly the rules it lists ----

/// The findings of `path` as (rule, text under the span).
fn rule_texts(path: &Path) -> Vec<(String, String)> {
    let (list, text) = findings(path);
    list.iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                spanned(f, &text).to_string(),
            )
        })
        .collect()
}

#[test]
fn ignoring_km001_keeps_the_other_rules_of_the_step() {
    let found = rule_texts(&fixture("ignore-exact.yaml"));
    let rules: Vec<&str> = found.iter().map(|(r, _)| r.as_str()).collect();
    assert!(!rules.contains(&"KM001"), "{found:?}");
    // The gs:// context that keeps step 1 on Kaniko is still reported.
    assert!(
        found.contains(&("KM012".into(), "'--context=gs://bucket/ctx.tar.gz'".into())),
        "{found:?}"
    );
    // Step 2 stays on Kaniko, where `--cache true` still fails: reported,
    // with no fix (the rewrite it carried is withheld).
    let (list, _) = findings(&fixture("ignore-exact.yaml"));
    let km013 = list
        .iter()
        .find(|f| f["rule"] == "KM013")
        .unwrap_or_else(|| panic!("{found:?}"));
    assert_eq!(km013["fixable"], false, "{km013:#?}");
    // Notes about what the withheld rewrite would change are moot.
    assert!(
        !rules.contains(&"KM010") && !rules.contains(&"KM005"),
        "{found:?}"
    );
    // And `rewrite` leaves both steps alone.
    let (out, messages, code) = rewritten(&fixture("ignore-exact.yaml"));
    assert_eq!(code, 0, "{messages}");
    assert_eq!(
        out,
        fs::read_to_string(fixture("ignore-exact.yaml")).unwrap()
    );
}

#[test]
fn ignoring_a_gitlab_job_keeps_its_other_rules() {
    let found = rule_texts(&fixture("ignore-exact.gitlab-ci.yml"));
    let rules: Vec<&str> = found.iter().map(|(r, _)| r.as_str()).collect();
    assert!(!rules.contains(&"KM001"), "{found:?}");
    assert!(rules.contains(&"KM012"), "{found:?}");
}

// ---- issue 14 item 12: digest files keep being written ----

const DIGEST: &str = "sha256:19ffeab6f8bc9293ac2c3fdf94ebe28396254c993aea0b5a542cfb02e0883fa3";

/// A `docker` stand-in that writes the metadata file the way buildx does
/// (indented JSON, sorted keys, `image.name` the `--tag`s joined by commas).
const FAKE_DOCKER: &str = r#"#!/bin/sh
meta= names=
while [ $# -gt 0 ]; do
  case "$1" in
    --metadata-file) meta=$2; shift ;;
    --tag) names="${names:+$names,}$2"; shift ;;
  esac
  shift
done
[ -n "$meta" ] || exit 0
cat > "$meta" <<JSON
{
  "buildx.build.ref": "kmigrate/kmigrate0/0fjb6ubs52xx3vygf6fgdl611",
  "containerimage.config.digest": "sha256:2937f66a9722f7f4a2df583de2f8cb97fc9196059a410e7f00072fc918930e66",
  "containerimage.descriptor": {
    "digest": "$DIGEST",
    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "size": 506
  },
  "containerimage.digest": "$DIGEST",
  "image.name": "$names"
}
JSON
"#;

/// Runs every `sh -c` build step of a rewritten config in order, as Cloud Build
/// would after substituting (`$$` → `$`, `$PROJECT_ID` → `proj`), with
/// `/workspace` in a scratch directory and the fake docker on PATH. Returns
/// the workspace.
fn run_shell_steps(config: &str) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let ws = tempfile::tempdir().unwrap();
    let bin = ws.path().join(".bin");
    fs::create_dir(&bin).unwrap();
    fs::write(bin.join("docker"), FAKE_DOCKER).unwrap();
    fs::set_permissions(bin.join("docker"), fs::Permissions::from_mode(0o755)).unwrap();
    let doc: yaml_serde::Value = yaml_serde::from_str(config).unwrap();
    let root = ws.path().to_str().unwrap();
    for step in doc["steps"].as_sequence().unwrap() {
        let shell = step["entrypoint"].as_str().unwrap_or_default();
        if !["sh", "bash"].contains(&shell) {
            continue;
        }
        let args = step["args"].as_sequence().unwrap();
        let script = args[1].as_str().unwrap();
        if !script.contains("docker buildx build") {
            continue;
        }
        let script = script
            .replace("$$", "\u{0}")
            .replace("$PROJECT_ID", "proj")
            .replace('\u{0}', "$")
            .replace("/workspace", root);
        let o = Command::new("sh")
            .arg("-c")
            .arg(&script)
            .current_dir(ws.path())
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .env("DIGEST", DIGEST)
            .output()
            .unwrap();
        assert!(o.status.success(), "{script}\n{o:?}");
    }
    ws
}

#[test]
fn digest_files_are_written_again_after_the_build() {
    let (out, messages, code) = rewritten(&fixture("digest-files-args.yaml"));
    assert_eq!(code, 0, "{messages}");
    assert!(out.contains("--metadata-file"), "{out}");
    let ws = run_shell_steps(&out);
    let read = |f: &str| fs::read_to_string(ws.path().join(f)).unwrap();
    assert_eq!(
        read("image-digest.txt"),
        format!("gcr.io/proj/app@{DIGEST}\ngcr.io/proj/app@{DIGEST}\n")
    );
    // The consumer step reads it as before.
    let o = Command::new("head")
        .args(["-1", ws.path().join("image-digest.txt").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(stdout(&o), format!("gcr.io/proj/app@{DIGEST}\n"));

    let (out, messages, code) = rewritten(&fixture("digest-files-script.yaml"));
    assert_eq!(code, 0, "{messages}");
    let ws = run_shell_steps(&out);
    let read = |f: &str| fs::read_to_string(ws.path().join(f)).unwrap();
    assert_eq!(read("digest"), DIGEST);
    assert_eq!(read("names.txt"), format!("gcr.io/p/app:v1@{DIGEST}\n"));
    assert_eq!(read("b-digest"), DIGEST);
    assert!(
        messages.contains("writes `/workspace/digest` again"),
        "{messages}"
    );
    // The rewritten file is clean under check (no archived image left).
    let (_dir, path) = scratch(&out, "cloudbuild.yaml");
    let (list, _) = findings(&path);
    assert!(!rules_of(&list).contains(&"KM001".to_string()), "{list:#?}");
}

// ---- issue 14 item 13: buildkitd.toml outside the build context ----

#[test]
fn buildkitd_toml_is_written_outside_the_workspace() {
    let (out, messages, code) = rewritten(&fixture("registry-settings.yaml"));
    assert_eq!(code, 0, "{messages}");
    let doc: yaml_serde::Value = yaml_serde::from_str(&out).unwrap();
    let setup = &doc["steps"][0];
    assert_eq!(setup["id"].as_str(), Some("setup-buildx"), "{out}");
    let script = setup["args"][1].as_str().unwrap();
    let written = script
        .split("> ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("{script}"));
    // Steps run in /workspace, the build context: the file must be
    // absolute and elsewhere, or a `COPY . .` would put it in the image.
    assert!(
        written.starts_with('/') && !written.starts_with("/workspace"),
        "{script}"
    );
    assert!(
        script.contains(&format!("--buildkitd-config {written} ")),
        "{script}"
    );
    // A second rewrite still finds the builder it created.
    let (_dir, path) = scratch(&out, "cloudbuild.yaml");
    let (again, _, _) = rewritten(&path);
    assert_eq!(again, out);
}

// ---- issue 13 item 20: multi-document files, CR-only line endings ----

#[test]
fn a_second_document_is_reported_on_its_separator_line() {
    let text = "steps:\n- name: gcr.io/kaniko-project/executor\n  args: [--destination=gcr.io/p/a]\n---\nsteps:\n- name: gcr.io/kaniko-project/executor\n  args: [--destination=gcr.io/p/b]\n";
    let (_dir, path) = scratch(text, "cloudbuild.yaml");
    let o = run(&["check", path.to_str().unwrap()]);
    let said = format!("{}{}", stdout(&o), stderr(&o));
    assert!(said.contains("cloudbuild.yaml:4:1"), "{said}");
    assert!(said.contains("document"), "{said}");
    assert_ne!(o.status.code(), Some(0), "{said}");
    let o = run(&["rewrite", path.to_str().unwrap()]);
    assert_ne!(o.status.code(), Some(0));
    assert_eq!(fs::read_to_string(&path).unwrap(), text, "nothing written");
}

#[test]
fn cr_only_files_check_and_rewrite_like_crlf() {
    for (name, text) in [
        (
            "cloudbuild.yaml",
            "# build\rsteps:\r- name: gcr.io/kaniko-project/executor\r  args: [--destination=gcr.io/p/a, --cache]\r",
        ),
        (
            ".gitlab-ci.yml",
            "build:\r  image:\r    name: gcr.io/kaniko-project/executor:debug\r    entrypoint: [\"\"]\r  script:\r    - /kaniko/executor --context . --destination registry.example.com/app\r",
        ),
    ] {
        let (_dir, path) = scratch(text, name);
        let (list, _) = findings(&path);
        let km001 = list.iter().find(|f| f["rule"] == "KM001").unwrap();
        assert!(
            km001["start"]["line"].as_u64().unwrap() > 1,
            "{name}: {km001:#?}"
        );
        let o = run(&["rewrite", path.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
        let out = fs::read_to_string(&path).unwrap();
        assert!(!out.contains('\n'), "{name}: a LF slipped in: {out:?}");
        assert!(out.contains("buildx"), "{name}: {out:?}");
        let lf = out.replace('\r', "\n");
        yaml_serde::from_str::<yaml_serde::Value>(&lf).unwrap();
        // `--stdout` writes the same bytes.
        let (_d2, copy) = scratch(text, name);
        let o = run(&["rewrite", "--stdout", copy.to_str().unwrap()]);
        assert_eq!(stdout(&o), out, "{name}");
    }
}

// ---- issue 14 item 14: new text follows the file's style ----

#[test]
fn new_text_is_quoted_as_the_file_quotes() {
    let (out, messages, code) = rewritten(&fixture("style-single-quoted-km003.yaml"));
    assert_eq!(code, 0, "{messages}");
    assert!(
        out.contains("args: ['buildx', 'build', '--builder', 'kmigrate', '--cache-to',"),
        "{out}"
    );
    assert!(out.contains("waitFor: ['-']"), "{out}");

    let (out, messages, code) = rewritten(&fixture("style-double-quoted.yaml"));
    assert_eq!(code, 0, "{messages}");
    assert!(out.contains("waitFor: [\"-\"]"), "{out}");
    assert!(
        !out.contains('\''),
        "a single quote in a double-quoted file: {out}"
    );
    assert!(
        out.contains("name: \"gcr.io/cloud-builders/docker\"\n  args: [\"buildx\", \"create\""),
        "{out}"
    );

    let (out, messages, code) = rewritten(&fixture("style-script-quotes.yaml"));
    assert_eq!(code, 0, "{messages}");
    for kept in [
        "--build-arg \"BASE=python:3.12-slim\"",
        "--tag \"gcr.io/p/app\"",
        "--tag 'gcr.io/p/app:latest'",
    ] {
        assert!(out.contains(kept), "{kept}: {out}");
    }
}

// ---- issue 14 item 15: what the platform reads is never "not valid YAML" ----

#[test]
fn a_flow_list_continued_at_its_keys_column_is_read_and_rewritten() {
    let path = fixture("flow-continued-at-key-column.yaml");
    let (list, text) = findings(&path);
    let km001 = list.iter().find(|f| f["rule"] == "KM001").unwrap();
    assert_eq!(
        spanned(km001, &text),
        "'gcr.io/kaniko-project/executor:latest'"
    );
    let (out, messages, code) = rewritten(&path);
    assert_eq!(code, 0, "{messages}");
    let doc: yaml_serde::Value = yaml_serde::from_str(&out).unwrap();
    assert_eq!(doc["steps"][1]["args"][0].as_str(), Some("buildx"), "{out}");
    assert!(out.contains("'--build-arg', 'MODE=${_MODE}'"), "{out}");
    // The untouched step keeps its layout byte for byte.
    assert!(
        out.ends_with(
            "  args: ['run', 'deploy', 'app',\n  '--image', 'gcr.io/${PROJECT_ID}/app']\n"
        ),
        "{out}"
    );
}

#[test]
fn crlf_scripts_rewritten_over_several_lines_keep_crlf() {
    let text = "steps:\r\n- name: gcr.io/kaniko-project/executor:debug\r\n  entrypoint: sh\r\n  args:\r\n  - -c\r\n  - |\r\n    /kaniko/executor --context . \\\r\n      --destination gcr.io/p/app --digest-file=/workspace/d\r\n";
    let (_dir, path) = scratch(text, "cloudbuild.yaml");
    let (out, messages, code) = rewritten(&path);
    assert_eq!(code, 0, "{messages}");
    assert!(out.contains("docker buildx build"), "{out:?}");
    assert!(!out.contains("\r\r"), "{out:?}");
    assert!(!out.replace("\r\n", "").contains('\n'), "{out:?}");
}
