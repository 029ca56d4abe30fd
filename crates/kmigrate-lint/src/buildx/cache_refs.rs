//! One registry cache ref per build across a whole config or pipeline.
//!
//! Kaniko's cache repository held one tag per layer key, so several builds
//! could share one `--cache-repo` (or the default `<repo>/cache` of one
//! image repository) safely. BuildKit's registry cache is one manifest per
//! ref: the last build to export overwrites the others, and the next run's
//! builds miss. So builds of different images that would export to one ref
//! each get their own tag in the same repository. Builds that are the same
//! build (a retry step: same tags, Dockerfile, context, target, build args
//! and platforms) keep sharing it.

use std::collections::HashSet;

use super::from_kaniko::{Conversion, Note, NoteKind};
use super::plan::BuildPlan;
use crate::kaniko::Call;

/// One build that exports to (and imports from) a registry cache ref.
#[derive(Debug, Clone)]
pub struct CacheUse<'a> {
    pub cache_ref: &'a str,
    pub plan: &'a BuildPlan,
    /// Readable names for the build, best first (the step `id` or job
    /// name, then the Dockerfile, the image…): the first one that tells it
    /// apart from the others sharing its ref becomes its tag's suffix.
    pub names: Vec<String>,
}

/// The longest OCI tag.
const TAG_MAX: usize = 128;

/// What makes two builds the same build.
#[derive(PartialEq, Eq)]
struct Identity<'a> {
    tags: Vec<&'a str>,
    context: &'a str,
    dockerfile: Option<&'a str>,
    target: Option<&'a str>,
    build_args: Vec<(&'a str, Option<&'a str>)>,
    platforms: Vec<&'a str>,
}

fn identity(plan: &BuildPlan) -> Identity<'_> {
    let mut tags: Vec<&str> = plan.tags.iter().map(String::as_str).collect();
    tags.sort_unstable();
    tags.dedup();
    let mut platforms: Vec<&str> = plan.platforms.iter().map(String::as_str).collect();
    platforms.sort_unstable();
    Identity {
        tags,
        context: &plan.context,
        dockerfile: plan.dockerfile.as_deref(),
        target: plan.target.as_deref(),
        build_args: plan
            .build_args
            .iter()
            .map(|a| (a.name.as_str(), a.value.as_deref()))
            .collect(),
        platforms,
    }
}

/// `text` as the readable part of a tag: `[A-Za-z0-9_.-]`, other runs of
/// characters as one `-`, no `-`/`.` at either end; `None` when nothing is
/// left or the text is a variable.
pub fn slug(text: &str) -> Option<String> {
    if text.contains('$') {
        return None;
    }
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches(['-', '.']).to_string();
    (!out.is_empty()).then_some(out)
}

/// `reference` with `-suffix` appended to its tag, the tag kept within
/// the OCI limit (a tag made of a variable is not measured).
fn with_suffix(reference: &str, suffix: &str) -> String {
    let tag_len = reference
        .rsplit_once(':')
        .filter(|(_, t)| !t.contains('/'))
        .map_or(0, |(_, t)| t.len());
    let room = TAG_MAX.saturating_sub(tag_len + 1);
    let suffix: String = if reference.contains('$') {
        suffix.to_string()
    } else {
        suffix.chars().take(room.max(1)).collect()
    };
    format!("{reference}-{}", suffix.trim_end_matches(['-', '.']))
}

/// A build's new cache ref and the builds that made it necessary.
pub struct Retag {
    pub new_ref: String,
    /// The first readable name of each other build that shared the old ref.
    pub others: Vec<String>,
}

/// For each build, its [`Retag`] (`None`: it keeps its own ref): what
/// each platform applies with [`retag`] once the builds are assigned.
pub fn assign(builds: &[CacheUse]) -> Vec<Option<Retag>> {
    let new_refs = distinct(builds);
    (0..builds.len())
        .map(|i| {
            new_refs[i].clone().map(|new_ref| Retag {
                new_ref,
                others: sharing_names(builds, &new_refs, i),
            })
        })
        .collect()
}

