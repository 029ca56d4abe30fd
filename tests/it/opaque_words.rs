//! Opaque words (issue 15 item 2): GitLab `$[[ inputs.x ]]`, `$( … )`,
//! backquotes, `${VAR:-x}` and `$((…))` are single words that kmigrate
//! cannot classify. The real binary runs `check` and `rewrite` on fixtures
//! under `tests/fixtures/opaque-words/`, and every Kaniko build either keeps
//! each of its expansions in the new `docker buildx build` call, or stays
//! byte for byte on Kaniko with a KM012 finding that names the word.

use std::path::{Path, PathBuf};
use std::process::Command;

use kmigrate::shell::{self, expansion_len};

fn fixture(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/opaque-words")
        .join(case)
}

/// Runs kmigrate in the fixture directory on its `.gitlab-ci.yml`.
fn run(case: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_kmigrate"))
        .env("NO_COLOR", "1")
        .current_dir(fixture(case))
        .args(args)
        .arg(".gitlab-ci.yml")
        .output()
        .expect("kmigrate runs");
    (
        o.status.code(),
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8(o.stderr).unwrap(),
    )
}

/// Each job's script commands, by job name, from every YAML document.
fn job_commands(yaml: &str) -> Vec<(String, Vec<shell::Command>)> {
    let mut out = Vec::new();
    for doc in yaml.split("\n---\n") {
        let v: yaml_serde::Value = yaml_serde::from_str(doc).unwrap();
        let Some(map) = v.as_mapping() else { continue };
        for (name, job) in map {
            let Some(lines) = job.get("script").and_then(|s| s.as_sequence()) else {
                continue;
            };
            let commands = lines
                .iter()
                .filter_map(|l| l.as_str())
                .flat_map(|l| shell::parse(l).commands)
                .collect();
            out.push((name.as_str().unwrap().to_string(), commands));
        }
    }
    out
}

/// The first `n` words of `c`.
fn head(c: &shell::Command, n: usize) -> String {
    c.words
        .iter()
        .take(n)
        .map(|w| w.dq.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every expansion written in `dq`, each as written.
fn expansions(dq: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < dq.len() {
        if dq[i..].starts_with('\\') {
            i += 1 + dq[i + 1..].chars().next().map_or(0, char::len_utf8);
            continue;
        }
        match expansion_len(&dq[i..]) {
            0 => i += dq[i..].chars().next().map_or(1, char::len_utf8),
            n => {
                out.push(dq[i..i + n].to_string());
                i += n;
            }
        }
    }
    out
}

/// The project directory is the job's working directory: buildx spells
/// `$CI_PROJECT_DIR/app` as `app`, so that one expansion may go.
fn must_carry(expansion: &str) -> bool {
    !matches!(expansion, "$CI_PROJECT_DIR" | "${CI_PROJECT_DIR}")
}

/// The guarantee, for every Kaniko call of `case`: migrated with every
/// expansion carried over, or unchanged with a KM012 naming the word.
/// Returns how many calls were migrated and how many stayed.
fn assert_no_word_lost(case: &str) -> (usize, usize) {
    let original = std::fs::read_to_string(fixture(case).join(".gitlab-ci.yml")).unwrap();
    let (code, rewritten, _) = run(case, &["rewrite", "--stdout"]);
    assert_eq!(code, Some(0), "{case}: rewrite --stdout");
    let km012: Vec<String> = findings(case)
        .into_iter()
        .filter(|(rule, _)| rule == "KM012")
        .map(|(_, message)| message)
        .collect();
    let after = job_commands(&rewritten);
    let (mut migrated, mut stayed) = (0, 0);
    for (job, commands) in job_commands(&original) {
        let new = &after.iter().find(|(n, _)| *n == job).unwrap().1;
        for call in commands.iter().filter(|c| head(c, 1) == "/kaniko/executor") {
            let words: Vec<&str> = call.words.iter().map(|w| w.dq.as_str()).collect();
            if new.iter().any(|c| c.words == call.words) {
                stayed += 1;
                let named = call.words.iter().any(|w| {
                    w.has_expansion && km012.iter().any(|m| m.contains(&format!("`{}`", w.dq)))
                });
                assert!(
                    named,
                    "{case}/{job}: unchanged without a KM012 naming a word: {words:?}\n{km012:?}"
                );
                continue;
            }
            migrated += 1;
            let build = new
                .iter()
                .find(|c| head(c, 3) == "docker buildx build")
                .unwrap_or_else(|| panic!("{case}/{job}: no buildx call in\n{rewritten}"));
            for e in words.iter().flat_map(|w| expansions(w)) {
                assert!(
                    !must_carry(&e) || build.words.iter().any(|w| w.dq.contains(&e)),
                    "{case}/{job}: `{e}` was dropped from the build\n{rewritten}"
                );
            }
        }
    }
    (migrated, stayed)
}

#[test]
fn component_inputs_and_substitutions_are_never_dropped() {
    // `-image` adds flags through `$(… echo "--no-push …")` and stays;
    // `-release` uses inputs in every value and migrates.
    assert_eq!(assert_no_word_lost("component"), (1, 1));
}

#[test]
fn script_expansions_are_never_dropped() {
    // `values` migrates; `$(cat …)` may hold flags, so it stays; a bare
    // `$[[ inputs.args ]]` with no default comes from the component's
    // caller and is passed through to buildx (KM015, issue 15 item 1).
    assert_eq!(assert_no_word_lost("scripts"), (2, 1));
}

/// `check --format json`: each finding as (rule, message).
fn findings(case: &str) -> Vec<(String, String)> {
    let (_, out, _) = run(case, &["check", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap().to_string();
            (s("rule"), s("message"))
        })
        .collect()
}

#[test]
fn check_reads_inputs_as_words_not_malformed_flags() {
    for case in ["component", "scripts"] {
        for (rule, message) in findings(case) {
            assert_ne!(rule, "KM013", "{case}: {message}");
            assert!(!message.contains("`]]"), "{case}: {message}");
        }
    }
    let has = |case, rule: &str, message: &str| {
        findings(case)
            .iter()
            .any(|(r, m)| r == rule && m.starts_with(message))
    };
    assert!(has(
        "scripts",
        "KM015",
        "`$[[ inputs.args ]]` is set by the component's caller"
    ));
    assert!(has(
        "component",
        "KM012",
        "`$( [ \"$[[ inputs.push ]]\" = \"false\" ] && echo \"--no-push --tarPath image.tar\" )` comes from a variable"
    ));
}

#[test]
fn missing_context_is_reported_not_silently_workspace() {
    assert!(
        findings("no-context")
            .iter()
            .any(|(r, m)| r == "KM011" && m.starts_with("no `--context`"))
    );
    let (_, out, _) = run("no-context", &["rewrite", "--stdout"]);
    assert!(out.contains("/workspace"), "{out}");
}

#[test]
fn rewritten_fixtures_snapshot() {
    for case in ["component", "scripts"] {
        let (code, out, _) = run(case, &["rewrite", "--diff"]);
        assert_eq!(code, Some(0), "{case}");
        snapshot!(format!("opaque_words__{case}"), out);
    }
}
