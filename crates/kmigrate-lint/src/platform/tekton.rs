//! Tekton (`apiVersion: tekton.dev/…`: Task, ClusterTask, Pipeline,
//! PipelineRun, TaskRun; several documents per file): steps that run a
//! Kaniko image, rewritten to rootless BuildKit steps, and references to
//! the catalog `kaniko` task, which are a manual task (use the catalog
//! `buildah` task). Found by content: Tekton files have no naming
//! convention.

use std::ops::Range;
use std::path::Path;

use super::container::findings::{Context, container_findings};
use super::container::{self, Container};
use crate::options::Options;
use crate::readback::extract::{Extracted, Inputs};
use crate::rules::{Finding, Rule};
use crate::source::{Node, SourceError, SourceFile, Value};

/// How deep the walk for steps and task references goes (a PipelineRun's
/// embedded pipeline's embedded task is about ten levels down).
const MAX_DEPTH: usize = 24;

/// Whether a document is a Tekton resource.
fn is_tekton(doc: &Node) -> bool {
    doc.get("apiVersion")
        .and_then(Node::as_str)
        .is_some_and(|v| v.trim().starts_with("tekton.dev/"))
}

/// The name a document or list item gives itself.
fn own_name(node: &Node) -> Option<&str> {
    node.get("name")
        .or_else(|| node.get("metadata").and_then(|m| m.get("name")))
        .and_then(Node::as_str)
}

/// The default of the param `name` declared in `params` (a list).
fn param_default(params: Option<&Node>, name: &str) -> Option<String> {
    params?.as_seq()?.items.iter().find_map(|i| {
        (i.node.get("name").and_then(Node::as_str) == Some(name))
            .then(|| {
                i.node
                    .get("default")
                    .and_then(Node::as_str)
                    .map(String::from)
            })
            .flatten()
    })
}

/// Every step of every Tekton document, in order.
pub fn steps(source: &SourceFile) -> Vec<Container<'_>> {
    let mut out = Vec::new();
    for doc in source.tree.documents.iter().filter(|d| is_tekton(d)) {
        let kind = doc.get("kind").and_then(Node::as_str).unwrap_or("Task");
        let name = own_name(doc).unwrap_or("?");
        walk_steps(doc, &format!("{kind} `{name}`"), 0, &mut out);
    }
    out
}

fn walk_steps<'a>(node: &'a Node, owner: &str, depth: usize, out: &mut Vec<Container<'a>>) {
    if depth > MAX_DEPTH {
        return;
    }
    match &node.value {
        Value::Map(map) => {
            let params = node.get("params");
            for e in &map.entries {
                if e.key.as_str() == Some("steps") {
                    let param = |n: &str| param_default(params, n);
                    out.extend(container::read_list(
                        &e.value,
                        &format!("{owner} step"),
                        &param,
                    ));
                } else {
                    walk_steps(&e.value, owner, depth + 1, out);
                }
            }
        }
        Value::Seq(seq) => {
            for item in &seq.items {
                // A pipeline task names the steps it embeds.
                let owner = match (own_name(&item.node), item.node.get("taskSpec")) {
                    (Some(n), Some(_)) => format!("pipeline task `{n}`"),
                    _ => owner.to_string(),
                };
                walk_steps(&item.node, &owner, depth + 1, out);
            }
        }
        _ => {}
    }
}

/// A reference to the catalog Kaniko task.
pub struct KanikoRef<'a> {
    /// The pipeline task (or run) that makes it.
    pub owner: String,
    /// The item or entry holding the reference (the report's unit).
    pub unit: Range<usize>,
    /// The value that names Kaniko.
    pub at: &'a Node,
}

/// Whether a bundle, hub or git reference names the catalog kaniko task.
fn names_kaniko(param: &str, value: &str) -> bool {
    let v = value.trim();
    match param {
        "name" => v == "kaniko",
        "bundle" => {
            let repo = v.split(['@']).next().unwrap_or(v);
            let repo = match repo.rfind(':') {
                Some(i) if !repo[i..].contains('/') => &repo[..i],
                _ => repo,
            };
            repo.rsplit('/').next() == Some("kaniko")
        }
        "pathInRepo" | "url" => v.contains("task/kaniko/") || v.ends_with("/kaniko.yaml"),
        _ => false,
    }
}

