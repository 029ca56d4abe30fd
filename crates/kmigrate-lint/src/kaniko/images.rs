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
    /// An image of the archived project (KM001), not a maintained fork.
    pub archived: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImagesFile {
    tag: String,
    images: Vec<ImageEntry>,
    fork_target: ForkTarget,
}

/// What the fork target runs instead of the archived image (the table's
/// `fork_target`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForkTarget {
    /// The fork's image repository.
    pub image: String,
    /// The release it is pinned to.
    pub version: String,
    /// Tag suffix of the variant that carries a shell (GitLab jobs).
    pub shell_suffix: String,
    pub variants: Vec<ForkVariant>,
    pub renamed: Vec<RenamedFlag>,
    pub dropped: Vec<DroppedFlag>,
}

/// An original tag naming a variant (`debug`, `slim`) and the fork's suffix.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForkVariant {
    pub tag_contains: String,
    pub suffix: String,
}

/// A spelling the fork renamed (without `--`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenamedFlag {
    pub from: String,
    pub to: String,
}

/// A flag the fork made a no-op (canonical name, without `--`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DroppedFlag {
    pub flag: String,
    pub reason: String,
}

impl ForkTarget {
    /// The fork image that replaces `original` (an image reference as
    /// written): `image:version` plus the suffix of the variant the
    /// original tag names, or the shell variant when the job needs a shell.
    pub fn reference(&self, image: &str, version: &str, original: &str, shell: bool) -> String {
        let tag = original
            .split('@')
            .next()
            .unwrap_or("")
            .rsplit('/')
            .next()
            .and_then(|last| last.split_once(':'))
            .map(|(_, t)| t)
            .unwrap_or("");
        let suffix = if shell {
            self.shell_suffix.as_str()
        } else {
            self.variants
                .iter()
                .find(|v| tag.contains(&v.tag_contains))
                .map_or("", |v| v.suffix.as_str())
        };
        format!("{image}:{version}{suffix}")
    }
}

/// The fork target of `rules/images.yaml`.
pub fn fork_target() -> &'static ForkTarget {
    &table().fork
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
    #[serde(default)]
    archived: bool,
}

/// What an entry of a data table must match and must not match: every
/// table of images, actions or plugins under `rules/` carries these, and
/// its test checks them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // read by the tables' tests only
pub(crate) struct Examples {
    #[serde(default)]
    pub(crate) r#match: Vec<String>,
    #[serde(default)]
    pub(crate) no_match: Vec<String>,
}

struct Entry {
    id: &'static str,
    kind: ImageKind,
    name: &'static str,
    description: &'static str,
    archived: bool,
}

/// The table compiled: one regex whose group `e{i}` is entry `i`'s
/// repository, followed by the shared tag pattern.
struct Compiled {
    entries: Vec<Entry>,
    pattern: Regex,
    /// The capture group number of entry `i`'s group `e{i}`.
    groups: Vec<usize>,
    fork: ForkTarget,
}

fn table() -> &'static Compiled {
    static TABLE: OnceLock<Compiled> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut file: ImagesFile =
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
            .drain(..)
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
                archived: e.archived,
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
            fork: file.fork_target,
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
        archived: entry.archived,
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
    fn only_the_archived_project_is_archived() {
        for (image, archived) in [
            ("gcr.io/kaniko-project/executor:debug", true),
            ("mirror.example/kaniko-project/warmer:v1", true),
            ("ghcr.io/osscontainertools/kaniko:v1.28.3-debug", false),
            ("martizih/kaniko:debug", false),
            ("cgr.dev/chainguard/kaniko:latest", false),
        ] {
            assert_eq!(match_image(image).unwrap().archived, archived, "{image}");
        }
    }

    #[test]
    fn the_fork_reference_keeps_the_variant() {
        let f = fork_target();
        let r = |original: &str, shell: bool| f.reference("fork/kaniko", "v2", original, shell);
        assert_eq!(
            r("gcr.io/kaniko-project/executor:debug", false),
            "fork/kaniko:v2-debug"
        );
        assert_eq!(
            r("gcr.io/kaniko-project/executor:v1.23.2-slim", false),
            "fork/kaniko:v2-slim"
        );
        assert_eq!(
            r("gcr.io/kaniko-project/executor:latest", false),
            "fork/kaniko:v2"
        );
        assert_eq!(r("gcr.io/kaniko-project/executor", false), "fork/kaniko:v2");
        assert_eq!(
            r(
                "registry.example:5000/kaniko-project/executor@sha256:00",
                false
            ),
            "fork/kaniko:v2"
        );
        // A GitLab job needs the shell variant whatever the tag said.
        assert_eq!(
            r("gcr.io/kaniko-project/executor:latest", true),
            "fork/kaniko:v2-debug"
        );
        // The default is the fork the table documents, and it is a fork.
        let default = f.reference(&f.image, &f.version, "x:debug", false);
        let m = match_image(&default).expect("the fork image is Kaniko");
        assert!(!m.archived, "{default}");
    }

    #[test]
    fn fork_flag_changes_name_real_flags() {
        let t = super::super::flags::FlagTable::get();
        for r in &fork_target().renamed {
            let from = t.long(&r.from).expect(&r.from);
            let to = t.long(&r.to).expect(&r.to);
            assert_eq!(
                from.name, to.name,
                "{} is an old spelling of {}",
                r.from, r.to
            );
            assert_eq!(to.name, r.to, "{} is the current name", r.to);
        }
        for d in &fork_target().dropped {
            assert_eq!(
                t.long(&d.flag).map(|s| s.name.as_str()),
                Some(d.flag.as_str())
            );
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
