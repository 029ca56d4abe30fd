//! Cloud Build substitutions that hold Kaniko flags (issue 15 item 1):
//! booleans resolved by their visible default, whole-item and script
//! substitutions translated in `substitutions:` or passed through (KM015).
//! The real binary on fixtures under tests/fixtures/vars_cloudbuild/.

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
        .join("tests/fixtures/vars_cloudbuild")
        .join(name)
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// `check --format json` on `path`: (rule, the text it points at, message, help).
fn findings(path: &Path) -> Vec<(String, String, String, String)> {
    let o = run(&["check", "--format", "json", path.to_str().unwrap()]);
    let report: Json = serde_json::from_str(&stdout(&o))
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&o), String::from_utf8_lossy(&o.stderr)));
    let text = fs::read_to_string(path).unwrap();
    report["findings"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|f| {
            let start = f["span"]["start"].as_u64().unwrap() as usize;
            let end = f["span"]["end"].as_u64().unwrap() as usize;
            (
                f["rule"].as_str().unwrap().to_string(),
                text[start..end].to_string(),
                f["message"].as_str().unwrap_or_default().to_string(),
                f["help"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn rewritten(path: &Path) -> String {
    let o = run(&["rewrite", "--stdout", path.to_str().unwrap()]);
    assert!(
        o.status.code().is_some_and(|c| c <= 1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    stdout(&o)
}

/// The findings and the rewrite of `name`, as one text to snapshot; the
/// rewrite is checked to be idempotent, and `check`-clean of Kaniko when
/// the fixture is expected to migrate.
fn report(name: &str, migrates: bool) -> String {
    let path = fixture(name);
    let mut out = String::new();
    for (rule, at, message, help) in findings(&path) {
        out.push_str(&format!("{rule} at `{at}`: {message}\n"));
        for line in help.lines() {
            out.push_str(&format!("    help: {line}\n"));
        }
    }
    let text = rewritten(&path);
    out.push_str("---- rewritten ----\n");
    out.push_str(&text);

    let dir = tempfile::tempdir().unwrap();
    let again = dir.path().join(name);
    fs::write(&again, &text).unwrap();
    assert_eq!(rewritten(&again), text, "{name}: the rewrite is idempotent");
    let left: Vec<String> = findings(&again).into_iter().map(|f| f.0).collect();
    if migrates {
        assert!(
            !left.iter().any(|r| r == "KM001" || r == "KM012"),
            "{name}: no Kaniko left after the rewrite: {left:?}\n{text}"
        );
    } else {
        assert!(left.iter().any(|r| r == "KM012"), "{name}: {left:?}");
    }
    out
}

fn rules(name: &str) -> Vec<String> {
    findings(&fixture(name)).into_iter().map(|f| f.0).collect()
}

#[test]
fn boolean_substitutions_with_a_default_migrate_at_that_value() {
    let r = rules("bool-default.yaml");
    assert!(!r.contains(&"KM012".to_string()), "{r:?}");
    let text = report("bool-default.yaml", true);
    assert!(text.contains("--cache-to"), "{text}");
    assert!(text.contains("--push"), "{text}");
    assert!(text.contains("`_USE_CACHE` = `true`"), "{text}");
    assert!(text.contains("`_NO_PUSH` = `false`"), "{text}");
    snapshot!("vars_cloudbuild__bool-default", text);
}

#[test]
fn boolean_substitutions_without_a_default_stay_on_kaniko_naming_it() {
    let text = report("bool-no-default.yaml", false);
    assert!(text.contains("KM012 at `--cache=${_USE_CACHE}`"), "{text}");
    assert!(text.contains("no default"), "{text}");
    snapshot!("vars_cloudbuild__bool-no-default", text);
}

#[test]
fn a_bash_step_boolean_with_an_inline_default_migrates() {
    let text = report("script-bool-inline-default.yaml", true);
    assert!(!text.contains("--cache-to"), "{text}");
    assert!(text.contains("`_USE_CACHE` = `false`"), "{text}");
    snapshot!("vars_cloudbuild__script-bool-inline-default", text);
}

#[test]
fn an_extra_args_item_with_a_default_keeps_the_reference_and_translates_the_default() {
    let text = report("extra-args-default.yaml", true);
    let out = text.split("---- rewritten ----\n").nth(1).unwrap();
    assert!(out.contains("- ${_EXTRA_ARGS}"), "{out}");
    assert!(out.contains("- $_WORKER_PLATFORM"), "{out}");
    assert!(
        out.contains("_WORKER_PLATFORM: --platform=linux/arm64"),
        "{out}"
    );
    assert!(
        out.contains("_EXTRA_ARGS: --build-arg=CHANNEL=stable"),
        "{out}"
    );
    snapshot!("vars_cloudbuild__extra-args-default", text);
}

#[test]
fn an_extra_args_item_without_a_default_is_passed_through_with_km015() {
    let r = rules("extra-args-no-default.yaml");
    assert!(r.contains(&"KM015".to_string()), "{r:?}");
    let text = report("extra-args-no-default.yaml", true);
    assert!(text.contains("KM015 at `${_EXTRA_ARGS}`"), "{text}");
    assert!(text.contains("by the build trigger"), "{text}");
    snapshot!("vars_cloudbuild__extra-args-no-default", text);
}

#[test]
fn an_extra_args_item_with_an_empty_default_stays_on_kaniko() {
    let text = report("extra-args-empty-default.yaml", false);
    assert!(text.contains("KM012 at `${_EXTRA_ARGS}`"), "{text}");
    assert!(text.contains("empty"), "{text}");
    snapshot!("vars_cloudbuild__extra-args-empty-default", text);
}

#[test]
fn a_flag_substitution_also_used_as_a_value_is_passed_through() {
    // Its default is in the spelling buildx shares with Kaniko: it stays.
    let text = report("extra-args-shared.yaml", true);
    assert!(text.contains("KM015 at `${_TARGET}`"), "{text}");
    let out = text.split("---- rewritten ----\n").nth(1).unwrap();
    assert!(out.contains("_TARGET: --target=release"), "{out}");
    assert!(out.contains("${_TARGET}"), "{out}");
    snapshot!("vars_cloudbuild__extra-args-shared", text);
}

#[test]
fn a_shared_flag_substitution_in_kaniko_spelling_keeps_the_step() {
    // `--custom-platform` is Kaniko's: buildx would stop with `unknown
    // flag`, and the default cannot be rewritten for the other use. (Before,
    // the step was migrated and the safety net withheld it as a kmigrate bug.)
    let text = report("extra-args-shared-kaniko-spelling.yaml", false);
    assert!(
        text.contains("KM012 at `${_PLATFORM}`") && text.contains("also used elsewhere"),
        "{text}"
    );
    assert!(!text.contains("was withheld"), "{text}");
    snapshot!("vars_cloudbuild__extra-args-shared-kaniko-spelling", text);
}

#[test]
fn script_flags_from_a_substitution_with_a_default_are_translated_in_place() {
    let text = report("script-flags.yaml", true);
    let out = text.split("---- rewritten ----\n").nth(1).unwrap();
    assert!(out.contains("$_KANIKO_FLAGS"), "{out}");
    assert!(out.contains("_KANIKO_FLAGS: --cache-from"), "{out}");
    assert!(!out.contains("--snapshot-mode"), "{out}");
    snapshot!("vars_cloudbuild__script-flags", text);
}

#[test]
fn script_flags_from_a_substitution_without_a_default_are_passed_through() {
    let text = report("script-flags-no-default.yaml", true);
    assert!(text.contains("KM015"), "{text}");
    let out = text.split("---- rewritten ----\n").nth(1).unwrap();
    assert!(out.contains("${_KANIKO_FLAGS}"), "{out}");
    snapshot!("vars_cloudbuild__script-flags-no-default", text);
}

/// Without `dynamicSubstitutions`, a default that would name `$PROJECT_ID`
/// is not expanded by Cloud Build: the step stays, with a KM012 saying so.
#[test]
fn a_translated_default_naming_substitutions_needs_dynamic_substitutions() {
    let text = report("script-flags-static.yaml", false);
    assert!(text.contains("KM012 at `$_KANIKO_FLAGS`"), "{text}");
    assert!(text.contains("dynamicSubstitutions"), "{text}");
    snapshot!("vars_cloudbuild__script-flags-static", text);
}

/// What a build does, as `verify` reads it from a config with the
/// substitutions at their defaults.
fn plans(name: &str, text: &str) -> Vec<String> {
    use kmigrate::verify::extract::{Inputs, extract};
    let git = kmigrate::verify::vars::GitInfo {
        commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
        branch: Some("main".into()),
        tag: None,
    };
    let overrides = Default::default();
    let inputs = Inputs {
        context_dir: Path::new("/src/repo"),
        git: &git,
        overrides: &overrides,
    };
    let found = extract(
        Path::new(name),
        text,
        kmigrate::platform::Platform::CloudBuild,
        &inputs,
    )
    .unwrap();
    found
        .iter()
        .map(|e| {
            let p = e
                .plan
                .as_ref()
                .unwrap_or_else(|| panic!("{name}: {e:?}"));
            format!(
                "tags={:?} args={:?} target={:?} platforms={:?} push={} from={:?} to={:?} context={}",
                p.tags,
                p.build_args.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                p.target,
                p.platforms,
                p.push,
                p.cache_from.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
                p.cache_to.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
                p.context
            )
        })
        .collect()
}

/// The rewrite builds what Kaniko built with the substitutions at their
/// defaults: same tags, build args, platform, push, cache and context.
#[test]
fn the_rewrite_builds_the_same_plan_at_the_defaults() {
    for name in [
        "bool-default.yaml",
        "extra-args-default.yaml",
        "script-flags.yaml",
        "script-bool-inline-default.yaml",
    ] {
        let path = fixture(name);
        let before = plans(name, &fs::read_to_string(&path).unwrap());
        let after = plans(name, &rewritten(&path));
        assert_eq!(before, after, "{name}");
    }
}

/// With `ALLOW_LOOSE` an unused substitution is fine, so the KM011 does not
/// ask to remove it.
#[test]
fn loose_substitutions_need_no_cleanup() {
    let text = report("bool-loose.yaml", true);
    assert!(text.contains("`_USE_CACHE` = `0`"), "{text}");
    assert!(!text.contains("unused substitution"), "{text}");
    snapshot!("vars_cloudbuild__bool-loose", text);
}

/// A default of several buildx flags cannot sit in one `args` item: the
/// step stays on Kaniko with a KM012 saying why, and no KM011 claims that a
/// boolean of that step was fixed.
#[test]
fn a_default_too_wide_for_one_args_item_keeps_the_step() {
    let text = report("extra-args-too-wide.yaml", false);
    assert!(text.contains("KM012 at `'${_EXTRA_ARGS}'`"), "{text}");
    assert!(text.contains("several buildx flags"), "{text}");
    assert!(!text.contains("KM011"), "{text}");
    snapshot!("vars_cloudbuild__extra-args-too-wide", text);
}

/// Several calls and shapes in one file: a trigger-set item next to a
/// digest file (the step becomes `sh -c`, the substitution stays one word),
/// an inline `:-` default and a default already spelled as buildx reads it.
#[test]
fn mixed_steps_keep_every_reference() {
    let text = report("mixed-steps.yaml", true);
    assert!(text.contains("KM015 at `${_APP_FLAGS}`"), "{text}");
    let out = text.split("---- rewritten ----\n").nth(1).unwrap();
    assert!(out.contains("${_CLI_FLAGS:---target=release}"), "{out}");
    assert!(out.contains("$_AGENT_FLAGS"), "{out}");
    assert!(
        out.contains("_AGENT_FLAGS: --label=owner=platform --build-arg=GO_VERSION=1.22"),
        "{out}"
    );
    assert!(!out.contains("/kaniko/executor"), "{out}");
    snapshot!("vars_cloudbuild__mixed-steps", text);
}
