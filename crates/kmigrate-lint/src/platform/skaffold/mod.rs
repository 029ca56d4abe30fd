//! Skaffold (`skaffold.yaml`, `apiVersion: skaffold/v…`, `kind: Config`,
//! every document and profile): artifacts built by `kaniko:` on a
//! `build.cluster` (or Cloud Build).
//!
//! One migration builds the same image and is offered as a fix (see
//! [`local`]): Kaniko artifacts with only `dockerfile`, `target` and
//! `buildArgs` move to `docker:` artifacts on `build.local` with BuildKit.
//! Everything else is a manual task: Skaffold's local `docker:` builder
//! imports a cache from images (`cacheFrom`) but cannot export a registry
//! cache (no `--cache-to`, no `mode=max`), and Skaffold has no in-cluster
//! BuildKit builder, so kmigrate says how and leaves the choice to a human
//! rather than change a build's output silently.

use std::ops::Range;
use std::path::Path;

use crate::buildx::from_kaniko::{self, ConvertOptions};
use crate::kaniko::call::{self, Arg, Call};
use crate::options::Options;
use crate::readback::extract::{Extracted, Inputs, Kind};
use crate::rules::{Finding, Rule};
use crate::source::{Entry, Item, Node, SourceError, SourceFile, Value};

pub mod local;

/// Where Skaffold's Kaniko pod sees the artifact's context.
const WORKSPACE: &str = "/kaniko/buildcontext";

/// One artifact of a `build.artifacts` list (top level or a profile's).
pub struct Artifact<'a> {
    /// `image:` as written.
    pub image: String,
    /// Where it is (`build.artifacts[0]`, `profiles[ci].build.artifacts[1]`).
    pub label: String,
    pub item: &'a Item,
    /// The `kaniko:` entry, if the artifact builds with Kaniko.
    pub kaniko: Option<&'a Entry>,
    /// Where the `build:` it is in runs (`cluster`, `googleCloudBuild`).
    pub environment: Option<&'static str>,
    /// The `build:` it is in.
    pub build: &'a Node,
}

/// Whether a document is a Skaffold config.
fn is_config(doc: &Node) -> bool {
    doc.get("apiVersion")
        .and_then(|a| a.as_str())
        .is_some_and(|a| a.starts_with("skaffold/"))
        && doc.get("kind").and_then(|k| k.as_str()) == Some("Config")
}

/// Every artifact of every config document and profile.
pub fn artifacts(source: &SourceFile) -> Vec<Artifact<'_>> {
    let mut out = Vec::new();
    for doc in source.tree.documents.iter().filter(|d| is_config(d)) {
        let mut builds: Vec<(String, &Node)> = Vec::new();
        if let Some(b) = doc.get("build") {
            builds.push(("build".into(), b));
        }
        for (i, p) in doc
            .get("profiles")
            .and_then(|p| p.as_seq())
            .map(|s| s.items.as_slice())
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let name = p
                .node
                .get("name")
                .and_then(|n| n.as_str())
                .map_or_else(|| i.to_string(), String::from);
            if let Some(b) = p.node.get("build") {
                builds.push((format!("profiles[{name}].build"), b));
            }
        }
        for (at, build) in builds {
            let environment = ["cluster", "googleCloudBuild", "local"]
                .into_iter()
                .find(|e| build.get(e).is_some());
            let Some(seq) = build.get("artifacts").and_then(|a| a.as_seq()) else {
                continue;
            };
            for (i, item) in seq.items.iter().enumerate() {
                out.push(Artifact {
                    image: item
                        .node
                        .get("image")
                        .and_then(|n| n.as_str())
                        .unwrap_or("")
                        .to_string(),
                    label: format!("{at}.artifacts[{i}]"),
                    item,
                    kaniko: item.node.entry("kaniko"),
                    environment,
                    build,
                });
            }
        }
    }
    out
}