/// Every `taskRef` to the catalog kaniko task (by name, bundle, or a
/// hub/bundles/git resolver's params).
pub fn kaniko_refs(source: &SourceFile) -> Vec<KanikoRef<'_>> {
    let mut out = Vec::new();
    for doc in source.tree.documents.iter().filter(|d| is_tekton(d)) {
        let kind = doc.get("kind").and_then(Node::as_str).unwrap_or("Pipeline");
        let name = own_name(doc).unwrap_or("?");
        walk_refs(
            doc,
            &format!("{kind} `{name}`"),
            doc.span.clone(),
            0,
            &mut out,
        );
    }
    out
}

fn walk_refs<'a>(
    node: &'a Node,
    owner: &str,
    unit: Range<usize>,
    depth: usize,
    out: &mut Vec<KanikoRef<'a>>,
) {
    if depth > MAX_DEPTH {
        return;
    }
    match &node.value {
        Value::Map(map) => {
            for e in &map.entries {
                if e.key.as_str() == Some("taskRef") {
                    if let Some(at) = ref_naming_kaniko(&e.value) {
                        out.push(KanikoRef {
                            owner: owner.to_string(),
                            unit: unit.clone(),
                            at,
                        });
                    }
                } else {
                    walk_refs(&e.value, owner, unit.clone(), depth + 1, out);
                }
            }
        }
        Value::Seq(seq) => {
            for item in &seq.items {
                let owner = match own_name(&item.node) {
                    Some(n) => format!("pipeline task `{n}`"),
                    None => owner.to_string(),
                };
                walk_refs(&item.node, &owner, item.span.clone(), depth + 1, out);
            }
        }
        _ => {}
    }
}

/// The value in a `taskRef` that names the kaniko task, if one does.
fn ref_naming_kaniko(r: &Node) -> Option<&Node> {
    if r.get("resolver").is_none() {
        if let Some(n) = r
            .get("name")
            .filter(|n| n.as_str().is_some_and(|v| names_kaniko("name", v)))
        {
            return Some(n);
        }
        return r
            .get("bundle")
            .filter(|b| b.as_str().is_some_and(|v| names_kaniko("bundle", v)));
    }
    r.get("params")?.as_seq()?.items.iter().find_map(|p| {
        let key = p.node.get("name").and_then(Node::as_str)?;
        let value = p.node.get("value")?;
        names_kaniko(key, value.as_str()?).then_some(value)
    })
}

/// What to do with a reference to the catalog kaniko task.
const CATALOG_TODO: &str = "use the Tekton catalog's `buildah` task instead (Tekton Hub `buildah`, or a copy of the kaniko task rewritten by `kmigrate rewrite` to rootless BuildKit): its params `IMAGE`, `DOCKERFILE`, `CONTEXT` and its `source` and `dockerconfig` workspaces carry over, Kaniko's `EXTRA_ARGS` become `BUILD_EXTRA_ARGS` in buildah's flags (`--build-arg`, `--target`, …; a registry cache is `--cache-from`/`--cache-to` with `--layers`), and the results `IMAGE_DIGEST` and `IMAGE_URL` keep their names";

fn context(opts: &Options) -> Context<'_> {
    Context {
        opts,
        tekton: true,
        containers: steps,
    }
}

/// Every Tekton finding in `source`.
pub fn findings(source: &SourceFile, opts: &Options) -> Vec<Finding> {
    let ctx = context(opts);
    let mut out = Vec::new();
    for (k, step) in steps(source).iter().enumerate() {
        out.extend(container_findings(source, step, k, &ctx));
    }
    for r in kaniko_refs(source) {
        out.push(
            Finding::new(
                Rule::Km001,
                r.at.span.clone(),
                format!(
                    "{} uses the Tekton catalog `kaniko` task, which runs the Kaniko executor (archived in June 2025)",
                    r.owner
                ),
            )
            .with_help(format!("not rewritten automatically: {CATALOG_TODO}")),
        );
    }
    out
}

/// Tekton behind the platform interface.
pub struct Support;

