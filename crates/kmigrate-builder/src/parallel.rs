//! Independent stages of a multi-stage build at the same time, as BuildKit
//! does: a stage starts once every stage it uses (its base, `COPY --from`,
//! `RUN --mount=from=`) is built, at most `max_parallel_stages` at once.
//!
//! Each running stage gets an engine of its own (forked from the build's:
//! same options, store and step counter, its own report and records), which
//! is merged back when the stage ends. Stage results do not depend on the
//! order stages end in: keys chain per stage and the image comes from the
//! target's chain, so a parallel build gives the same image as a sequential
//! one. Lines of several stages interleave whole: each goes through the
//! log's lock, step lines carry `[stage n/total]` and RUN output `[stage]`.
//!
//! Once a step of the build has executed (so the build is not served
//! from the cache alone), a stage that still waits for the stages it uses
//! gets its base image pulled and extracted meanwhile, on a thread of its
//! own (at most `max_parallel_stages` at once), as BuildKit prepares a
//! stage's base while its inputs build: the final stage of a multi-stage
//! build then starts on a ready root. A build that executes nothing
//! extracts nothing.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::Duration;

use super::api::{BuildError, BuildReport};
use super::engine::{Engine, R, Scope, Stage, StageState};

/// Whether two of the needed stages could run at once: neither uses the
/// other, directly or not.
pub(crate) fn can_overlap(deps: &[Vec<usize>], needed: &[bool]) -> bool {
    let n = deps.len();
    // uses[i][j]: stage i uses stage j, directly or not (j < i always).
    let mut uses = vec![vec![false; n]; n];
    for (i, ds) in deps.iter().enumerate() {
        for &j in ds {
            let through = uses[j].clone();
            for (u, t) in uses[i].iter_mut().zip(through) {
                *u |= t;
            }
            uses[i][j] = true;
        }
    }
    (0..n).any(|i| (0..i).any(|j| needed[i] && needed[j] && !uses[i][j]))
}

/// What a stage's thread hands back: its index, its engine (to merge) and
/// the stages as it saw them (with base roots it extracted), and its result.
type Finished<'a> = (
    usize,
    Box<Engine<'a>>,
    Vec<Option<StageState>>,
    R<StageState>,
);

/// Base roots extracted ahead of the stages that start from them, by the
/// index of the stage each is for: only that stage takes it (another stage
/// of the same image that starts late must not take it and leave the
/// waiting one to extract its own), waiting for it while it is prepared.
#[derive(Debug, Default)]
pub(crate) struct PreparedRoots {
    state: Mutex<Prepared>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Prepared {
    ready: HashMap<usize, PathBuf>,
    pending: HashSet<usize>,
}

impl PreparedRoots {
    fn start(&self, stage: usize) {
        if let Ok(mut p) = self.state.lock() {
            p.pending.insert(stage);
        }
    }

    /// Ends the preparation for `stage`, with its root or without (failed).
    fn finish(&self, stage: usize, root: Option<PathBuf>) {
        if let Ok(mut p) = self.state.lock() {
            p.pending.remove(&stage);
            if let Some(root) = root {
                p.ready.insert(stage, root);
            }
        }
        self.changed.notify_all();
    }