/// The executor call Skaffold makes for a Kaniko artifact: its
/// `dockerfile`, `target`, `buildArgs`, `cache` and `flags` as executor
/// flags (the tag comes from the tag policy at run time: `IMAGE` stands
/// for it).
pub fn kaniko_call(artifact: &Artifact) -> Call {
    let Some(k) = artifact.kaniko else {
        return call::parse(Vec::new());
    };
    let node = &k.value;
    let mut args = Vec::new();
    let arg = |text: String, span: &Range<usize>| Arg {
        text,
        span: Some(span.clone()),
        dynamic: false,
    };
    args.push(arg(format!("--context=dir://{WORKSPACE}"), &k.key.span));
    args.push(arg(
        format!("--destination={}:IMAGE_TAG", artifact.image),
        &k.key.span,
    ));
    if let Some(e) = node.entry("dockerfile")
        && let Some(f) = e.value.as_str()
    {
        args.push(arg(format!("--dockerfile={f}"), &e.value.span));
    }
    if let Some(e) = node.entry("target")
        && let Some(t) = e.value.as_str()
    {
        args.push(arg(format!("--target={t}"), &e.value.span));
    }
    if let Some(Value::Map(m)) = node.get("buildArgs").map(|b| &b.value) {
        for e in &m.entries {
            let key = e.key.as_str().unwrap_or("");
            let text = match e.value.as_str() {
                Some(v) => format!("--build-arg={key}={v}"),
                None => format!("--build-arg={key}"),
            };
            args.push(arg(text, &e.span));
        }
    }
    if let Some(cache) = node.entry("cache") {
        args.push(arg("--cache=true".into(), &cache.key.span));
        if let Some(e) = cache.value.entry("repo")
            && let Some(r) = e.value.as_str()
        {
            args.push(arg(format!("--cache-repo={r}"), &e.value.span));
        }
        if let Some(e) = cache.value.entry("ttl")
            && let Some(t) = e.value.as_str()
        {
            args.push(arg(format!("--cache-ttl={t}"), &e.value.span));
        }
        if let Some(e) = cache.value.entry("hostPath")
            && let Some(p) = e.value.as_str()
        {
            args.push(arg(format!("--cache-dir={p}"), &e.value.span));
        }
    }
    if let Some(Value::Seq(seq)) = node.get("flags").map(|f| &f.value) {
        for item in &seq.items {
            if let Some(f) = item.node.as_str() {
                args.push(arg(f.to_string(), &item.node.span));
            }
        }
    }
    call::parse(args)
}

fn convert_options(opts: &Options) -> ConvertOptions<'_> {
    ConvertOptions {
        cache_tag: &opts.cache_tag,
        workdir: WORKSPACE,
        default_context: WORKSPACE,
        local_workdir: None,
    }
}

/// What to do with a Kaniko artifact.
fn todo(artifact: &Artifact) -> String {
    let mut docker = String::from("`docker:` with the same `dockerfile`, `target` and `buildArgs`");
    if artifact
        .kaniko
        .is_some_and(|k| k.value.get("cache").is_some())
    {
        docker.push_str(" and `cacheFrom: [<the image>]` (with `buildArgs: {BUILDKIT_INLINE_CACHE: \"1\"}` for BuildKit to find the cache in the image)");
    }
    // Kaniko settings a `docker:` artifact has no field for.
    let others: Vec<String> = artifact
        .kaniko
        .and_then(|k| k.value.as_map())
        .map(|m| {
            m.entries
                .iter()
                .filter_map(|e| e.key.as_str())
                .filter(|k| !KNOWN.contains(k))
                .map(|k| format!("`{k}`"))
                .collect()
        })
        .unwrap_or_default();
    let also = match others.is_empty() {
        true => String::new(),
        false => format!(
            ". The artifact's `kaniko:` also sets {}, which no `docker:` field carries: move their effect by hand",
            others.join(", ")
        ),
    };
    format!(
        "not rewritten automatically: Skaffold has no in-cluster builder but Kaniko for a Dockerfile, and its local Docker builder cannot export a registry cache (no `cache-to`, no `mode=max`), so every way off Kaniko changes where or how the image is built. Where Docker is available (a CI job, a workstation): replace `cluster:` (or `googleCloudBuild:`) under `build` with `local: {{useBuildkit: true, useDockerCLI: true, push: true}}` and `kaniko:` with {docker}; to keep Kaniko's registry cache exactly, use a `custom:` artifact whose `buildCommand` runs `docker buildx build --tag \"$IMAGE\" --push --cache-from type=registry,ref=R:buildcache --cache-to type=registry,ref=R:buildcache,mode=max \"$BUILD_CONTEXT\"`. Where builds must stay in the cluster: keep `build.cluster` with a `custom:` artifact that runs `buildctl` against an in-cluster BuildKit (moby/buildkit rootless), or build in CI and let Skaffold deploy the pushed image{also}"
    )
}

/// The `kaniko:` fields the migration above names a counterpart for (or
/// that only chose the Kaniko pod: its image, its init image).
const KNOWN: &[&str] = &[
    "dockerfile",
    "target",
    "buildArgs",
    "cache",
    "flags",
    "image",
    "initImage",
    "buildContext",
];

