//! The buildx plugin's settings (`thegeeklab/drone-docker-buildx`,
//! `woodpeckerci/plugin-docker-buildx`: the same settings): written from a
//! `BuildPlan` for the rewrite, and read back into one (the rewrite's
//! equivalence check and `verify`).

use crate::buildx::{AttrList, BuildArg, BuildPlan};
use crate::source::render::{Quote, scalar};
use crate::source::{Node, Tree, Value};

/// Whether an image reference names one of the buildx plugins (any tag).
pub fn is_buildx_plugin(image: &str) -> bool {
    let name = crate::buildx::from_kaniko::repository_of(image.trim()).to_ascii_lowercase();
    let name = name.trim_start_matches("docker.io/");
    let name = name.trim_start_matches("quay.io/");
    matches!(
        name,
        "thegeeklab/drone-docker-buildx"
            | "thegeeklab/wp-docker-buildx"
            | "woodpeckerci/plugin-docker-buildx"
            | "codeberg.org/woodpecker-plugins/docker-buildx"
    )
}

/// One setting's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingValue {
    One(String),
    List(Vec<String>),
}

/// `repo:tag` split at the tag's colon (after the last `/`).
fn split_tag(reference: &str) -> (&str, Option<&str>) {
    let slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[slash..].find(':') {
        Some(i) => (&reference[..slash + i], Some(&reference[slash + i + 1..])),
        None => (reference, None),
    }
}

/// The settings for `plan`, in the order the plugin documents them (the
/// login settings are the caller's); `Err` names a part of the plan the
/// plugin has no setting for.
pub fn settings(plan: &BuildPlan) -> Result<Vec<(&'static str, SettingValue)>, String> {
    let refuse = |what: &str| Err(format!("the buildx plugin has no setting for {what}"));
    if !plan.passthrough.is_empty() {
        return refuse("flags only known at run time");
    }
    // A build that pushes nothing: the plugin's `dry_run`.
    let dry_run = !plan.push
        && plan.outputs.len() == 1
        && plan.outputs[0].kind() == Some("cacheonly")
        && plan.outputs[0].attrs.len() == 1;
    if (!plan.outputs.is_empty() && !dry_run) || plan.load || plan.metadata_file.is_some() {
        return refuse("an output other than the registry (a tarball, a local image)");
    }
    if !plan.secrets.is_empty() || !plan.annotations.is_empty() || plan.sbom.is_some() {
        return refuse("secrets, annotations or an SBOM as Kaniko was given them");
    }
    let one = |s: &str| SettingValue::One(s.to_string());
    let mut out = Vec::new();
    // Every tag of one repository: `repo` and `tags`.
    let mut repo: Option<&str> = None;
    let mut tags = Vec::new();
    for t in &plan.tags {
        let (r, tag) = split_tag(t);
        if repo.is_some_and(|x| x != r) {
            return Err(
                "the build pushes to several repositories, which the buildx plugin spells with `repo:` as a list and one `tags:` for all; write it by hand".into(),
            );
        }
        repo = Some(r);
        tags.push(tag.unwrap_or("latest").to_string());
    }
    let Some(repo) = repo else {
        return Err(
            "the build names no image, and the buildx plugin needs `repo:` even for a dry run; write the step by hand".into(),
        );
    };
    out.push(("repo", one(repo)));
    out.push(("tags", SettingValue::List(tags)));
    // The plugin's `dockerfile` is relative to the workspace, not to the
    // context: written whenever it is not `./Dockerfile`.
    let context = plan.context.trim_end_matches('/');
    match (&plan.dockerfile, context) {
        (Some(f), _) => out.push(("dockerfile", one(f))),
        (None, ".") => {}
        (None, c) => out.push(("dockerfile", one(&format!("{c}/Dockerfile")))),
    }
    if context != "." {
        out.push(("context", one(context)));
    }
    if let Some(t) = &plan.target {
        out.push(("target", one(t)));
    }
    if !plan.build_args.is_empty() {
        out.push((
            "build_args",
            SettingValue::List(plan.build_args.iter().map(BuildArg::to_string).collect()),
        ));
    }
    if !plan.labels.is_empty() {
        out.push((
            "labels",
            SettingValue::List(
                plan.labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect(),
            ),
        ));
    }
    if !plan.platforms.is_empty() {
        out.push(("platforms", SettingValue::List(plan.platforms.clone())));
    }
    // `cache_from` is a list the plugin splits on commas: plain refs only
    // (a plain ref is a registry cache).
    let mut from = Vec::new();
    for c in &plan.cache_from {
        match (c.kind(), c.get("ref"), c.attrs.len()) {
            (Some("registry"), Some(r), 2) => from.push(r.to_string()),
            _ => return refuse(&format!("the cache source `{c}`")),
        }
    }
    if !from.is_empty() {
        out.push(("cache_from", SettingValue::List(from)));
    }
    match plan.cache_to.as_slice() {
        [] => {}
        [one_to] => out.push(("cache_to", one(&one_to.to_string()))),
        _ => return refuse("several cache exports"),
    }
    if plan.no_cache {
        out.push(("no_cache", one("true")));
    }
    if dry_run {
        out.push(("dry_run", one("true")));
    }
    if let Some(p) = &plan.provenance {
        out.push(("provenance", one(p)));
    }
    Ok(out)
}