    /// The root prepared for `stage`, once ready; `None` when none was
    /// prepared for it (or its preparation failed).
    pub(crate) fn take(&self, stage: usize) -> Option<PathBuf> {
        let mut p = self.state.lock().ok()?;
        while p.pending.contains(&stage) {
            p = self.changed.wait(p).ok()?;
        }
        p.ready.remove(&stage)
    }
}

/// One lock per key, for work that stages running at once must not do
/// twice (fetching the same blob).
#[derive(Debug, Default)]
pub(crate) struct KeyedLocks(Mutex<HashMap<String, Arc<Mutex<()>>>>);

impl KeyedLocks {
    /// The lock of `key`, made on first use.
    pub(crate) fn of(&self, key: &str) -> Arc<Mutex<()>> {
        let mut locks = self.0.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(key.to_string()).or_default().clone()
    }
}

/// What a thread of the parallel build hands back.
enum Ended<'a> {
    Stage(Box<Finished<'a>>),
    /// A base root was prepared (or not: a stage that finds none extracts
    /// its own and reports any error); its engine is merged back.
    Prepared(Box<Engine<'a>>),
}

/// How often the scheduler looks whether a step executed, to start
/// preparing the bases of waiting stages.
const POLL: Duration = Duration::from_millis(20);

impl<'a> Engine<'a> {
    /// Builds the `needed` stages, each once its `deps` are built, up to
    /// `jobs` at a time. On a failure no stage starts any more; the running
    /// ones finish, and the first error is returned.
    pub(crate) fn build_stages_in_parallel(
        &mut self,
        scope: &Scope,
        stages: &[Stage],
        deps: &[Vec<usize>],
        needed: &[bool],
        done: &mut [Option<StageState>],
        jobs: usize,
    ) -> R<()> {
        if self.opts.progress == super::api::Progress::Tty {
            self.multi = Some(indicatif::MultiProgress::new());
        }
        let mut started = vec![false; stages.len()];
        let mut preparing = vec![false; stages.len()];
        let mut failure: Option<BuildError> = None;
        std::thread::scope(|s| {
            let (tx, rx) = mpsc::channel::<Ended<'a>>();
            let mut running = 0;
            let mut prepares = 0;
            loop {
                for (i, stage) in stages.iter().enumerate() {
                    let ready =
                        needed[i] && !started[i] && deps[i].iter().all(|&j| done[j].is_some());
                    if failure.is_some() || running >= jobs || !ready {
                        continue;
                    }
                    started[i] = true;
                    running += 1;
                    let mut sub = Box::new(self.fork());
                    let mut seen = done.to_vec();
                    let tx = tx.clone();
                    s.spawn(move || {
                        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            sub.build_stage(scope, stage, &mut seen)
                        }))
                        .unwrap_or_else(|_| {
                            Err(BuildError::Step(format!(
                                "building stage {i} panicked (a bug in kmigrate)"
                            )))
                        });
                        let _ = tx.send(Ended::Stage(Box::new((i, sub, seen, res))));
                    });
                }
                let executed = self.executed_any.load(std::sync::atomic::Ordering::Relaxed);
                for (i, stage) in stages.iter().enumerate() {
                    if failure.is_some() || !executed || prepares >= jobs {
                        break;
                    }
                    if !needed[i] || started[i] || preparing[i] {
                        continue;
                    }
                    let Some(image) = stage.base_image(scope) else {
                        continue;
                    };
                    preparing[i] = true;
                    prepares += 1;
                    self.prepared_roots.start(i);
                    let mut sub = Box::new(self.fork());
                    let tx = tx.clone();
                    s.spawn(move || {
                        let root = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            sub.prepare_root(&image)
                        }));
                        sub.prepared_roots.finish(i, root.ok().and_then(Result::ok));
                        let _ = tx.send(Ended::Prepared(sub));
                    });
                }
                if running == 0 {
                    break;
                }
                let (i, sub, seen, res) = match rx.recv_timeout(POLL) {
                    Ok(Ended::Stage(f)) => *f,
                    Ok(Ended::Prepared(sub)) => {
                        prepares -= 1;
                        self.absorb(*sub);
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => continue,
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                };
                running -= 1;
                self.absorb(*sub);
                // Base roots a stage extracted serve the next ones too.
                for (d, s) in done.iter_mut().zip(seen) {
                    if let (Some(d), Some(s)) = (d, s)
                        && d.rootfs.is_none()
                    {
                        d.rootfs = s.rootfs;
                    }
                }
                match res {
                    Ok(st) => done[i] = Some(st),
                    Err(e) => {
                        failure.get_or_insert(e);
                    }
                }
            }
            // Roots prepared for stages that did not start (a failure) or
            // did not need them: their work directories join the build's.
            while prepares > 0 {
                let Ok(Ended::Prepared(sub)) = rx.recv() else {
                    break;
                };
                prepares -= 1;
                self.absorb(*sub);
            }
        });
        self.multi = None;
        // The report lists steps in file order, whichever stage ended first.
        self.report.steps.sort_by_key(|s| s.line);
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// An engine for one stage on another thread: the build's options,
    /// store, caches and step counter, an empty report.
    fn fork(&self) -> Engine<'a> {
        Engine {
            plan: self.plan,
            opts: self.opts,
            store: self.store.clone(),
            client: self.client.clone(),
            blob_sources: self.blob_sources.clone(),
            imported: self.imported.clone(),
            records: Vec::new(),
            report: BuildReport::default(),
            epoch: self.epoch,
            step_no: self.step_no.clone(),
            images: self.images.clone(),
            work_dirs: Vec::new(),
            platform: self.platform.clone(),
            bar: None,
            consumed: Vec::new(),
            secrets: self.secrets.clone(),
            multi: self.multi.clone(),
            stage_prefix: true,
            prepared_roots: self.prepared_roots.clone(),
            executed_any: self.executed_any.clone(),
            early_uploads: self.early_uploads.clone(),
            overlays: self.overlays.clone(),
            blob_fetches: self.blob_fetches.clone(),
        }
    }

    /// Takes in what a forked engine learnt and did.
    fn absorb(&mut self, sub: Engine<'a>) {
        self.blob_sources.extend(sub.blob_sources);
        self.records.extend(sub.records);
        self.images.extend(sub.images);
        self.work_dirs.extend(sub.work_dirs);
        self.consumed.extend(sub.consumed);
        let r = sub.report;
        self.report.steps.extend(r.steps);
        self.report.executed += r.executed;
        self.report.cached += r.cached;
        self.report.warnings.extend(r.warnings);
    }
}