/// Every Skaffold finding in `source`.
pub fn findings(source: &SourceFile, opts: &Options) -> Vec<Finding> {
    let mut out = Vec::new();
    let all = artifacts(source);
    for a in &all {
        let Some(k) = a.kaniko else { continue };
        let where_ = match a.environment {
            Some("cluster") => "on the cluster (`build.cluster`)",
            Some("googleCloudBuild") => "on Google Cloud Build (`build.googleCloudBuild`)",
            _ => "(Skaffold runs `kaniko:` artifacts on a cluster or Cloud Build)",
        };
        out.push(
            Finding::new(
                Rule::Km001,
                k.key.span.clone(),
                format!(
                    "artifact `{}` ({}) is built by Kaniko {where_}, which is archived (June 2025)",
                    a.image, a.label
                ),
            )
            .with_help(todo(a)),
        );
        let c = kaniko_call(a);
        let conversion = from_kaniko::convert(&c, &convert_options(opts));
        if let Ok(fix) = local::fix(source, &all, a, opts) {
            let km001 = out.last_mut().expect("pushed above");
            km001.help = Some(local::HELP.to_string());
            *km001 = km001.clone().with_fix(fix);
            out.push(
                Finding::new(Rule::Km004, k.key.span.clone(), local::MOVES.to_string())
                    .with_help(local::MOVES_HELP),
            );
        }
        out.extend(crate::buildx::notes::note_findings(
            &c.args,
            &conversion,
            &k.key.span,
            None,
        ));
    }
    out
}

/// Skaffold behind the platform interface.
pub struct Support;

impl crate::platform::PlatformSupport for Support {
    fn cli_name(&self) -> &'static str {
        "skaffold"
    }

    fn display_name(&self) -> &'static str {
        "Skaffold"
    }

    fn unit(&self) -> &'static str {
        "artifact"
    }

    /// `skaffold.yaml`, `skaffold.yml`, and `skaffold-NAME.yaml` /
    /// `skaffold.NAME.yaml` variants.
    fn matches_path(&self, path: &Path) -> bool {
        let name = crate::platform::lowercase_file_name(path);
        let Some(stem) = name
            .strip_suffix(".yaml")
            .or_else(|| name.strip_suffix(".yml"))
        else {
            return false;
        };
        stem == "skaffold" || stem.starts_with("skaffold-") || stem.starts_with("skaffold.")
    }

    /// `apiVersion: skaffold/…` and `kind: Config`.
    fn matches_content(&self, root: &Node) -> bool {
        is_config(root)
    }

    /// A config holds its whole analysis (`requires:` configs are checked
    /// as files of their own).
    fn self_contained(&self, _path: &Path, _text: &[u8]) -> bool {
        true
    }

    fn findings(&self, source: &SourceFile, opts: &Options) -> Result<Vec<Finding>, SourceError> {
        Ok(findings(source, opts))
    }

    fn unit_spans(&self, source: &SourceFile) -> Vec<Range<usize>> {
        artifacts(source)
            .into_iter()
            .map(|a| a.item.span.clone())
            .collect()
    }

    fn kaniko_flags(&self, source: &SourceFile) -> Vec<&'static crate::kaniko::FlagSpec> {
        artifacts(source)
            .iter()
            .filter_map(|a| Some((a, a.kaniko?)))
            .flat_map(|(a, k)| {
                // Only what the file writes: not the context and
                // destination Skaffold passes itself.
                let c = kaniko_call(a);
                c.uses
                    .iter()
                    .filter(|u| c.args[u.args.start].span.as_ref() != Some(&k.key.span))
                    .map(|u| u.spec)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Every Kaniko artifact, read as the executor call Skaffold makes, and
    /// every `docker:` artifact.
    fn extract(&self, path: &Path, text: &str, inputs: &Inputs) -> Result<Vec<Extracted>, String> {
        let source = SourceFile::from_text(path, text.to_string()).map_err(|e| e.message)?;
        let opts = Options::default();
        let mut out = Vec::new();
        for a in artifacts(&source) {
            let (kind, mut conv) = match (a.kaniko, a.item.node.get("docker")) {
                (Some(_), _) => (
                    Kind::Kaniko,
                    from_kaniko::convert(&kaniko_call(&a), &convert_options(&opts)),
                ),
                // A `docker:` artifact (what the rewrite writes).
                (None, Some(_)) => (
                    Kind::Buildx,
                    from_kaniko::Conversion {
                        plan: local::docker_plan(&a),
                        ..Default::default()
                    },
                ),
                (None, None) => continue,
            };
            let context = a
                .item
                .node
                .get("context")
                .and_then(|c| c.as_str())
                .unwrap_or(".");
            conv.plan.context = inputs.context_dir.join(context).display().to_string();
            let (line, _) = source.position(a.item.span.start);
            out.push(Extracted::read(
                format!("artifact `{}`", a.image),
                format!("{}:{line}", source.path.display()),
                kind,
                Some(conv.plan),
                None,
                conv.notes.into_iter().map(|n| n.message).collect(),
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::PlatformSupport;

    #[test]
    fn config_names() {
        for (name, yes) in [
            ("skaffold.yaml", true),
            ("deploy/skaffold.yml", true),
            ("skaffold-prod.yaml", true),
            ("skaffold.ci.yaml", true),
            ("Skaffold.YAML", true),
            ("skaffolding.yaml", false),
            ("skaffold.json", false),
            ("cloudbuild.yaml", false),
        ] {
            assert_eq!(Support.matches_path(Path::new(name)), yes, "{name}");
        }
    }
}
