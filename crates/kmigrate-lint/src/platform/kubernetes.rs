//! Kubernetes manifests (Pod, Job, CronJob, Deployment, StatefulSet,
//! DaemonSet, ReplicaSet, PodTemplate; a Jenkins agent's pod template):
//! every `containers:` / `initContainers:` list under a pod spec. A
//! container whose Kaniko executor flags are its `args:` is rewritten to a
//! rootless BuildKit container; the rest is a manual task. Found by
//! content: manifests have no naming convention.

use std::ops::Range;
use std::path::Path;

use super::container::findings::{Context, container_findings};
use super::container::{self, Container};
use crate::options::Options;
use crate::readback::extract::{Extracted, Inputs};
use crate::rules::Finding;
use crate::source::{Node, SourceError, SourceFile, Value};

/// The kinds whose spec holds (or templates) a pod.
const WORKLOADS: &[&str] = &[
    "Pod",
    "Job",
    "CronJob",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "ReplicationController",
    "PodTemplate",
];

/// How deep the walk for container lists goes (a CronJob's containers are
/// six levels down).
const MAX_DEPTH: usize = 16;

/// Whether a document is a workload manifest (not a Tekton resource,
/// whose steps the Tekton platform reads).
fn is_workload(doc: &Node) -> bool {
    // A Jenkins agent's pod template often leaves `apiVersion` out.
    let api = doc.get("apiVersion").and_then(Node::as_str).unwrap_or("");
    let kind = doc.get("kind").and_then(Node::as_str).unwrap_or("");
    !api.starts_with("tekton.dev/") && WORKLOADS.contains(&kind) && doc.get("spec").is_some()
}

/// Every container of every workload document, in order.
pub fn containers(source: &SourceFile) -> Vec<Container<'_>> {
    let mut out = Vec::new();
    for doc in source.tree.documents.iter().filter(|d| is_workload(d)) {
        let kind = doc.get("kind").and_then(Node::as_str).unwrap_or("");
        let name = doc
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Node::as_str);
        let owner = match name {
            Some(n) => format!("{kind} `{n}`"),
            None => kind.to_string(),
        };
        walk(doc, &owner, 0, &mut out);
    }
    out
}

fn walk<'a>(node: &'a Node, owner: &str, depth: usize, out: &mut Vec<Container<'a>>) {
    if depth > MAX_DEPTH {
        return;
    }
    match &node.value {
        Value::Map(map) => {
            for e in &map.entries {
                match e.key.as_str() {
                    Some("containers") => out.extend(container::read_list(
                        &e.value,
                        &format!("{owner} container"),
                        &|_| None,
                    )),
                    Some("initContainers") => out.extend(container::read_list(
                        &e.value,
                        &format!("{owner} init container"),
                        &|_| None,
                    )),
                    _ => walk(&e.value, owner, depth + 1, out),
                }
            }
        }
        Value::Seq(seq) => {
            for item in &seq.items {
                walk(&item.node, owner, depth + 1, out);
            }
        }
        _ => {}
    }
}

/// Every Kubernetes finding in `source`.
pub fn findings(source: &SourceFile, opts: &Options) -> Vec<Finding> {
    let ctx = Context {
        opts,
        tekton: false,
        containers,
    };
    containers(source)
        .iter()
        .enumerate()
        .flat_map(|(k, c)| container_findings(source, c, k, &ctx))
        .collect()
}

/// Kubernetes manifests behind the platform interface.
pub struct Support;