/// For each build, the ref it uses instead of its own (`None`: it keeps
/// its own, which no build of another image shares). Stable: the same
/// config gives the same refs on every run.
pub fn distinct(builds: &[CacheUse]) -> Vec<Option<String>> {
    let mut out = vec![None; builds.len()];
    let mut taken: HashSet<String> = builds.iter().map(|b| b.cache_ref.to_string()).collect();
    let mut seen_refs: Vec<&str> = Vec::new();
    for b in builds {
        if seen_refs.contains(&b.cache_ref) {
            continue;
        }
        seen_refs.push(b.cache_ref);
        let members: Vec<usize> = (0..builds.len())
            .filter(|&i| builds[i].cache_ref == b.cache_ref)
            .collect();
        // The distinct builds sharing the ref, in config order, each with
        // the members that are the same build.
        let mut kinds: Vec<Vec<usize>> = Vec::new();
        for &i in &members {
            let id = identity(builds[i].plan);
            match kinds.iter_mut().find(|k| identity(builds[k[0]].plan) == id) {
                Some(k) => k.push(i),
                None => kinds.push(vec![i]),
            }
        }
        if kinds.len() < 2 {
            continue;
        }
        for (n, kind) in kinds.iter().enumerate() {
            let first = &builds[kind[0]];
            let names: Vec<String> = first.names.iter().filter_map(|s| slug(s)).collect();
            // The first name no other distinct build has as its own first
            // name, and whose ref is free.
            let others_first: Vec<Option<String>> = kinds
                .iter()
                .enumerate()
                .filter(|(m, _)| *m != n)
                .map(|(_, k)| builds[k[0]].names.iter().find_map(|s| slug(s)))
                .collect();
            let pick = names.iter().find(|s| {
                !others_first.contains(&Some((*s).clone()))
                    && !taken.contains(&with_suffix(b.cache_ref, s))
            });
            let new_ref = match pick {
                Some(s) => with_suffix(b.cache_ref, s),
                None => {
                    let base = names.first().cloned().unwrap_or_else(|| "build".into());
                    let mut k = n + 1;
                    loop {
                        let r = with_suffix(b.cache_ref, &format!("{base}-{k}"));
                        if !taken.contains(&r) {
                            break r;
                        }
                        k += 1;
                    }
                }
            };
            taken.insert(new_ref.clone());
            for &i in kind {
                out[i] = Some(new_ref.clone());
            }
        }
    }
    out
}