/// Renders `settings:` with its keys at column `indent`, the login
/// entries (`login`, source text as written) first.
pub fn render(settings: &[(&str, SettingValue)], login: &[&str], indent: usize) -> String {
    let pad = " ".repeat(indent);
    let mut out = String::from("settings:");
    for l in login {
        out.push('\n');
        out.push_str(&pad);
        out.push_str(l);
    }
    let v = |s: &str| scalar(s, Quote::Plain, false);
    for (key, value) in settings {
        out.push('\n');
        out.push_str(&pad);
        match value {
            SettingValue::One(s) if s == "true" || s == "false" => {
                out.push_str(&format!("{key}: {s}"))
            }
            SettingValue::One(s) => out.push_str(&format!("{key}: {}", v(s))),
            SettingValue::List(items) => {
                out.push_str(&format!("{key}:"));
                for i in items {
                    out.push('\n');
                    out.push_str(&pad);
                    out.push_str(&format!("  - {}", v(i)));
                }
            }
        }
    }
    out
}

/// The plan a buildx plugin step with `settings` builds (as the plugin
/// reads them: lists or comma-separated strings, `tags` default `latest`,
/// `dockerfile` relative to the workspace; on Woodpecker `-` in a name is
/// `_`).
pub fn read_plan(tree: &Tree, settings: Option<&Node>, woodpecker: bool) -> BuildPlan {
    let mut plan = BuildPlan {
        context: ".".into(),
        push: true,
        pull: true,
        ..BuildPlan::default()
    };
    let mut repo: Vec<String> = Vec::new();
    let mut tags = vec!["latest".to_string()];
    let mut dockerfile = "Dockerfile".to_string();
    let Some(map) = settings.and_then(|s| s.as_map()) else {
        return plan;
    };
    for e in &map.entries {
        let Some(key) = e.key.as_str() else { continue };
        let key = super::settings::setting_name(key, woodpecker);
        let key = key.as_str();
        // An alias is read as the node it names.
        let value = match &e.value.value {
            Value::Alias(name) => match tree.anchored(name, e.value.span.start) {
                Some(v) => v,
                None => continue,
            },
            _ => &e.value,
        };
        let list: Vec<String> = match value.as_seq() {
            Some(seq) => seq
                .items
                .iter()
                .filter_map(|i| i.node.as_str().map(|s| s.trim().to_string()))
                .collect(),
            // The plugin splits a string on commas; `\,` is a comma kept.
            None => value
                .as_str()
                .map(|s| {
                    s.replace("\\,", "\u{0}")
                        .split(',')
                        .map(|p| p.trim().replace('\u{0}', ","))
                        .filter(|p| !p.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        };
        let text = value.as_str().unwrap_or("").trim().to_string();
        let yes = text.eq_ignore_ascii_case("true");
        match key {
            "repo" => repo = list,
            "tags" => tags = list,
            "dockerfile" => dockerfile = text,
            "context" => plan.context = text.trim_start_matches("./").to_string(),
            "target" => plan.target = Some(text),
            "build_args" => plan.build_args = list.iter().map(|a| BuildArg::parse(a)).collect(),
            "labels" => {
                plan.labels = list
                    .iter()
                    .map(|l| match l.split_once('=') {
                        Some((k, v)) => (k.to_string(), v.to_string()),
                        None => (l.to_string(), String::new()),
                    })
                    .collect()
            }
            "platforms" => plan.platforms = list,
            "cache_from" => {
                plan.cache_from = list
                    .iter()
                    .map(|c| match c.contains('=') {
                        true => AttrList::parse(c),
                        false => AttrList::new([("type", "registry"), ("ref", c.as_str())]),
                    })
                    .collect()
            }
            "cache_to" => plan.cache_to = vec![AttrList::parse(&text)],
            "no_cache" => plan.no_cache = yes,
            // The image stays in the step's own Docker daemon, which goes
            // with the step: nothing leaves the build but its cache.
            "dry_run" if yes => {
                plan.push = false;
                plan.outputs = vec![AttrList::new([("type", "cacheonly")])];
            }
            "dry_run" => {}
            "pull_image" => plan.pull = yes,
            "provenance" => plan.provenance = Some(text),
            "sbom" => plan.sbom = Some(text),
            // The login: changes nothing in the image.
            "registry" | "username" | "password" | "email" | "registries" => {}
            other => plan.passthrough.push(format!("{other}={text}")),
        }
    }
    plan.tags = repo
        .iter()
        .flat_map(|r| tags.iter().map(move |t| format!("{r}:{t}")))
        .collect();
    let context = plan.context.trim_end_matches('/');
    let default = match context {
        "" | "." => "Dockerfile".to_string(),
        c => format!("{c}/Dockerfile"),
    };
    let file = dockerfile.trim_start_matches("./");
    if file != default {
        plan.dockerfile = Some(file.to_string());
    }
    if plan.context.is_empty() {
        plan.context = ".".into();
    }
    plan
}
