//! `docker/build-push-action` inputs: written from a `BuildPlan` for the
//! rewrite, and read back into one (the rewrite's equivalence check and
//! `verify`).

use crate::buildx::{AttrList, BuildArg, BuildPlan};
use crate::source::Node;
use crate::source::render::{Quote, scalar};

/// The actions the rewrite writes, pinned by major version as the
/// ecosystem does.
pub const SETUP_BUILDX: &str = "docker/setup-buildx-action@v3";
pub const BUILD_PUSH: &str = "docker/build-push-action@v6";
pub const LOGIN: &str = "docker/login-action@v3";

/// Whether a `uses:` value names `docker/build-push-action` (any ref).
pub fn is_build_push(uses: &str) -> bool {
    uses.split('@')
        .next()
        .is_some_and(|n| n.trim().eq_ignore_ascii_case("docker/build-push-action"))
}

/// Whether a `uses:` value names `docker/setup-buildx-action` (any ref).
pub fn is_setup_buildx(uses: &str) -> bool {
    uses.split('@')
        .next()
        .is_some_and(|n| n.trim().eq_ignore_ascii_case("docker/setup-buildx-action"))
}

/// One input value: a single line, or a list written one item per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputValue {
    One(String),
    Lines(Vec<String>),
}

/// The inputs for `plan`, in the order the action documents them; `Err`
/// names a part of the plan the action has no input for.
pub fn inputs(plan: &BuildPlan) -> Result<Vec<(&'static str, InputValue)>, String> {
    if !plan.passthrough.is_empty() {
        return Err(format!(
            "the arguments `{}` stand for flags only known at run time, which build-push-action has no input for",
            plan.passthrough.join(" ")
        ));
    }
    if let Some(m) = &plan.metadata_file {
        return Err(format!(
            "build-push-action writes no metadata file (`{m}`): use its `digest` and `metadata` outputs instead"
        ));
    }
    if plan.context == "-" {
        return Err("a context read from stdin has no build-push-action input".into());
    }
    let mut out = Vec::new();
    let one = |s: &str| InputValue::One(s.to_string());
    let list = |items: Vec<String>| match items.len() {
        1 => InputValue::One(items.into_iter().next().unwrap_or_default()),
        _ => InputValue::Lines(items),
    };
    // Always written: without it the action builds the git context.
    out.push(("context", one(&plan.context)));
    if let Some(f) = &plan.dockerfile {
        out.push(("file", one(f)));
    }
    if let Some(t) = &plan.target {
        out.push(("target", one(t)));
    }
    if !plan.build_args.is_empty() {
        out.push((
            "build-args",
            list(plan.build_args.iter().map(BuildArg::to_string).collect()),
        ));
    }
    if !plan.labels.is_empty() {
        out.push((
            "labels",
            // A label read without `=` (an expression that expands to
            // several) is written back as it was.
            list(
                plan.labels
                    .iter()
                    .map(|(k, v)| match v.is_empty() && !k.contains('=') {
                        true => k.clone(),
                        false => format!("{k}={v}"),
                    })
                    .collect(),
            ),
        ));
    }
    if !plan.annotations.is_empty() {
        out.push(("annotations", list(plan.annotations.clone())));
    }
    if !plan.platforms.is_empty() {
        out.push(("platforms", one(&plan.platforms.join(","))));
    }
    if !plan.tags.is_empty() {
        out.push(("tags", list(plan.tags.clone())));
    }
    if plan.push {
        out.push(("push", one("true")));
    }
    if plan.load {
        out.push(("load", one("true")));
    }
    if !plan.outputs.is_empty() {
        out.push((
            "outputs",
            list(plan.outputs.iter().map(AttrList::to_string).collect()),
        ));
    }
    if !plan.cache_from.is_empty() {
        out.push((
            "cache-from",
            list(plan.cache_from.iter().map(AttrList::to_string).collect()),
        ));
    }
    if !plan.cache_to.is_empty() {
        out.push((
            "cache-to",
            list(plan.cache_to.iter().map(AttrList::to_string).collect()),
        ));
    }
    if plan.no_cache {
        out.push(("no-cache", one("true")));
    }
    if plan.pull {
        out.push(("pull", one("true")));
    }
    if let Some(p) = &plan.provenance {
        out.push(("provenance", one(p)));
    }
    if let Some(s) = &plan.sbom {
        out.push(("sbom", one(s)));
    }
    if !plan.secrets.is_empty() {
        return Err(
            "build secrets need build-push-action's `secrets`/`secret-files` inputs, which take a different form; write them by hand".into(),
        );
    }
    Ok(out)
}

