//! A byte-level test that lets `check` skip parsing files that cannot hold
//! a finding.
//!
//! Every rule needs one of a few words in the file's text, which its page
//! lists as `markers`: a Kaniko image or call (`kaniko`, `executor`), a
//! docker or buildx build (KM003: `docker`, `buildx`), a GitLab `include`
//! (files it pulls in, KM014), or an inline `kmigrate: ignore` comment
//! (KM020). A new rule declares its words on its page, so it cannot be
//! forgotten here. A file with none of them is
//! reported clean without being parsed, which is most files in a large
//! monorepo. The test is conservative: it looks at raw bytes, ignoring ASCII
//! case, so a word in a comment or in the middle of another word still
//! counts; a YAML or JSON escape (`\x..`, `\u....`), which could spell any
//! of the words, also sends the file to the parser. Only files whose whole
//! analysis is in their own text qualify: Cloud Build files and GitLab
//! pipeline entries (`.gitlab-ci.yml`); a GitLab file that another pipeline
//! includes may inherit Kaniko from it, so it is always parsed.
//!
//! `check` applies it to the files a directory walk finds; a file named on
//! the command line (as pre-commit names them) is always parsed. A skipped
//! file is not parsed, so a syntax error in it goes unreported (its encoding
//! is still checked): kmigrate lints Kaniko usage, not YAML syntax. A Cloud
//! Build file without the word `steps` is parsed all the same, so an empty
//! or truncated one is still reported.

use std::path::Path;
use std::sync::OnceLock;

use crate::platform::Platform;
use crate::rules::meta;

/// Escapes that could spell any word in YAML or JSON.
const ESCAPES: &[&[u8]] = &[b"\\x", b"\\u"];

/// The words (lower case) whose presence sends a file to the parser: every
/// rule's markers, and the escapes.
pub fn markers() -> &'static [&'static [u8]] {
    static MARKERS: OnceLock<Vec<&'static [u8]>> = OnceLock::new();
    MARKERS.get_or_init(|| {
        let mut words: Vec<&'static [u8]> = Vec::new();
        let rule_words = meta::all().iter().flat_map(|m| m.markers.iter());
        for w in rule_words
            .map(|w| w.as_bytes())
            .chain(ESCAPES.iter().copied())
        {
            if !words.contains(&w) {
                words.push(w);
            }
        }
        words
    })
}

/// Whether the file at `path`, of `platform`, may have a finding and must
/// be parsed. `false` means no rule can fire on it.
pub fn must_parse(path: &Path, platform: Option<Platform>, text: &[u8]) -> bool {
    // Unknown platform: detecting it needs the tree.
    let self_contained = platform.is_some_and(|p| p.support().self_contained(path, text));
    !self_contained || has_marker(text)
}

/// Whether any of [`markers`] occurs in `text`, ignoring ASCII case.
pub fn has_marker(text: &[u8]) -> bool {
    contains_any(text, markers())
}

/// Whether a GitLab pipeline's text may have an `include` (or an escape
/// that could spell one): one without cannot pull in other files, so
/// finding its includes needs no parse.
pub fn may_include(text: &[u8]) -> bool {
    // GitLab keywords are case-sensitive, so an exact search will do, and
    // it is the fast one: this test runs on every pipeline file.
    [&b"include"[..], b"\\x", b"\\u", b"\\U"]
        .iter()
        .any(|word| memchr::memmem::find(text, word).is_some())
}

