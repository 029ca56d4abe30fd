//! Registry mapping: every image and cache ref of a plan goes to a mapped
//! registry (`--registry-map FROM=TO`) or, by default, to the embedded store
//! (OCI layout directories under `.kmigrate/verify/`). A ref that matches no
//! mapping never reaches its real registry.

use std::path::{Path, PathBuf};

use kmigrate_lint::buildx::{AttrList, BuildPlan};

/// One `FROM=TO` prefix mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub from: String,
    pub to: String,
}

impl Mapping {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let (from, to) = raw.split_once('=').ok_or_else(|| {
            format!("--registry-map {raw:?}: write FROM=TO, e.g. europe-docker.pkg.dev/my-proj=127.0.0.1:5000/my-proj")
        })?;
        let from = from.trim().trim_end_matches('/');
        let to = to.trim().trim_end_matches('/');
        if from.is_empty() || to.is_empty() {
            return Err(format!(
                "--registry-map {raw:?}: FROM and TO must not be empty"
            ));
        }
        Ok(Mapping {
            from: from.into(),
            to: to.into(),
        })
    }
}

/// Where a ref went.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Mapped {
    pub original: String,
    /// The mapped ref, or the embedded store directory.
    pub target: String,
    pub embedded: bool,
}

/// Maps `reference` by the longest matching prefix (at a `/`, `:` or `@`
/// boundary).
pub fn map_ref(reference: &str, maps: &[Mapping]) -> Option<String> {
    maps.iter()
        .filter(|m| {
            reference == m.from
                || reference
                    .strip_prefix(&m.from)
                    .is_some_and(|r| r.starts_with(['/', ':', '@']))
        })
        .max_by_key(|m| m.from.len())
        .map(|m| format!("{}{}", m.to, &reference[m.from.len()..]))
}

