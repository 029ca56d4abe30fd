//! Matching image references against `rules/images.yaml`.

use std::sync::OnceLock;

use regex::bytes::{Regex, RegexBuilder};
use serde::Deserialize;

/// The table as people edit it (read by the tests).
#[cfg(test)]
pub(super) const IMAGES_YAML: &str = include_str!("../../../../rules/images.yaml");
/// The same table converted to JSON by `build.rs` (read by the binary).
pub(super) const IMAGES_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/images.json"));

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
    /// How messages name the image, in plain words (the entry's `name`).
    pub name: &'static str,
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
    name: String,
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

struct Entry {
    id: &'static str,
    kind: ImageKind,
    name: &'static str,
    description: &'static str,
}

/// The table compiled: one regex whose group `e{i}` is entry `i`'s
/// repository, followed by the shared tag pattern.
struct Compiled {
    entries: Vec<Entry>,
    pattern: Regex,
    /// The capture group number of entry `i`'s group `e{i}`.
    groups: Vec<usize>,
}

fn table() -> &'static Compiled {
    static TABLE: OnceLock<Compiled> = OnceLock::new();
    TABLE.get_or_init(|| {
        let file: ImagesFile =
            serde_json::from_str(IMAGES_JSON).expect("rules/images.yaml is checked by tests");
        // One alternation instead of a regex per entry: the tag pattern, the
        // costly part to compile, is compiled once (a one-file check spent a
        // third of its time compiling the table). Leftmost-first alternation
        // prefers earlier branches, so the first entry that matches wins, as
        // the table's order promises.
        let repositories: Vec<String> = file
            .images
            .iter()
            .enumerate()
            .map(|(i, e)| format!("(?P<e{i}>{})", e.repository))
            .collect();
        // Image references are ASCII (the distribution spec's grammar), so
        // the table is compiled without Unicode classes: Unicode `\w` in
        // `tag` made one process spend ~0.4 s compiling the table.
        let pattern =
            RegexBuilder::new(&format!("^(?:{})(?:{})$", repositories.join("|"), file.tag))
                .unicode(false)
                .build()
                .expect("rules/images.yaml patterns are checked by tests");
        let file_len = file.images.len();
        let entries = file
            .images
            .into_iter()
            .map(|e| Entry {
                id: leak(e.id),
                // Entries that cover both binaries are told apart by name in
                // match_image.
                kind: if e.kind == "warmer" {
                    ImageKind::Warmer
                } else {
                    ImageKind::Executor
                },
                name: leak(e.name),
                description: leak(e.description),
            })
            .collect();
        let groups = (0..file_len)
            .map(|i| {
                let name = format!("e{i}");
                pattern
                    .capture_names()
                    .position(|n| n == Some(name.as_str()))
                    .expect("every entry has its group")
            })
            .collect();
        Compiled {
            entries,
            pattern,
            groups,
        }
    })
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// How a finding says what a job or step runs: the image as written (with
/// known variables filled in) and the table's plain-words `name`, in the
/// same words on every platform.
pub fn runs_image(reference: &str, name: &str) -> String {
    format!("runs `{reference}`, {name}")
}

/// What a finding says of a job or step that calls the executor under an
/// image the table does not know.
pub const RUNS_EXECUTOR: &str = "runs the Kaniko executor (archived in June 2025)";

/// Matches an image reference (as written, surrounding whitespace ignored).
pub fn match_image(reference: &str) -> Option<ImageMatch> {
    use std::cell::RefCell;
    use std::collections::HashMap;

    // The same few references come back in every job and file, and finding
    // which entry matched runs the slower capturing search: remember the
    // answers per thread (forgetting them all past a bound).
    thread_local! {
        static SEEN: RefCell<HashMap<String, Option<ImageMatch>>> = RefCell::new(HashMap::new());
    }
    const REMEMBERED: usize = 256;
    let reference = reference.trim();
    if let Some(known) = SEEN.with(|seen| seen.borrow().get(reference).cloned()) {
        return known;
    }
    let found = search(reference);
    SEEN.with(|seen| {
        let mut seen = seen.borrow_mut();
        if seen.len() >= REMEMBERED {
            seen.clear();
        }
        seen.insert(reference.to_string(), found.clone());
    });
    found
}

/// [`match_image`] without the memory.
fn search(reference: &str) -> Option<ImageMatch> {
    let table = table();
    // The quick test first: most images are not Kaniko, and only a match
    // needs the slower search for which group took part.
    if !table.pattern.is_match(reference.as_bytes()) {
        return None;
    }
    let caps = table.pattern.captures(reference.as_bytes())?;
    let entry = (0..table.entries.len())
        .find(|i| caps.get(table.groups[*i]).is_some())
        .map(|i| &table.entries[i])?;
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
        name: entry.name,
        description: entry.description,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_answers_are_the_searched_ones() {
        let kaniko = "gcr.io/kaniko-project/executor:v1.23.2";
        let first = match_image(kaniko);
        assert!(first.is_some());
        // Past the bound the memory starts over; answers stay the same.
        for i in 0..600 {
            let other = format!("registry.example/app{i}:1");
            assert_eq!(match_image(&other), search(&other));
            assert_eq!(match_image(kaniko), first);
        }
        assert_eq!(match_image(&format!("  {kaniko} ")), first);
        assert_eq!(match_image("docker:28.5-cli"), None);
    }

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