/// Renders a `with:` block: `with:` at the key's column (`indent`), one
/// input per line below it.
pub fn render_with(inputs: &[(&str, InputValue)], indent: usize, nl: &str) -> String {
    let pad = " ".repeat(indent + 2);
    let mut out = String::from("with:");
    for (key, value) in inputs {
        out.push_str(nl);
        out.push_str(&pad);
        match value {
            // Booleans as workflows write them (the action reads text).
            InputValue::One(v) if v == "true" || v == "false" => {
                out.push_str(&format!("{key}: {v}"));
            }
            InputValue::One(v) => {
                out.push_str(&format!("{key}: {}", scalar(v, Quote::Plain, false)));
            }
            InputValue::Lines(lines) => {
                out.push_str(&format!("{key}: |"));
                for l in lines {
                    out.push_str(nl);
                    out.push_str(&pad);
                    out.push_str("  ");
                    out.push_str(l);
                }
            }
        }
    }
    out
}

/// The plan a build-push-action step with inputs `with` builds (as the
/// action reads its inputs: lists split on new lines, tags and platforms
/// also on commas; a missing `context` is the git context).
pub fn read_plan(with: Option<&Node>) -> BuildPlan {
    let mut plan = BuildPlan {
        context: "{git context}".into(),
        ..BuildPlan::default()
    };
    let Some(map) = with.and_then(|w| w.as_map()) else {
        return plan;
    };
    let lines = |s: &str, comma: bool| -> Vec<String> {
        s.split(|c| c == '\n' || (comma && c == ','))
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    };
    for e in &map.entries {
        let (Some(key), Some(value)) = (e.key.as_str(), e.value.as_str()) else {
            continue;
        };
        let v = value.trim();
        let yes = v.eq_ignore_ascii_case("true");
        match key {
            "context" => plan.context = v.to_string(),
            "file" => plan.dockerfile = Some(v.to_string()),
            "target" => plan.target = Some(v.to_string()),
            "tags" => plan.tags = lines(v, true),
            "build-args" => {
                plan.build_args = lines(v, false).iter().map(|a| BuildArg::parse(a)).collect()
            }
            "labels" => {
                plan.labels = lines(v, false)
                    .iter()
                    .map(|l| match l.split_once('=') {
                        Some((k, v)) => (k.to_string(), v.to_string()),
                        None => (l.to_string(), String::new()),
                    })
                    .collect()
            }
            "annotations" => plan.annotations = lines(v, false),
            "platforms" => plan.platforms = lines(v, true),
            "push" => plan.push = yes,
            "load" => plan.load = yes,
            "outputs" => {
                plan.outputs = lines(v, false).iter().map(|o| AttrList::parse(o)).collect()
            }
            "cache-from" => {
                plan.cache_from = lines(v, false).iter().map(|o| AttrList::parse(o)).collect()
            }
            "cache-to" => {
                plan.cache_to = lines(v, false).iter().map(|o| AttrList::parse(o)).collect()
            }
            "no-cache" => plan.no_cache = yes,
            "pull" => plan.pull = yes,
            "provenance" => plan.provenance = Some(v.to_string()),
            "sbom" => plan.sbom = Some(v.to_string()),
            "secrets" => plan.secrets = lines(v, false),
            "builder" => plan.builder = Some(v.to_string()),
            // Changes nothing in the image.
            "github-token" => {}
            other => plan.passthrough.push(format!("{other}={v}")),
        }
    }
    // The action's `file` defaults to `{context}/Dockerfile`.
    let default = if plan.context == "." {
        "Dockerfile".to_string()
    } else {
        format!("{}/Dockerfile", plan.context.trim_end_matches('/'))
    };
    if plan
        .dockerfile
        .as_deref()
        .is_some_and(|f| f.trim_start_matches("./") == default)
    {
        plan.dockerfile = None;
    }
    plan
}