impl crate::platform::PlatformSupport for Support {
    fn cli_name(&self) -> &'static str {
        "tekton"
    }

    fn display_name(&self) -> &'static str {
        "Tekton"
    }

    fn unit(&self) -> &'static str {
        "step"
    }

    /// Tekton files have no naming convention: found by content.
    fn matches_path(&self, _path: &Path) -> bool {
        false
    }

    fn matches_content(&self, root: &Node) -> bool {
        is_tekton(root)
    }

    /// A YAML file with an `apiVersion: tekton.dev/…` line that names Kaniko.
    fn matches_text(&self, path: &Path, text: &[u8]) -> bool {
        super::is_yaml_name(path)
            && crate::prefilter::contains_any(text, &[b"kaniko"])
            && super::key_values(text, "apiVersion").any(|v| v.starts_with("tekton.dev/"))
    }

    fn self_contained(&self, _path: &Path, _text: &[u8]) -> bool {
        true
    }

    fn findings(&self, source: &SourceFile, opts: &Options) -> Result<Vec<Finding>, SourceError> {
        Ok(findings(source, opts))
    }

    fn unit_spans(&self, source: &SourceFile) -> Vec<Range<usize>> {
        let mut spans: Vec<Range<usize>> =
            steps(source).iter().map(|s| s.item.span.clone()).collect();
        spans.extend(kaniko_refs(source).into_iter().map(|r| r.unit));
        spans
    }

    fn kaniko_flags(&self, source: &SourceFile) -> Vec<&'static crate::kaniko::FlagSpec> {
        container::flag_uses(&steps(source))
    }

    fn extract(&self, path: &Path, text: &str, inputs: &Inputs) -> Result<Vec<Extracted>, String> {
        let source = SourceFile::from_text(path, text.to_string()).map_err(|e| e.message)?;
        Ok(container::builds(&source, &steps(&source), inputs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_references_by_name_bundle_and_resolver() {
        assert!(names_kaniko("name", "kaniko"));
        assert!(!names_kaniko("name", "kaniko-build"));
        assert!(names_kaniko(
            "bundle",
            "gcr.io/tekton-releases/catalog/upstream/kaniko:0.6"
        ));
        assert!(names_kaniko("bundle", "registry:5000/kaniko@sha256:abc"));
        assert!(!names_kaniko("bundle", "gcr.io/x/buildah:0.6"));
        assert!(names_kaniko("pathInRepo", "task/kaniko/0.6/kaniko.yaml"));
        assert!(!names_kaniko("version", "kaniko"));
    }

    /// The catalog task's shape: flags hidden in `$(params.EXTRA_ARGS[*])`
    /// keep the step for a human, whose task names the rest of the call
    /// translated; without them the step is rewritten.
    #[test]
    fn extra_args_keep_the_catalog_step_manual_with_the_rest_translated() {
        let task = "apiVersion: tekton.dev/v1\nkind: Task\nmetadata:\n  name: kaniko\nspec:\n  params:\n    - name: BUILDER_IMAGE\n      default: gcr.io/kaniko-project/executor:v1.23.2\n  steps:\n    - name: build-and-push\n      image: $(params.BUILDER_IMAGE)\n      args:\n        - $(params.EXTRA_ARGS[*])\n        - --destination=$(params.IMAGE)\n";
        let source = SourceFile::from_text(Path::new("t.yaml"), task.to_string()).unwrap();
        let f = findings(&source, &Options::default());
        let km001 = f.iter().find(|f| f.rule == Rule::Km001).unwrap();
        assert!(km001.fix.is_none());
        let help = km001.help.as_deref().unwrap();
        assert!(
            help.contains("--output \"type=image,name=$(params.IMAGE),push=true\"` plus the flags `$(params.EXTRA_ARGS[*])` stands for"),
            "{help}"
        );
        let without = task.replace("        - $(params.EXTRA_ARGS[*])\n", "");
        let source = SourceFile::from_text(Path::new("t.yaml"), without).unwrap();
        let f = findings(&source, &Options::default());
        assert!(
            f.iter().any(|f| f.rule == Rule::Km001 && f.fix.is_some()),
            "{f:?}"
        );
    }
}
