//! Plan equivalence: does a rewritten build do what the original did?
//!
//! The rewrite's safety net (issue 15 item 5). Both plans are read the
//! same way (variables expanded, paths absolute: see `verify::extract`);
//! this module only compares them, field by field, and says which fields
//! differ in a way no note of the conversion explains. The caller refuses
//! the rewrite of a build with such a difference.

use std::fmt;

use super::plan::{AttrList, BuildPlan};

/// A part of a build that must survive the rewrite unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    Tags,
    Context,
    Dockerfile,
    BuildArgs,
    Target,
    Labels,
    Annotations,
    /// Push, no-push, tar and OCI layout outputs.
    Output,
    Platforms,
    CacheImports,
    CacheExports,
    Secrets,
    /// Variables passed through to the build as flags (KM015).
    Passthrough,
    /// The build itself: it is missing from the rewritten text, or cannot
    /// be read back from it.
    Build,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Tags => "tags",
            Field::Context => "context",
            Field::Dockerfile => "Dockerfile",
            Field::BuildArgs => "build args",
            Field::Target => "target",
            Field::Labels => "labels",
            Field::Annotations => "annotations",
            Field::Output => "output (push / no-push / tar)",
            Field::Platforms => "platform",
            Field::CacheImports => "cache imports",
            Field::CacheExports => "cache exports",
            Field::Secrets => "secrets",
            Field::Passthrough => "flags passed through from variables",
            Field::Build => "the build itself",
        })
    }
}

/// The differences the conversion's own notes explain.
#[derive(Debug, Clone, Default)]
pub struct Explained {
    /// `--cache-tag`: the rewrite names the registry cache `<repo>:<tag>`
    /// where an original read with the default tag says `<repo>:buildcache`.
    pub cache_tag: Option<String>,
    /// Registry cache refs a KM011 note renamed (old, new): distinct refs
    /// for builds that shared one (see [`super::cache_refs`]).
    pub cache_renames: Vec<(String, String)>,
    /// A KM011 note says kmigrate chose the cache repository itself (the
    /// destination is a variable, Kaniko's default cannot be derived).
    pub cache_repo_chosen: bool,
    /// The rewrite names its registry cache by repository, without a tag
    /// (Buildah's `--cache-to`/`--cache-from`; a KM011 note says so): a
    /// ref stands for every original ref of that repository.
    pub cache_repository: bool,
    /// A KM011 note says the registry cache moved to GitHub Actions' cache
    /// service: a `type=gha` entry stands for a registry one.
    pub cache_service: bool,
}

impl Explained {
    /// What the messages of a build's notes (or findings) explain, for a
    /// rewrite made with `cache_tag`.
    pub fn from_notes<'a>(messages: impl IntoIterator<Item = &'a str>, cache_tag: &str) -> Self {
        let mut out = Explained {
            cache_tag: (cache_tag != DEFAULT_CACHE_TAG).then(|| cache_tag.to_string()),
            ..Default::default()
        };
        for m in messages {
            out.cache_renames.extend(super::cache_refs::renamed(m));
            out.cache_repo_chosen |= m.contains(super::from_kaniko::CACHE_REPO_CHOSEN);
            out.cache_repository |= m.contains(super::from_kaniko::BUILDAH_CACHE_REPOSITORY);
            out.cache_service |= m.contains(super::from_kaniko::GHA_CACHE_SERVICE);
        }
        out
    }
}

/// The tag the original side is read with (`verify::extract`'s).
pub const DEFAULT_CACHE_TAG: &str = "buildcache";

impl Explained {
    /// Whether the cache ref `rewritten` stands for `original`. The notes
    /// name refs as the file writes them (variables unexpanded) while the
    /// plans are expanded: a rename explains the suffix it appends.
    fn same_cache_ref(&self, original: &str, rewritten: &str) -> bool {
        if self.cache_repo_chosen {
            return true;
        }
        if self.cache_repository {
            return super::from_kaniko::repository_of(original) == rewritten;
        }
        let mut candidates = vec![original.to_string()];
        if let Some(tag) = &self.cache_tag
            && let Some(repo) = original.strip_suffix(&format!(":{DEFAULT_CACHE_TAG}"))
        {
            candidates.push(format!("{repo}:{tag}"));
        }
        let suffixes = self
            .cache_renames
            .iter()
            .filter_map(|(old, new)| new.strip_prefix(old.as_str()))
            .filter(|s| !s.is_empty());
        candidates.iter().any(|c| c == rewritten)
            || suffixes
                .flat_map(|s| candidates.iter().map(move |c| format!("{c}{s}")))
                .any(|c| c == rewritten)
    }
}

