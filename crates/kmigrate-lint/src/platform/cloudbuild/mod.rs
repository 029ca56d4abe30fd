//! Google Cloud Build: the build's steps, which of them run Kaniko, and the
//! edits that migrate them.

pub mod digest_files;
pub mod docker_steps;
pub mod equivalence;
pub mod findings;
pub mod fork;
pub mod kaniko_steps;
pub mod migrate;
pub mod separate;
pub mod substitutions;

use std::collections::HashMap;

use crate::source::{Entry, Item, Node, SourceError, SourceFile, Value};

/// One build step with the entries kmigrate reads.
#[derive(Debug)]
pub struct Step<'a> {
    pub index: usize,
    pub item: &'a Item,
    pub node: &'a Node,
    pub name: Option<&'a Entry>,
    pub args: Option<&'a Entry>,
    pub entrypoint: Option<&'a Entry>,
    pub script: Option<&'a Entry>,
    pub id: Option<String>,
    pub wait_for: Option<&'a Entry>,
    pub dir: Option<String>,
}

/// The step at `index` as Cloud Build's logs name it: `Step #0` first.
fn log_name(index: usize) -> String {
    format!("Step #{index}")
}

impl<'a> Step<'a> {
    /// How messages name the step: by its `id`, else as Cloud Build's own
    /// logs number it (`Step #0` is the first step).
    pub fn label(&self) -> String {
        match &self.id {
            Some(id) => format!("step `{id}`"),
            None => log_name(self.index),
        }
    }

    /// The step's bare name, for `verify`'s units: its `id`, else its
    /// name in Cloud Build's logs.
    pub fn unit(&self) -> String {
        self.id.clone().unwrap_or_else(|| log_name(self.index))
    }

    /// The `waitFor` ids, `None` when absent.
    pub fn wait_for_ids(&self) -> Option<Vec<String>> {
        let seq = self.wait_for?.value.as_seq()?;
        Some(
            seq.items
                .iter()
                .filter_map(|i| i.node.as_str().map(String::from))
                .collect(),
        )
    }

    /// `args` as strings, resolving an alias if the list is one.
    pub fn arg_nodes(&self, source: &'a SourceFile) -> Option<&'a [Item]> {
        let node = &self.args?.value;
        let node = match &node.value {
            Value::Alias(name) => source.tree.anchored(name, node.span.start)?,
            _ => node,
        };
        node.as_seq().map(|s| s.items.as_slice())
    }
}

/// A Cloud Build config.
#[derive(Debug)]
pub struct Build<'a> {
    pub source: &'a SourceFile,
    pub steps_entry: &'a Entry,
    pub steps: Vec<Step<'a>>,
    /// `substitutions:` defaults.
    pub substitutions: HashMap<String, String>,
    /// How often the text refers to each user substitution, counted once
    /// on first use (see [`substitutions::use_counts`]).
    uses: std::cell::OnceCell<HashMap<String, usize>>,
}

