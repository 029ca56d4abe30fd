//! The embedded builder as a verify backend: each build gets its own state
//! directory, wiped before the cold run and again before the warm run, so
//! the warm run can only hit the cache it imports.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::mapping::MappedPlan;
use super::{Backend, RunStats, VerifyOptions, secs};
use kmigrate_builder::{self as builder, BuildOptions, Progress};
use kmigrate_lint::buildx::{AttrList, BuildPlan};

/// Runs plans with [`kmigrate_builder::build`].
pub struct Embedded {
    store: PathBuf,
    progress: Progress,
}

impl Embedded {
    pub fn new(store: &Path, opts: &VerifyOptions) -> Self {
        Embedded {
            store: store.to_path_buf(),
            progress: opts.progress,
        }
    }

    fn state(&self, unit: usize) -> PathBuf {
        self.store.join("state").join(format!("build-{}", unit + 1))
    }
}

/// A log sink that keeps what it is given.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One build on a wiped `state`; returns the stats and the build log.
/// `store` (verify's own state) never enters the build context.
pub fn build_once(
    plan: &BuildPlan,
    state: &Path,
    store: &Path,
    progress: Progress,
    registry: Option<builder::registry::RegistryConfig>,
) -> (RunStats, String) {
    let _ = std::fs::remove_dir_all(state);
    let cap = Capture::default();
    let mut opts = BuildOptions::new(state);
    opts.exclude_from_context.push(store.to_path_buf());
    opts.log = Arc::new(Mutex::new(cap.clone()));
    opts.progress = match progress {
        Progress::Tty => Progress::Tty,
        _ => Progress::Plain,
    };
    if let Some(r) = registry {
        opts.registry = r;
    }
    let t0 = Instant::now();
    let res = builder::build(plan, &opts);
    let log = cap
        .0
        .lock()
        .map(|v| String::from_utf8_lossy(&v).to_string())
        .unwrap_or_default();
    let mut s = RunStats {
        seconds: secs(t0.elapsed()),
        ..Default::default()
    };
    match res {
        Ok(r) => {
            s.ok = true;
            s.executed = r.executed;
            s.cached = r.cached;
            s.digest = r.manifest_digest;
            s.bytes_exported = r.cache_bytes_exported;
            s.pushed = r.pushed;
        }
        Err(e) => {
            s.error = Some(e.to_string());
        }
    }
    (s, log)
}

impl Backend for Embedded {
    fn cold(&mut self, unit: usize, m: &MappedPlan) -> RunStats {
        let mut plan = m.plan.clone();
        if let Some(dir) = &m.image_dir {
            plan.outputs.push(AttrList::new([
                ("type", "oci"),
                ("tar", "false"),
                ("dest", dir.display().to_string().as_str()),
            ]));
        }
        let state = self.state(unit);
        let (s, _) = build_once(&plan, &state, &self.store, self.progress, None);
        s
    }

    fn warm(&mut self, unit: usize, m: &MappedPlan) -> RunStats {
        // Only the cache import: no export, no push, no image written.
        let mut plan = m.plan.clone();
        plan.cache_to.clear();
        plan.outputs.clear();
        plan.push = false;
        let state = self.state(unit);
        let (s, _) = build_once(&plan, &state, &self.store, self.progress, None);
        let _ = std::fs::remove_dir_all(&state);
        s
    }

    fn caveats(&self) -> Vec<String> {
        Vec::new()
    }
}
