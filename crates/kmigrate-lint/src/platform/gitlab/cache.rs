//! Pipelines already checked in this run, for the files they include.
//!
//! Checking a file a pipeline includes means loading and checking the whole
//! pipeline, then keeping that file's share of the findings. A directory
//! whose `.gitlab-ci.yml` includes `ci/*.yml` has many such files: without
//! this cache each loaded the whole pipeline again (quadratic: 1,000
//! included files took 30 s). Only read-only runs turn it on ([`enable`]):
//! a rewrite changes the files a later analysis reads, and a library caller
//! may change them between calls.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::Pipeline;
use super::findings::FileFindings;

/// A loaded pipeline with its findings, and where each file really is.
pub(super) struct Checked {
    pub pipeline: Pipeline,
    pub findings: Vec<FileFindings>,
    /// The files by canonical path, found on first use.
    canonical: OnceLock<HashMap<PathBuf, Vec<usize>>>,
}

impl Checked {
    pub fn new(pipeline: Pipeline, findings: Vec<FileFindings>) -> Self {
        Checked {
            pipeline,
            findings,
            canonical: OnceLock::new(),
        }
    }

    /// The index of the file at canonical path `path` whose text is `text`.
    pub fn file(&self, path: &Path, text: &str) -> Option<usize> {
        let canonical = self.canonical.get_or_init(|| {
            let mut by_path: HashMap<PathBuf, Vec<usize>> = HashMap::new();
            for (i, f) in self.pipeline.files.iter().enumerate() {
                if let Ok(p) = std::fs::canonicalize(&f.path) {
                    by_path.entry(p).or_default().push(i);
                }
            }
            by_path
        });
        canonical
            .get(path)?
            .iter()
            .copied()
            .find(|&i| self.pipeline.files[i].text == text)
    }
}

/// How many pipelines are kept: files of one pipeline are usually checked
/// one after another, and each kept pipeline holds all its files.
const KEPT: usize = 16;

static ENABLED: AtomicBool = AtomicBool::new(false);

type Slot = Arc<OnceLock<Option<Arc<Checked>>>>;

/// The kept pipelines by entry and options, oldest first.
static KEPT_PIPELINES: Mutex<Vec<(String, Slot)>> = Mutex::new(Vec::new());

/// Keeps checked pipelines for the rest of the process: call it only when
/// no file will change while it runs (`check`, `rewrite --check`).
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// The pipeline `key` names, checked by `load` (once, even when several
/// threads ask at the same time) or taken from the cache; `None` when it
/// does not load.
pub(super) fn checked(key: String, load: impl FnOnce() -> Option<Checked>) -> Option<Arc<Checked>> {
    if !ENABLED.load(Ordering::Relaxed) {
        return load().map(Arc::new);
    }
    let slot = {
        let mut kept = KEPT_PIPELINES.lock().unwrap_or_else(|e| e.into_inner());
        match kept.iter().position(|(k, _)| *k == key) {
            Some(i) => {
                let entry = kept.remove(i);
                let slot = entry.1.clone();
                kept.push(entry);
                slot
            }
            None => {
                if kept.len() >= KEPT {
                    kept.remove(0);
                }
                let slot = Slot::default();
                kept.push((key, slot.clone()));
                slot
            }
        }
    };
    slot.get_or_init(|| load().map(Arc::new)).clone()
}