impl crate::platform::PlatformSupport for Support {
    fn cli_name(&self) -> &'static str {
        "kubernetes"
    }

    fn display_name(&self) -> &'static str {
        "Kubernetes"
    }

    fn unit(&self) -> &'static str {
        "container"
    }

    /// Manifests have no naming convention: found by content.
    fn matches_path(&self, _path: &Path) -> bool {
        false
    }

    fn matches_content(&self, root: &Node) -> bool {
        is_workload(root)
    }

    /// A YAML file with a workload `kind`, a container list and the word
    /// Kaniko.
    fn matches_text(&self, path: &Path, text: &[u8]) -> bool {
        super::is_yaml_name(path)
            && crate::prefilter::contains_any(text, &[b"kaniko"])
            && memchr::memmem::find(text, b"ontainers:").is_some()
            && super::key_values(text, "kind").any(|k| WORKLOADS.contains(&k))
    }

    fn self_contained(&self, _path: &Path, _text: &[u8]) -> bool {
        true
    }

    fn findings(&self, source: &SourceFile, opts: &Options) -> Result<Vec<Finding>, SourceError> {
        Ok(findings(source, opts))
    }

    fn unit_spans(&self, source: &SourceFile) -> Vec<Range<usize>> {
        containers(source)
            .iter()
            .map(|c| c.item.span.clone())
            .collect()
    }

    fn kaniko_flags(&self, source: &SourceFile) -> Vec<&'static crate::kaniko::FlagSpec> {
        container::flag_uses(&containers(source))
    }

    fn extract(&self, path: &Path, text: &str, inputs: &Inputs) -> Result<Vec<Extracted>, String> {
        let source = SourceFile::from_text(path, text.to_string()).map_err(|e| e.message)?;
        Ok(container::builds(&source, &containers(&source), inputs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &str) -> SourceFile {
        SourceFile::from_text(Path::new("pod.yaml"), text.to_string()).unwrap()
    }

    /// Kaniko's own example: a `dir://` context relative to the image's
    /// working directory and an absolute Dockerfile.
    #[test]
    fn a_relative_dir_context_is_rewritten() {
        let s = source(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: kaniko\nspec:\n  containers:\n  - name: kaniko\n    image: gcr.io/kaniko-project/executor:latest\n    args: [\"--dockerfile=/workspace/dockerfile\",\n            \"--context=dir://workspace\",\n            \"--destination=r.example/a\"]\n",
        );
        let f = findings(&s, &Options::default());
        let km012: Vec<&str> = f
            .iter()
            .filter(|f| f.rule == crate::rules::Rule::Km012)
            .map(|f| f.message.as_str())
            .collect();
        assert!(km012.is_empty(), "{km012:?}");
        assert!(f[0].fix.is_some());
    }

    /// A Jenkins agent pod template without `apiVersion` is still a Pod.
    #[test]
    fn a_pod_template_without_api_version_is_found() {
        use crate::platform::PlatformSupport;
        let text = "---\nkind: Pod\nspec:\n  containers:\n    - name: kaniko\n      image: gcr.io/kaniko-project/executor:debug\n      command:\n        - /busybox/cat\n";
        assert!(Support.matches_text(Path::new("KubernetesPod.yaml"), text.as_bytes()));
        let f = findings(&source(text), &Options::default());
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(!Support.matches_text(
            Path::new("notes.yaml"),
            b"kind: ConfigMap\ndata:\n  a: kaniko containers: x\n"
        ));
    }

    /// A comment after the Kaniko args stays with the container, on its
    /// own line, not after the new securityContext.
    #[test]
    fn a_comment_after_the_args_stays_above_the_new_call() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: k\nspec:\n  containers:\n  - name: kaniko\n    image: gcr.io/kaniko-project/executor:latest\n    args: [\"--context=dir:///workspace\", \"--destination=r.example/a\"] # your account\n    restartPolicy: Never\n";
        let f = findings(&source(text), &Options::default());
        let fix = f[0].fix.as_ref().expect("rewritten");
        let out = crate::source::patch::apply(text, &fix.edits).unwrap();
        assert!(out.contains("    # your account\n    command:\n"), "{out}");
        assert!(
            out.contains("type: Unconfined\n    restartPolicy: Never\n"),
            "{out}"
        );
    }
}