/// The fields in which `rewritten` differs from `original` without an
/// explanation, in [`Field`] order (empty: the rewrite builds the same).
pub fn differences(
    original: &BuildPlan,
    rewritten: &BuildPlan,
    explained: &Explained,
) -> Vec<Field> {
    let mut out = Vec::new();
    let mut check = |field: Field, same: bool| {
        if !same {
            out.push(field);
        }
    };
    // Names matter only where an image is pushed or written: a build that
    // exports nothing but its cache names nothing.
    check(
        Field::Tags,
        original.tags == rewritten.tags || !(names_image(original) || names_image(rewritten)),
    );
    check(Field::Context, original.context == rewritten.context);
    check(
        Field::Dockerfile,
        dockerfile(original) == dockerfile(rewritten),
    );
    check(
        Field::BuildArgs,
        original.build_args == rewritten.build_args,
    );
    check(Field::Target, original.target == rewritten.target);
    check(Field::Labels, original.labels == rewritten.labels);
    check(
        Field::Annotations,
        original.annotations == rewritten.annotations,
    );
    check(Field::Output, outputs(original) == outputs(rewritten));
    check(Field::Platforms, original.platforms == rewritten.platforms);
    check(
        Field::CacheImports,
        same_caches(&original.cache_from, &rewritten.cache_from, explained),
    );
    check(
        Field::CacheExports,
        same_caches(&original.cache_to, &rewritten.cache_to, explained),
    );
    check(Field::Secrets, original.secrets == rewritten.secrets);
    check(
        Field::Passthrough,
        original.passthrough == rewritten.passthrough,
    );
    out
}

/// Whether the plan pushes or writes an image that carries its tags.
fn names_image(plan: &BuildPlan) -> bool {
    plan.push
        || plan.load
        || plan
            .outputs
            .iter()
            .any(|o| !matches!(o.kind(), Some("cacheonly" | "local" | "tar")))
}

/// The Dockerfile a plan builds: `-f` or `<context>/Dockerfile`.
fn dockerfile(plan: &BuildPlan) -> String {
    match &plan.dockerfile {
        Some(f) => f.clone(),
        None => format!("{}/Dockerfile", plan.context.trim_end_matches('/')),
    }
}

/// What a plan exports, with the shorthands spelled out: `--push` is
/// `type=image,push=true` (buildx's `type=registry`), `--load` is
/// `type=docker`.
fn outputs(plan: &BuildPlan) -> Vec<Vec<(String, String)>> {
    let mut out: Vec<Vec<(String, String)>> = Vec::new();
    let image = |push: bool| {
        vec![
            ("type".to_string(), "image".to_string()),
            ("push".to_string(), push.to_string()),
        ]
    };
    if plan.push {
        out.push(image(true));
    }
    if plan.load {
        out.push(vec![("type".into(), "docker".into())]);
    }
    for o in &plan.outputs {
        let mut attrs = o.attrs.clone();
        if o.kind() == Some("registry") {
            attrs.retain(|(k, _)| k != "type");
            attrs.insert(0, ("type".into(), "image".into()));
            attrs.retain(|(k, _)| k != "push");
            attrs.insert(1, ("push".into(), "true".into()));
        }
        out.push(attrs);
    }
    for o in &mut out {
        o.sort();
        o.dedup();
    }
    out.sort();
    out
}

/// Cache lists equal entry by entry, a `ref` equal up to what the notes
/// explain.
fn same_caches(original: &[AttrList], rewritten: &[AttrList], explained: &Explained) -> bool {
    original.len() == rewritten.len()
        && original.iter().zip(rewritten).all(|(o, r)| {
            // A registry cache moved to GitHub's cache service (a note
            // explains it) keeps everything but where it is stored.
            if explained.cache_service
                && o.get("type") == Some("registry")
                && r.get("type") == Some("gha")
            {
                return attrs_except(o, &["ref", "type"]) == attrs_except(r, &["ref", "type"]);
            }
            attrs_except(o, &["ref"]) == attrs_except(r, &["ref"])
                && match (o.get("ref"), r.get("ref")) {
                    (Some(a), Some(b)) => explained.same_cache_ref(a, b),
                    (a, b) => a == b,
                }
        })
}