impl<'a> Build<'a> {
    /// Reads the build; a file without the shape of one is an error that
    /// names the place.
    pub fn parse(source: &'a SourceFile) -> Result<Build<'a>, SourceError> {
        if let Some(second) = source.tree.documents.get(1) {
            return Err(source
                .error_at(
                    document_start(&source.text, second.span.start),
                    format!(
                        "a second YAML document starts here ({} in the file): a Cloud Build config is one document, and kmigrate would read only one of them",
                        source.tree.documents.len()
                    ),
                )
                .with_help("split the file into one config per build (Cloud Build rejects several documents), then check each"));
        }
        let Some(root) = source.root() else {
            return Err(SourceError::new(&source.path, "the file is empty")
                .with_help("a Cloud Build config needs a top-level `steps:` list"));
        };
        let Some(map) = root.as_map() else {
            return Err(source
                .error_at(
                    root.span.start,
                    format!("the top level is a {}, not a mapping", root.kind_name()),
                )
                .with_help("a Cloud Build config is a mapping with a `steps:` list"));
        };
        let Some(steps_entry) = map.entries.iter().find(|e| e.key.as_str() == Some("steps")) else {
            return Err(source
                .error_at(root.span.start, "no `steps:` key")
                .with_help("a Cloud Build config needs a top-level `steps:` list"));
        };
        let Some(seq) = steps_entry.value.as_seq() else {
            return Err(source
                .error_at(
                    steps_entry.value.span.start,
                    format!("`steps` is a {}, not a list", steps_entry.value.kind_name()),
                )
                .with_help("write each step as a list item: `- name: …`"));
        };
        let mut steps = Vec::new();
        for (index, item) in seq.items.iter().enumerate() {
            let node = &item.node;
            let Some(m) = node.as_map() else {
                return Err(source
                    .error_at(
                        node.span.start,
                        format!(
                            "{} is a {}, not a mapping",
                            log_name(index),
                            node.kind_name()
                        ),
                    )
                    .with_help("each step is a mapping with at least `name:`"));
            };
            let entry = |k: &str| m.entries.iter().find(|e| e.key.as_str() == Some(k));
            steps.push(Step {
                index,
                item,
                node,
                name: entry("name"),
                args: entry("args"),
                entrypoint: entry("entrypoint"),
                script: entry("script"),
                id: entry("id").and_then(|e| e.value.as_str()).map(String::from),
                wait_for: entry("waitFor"),
                dir: entry("dir")
                    .and_then(|e| e.value.as_str())
                    .map(String::from),
            });
        }
        let substitutions = root
            .get("substitutions")
            .and_then(|s| s.as_map())
            .map(|m| {
                m.entries
                    .iter()
                    .filter_map(|e| {
                        Some((e.key.as_str()?.to_string(), e.value.as_str()?.to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Build {
            source,
            steps_entry,
            steps,
            substitutions,
            uses: std::cell::OnceCell::new(),
        })
    }

    /// How many times the file's text refers to user substitution `name`.
    pub fn uses(&self, name: &str) -> usize {
        self.uses
            .get_or_init(|| substitutions::use_counts(&self.source.text))
            .get(name)
            .copied()
            .unwrap_or(0)
    }

    /// Expands `$_X` / `${_X}` user substitutions with their defaults.
    pub fn substitute(&self, text: &str) -> String {
        let mut out = text.to_string();
        // Most names and arguments use no substitution.
        if !text.contains('$') {
            return out;
        }
        for (k, v) in &self.substitutions {
            out = out.replace(&format!("${{{k}}}"), v);
            if k.starts_with('_') {
                out = out.replace(&format!("${k}"), v);
            }
        }
        out
    }
}

/// The start of the `---` line that opens the document whose content starts
/// at `content` (the content itself when there is none).
fn document_start(text: &str, content: usize) -> usize {
    let mut line = text[..content].rfind('\n').map_or(0, |i| i + 1);
    loop {
        if text[line..].starts_with("---") {
            return line;
        }
        if line == 0 {
            return content;
        }
        line = text[..line - 1].rfind('\n').map_or(0, |i| i + 1);
    }
}

/// Cloud Build behind the platform interface.
pub struct Support;

impl crate::platform::PlatformSupport for Support {
    fn cli_name(&self) -> &'static str {
        "cloudbuild"
    }

    fn display_name(&self) -> &'static str {
        "Cloud Build"
    }

    fn unit(&self) -> &'static str {
        "step"
    }

    fn matches_path(&self, path: &std::path::Path) -> bool {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            return false;
        };
        let name = name.to_ascii_lowercase();
        name.starts_with("cloudbuild")
            && (name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json"))
    }

    /// A top-level `steps` list of mappings with `name`.
    fn matches_content(&self, root: &crate::source::Node) -> bool {
        root.get("steps")
            .and_then(|s| s.as_seq())
            .is_some_and(|steps| steps.items.iter().any(|i| i.node.get("name").is_some()))
    }

    /// A Cloud Build file without `steps` (an empty one, say) is an error
    /// `check` reports; parsing it to say so is cheap.
    fn self_contained(&self, _path: &std::path::Path, text: &[u8]) -> bool {
        crate::prefilter::contains_any(text, &[b"steps"])
    }

    fn findings(
        &self,
        source: &SourceFile,
        opts: &crate::options::Options,
    ) -> Result<Vec<crate::rules::Finding>, SourceError> {
        let build = Build::parse(source)?;
        let migration = migrate::plan(&build, opts);
        Ok(findings::findings(&build, &migration))
    }

    fn unit_spans(&self, source: &SourceFile) -> Vec<std::ops::Range<usize>> {
        Build::parse(source)
            .map(|b| b.steps.iter().map(|s| s.item.span.clone()).collect())
            .unwrap_or_default()
    }

    fn kaniko_flags(&self, source: &SourceFile) -> Vec<&'static crate::kaniko::FlagSpec> {
        let Ok(build) = Build::parse(source) else {
            return Vec::new();
        };
        kaniko_steps::find(&build)
            .iter()
            .flat_map(|step| step.calls.iter())
            .flat_map(|call| call.call.uses.iter().map(|u| u.spec))
            .collect()
    }

    fn extract(
        &self,
        path: &std::path::Path,
        text: &str,
        inputs: &crate::readback::extract::Inputs,
    ) -> Result<Vec<crate::readback::extract::Extracted>, String> {
        crate::readback::extract::cloudbuild(path, text, inputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn load(text: &str) -> SourceFile {
        SourceFile::from_text(Path::new("cloudbuild.yaml"), text.into()).unwrap()
    }

    #[test]
    fn reads_steps_and_substitutions() {
        let s = load(
            "steps:\n- id: a\n  name: ${_IMG}\n  waitFor: ['-']\n  dir: svc\nsubstitutions:\n  _IMG: gcr.io/kaniko-project/executor:v1\n",
        );
        let b = Build::parse(&s).unwrap();
        assert_eq!(b.steps.len(), 1);
        assert_eq!(b.steps[0].id.as_deref(), Some("a"));
        assert_eq!(b.steps[0].dir.as_deref(), Some("svc"));
        assert_eq!(b.steps[0].wait_for_ids().unwrap(), ["-"]);
        assert_eq!(b.substitute("${_IMG}"), "gcr.io/kaniko-project/executor:v1");
    }

    #[test]
    fn shape_errors_name_the_line() {
        let e = Build::parse(&load("- a\n- b\n")).unwrap_err();
        assert!(e.to_string().contains("cloudbuild.yaml:1:1"), "{e}");
        let e = Build::parse(&load("images: []\nsteps: x\n")).unwrap_err();
        assert!(e.to_string().contains(":2:8: `steps` is a string"), "{e}");
        let e = Build::parse(&load("steps:\n- x\n")).unwrap_err();
        assert!(e.to_string().contains("Step #0 is a"), "{e}");
        let e = Build::parse(&load("steps: []\n---\n# b\nsteps: []\n")).unwrap_err();
        assert!(
            e.to_string().contains(":2:1: a second YAML document"),
            "{e}"
        );
        let e = Build::parse(&load("---\nsteps: []\n--- # b\nsteps: []\n")).unwrap_err();
        assert!(
            e.to_string().contains(":3:1: a second YAML document"),
            "{e}"
        );
        assert!(Build::parse(&load("---\nsteps: []\n...\n")).is_ok());
    }
}