/// Moves a converted call's registry cache from its ref to `new_ref`, with
/// the KM011 note that says why the tag differs; `others` names the builds
/// of other images that shared the ref.
pub fn retag(conversion: &mut Conversion, call: &Call, new_ref: &str, others: &[String]) {
    let Some(old) = conversion.cache_ref.clone() else {
        return;
    };
    for list in [
        &mut conversion.plan.cache_from,
        &mut conversion.plan.cache_to,
    ] {
        for attrs in list.iter_mut() {
            for (k, v) in attrs.attrs.iter_mut() {
                if k == "ref" && *v == old {
                    *v = new_ref.to_string();
                }
            }
        }
    }
    for n in conversion
        .notes
        .iter_mut()
        .filter(|n| n.kind == NoteKind::CacheTtl)
    {
        if let Some(h) = &mut n.help {
            *h = h.replace(&format!("`{old}`"), &format!("`{new_ref}`"));
        }
    }
    let args = call
        .all("cache-repo")
        .last()
        .or_else(|| call.all("cache").last())
        .map(|u| u.args.clone())
        .unwrap_or(0..0);
    let who = match others {
        [] => "builds of other images".to_string(),
        [one] => format!("the build `{one}` of another image"),
        [rest @ .., last] => format!(
            "the builds {} and `{last}` of other images",
            rest.iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    conversion.notes.push(Note {
        kind: NoteKind::Changed,
        args,
        message: format!(
            "the registry cache is `{new_ref}`, not `{old}`: {who} would export to that ref too, and BuildKit's registry cache is one manifest per ref (the last export overwrites the others, so the next run misses; Kaniko's cache repository kept one tag per layer)"
        ),
        help: Some("each build gets its own tag in the same cache repository, named after the step or job; a retry of the same build (same tags, Dockerfile, context, target and build args) keeps sharing its tag".into()),
    });
    conversion.cache_ref = Some(new_ref.to_string());
}

/// The (old, new) refs a note written by [`retag`] names: what explains a
/// rewritten build's cache ref differing from the original's.
pub fn renamed(note_message: &str) -> Option<(String, String)> {
    let rest = note_message.strip_prefix("the registry cache is `")?;
    let (new, rest) = rest.split_once("`, not `")?;
    let (old, _) = rest.split_once("`: ")?;
    Some((old.to_string(), new.to_string()))
}

/// The names of the builds other than `i` that shared `i`'s old ref, as
/// each one's first readable name.
fn sharing_names(builds: &[CacheUse], new_refs: &[Option<String>], i: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (j, b) in builds.iter().enumerate() {
        if j == i || b.cache_ref != builds[i].cache_ref || new_refs[j] == new_refs[i] {
            continue;
        }
        if let Some(n) = b.names.first()
            && !out.contains(n)
        {
            out.push(n.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buildx::plan::BuildArg;

    fn plan(tag: &str, dockerfile: Option<&str>) -> BuildPlan {
        BuildPlan {
            tags: vec![tag.into()],
            context: ".".into(),
            dockerfile: dockerfile.map(String::from),
            ..Default::default()
        }
    }

    fn uses<'a>(items: &'a [(&'a str, BuildPlan, Vec<String>)]) -> Vec<CacheUse<'a>> {
        items
            .iter()
            .map(|(r, p, n)| CacheUse {
                cache_ref: r,
                plan: p,
                names: n.clone(),
            })
            .collect()
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn builds_of_different_images_get_their_own_tags() {
        let items = [
            ("r/cache:bc", plan("r/a", None), names(&["api"])),
            ("r/cache:bc", plan("r/b", None), names(&["web"])),
            ("r/other:bc", plan("r/c", None), names(&["solo"])),
        ];
        let got = distinct(&uses(&items));
        assert_eq!(
            got,
            [
                Some("r/cache:bc-api".to_string()),
                Some("r/cache:bc-web".to_string()),
                None
            ]
        );
    }

    #[test]
    fn a_retry_of_the_same_build_keeps_sharing() {
        let items = [
            ("r/cache:bc", plan("r/a:1", None), names(&["build"])),
            ("r/cache:bc", plan("r/a:1", None), names(&["retry"])),
        ];
        assert_eq!(distinct(&uses(&items)), [None, None]);
        // A retry beside a different build shares the first one's tag.
        let items = [
            ("r/cache:bc", plan("r/a:1", None), names(&["build"])),
            ("r/cache:bc", plan("r/a:1", None), names(&["retry"])),
            ("r/cache:bc", plan("r/b:1", None), names(&["other"])),
        ];
        let got = distinct(&uses(&items));
        assert_eq!(got[0].as_deref(), Some("r/cache:bc-build"));
        assert_eq!(got[1], got[0]);
        assert_eq!(got[2].as_deref(), Some("r/cache:bc-other"));
    }

    #[test]
    fn different_build_args_or_dockerfiles_are_different_builds() {
        let mut with_arg = plan("r/a", None);
        with_arg.build_args.push(BuildArg::parse("X=1"));
        let items = [
            ("r/c:t", plan("r/a", None), names(&["one"])),
            ("r/c:t", with_arg, names(&["two"])),
            (
                "r/c:t",
                plan("r/a", Some("svc/Dockerfile")),
                names(&["three"]),
            ),
        ];
        let got = distinct(&uses(&items));
        assert!(got.iter().all(Option::is_some), "{got:?}");
        let set: HashSet<_> = got.iter().collect();
        assert_eq!(set.len(), 3);
    }

    #[test]
    fn names_that_clash_fall_back_to_later_names_then_numbers() {
        let items = [
            ("r/c:t", plan("r/a", None), names(&["job", "a"])),
            ("r/c:t", plan("r/b", None), names(&["job", "b"])),
            ("r/c:t", plan("r/d", None), names(&["$VAR"])),
            ("r/c:t-job-x", plan("r/e", None), names(&["x"])),
        ];
        let got = distinct(&uses(&items));
        assert_eq!(got[0].as_deref(), Some("r/c:t-a"));
        assert_eq!(got[1].as_deref(), Some("r/c:t-b"));
        assert_eq!(got[2].as_deref(), Some("r/c:t-build-3"));
        assert_eq!(got[3], None);
    }

    #[test]
    fn tags_are_valid_and_bounded() {
        assert_eq!(slug("build api/v2: x").as_deref(), Some("build-api-v2-x"));
        assert_eq!(slug("-.x.-").as_deref(), Some("x"));
        assert_eq!(slug("$CI_JOB_NAME"), None);
        let long = "n".repeat(300);
        let r = with_suffix("r/c:buildcache", &long);
        let tag = r.rsplit_once(':').unwrap().1;
        assert_eq!(tag.len(), TAG_MAX);
        let valid = |t: &str| {
            t.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        };
        assert!(valid(tag), "{tag}");
        assert_eq!(
            with_suffix("${_IMAGE}-buildcache", "a"),
            "${_IMAGE}-buildcache-a"
        );
    }
}