/// A directory name for a ref.
pub fn sanitize(reference: &str) -> String {
    reference
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The plan as verify runs it, and what was redirected where.
#[derive(Debug, Clone)]
pub struct MappedPlan {
    pub plan: BuildPlan,
    pub refs: Vec<Mapped>,
    /// The cache the plan imports (after mapping), for the warm run.
    pub cache_from: Vec<AttrList>,
    /// Whether the plan exports a cache at all.
    pub exports_cache: bool,
    /// Where the image goes when no tag is mapped (embedded store).
    pub image_dir: Option<PathBuf>,
}

/// Rewrites every registry ref of `plan`.
pub fn map_plan(plan: &BuildPlan, maps: &[Mapping], store: &Path, unit: &str) -> MappedPlan {
    let mut p = plan.clone();
    let mut refs = Vec::new();
    let mut record = |original: &str, target: String, embedded: bool| {
        refs.push(Mapped {
            original: original.into(),
            target,
            embedded,
        });
    };
    // Images: mapped tags are pushed; the others go to the embedded store.
    let mut tags = Vec::new();
    let mut unmapped = Vec::new();
    for t in &plan.tags {
        match map_ref(t, maps) {
            Some(m) => {
                record(t, m.clone(), false);
                tags.push(m);
            }
            None => unmapped.push(t.clone()),
        }
    }
    let wants_image = plan.push
        || plan
            .outputs
            .iter()
            .any(|o| matches!(o.kind(), Some("registry" | "image")));
    p.outputs
        .retain(|o| !matches!(o.kind(), Some("registry" | "image" | "docker")));
    p.load = false;
    p.metadata_file = None;
    p.builder = None;
    p.progress = None;
    p.tags = tags;
    p.push = wants_image && !p.tags.is_empty();
    let mut image_dir = None;
    if p.tags.is_empty() {
        let name = plan
            .tags
            .first()
            .map(|t| sanitize(t))
            .unwrap_or_else(|| sanitize(unit));
        let dir = store.join("images").join(name);
        for t in &unmapped {
            record(t, dir.display().to_string(), true);
        }
        image_dir = Some(dir);
    }
    let map_cache = |spec: &AttrList, key: &str, record: &mut dyn FnMut(&str, String, bool)| {
        let kind = spec.kind().unwrap_or(if spec.get("").is_some() {
            "registry"
        } else {
            ""
        });
        if kind != "registry" {
            return spec.clone();
        }
        let r = spec.get("ref").or(spec.get("")).unwrap_or("").to_string();
        match map_ref(&r, maps) {
            Some(m) => {
                record(&r, m.clone(), false);
                let mut out = AttrList::new([("type", "registry"), ("ref", m.as_str())]);
                for (k, v) in &spec.attrs {
                    if !matches!(k.as_str(), "type" | "ref" | "") {
                        out.set(k, v.clone());
                    }
                }
                out
            }
            None => {
                let dir = store.join("cache").join(sanitize(&r));
                record(&r, dir.display().to_string(), true);
                let mut out = AttrList::new([("type", "local"), (key, &dir.display().to_string())]);
                if let Some(mode) = spec.get("mode") {
                    out.set("mode", mode);
                }
                out
            }
        }
    };
    let mut rec = |o: &str, t: String, e: bool| {
        if !refs_contains(&refs, o) {
            refs.push(Mapped {
                original: o.into(),
                target: t,
                embedded: e,
            });
        }
    };
    p.cache_from = plan
        .cache_from
        .iter()
        .map(|s| map_cache(s, "src", &mut rec))
        .collect();
    p.cache_to = plan
        .cache_to
        .iter()
        .map(|s| map_cache(s, "dest", &mut rec))
        .collect();
    let exports_cache = p
        .cache_to
        .iter()
        .any(|s| matches!(s.kind(), Some("registry" | "local")));
    MappedPlan {
        cache_from: p.cache_from.clone(),
        plan: p,
        refs,
        exports_cache,
        image_dir,
    }
}

fn refs_contains(refs: &[Mapped], original: &str) -> bool {
    refs.iter().any(|r| r.original == original)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmigrate_lint::buildx::parse_build_args;

    #[test]
    fn longest_prefix_at_a_boundary() {
        let maps = vec![
            Mapping::parse("europe-docker.pkg.dev/p=127.0.0.1:5000/p").unwrap(),
            Mapping::parse("europe-docker.pkg.dev/p/special=127.0.0.1:5001/s").unwrap(),
        ];
        assert_eq!(
            map_ref("europe-docker.pkg.dev/p/app:1", &maps).as_deref(),
            Some("127.0.0.1:5000/p/app:1")
        );
        assert_eq!(
            map_ref("europe-docker.pkg.dev/p/special/x", &maps).as_deref(),
            Some("127.0.0.1:5001/s/x")
        );
        assert_eq!(map_ref("europe-docker.pkg.dev/pp/app", &maps), None);
        assert!(Mapping::parse("nope").is_err());
    }

    #[test]
    fn unmapped_refs_go_to_the_embedded_store() {
        let plan = parse_build_args(&[
            "-t",
            "reg.example/app:1",
            "--cache-from",
            "type=registry,ref=reg.example/app/cache:buildcache",
            "--cache-to",
            "type=registry,ref=reg.example/app/cache:buildcache,mode=max",
            "--push",
            ".",
        ])
        .unwrap();
        let m = map_plan(&plan, &[], Path::new("/s"), "step 1");
        assert!(m.plan.tags.is_empty());
        assert!(!m.plan.push);
        assert_eq!(
            m.image_dir.as_deref(),
            Some(Path::new("/s/images/reg.example_app_1"))
        );
        assert_eq!(m.plan.cache_from[0].kind(), Some("local"));
        assert_eq!(
            m.plan.cache_to[0].get("dest"),
            Some("/s/cache/reg.example_app_cache_buildcache")
        );
        assert_eq!(m.plan.cache_to[0].get("mode"), Some("max"));
        assert!(m.refs.iter().all(|r| r.embedded));

        let maps = vec![Mapping::parse("reg.example=127.0.0.1:5000").unwrap()];
        let m = map_plan(&plan, &maps, Path::new("/s"), "step 1");
        assert_eq!(m.plan.tags, vec!["127.0.0.1:5000/app:1"]);
        assert!(m.plan.push);
        assert_eq!(
            m.plan.cache_to[0].get("ref"),
            Some("127.0.0.1:5000/app/cache:buildcache")
        );
        assert_eq!(m.plan.cache_to[0].get("mode"), Some("max"));
    }
}