/// A cache entry's attributes but `keys`, sorted.
fn attrs_except(a: &AttrList, keys: &[&str]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = a
        .attrs
        .iter()
        .filter(|(k, _)| !keys.contains(&k.as_str()))
        .cloned()
        .collect();
    v.sort();
    v
}

/// The fields, in words: `tags, context`.
pub fn describe(fields: &[Field]) -> String {
    fields
        .iter()
        .map(Field::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buildx::BuildArg;

    fn plan() -> BuildPlan {
        BuildPlan {
            context: "/w".into(),
            tags: vec!["r/app:1".into()],
            build_args: vec![BuildArg::parse("A=1")],
            cache_from: vec![AttrList::parse("type=registry,ref=r/app/cache:buildcache")],
            cache_to: vec![AttrList::parse(
                "type=registry,ref=r/app/cache:buildcache,mode=max",
            )],
            push: true,
            provenance: Some("false".into()),
            ..Default::default()
        }
    }

    #[test]
    fn renames_are_read_from_the_retag_note() {
        let e = Explained::from_notes(
            [
                "the registry cache is `r/c:ci-api`, not `r/c:ci`: the build `web` of another image would export to that ref too",
                "other",
            ],
            "ci",
        );
        assert_eq!(e.cache_tag.as_deref(), Some("ci"));
        assert_eq!(
            e.cache_renames,
            [("r/c:ci".to_string(), "r/c:ci-api".to_string())]
        );
        assert_eq!(Explained::from_notes([], DEFAULT_CACHE_TAG).cache_tag, None);
        let chosen = Explained::from_notes(
            [
                "Kaniko's default cache repository is `<repository of $D>/cache`, which cannot be derived from a variable; kmigrate uses `$D-buildcache`",
            ],
            DEFAULT_CACHE_TAG,
        );
        assert!(chosen.cache_repo_chosen);
    }

    #[test]
    fn the_same_plan_has_no_difference() {
        assert!(differences(&plan(), &plan(), &Explained::default()).is_empty());
    }

    #[test]
    fn builder_progress_and_default_dockerfile_are_not_differences() {
        let mut r = plan();
        r.builder = Some("kmigrate".into());
        r.progress = Some("plain".into());
        r.dockerfile = Some("/w/Dockerfile".into());
        assert!(differences(&plan(), &r, &Explained::default()).is_empty());
    }

    #[test]
    fn a_dropped_destination_and_a_lost_push_are_named() {
        let mut r = plan();
        r.tags.clear();
        r.push = false;
        assert_eq!(
            differences(&plan(), &r, &Explained::default()),
            [Field::Tags, Field::Output]
        );
        assert_eq!(
            describe(&[Field::Tags, Field::Output]),
            "tags, output (push / no-push / tar)"
        );
    }

    #[test]
    fn tags_of_a_cache_only_build_name_nothing() {
        let cache_only = |tags: &[&str]| BuildPlan {
            tags: tags.iter().map(|t| t.to_string()).collect(),
            push: false,
            outputs: vec![AttrList::parse("type=cacheonly")],
            ..plan()
        };
        let none = Explained::default();
        assert!(differences(&cache_only(&["r/a:1"]), &cache_only(&[]), &none).is_empty());
        let mut tar = cache_only(&["r/a:1"]);
        tar.outputs = vec![AttrList::parse("type=docker,dest=i.tar")];
        let mut untagged = tar.clone();
        untagged.tags.clear();
        assert_eq!(differences(&tar, &untagged, &none), [Field::Tags]);
    }

    #[test]
    fn push_shorthand_equals_registry_and_image_outputs() {
        let mut r = plan();
        r.push = false;
        r.outputs = vec![AttrList::parse("type=registry")];
        assert!(differences(&plan(), &r, &Explained::default()).is_empty());
        r.outputs = vec![AttrList::parse("type=image,push=true")];
        assert!(differences(&plan(), &r, &Explained::default()).is_empty());
        r.outputs = vec![AttrList::parse("type=image,push=false")];
        assert_eq!(
            differences(&plan(), &r, &Explained::default()),
            [Field::Output]
        );
    }

    #[test]
    fn a_cache_moved_to_github_s_service_is_the_same_only_when_a_note_says_so() {
        let mut r = plan();
        r.cache_from = vec![AttrList::parse("type=gha")];
        r.cache_to = vec![AttrList::parse("type=gha,mode=max")];
        assert_eq!(
            differences(&plan(), &r, &Explained::default()),
            [Field::CacheImports, Field::CacheExports]
        );
        let moved = Explained::from_notes(
            [format!(
                "the registry cache `r/app/cache:buildcache` {}",
                super::super::from_kaniko::GHA_CACHE_SERVICE
            )
            .as_str()],
            DEFAULT_CACHE_TAG,
        );
        assert!(differences(&plan(), &r, &moved).is_empty());
        // Moved, but the mode lost: still a difference.
        r.cache_to = vec![AttrList::parse("type=gha")];
        assert_eq!(differences(&plan(), &r, &moved), [Field::CacheExports]);
    }

    #[test]
    fn cache_refs_differ_only_as_the_notes_explain() {
        let retagged = |tag: &str| {
            let mut r = plan();
            for c in r.cache_from.iter_mut().chain(r.cache_to.iter_mut()) {
                c.set("ref", format!("r/app/cache:{tag}"));
            }
            r
        };
        let none = Explained::default();
        assert_eq!(
            differences(&plan(), &retagged("buildcache-api"), &none),
            [Field::CacheImports, Field::CacheExports]
        );
        let renamed = Explained {
            cache_renames: vec![(
                "r/app/cache:buildcache".into(),
                "r/app/cache:buildcache-api".into(),
            )],
            ..Default::default()
        };
        assert!(differences(&plan(), &retagged("buildcache-api"), &renamed).is_empty());
        let tag = Explained {
            cache_tag: Some("ci".into()),
            ..Default::default()
        };
        assert!(differences(&plan(), &retagged("ci"), &tag).is_empty());
        assert_eq!(
            differences(&plan(), &retagged("other"), &tag),
            [Field::CacheImports, Field::CacheExports]
        );
        // Renamed under a chosen tag: `repo:ci` became `repo:ci-api`.
        let both = Explained {
            cache_tag: Some("ci".into()),
            cache_renames: vec![("r/app/cache:ci".into(), "r/app/cache:ci-api".into())],
            ..Default::default()
        };
        assert!(differences(&plan(), &retagged("ci-api"), &both).is_empty());
        // The mode is part of the cache, not of its name.
        let mut r = plan();
        r.cache_to[0].set("mode", "min");
        assert_eq!(differences(&plan(), &r, &none), [Field::CacheExports]);
    }

    #[test]
    fn every_listed_field_is_compared() {
        let base = plan();
        type Change = Box<dyn Fn(&mut BuildPlan)>;
        let cases: Vec<(Field, Change)> = vec![
            (
                Field::Context,
                Box::new(|p| {
                    p.context = "/x".into();
                    p.dockerfile = Some("/w/Dockerfile".into());
                }),
            ),
            (
                Field::Dockerfile,
                Box::new(|p| p.dockerfile = Some("/w/other".into())),
            ),
            (Field::BuildArgs, Box::new(|p| p.build_args.clear())),
            (Field::Target, Box::new(|p| p.target = Some("t".into()))),
            (
                Field::Labels,
                Box::new(|p| p.labels.push(("a".into(), "b".into()))),
            ),
            (
                Field::Annotations,
                Box::new(|p| p.annotations.push("a=b".into())),
            ),
            (
                Field::Output,
                Box::new(|p| {
                    p.outputs
                        .push(AttrList::new([("type", "docker"), ("dest", "/t.tar")]))
                }),
            ),
            (
                Field::Platforms,
                Box::new(|p| p.platforms.push("linux/arm64".into())),
            ),
            (Field::CacheImports, Box::new(|p| p.cache_from.clear())),
            (Field::CacheExports, Box::new(|p| p.cache_to.clear())),
            (Field::Secrets, Box::new(|p| p.secrets.push("id=a".into()))),
            (
                Field::Passthrough,
                Box::new(|p| p.passthrough.push("%EXTRA%".into())),
            ),
        ];
        for (field, change) in cases {
            let mut r = base.clone();
            change(&mut r);
            assert_eq!(
                differences(&base, &r, &Explained::default()),
                [field],
                "{field}"
            );
        }
    }
}