/// Whether any of `words` (lower case) occurs in `text`, ignoring ASCII case.
pub(crate) fn contains_any(text: &[u8], words: &[&[u8]]) -> bool {
    // Test each word's first byte, then compare the rest in place.
    text.iter().enumerate().any(|(i, &b)| {
        let b = b.to_ascii_lowercase();
        words.iter().any(|m| {
            m[0] == b
                && text.len() - i >= m.len()
                && text[i + 1..i + m.len()]
                    .iter()
                    .zip(&m[1..])
                    .all(|(x, y)| x.to_ascii_lowercase() == *y)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const CB: Option<Platform> = Some(Platform::CloudBuild);
    const GL: Option<Platform> = Some(Platform::GitLab);

    #[test]
    fn clean_self_contained_files_are_skipped() {
        let clean = b"steps:\n- name: golang\n  args: [test]\n";
        assert!(!must_parse(Path::new("cloudbuild.yaml"), CB, clean));
        assert!(!must_parse(
            Path::new("a/.gitlab-ci.yml"),
            GL,
            b"t:\n  script: [make]\n"
        ));
        assert!(!must_parse(Path::new(".gitlab-ci.yml"), GL, b"# nothing\n"));
    }

    #[test]
    fn cloud_build_files_without_steps_are_parsed_to_report_them() {
        for text in ["", "# nothing yet\n", "timeout: 60s\n"] {
            assert!(
                must_parse(Path::new("cloudbuild.yaml"), CB, text.as_bytes()),
                "{text:?}"
            );
        }
    }

    #[test]
    fn every_marker_in_any_case_or_place_sends_the_file_to_the_parser() {
        for text in [
            "steps:\n- name: gcr.io/kaniko-project/executor\n",
            "steps:\n- name: GCR.IO/KANIKO-PROJECT/EXECUTOR\n",
            "b:\n  script: [/busybox/executor --context .]\n",
            "steps:\n- name: gcr.io/cloud-builders/docker\n  args: [buildx, build]\n",
            "b:\n  script: [Docker build .]\n",
            "include: ci/build.yml\n",
            "include:\n  - local: ci/build.yml\n",
            "# kmigrate: ignore[KM001] reason\nsteps: []\n",
            "steps:\n- name: \"gcr.io/\\x6baniko-project/executor\"\n",
            "{\"steps\": [{\"name\": \"gcr.io/\\u006baniko-project/executor\"}]}",
            "x: 1\n# the last word is a marker: kaniko",
            "kaniko",
        ] {
            assert!(
                must_parse(Path::new("cloudbuild.yaml"), CB, text.as_bytes()),
                "{text}"
            );
            assert!(
                must_parse(Path::new(".gitlab-ci.yml"), GL, text.as_bytes()),
                "{text}"
            );
        }
    }

    #[test]
    fn the_markers_are_the_rule_pages_words_and_the_escapes() {
        let words: Vec<&str> = markers()
            .iter()
            .map(|w| std::str::from_utf8(w).unwrap())
            .collect();
        assert_eq!(
            words,
            [
                "kaniko", "executor", "docker", "buildx", "include", "kmigrate", "\\x", "\\u"
            ]
        );
        for m in meta::all() {
            assert!(!m.markers.is_empty(), "{} has no marker", m.id);
        }
    }

    #[test]
    fn pipelines_without_include_cannot_include() {
        assert!(!may_include(b"b:\n  script: [make]\n"));
        // Keywords are case-sensitive: `INCLUDE:` is a job name to GitLab
        // and to the include loader.
        assert!(!may_include(b"INCLUDE:\n  script: [make]\n"));
        for text in [
            "include: a.yml\n",
            "\"\\x69nclude\": a.yml\n",
            "\"\\u0069nclude\": a\n",
            "\"\\U00000069nclude\": a\n",
        ] {
            assert!(may_include(text.as_bytes()), "{text}");
        }
    }

    #[test]
    fn files_whose_findings_depend_on_other_files_are_always_parsed() {
        let clean = b"build:\n  extends: .build\n";
        // An included GitLab file may inherit a Kaniko image from its pipeline.
        assert!(must_parse(Path::new("ci/build.yml"), GL, clean));
        // A file of unknown kind needs the tree to be detected.
        assert!(must_parse(Path::new("ci/build.yml"), None, clean));
    }

    #[test]
    fn the_markers_cover_every_rule_of_the_fixture_corpus() {
        // Any example or fixture with a finding must contain a marker; walk
        // the repository's examples and test fixtures to prove it.
        let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
        for dir in ["examples", "tests/fixtures", "snapshots"] {
            for entry in walkdir::WalkDir::new(root.join(dir)).into_iter().flatten() {
                let p = entry.path();
                let Some(kind) = Platform::from_path(p) else {
                    continue;
                };
                let Ok(text) = std::fs::read(p) else { continue };
                if must_parse(p, Some(kind), &text) {
                    continue;
                }
                let Ok(source) = crate::source::SourceFile::from_bytes(p, text) else {
                    continue;
                };
                let findings =
                    crate::engine::analyze(&source, kind, &crate::options::Options::default());
                assert!(
                    findings.as_ref().map_or(true, |f| f.is_empty()),
                    "{} has findings but no marker",
                    p.display()
                );
            }
        }
    }
}
