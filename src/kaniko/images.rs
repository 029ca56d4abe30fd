//! Matching image references against `rules/images.yaml`.

use std::sync::OnceLock;

use regex::bytes::{Regex, RegexBuilder};
use serde::Deserialize;

const IMAGES_YAML: &str = include_str!("../../rules/images.yaml");

/// Whether an image runs the executor or the base-image cache warmer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    Executor,
    Warmer,
}

/// A Kaniko image reference recognised by one table entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageMatch {
    /// The table entry's id, e.g. `upstream-executor`.
    pub id: &'static str,
    pub kind: ImageKind,
    pub description: &'static str,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImagesFile {
    tag: String,
    images: Vec<ImageEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageEntry {
    id: String,
    kind: String,
    description: String,
    repository: String,
    // Read by the table test only; parsed here so a malformed entry fails it.
    #[allow(dead_code)]
    examples: Examples,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // read by the table test only
struct Examples {
    #[serde(default)]
    r#match: Vec<String>,
    #[serde(default)]
    no_match: Vec<String>,
}

struct CompiledEntry {
    id: &'static str,
    kind: ImageKind,
    description: &'static str,
    pattern: Regex,
}

fn table() -> &'static [CompiledEntry] {
    static TABLE: OnceLock<Vec<CompiledEntry>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let file: ImagesFile =
            yaml_serde::from_str(IMAGES_YAML).expect("rules/images.yaml is checked by tests");
        file.images
            .into_iter()
            .map(|e| {
                // Image references are ASCII (the distribution spec's
                // grammar), so the table is compiled without Unicode classes:
                // Unicode `\w{0,127}` in `tag` made one process spend ~0.4 s
                // compiling the table, the whole cost of a one-file check.
                let pattern = RegexBuilder::new(&format!("^(?:{})(?:{})$", e.repository, file.tag))
                    .unicode(false)
                    .build()
                    .expect("rules/images.yaml patterns are checked by tests");
                // Entries that cover both binaries are told apart by name in match_image.
                let kind = if e.kind == "warmer" {
                    ImageKind::Warmer
                } else {
                    ImageKind::Executor
                };
                CompiledEntry {
                    id: leak(e.id),
                    kind,
                    description: leak(e.description),
                    pattern,
                }
            })
            .collect()
    })
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// Matches an image reference (as written, surrounding whitespace ignored).
pub fn match_image(reference: &str) -> Option<ImageMatch> {
    let reference = reference.trim();
    let entry = table()
        .iter()
        .find(|e| e.pattern.is_match(reference.as_bytes()))?;
    let name = reference
        .split('@')
        .next()
        .unwrap_or(reference)
        .rsplit('/')
        .next()
        .unwrap_or(reference);
    let kind = if entry.kind == ImageKind::Warmer
        || name.starts_with("warmer")
        || name.contains("-warmer")
    {
        ImageKind::Warmer
    } else {
        ImageKind::Executor
    };
    Some(ImageMatch {
        id: entry.id,
        kind,
        description: entry.description,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_in_the_table_behaves_as_documented() {
        let file: ImagesFile = yaml_serde::from_str(IMAGES_YAML).unwrap();
        assert!(file.images.len() >= 7);
        for entry in &file.images {
            assert!(
                !entry.examples.r#match.is_empty() && !entry.examples.no_match.is_empty(),
                "{} needs positive and negative examples",
                entry.id
            );
            for m in &entry.examples.r#match {
                let got = match_image(m).unwrap_or_else(|| panic!("{} should match {m}", entry.id));
                assert_eq!(got.id, entry.id, "{m} matched the wrong entry");
            }
            for n in &entry.examples.no_match {
                assert!(match_image(n).is_none(), "{n} must not be a Kaniko image");
            }
        }
    }

    #[test]
    fn warmer_images_are_told_apart() {
        assert_eq!(
            match_image("gcr.io/kaniko-project/warmer:latest")
                .unwrap()
                .kind,
            ImageKind::Warmer
        );
        assert_eq!(
            match_image("cgr.dev/chainguard/kaniko-warmer")
                .unwrap()
                .kind,
            ImageKind::Warmer
        );
        assert_eq!(
            match_image("ghcr.io/kaniko-build/dist/chainguard-dev/warmer:v1")
                .unwrap()
                .kind,
            ImageKind::Warmer
        );
        assert_eq!(
            match_image(" gcr.io/kaniko-project/executor:debug ")
                .unwrap()
                .kind,
            ImageKind::Executor
        );
    }
}