#[cfg(test)]
mod tests {
    use super::{PreparedRoots, can_overlap};
    use std::path::PathBuf;

    #[test]
    fn a_prepared_root_goes_only_to_the_stage_it_was_prepared_for() {
        // Stage 2 waits for stages 0 and 1, all three FROM the same image;
        // its root is prepared while stage 1 has not reached its FROM yet.
        let roots = PreparedRoots::default();
        roots.start(2);
        let taker = std::thread::scope(|s| {
            let t = s.spawn(|| roots.take(2));
            roots.finish(2, Some(PathBuf::from("/prepared")));
            t.join().unwrap()
        });
        assert_eq!(taker, Some(PathBuf::from("/prepared")));
        roots.start(2);
        roots.finish(2, Some(PathBuf::from("/again")));
        assert_eq!(roots.take(1), None, "stage 1 extracts its own");
        assert_eq!(roots.take(2), Some(PathBuf::from("/again")));
        assert_eq!(roots.take(2), None, "taken once");
        roots.start(3);
        roots.finish(3, None);
        assert_eq!(roots.take(3), None, "a failed preparation leaves none");
    }

    #[test]
    fn stages_overlap_only_when_neither_uses_the_other() {
        // 0 <- 1 <- 2: a chain never overlaps.
        assert!(!can_overlap(&[vec![], vec![0], vec![1]], &[true; 3]));
        // 0 and 1 independent, 2 uses both.
        assert!(can_overlap(&[vec![], vec![], vec![0, 1]], &[true; 3]));
        // ... unless one of them is not needed.
        assert!(!can_overlap(
            &[vec![], vec![], vec![0]],
            &[true, false, true]
        ));
        // 2 uses 0 through 1 only.
        assert!(!can_overlap(
            &[vec![], vec![0], vec![1]],
            &[true, true, true]
        ));
        assert!(can_overlap(
            &[vec![], vec![0], vec![0], vec![1, 2]],
            &[true; 4]
        ));
    }
}
