//! A GitHub Actions workflow as kmigrate reads it: its jobs, each job's
//! container image and steps, with the nodes they are written at.

use crate::source::{Entry, Item, Map, Node, SourceFile};

/// One job of `jobs:`.
#[derive(Debug)]
pub struct Job<'a> {
    /// The job's id (its key under `jobs:`).
    pub id: String,
    pub entry: &'a Entry,
    /// `container:` (a string, or `container.image`), as written.
    pub container: Option<&'a Node>,
    pub steps: Vec<Step<'a>>,
}

/// One step of a job's `steps:`.
#[derive(Debug)]
pub struct Step<'a> {
    /// 0-based position in the job's steps.
    pub index: usize,
    pub item: &'a Item,
    /// The step's mapping (block or flow).
    pub map: &'a Map,
    pub uses: Option<&'a Entry>,
    pub with: Option<&'a Entry>,
    pub run: Option<&'a Entry>,
}

impl Step<'_> {
    /// How messages name the step: `job build, step "Kaniko build"` (its
    /// `name:`, else its `id:`, else its position).
    pub fn label(&self, job: &Job) -> String {
        let named = ["name", "id"]
            .iter()
            .find_map(|k| self.item.node.get(k).and_then(|n| n.as_str()));
        match named {
            Some(n) => format!("job `{}`, step `{}`", job.id, n),
            None => format!("job `{}`, step {}", job.id, self.index + 1),
        }
    }

    /// The `uses:` value as written.
    pub fn uses_value(&self) -> Option<&str> {
        self.uses.and_then(|e| e.value.as_str())
    }
}

/// The jobs of the workflow in `source` (empty when it has none).
pub fn jobs(source: &SourceFile) -> Vec<Job<'_>> {
    let Some(jobs) = source
        .root()
        .and_then(|r| r.get("jobs"))
        .and_then(|j| j.as_map())
    else {
        return Vec::new();
    };
    jobs.entries
        .iter()
        .filter_map(|entry| {
            let id = entry.key.as_str()?.to_string();
            let job = &entry.value;
            let container = job.get("container").and_then(|c| match c.as_str() {
                Some(_) => Some(c),
                None => c.get("image"),
            });
            let steps = job
                .get("steps")
                .and_then(|s| s.as_seq())
                .map(|seq| {
                    seq.items
                        .iter()
                        .enumerate()
                        .filter_map(|(index, item)| {
                            let map = item.node.as_map()?;
                            Some(Step {
                                index,
                                item,
                                map,
                                uses: item.node.entry("uses"),
                                with: item.node.entry("with"),
                                run: item.node.entry("run"),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            Some(Job {
                id,
                entry,
                container,
                steps,
            })
        })
        .collect()
}

/// Whether `root` looks like a workflow: a `jobs:` mapping whose jobs have
/// `runs-on`, `steps` or `uses` (a reusable workflow call).
pub fn looks_like_workflow(root: &Node) -> bool {
    root.get("jobs")
        .and_then(|j| j.as_map())
        .is_some_and(|jobs| {
            jobs.entries.iter().any(|e| {
                ["runs-on", "steps", "uses"]
                    .iter()
                    .any(|k| e.value.get(k).is_some())
            })
        })
}
