//! `kmigrate verify`: proves that a (rewritten) config builds and that its
//! registry cache works.
//!
//! Left to right: [`extract`] reads every image build of the config into a
//! `BuildPlan` (rewriting Kaniko in memory first), [`vars`] expands
//! substitutions and variables, [`mapping`] redirects every registry ref to
//! a mapped registry or the embedded store, then each build runs cold and
//! warm on a fresh state ([`embedded`] or [`docker`]), [`compare`] checks a
//! rewritten image against the original Kaniko build, and [`report`]
//! renders the result.

#![forbid(unsafe_code)]
// A panic on hostile input is a bug: outside tests, failures are values
// (`expect` remains for invariants, with the reason it cannot fail).
#![deny(clippy::unwrap_used)]

pub mod compare;
pub mod confine;
#[cfg(feature = "docker-engine")]
pub mod docker;
pub mod embedded;
pub mod mapping;
pub mod report;

// Reading builds out of CI text is the linter's (its rewrite safety net
// reads them back too); verify runs what they say.
pub use kmigrate_lint::readback::{equivalence, extract, vars};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kmigrate_builder::{LogSink, Progress};
use kmigrate_lint::buildx::BuildPlan;
use kmigrate_lint::engine;
use kmigrate_lint::options::Options;
use kmigrate_lint::platform::Platform;
use kmigrate_lint::source::SourceFile;

pub use extract::{Extracted, Kind};
pub use mapping::{Mapped, Mapping};

/// Which engine runs the builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Embedded,
    Docker,
}

/// Everything `verify` needs.
#[derive(Clone)]
pub struct VerifyOptions {
    pub config: PathBuf,
    /// The repository checkout (`/workspace`, `$CI_PROJECT_DIR`); default:
    /// the config's directory.
    pub context: Option<PathBuf>,
    pub maps: Vec<Mapping>,
    /// `--substitution` and `--variable` values.
    pub overrides: BTreeMap<String, String>,
    pub engine: EngineKind,
    pub compare_original: bool,
    /// The embedded store; default under the user's cache directory, outside
    /// the repository (see `default_store`).
    pub store: Option<PathBuf>,
    /// Build contexts, Dockerfiles, local caches and outputs outside the
    /// repository too (`--allow-outside-repo`); see [`confine`].
    pub allow_outside_repo: bool,
    pub progress: Progress,
    /// `DOCKER_HOST` for the docker engine (else the default socket).
    pub docker_host: Option<String>,
    /// Network mode of Docker Engine build containers.
    pub docker_network: Option<String>,
    /// Where status lines go (stderr in the CLI).
    pub status: LogSink,
}

impl VerifyOptions {
    pub fn new(config: impl Into<PathBuf>) -> Self {
        VerifyOptions {
            config: config.into(),
            context: None,
            maps: Vec::new(),
            overrides: BTreeMap::new(),
            engine: EngineKind::Embedded,
            compare_original: false,
            store: None,
            allow_outside_repo: false,
            progress: Progress::Quiet,
            docker_host: None,
            docker_network: None,
            status: Arc::new(Mutex::new(std::io::sink())),
        }
    }

    fn say(&self, line: &str) {
        if let Ok(mut w) = self.status.lock() {
            let _ = writeln!(w, "{line}");
        }
    }
}

/// One run (cold or warm) of one build.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RunStats {
    pub ok: bool,
    /// RUN/COPY/ADD steps executed.
    pub executed: usize,
    /// Steps served from cache.
    pub cached: usize,
    pub seconds: f64,
    /// The image digest (manifest digest; the image ID for the docker engine).
    pub digest: String,
    pub bytes_exported: u64,
    pub pushed: Vec<String>,
    /// Why it failed, with the failing step's output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The verdict of one build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Pass,
    Fail,
    /// Could not be run (unresolved variable, unreadable command, …).
    NotRun,
}

/// What verify found for one build.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuildResult {
    pub unit: String,
    pub location: String,
    pub kind: Kind,
    pub tags: Vec<String>,
    pub refs: Vec<Mapped>,
    pub status: Status,
    /// Why it failed or could not run.
    pub reasons: Vec<String>,
    pub notes: Vec<String>,
    pub unresolved: Vec<String>,
    pub placeholders: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cold: Option<RunStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warm: Option<RunStats>,
    /// `--compare-original`: differences from the Kaniko build.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compared_with: Option<String>,
    pub differences: Vec<compare::Difference>,
}

/// The whole run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub config: String,
    pub platform: String,
    pub engine: EngineKind,
    pub rewritten_in_memory: bool,
    pub store: String,
    pub notes: Vec<String>,
    pub builds: Vec<BuildResult>,
    pub exit_code: u8,
}

impl Report {
    fn finish(&mut self) {
        let any = |s: Status| self.builds.iter().any(|b| b.status == s);
        self.exit_code = if any(Status::Fail) {
            1
        } else if any(Status::NotRun) || self.builds.is_empty() {
            2
        } else {
            0
        };
    }
}

/// A failure that stops verify before any verdict (exit 2). Each message
/// names the file or flag and quotes its cause, which is also `source()`.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The config cannot be read or its platform told.
    #[error("{}: {}{}", path.display(), source.message, source.help.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    Read {
        path: PathBuf,
        #[source]
        source: kmigrate_lint::source::SourceError,
    },
    /// The config cannot be analysed or rewritten in memory.
    #[error("{}: {}", path.display(), source.message)]
    Rewrite {
        path: PathBuf,
        #[source]
        source: kmigrate_lint::source::SourceError,
    },
    /// The config's builds cannot be extracted.
    #[error("{}: {message}", path.display())]
    Extract { path: PathBuf, message: String },
    /// The config has no image build.
    #[error("{}: no image build found (no `docker buildx build`, `docker build` or Kaniko executor call)", path.display())]
    NoBuild { path: PathBuf },
    /// `--context` does not resolve.
    #[error("--context {}: {source} (pass the repository checkout the config builds from)", path.display())]
    Context {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The embedded store cannot be cleared or created.
    #[error("cannot {action} the store {}: {source}", path.display())]
    Store {
        /// `clear` or `create`.
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `--engine docker` without a registry both sides can reach.
    #[error(
        "--engine docker pushes each image to a registry and pulls it back for the warm check: pass --registry-map FROM=TO with a registry the Docker Engine can reach (e.g. a registry on 127.0.0.1:5000)"
    )]
    DockerNeedsRegistry,
    /// `--engine docker` in a binary built without the feature.
    #[error(
        "this kmigrate was built without the `docker-engine` feature; use `--engine embedded` or build kmigrate with it"
    )]
    DockerEngineNotBuilt,
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[cfg(feature = "docker-engine")]
    #[error(
        "cannot reach the Docker Engine at {host}: {source} (start dockerd, or set DOCKER_HOST / --docker-host)"
    )]
    DockerUnreachable {
        host: String,
        #[source]
        source: bollard::errors::Error,
    },
}

/// What a backend does with one plan.
pub trait Backend {
    /// Runs `plan` on a fresh state with its cache import and export.
    fn cold(&mut self, unit: usize, plan: &mapping::MappedPlan) -> RunStats;
    /// Runs `plan` again on a wiped state with only its cache import.
    fn warm(&mut self, unit: usize, plan: &mapping::MappedPlan) -> RunStats;
    /// What the engine cannot prove, said once in the report.
    fn caveats(&self) -> Vec<String>;
}

/// Runs verify and returns the report; `Err` when it cannot start at all.
///
/// Steps: read the config and rewrite it in memory if it still runs Kaniko
/// ([`prepare`]), start from an empty store ([`fresh_store`]), run every
/// build cold, then every build warm and judge it ([`Session`]).
pub fn run(opts: &VerifyOptions) -> Result<Report, VerifyError> {
    let Prepared {
        mut report,
        platform,
        store,
        builds,
        originals,
    } = prepare(opts)?;
    let store = fresh_store(store)?;
    let opts = &VerifyOptions {
        store: Some(store.clone()),
        ..opts.clone()
    };
    let backend: Box<dyn Backend> = match opts.engine {
        EngineKind::Embedded => Box::new(embedded::Embedded::new(&store, opts)),
        #[cfg(feature = "docker-engine")]
        EngineKind::Docker => Box::new(docker::DockerEngine::connect(opts)?),
        #[cfg(not(feature = "docker-engine"))]
        EngineKind::Docker => return Err(VerifyError::DockerEngineNotBuilt),
    };
    report.notes.extend(backend.caveats());
    let mut session = Session {
        opts,
        store: &store,
        platform,
        builds: &builds,
        originals: &originals,
        backend,
    };
    let ran = session.cold_runs(&mut report);
    session.warm_runs(&mut report, ran);
    report.finish();
    Ok(report)
}

/// What verify builds: the report started, the builds of the config (as
/// rewritten in memory if it still runs Kaniko) and of the file as written.
struct Prepared {
    report: Report,
    platform: Platform,
    /// The store as given or defaulted (not yet cleared).
    store: PathBuf,
    builds: Vec<Extracted>,
    originals: Vec<Extracted>,
}

/// Reads the config, resolves `--context`, rewrites in memory when the
/// config still runs Kaniko, and extracts its builds.
fn prepare(opts: &VerifyOptions) -> Result<Prepared, VerifyError> {
    let path = &opts.config;
    let read_err = |source| VerifyError::Read {
        path: path.clone(),
        source,
    };
    let source = SourceFile::load(path).map_err(read_err)?;
    let platform = engine::platform_of(&source, None).map_err(read_err)?;
    let context_dir = match &opts.context {
        Some(c) => c.clone(),
        None => path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(".")),
    };
    let context_dir = context_dir
        .canonicalize()
        .map_err(|source| VerifyError::Context {
            path: context_dir.clone(),
            source,
        })?;
    let store = match &opts.store {
        Some(s) => s.clone(),
        None => default_store(&context_dir),
    };

    let mut report = Report {
        config: path.display().to_string(),
        platform: platform.support().cli_name().into(),
        engine: opts.engine,
        rewritten_in_memory: false,
        store: store.display().to_string(),
        notes: Vec::new(),
        builds: Vec::new(),
        exit_code: 2,
    };

    let rewrite_err = |source| VerifyError::Rewrite {
        path: path.clone(),
        source,
    };
    let extract_err = |message| VerifyError::Extract {
        path: path.clone(),
        message,
    };
    // Rewrite in memory when the config still runs Kaniko.
    let findings = engine::analyze(&source, platform, &Options::default()).map_err(rewrite_err)?;
    let text = match engine::apply_fixes(&source, &findings).map_err(rewrite_err)? {
        Some(t) => {
            report.rewritten_in_memory = true;
            report.notes.push(format!(
                "{} still uses Kaniko: verified the rewrite `kmigrate rewrite` would write (in memory; the file is unchanged)",
                path.display()
            ));
            t
        }
        None => source.text.clone(),
    };
    let git = vars::GitInfo::read(&context_dir);
    let inputs = extract::Inputs {
        context_dir: &context_dir,
        git: &git,
        overrides: &opts.overrides,
    };
    let mut builds = extract::extract(path, &text, platform, &inputs).map_err(extract_err)?;
    confine_builds(opts, &context_dir, &mut builds);
    if builds.is_empty() {
        return Err(VerifyError::NoBuild { path: path.clone() });
    }
    // The builds of the file as written: where each rewritten build comes
    // from, and the Kaniko plans `--compare-original` builds.
    let mut originals = if report.rewritten_in_memory || opts.compare_original {
        extract::extract(path, &source.text, platform, &inputs).map_err(extract_err)?
    } else {
        Vec::new()
    };
    confine_builds(opts, &context_dir, &mut originals);
    if opts.compare_original && !originals.iter().any(|o| o.kind == Kind::Kaniko) {
        report.notes.push("--compare-original: the config has no Kaniko build to compare with (run verify on the original, un-rewritten config)".into());
    }
    Ok(Prepared {
        report,
        platform,
        store,
        builds,
        originals,
    })
}

/// Empties (or creates) the embedded store, so the cold run starts without
/// any cache, and returns it canonical, as contexts are: backends and
/// `--compare-original` keep the store out of every context it lies in.
fn fresh_store(store: PathBuf) -> Result<PathBuf, VerifyError> {
    let store_err = |action, store: &Path| {
        let path = store.to_path_buf();
        move |source| VerifyError::Store {
            action,
            path,
            source,
        }
    };
    if store.exists() {
        std::fs::remove_dir_all(&store).map_err(store_err("clear", &store))?;
    }
    std::fs::create_dir_all(&store).map_err(store_err("create", &store))?;
    Ok(store.canonicalize().unwrap_or(store))
}

/// A build whose cold run happened: where its result is in the report, the
/// build's index, its mapped plan, the cold run's stats and the original
/// it comes from.
type ColdRun = (usize, usize, mapping::MappedPlan, RunStats, Option<usize>);

/// The builds of one verify run and the backend that runs them.
struct Session<'a> {
    opts: &'a VerifyOptions,
    store: &'a Path,
    platform: Platform,
    builds: &'a [Extracted],
    originals: &'a [Extracted],
    backend: Box<dyn Backend>,
}

impl Session<'_> {
    /// Runs every build that has a plan cold; the others get their result
    /// (not run, and why) at once.
    fn cold_runs(&mut self, report: &mut Report) -> Vec<ColdRun> {
        let opts = self.opts;
        let mut used_originals = vec![false; self.originals.len()];
        let mut ran = Vec::new();
        for (i, b) in self.builds.iter().enumerate() {
            let origin = if report.rewritten_in_memory {
                pair(b.plan.as_ref(), self.originals, &used_originals)
            } else {
                None
            };
            if let Some(j) = origin {
                used_originals[j] = true;
            }
            let mut r = self.new_result(b, origin, report.rewritten_in_memory);
            let Some(plan) = &b.plan else {
                if !b.unresolved.is_empty() {
                    r.reasons.push(format!(
                        "unresolved: {} (pass --substitution NAME=VALUE or --variable NAME=VALUE)",
                        b.unresolved.join(", ")
                    ));
                }
                if let Some(e) = &b.error {
                    r.reasons.push(e.clone());
                }
                opts.say(&format!(
                    "{} ({}): not run: {}",
                    r.unit,
                    r.location,
                    r.reasons.join("; ")
                ));
                report.builds.push(r);
                continue;
            };
            let mapped =
                mapping::map_plan(plan, &opts.maps, self.store, &format!("build-{}", i + 1));
            r.refs = mapped.refs.clone();
            // Progress names the build as its result does: where the user's
            // file has it, not where the in-memory rewrite moved it.
            opts.say(&format!("{} ({}): cold build…", r.unit, r.location));
            let cold = self.backend.cold(i, &mapped);
            ran.push((report.builds.len(), i, mapped, cold, origin));
            report.builds.push(r);
        }
        ran
    }

    /// The result of build `b` before it runs: where it is (and comes
    /// from, when rewritten in memory) and the notes about its values.
    fn new_result(&self, b: &Extracted, origin: Option<usize>, rewritten: bool) -> BuildResult {
        let (unit, location) = match origin.map(|j| &self.originals[j]) {
            // Cloud Build steps keep their place; split GitLab jobs keep
            // their new name and say where they come from.
            Some(o) if self.platform == Platform::CloudBuild => {
                (o.unit.clone(), o.location.clone())
            }
            Some(o) => (b.unit.clone(), o.location.clone()),
            None if rewritten => (
                b.unit.clone(),
                format!("{} (in the rewritten text)", b.location),
            ),
            None => (b.unit.clone(), b.location.clone()),
        };
        let mut r = BuildResult {
            unit,
            location,
            kind: b.kind,
            tags: b.plan.as_ref().map(|p| p.tags.clone()).unwrap_or_default(),
            refs: Vec::new(),
            status: Status::NotRun,
            reasons: Vec::new(),
            notes: b.notes.clone(),
            unresolved: b.unresolved.clone(),
            placeholders: b.placeholders.clone(),
            cold: None,
            warm: None,
            compared_with: None,
            differences: Vec::new(),
        };
        if !b.placeholders.is_empty() {
            r.notes.push(format!(
                "placeholder value for {} (no git or CI value here; pass --substitution/--variable NAME=VALUE to set it)",
                b.placeholders.join(", ")
            ));
        }
        if b.kind == Kind::Kaniko {
            r.notes.push(
                "still a Kaniko call after the rewrite: verified as its buildx conversion".into(),
            );
        }
        r
    }

    /// Runs every cold-built build warm and judges it. The warm runs start
    /// after every cold run, as the next run of the config starts after the
    /// whole last one: a build whose cache another build overwrote (one
    /// registry cache ref shared by two images) misses.
    fn warm_runs(&mut self, report: &mut Report, ran: Vec<ColdRun>) {
        let opts = self.opts;
        for (at, i, mapped, cold, origin) in ran {
            let b = &self.builds[i];
            let r = &mut report.builds[at];
            let mut warm = None;
            if cold.ok {
                opts.say(&format!(
                    "{} ({}): warm build (state wiped)…",
                    r.unit, r.location
                ));
                warm = Some(self.backend.warm(i, &mapped));
            }
            judge(r, &mapped, &cold, warm.as_ref());
            r.cold = Some(cold);
            r.warm = warm;
            if opts.compare_original
                && r.cold.as_ref().is_some_and(|c| c.ok)
                && let Some(plan) = &b.plan
            {
                match origin.map(|j| &self.originals[j]) {
                    Some(o) if o.kind == Kind::Kaniko => {
                        compare_with(opts, self.store, i, plan, o, r)
                    }
                    _ => r.notes.push(
                        "--compare-original: this build does not come from a Kaniko call of the original config; nothing to compare".into(),
                    ),
                }
            }
            opts.say(&format!(
                "{} ({}): {}",
                r.unit,
                r.location,
                match r.status {
                    Status::Pass => "pass".to_string(),
                    Status::Fail => format!("FAIL: {}", r.reasons.join("; ")),
                    Status::NotRun => "not run".to_string(),
                }
            ));
        }
    }
}

/// The default store of a repository: outside it (a build context must not
/// see verify's state: with `COPY . .` the warm build would see a different
/// context), under the user's cache directory, one per repository path.
fn default_store(repo: &Path) -> PathBuf {
    let name = repo
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let id = &kmigrate_builder::digest::sha256_hex(repo.as_os_str().as_encoded_bytes())[..12];
    kmigrate_builder::api::user_cache_dir()
        .join("verify")
        .join(format!("{name}-{id}"))
}

/// Unless `--allow-outside-repo`, a build with a host path outside the
/// repository is not run: its plan is dropped and the reason kept.
fn confine_builds(opts: &VerifyOptions, repo: &Path, builds: &mut [Extracted]) {
    if opts.allow_outside_repo {
        return;
    }
    for b in builds {
        if let Some(Err(e)) = b.plan.as_ref().map(|p| confine::check(p, repo)) {
            b.plan = None;
            b.error = Some(e);
        }
    }
}

/// Pass criteria: cold and warm succeed, the warm run executed nothing and
/// produced the same digest.
fn judge(r: &mut BuildResult, m: &mapping::MappedPlan, cold: &RunStats, warm: Option<&RunStats>) {
    if !cold.ok {
        r.status = Status::Fail;
        r.reasons.push(format!(
            "cold build failed: {}",
            cold.error.as_deref().unwrap_or("unknown error")
        ));
        return;
    }
    let Some(w) = warm else {
        r.status = Status::Fail;
        r.reasons.push("warm build did not run".into());
        return;
    };
    if !w.ok {
        r.status = Status::Fail;
        r.reasons.push(format!(
            "warm build failed: {}",
            w.error.as_deref().unwrap_or("unknown error")
        ));
        return;
    }
    let mut fail = Vec::new();
    if m.cache_from.is_empty() {
        fail.push(
            "the build imports no cache (no --cache-from): a fresh runner rebuilds everything"
                .to_string(),
        );
    } else if !m.exports_cache {
        fail.push("the build exports no cache (no --cache-to type=registry): nothing is there for the next run to import".to_string());
    }
    if w.executed > 0 {
        fail.push(format!(
            "warm build executed {} step(s) instead of 0: the exported cache did not cover them",
            w.executed
        ));
    }
    if w.digest != cold.digest {
        fail.push(format!(
            "warm build produced {} instead of the cold build's {}",
            w.digest, cold.digest
        ));
    }
    if fail.is_empty() {
        r.status = Status::Pass;
    } else {
        r.status = Status::Fail;
        r.reasons.extend(fail);
    }
}

/// The build of the original config a rewritten build comes from: the
/// unused one with the same tags, else the next unused one in order.
fn pair(plan: Option<&BuildPlan>, originals: &[Extracted], used: &[bool]) -> Option<usize> {
    let tags = plan.map(|p| p.tags.as_slice()).unwrap_or_default();
    let by_tags = originals.iter().enumerate().position(|(j, o)| {
        !used[j] && !tags.is_empty() && o.plan.as_ref().is_some_and(|p| p.tags == tags)
    });
    by_tags.or_else(|| used.iter().position(|u| !u))
}

fn compare_with(
    opts: &VerifyOptions,
    store: &Path,
    i: usize,
    plan: &BuildPlan,
    original: &Extracted,
    r: &mut BuildResult,
) {
    r.compared_with = Some(original.location.clone());
    let Some(orig_plan) = &original.plan else {
        r.notes.push(format!(
            "--compare-original: the original build at {} could not be read: {}",
            original.location,
            original
                .error
                .clone()
                .unwrap_or_else(|| format!("unresolved {}", original.unresolved.join(", ")))
        ));
        return;
    };
    let dir = store.join("compare").join(format!("build-{}", i + 1));
    match compare_plans(opts, &dir, orig_plan, plan) {
        Ok(diffs) => {
            if !diffs.is_empty() {
                r.status = Status::Fail;
                r.reasons.push(format!(
                    "the rewritten build differs from the original Kaniko build at {} in {} place(s)",
                    original.location,
                    diffs.len()
                ));
            }
            r.differences = diffs;
        }
        Err(e) => {
            r.status = Status::Fail;
            r.reasons.push(format!(
                "--compare-original could not build both images: {e}"
            ));
        }
    }
}

/// Builds `original` and `rewritten` with the embedded builder (fresh
/// state each, no registry involved) and compares the images.
pub fn compare_plans(
    opts: &VerifyOptions,
    dir: &Path,
    original: &BuildPlan,
    rewritten: &BuildPlan,
) -> Result<Vec<compare::Difference>, String> {
    let mut layouts = Vec::new();
    for (name, plan) in [("original", original), ("rewritten", rewritten)] {
        let out = dir.join(name);
        let state = dir.join(format!("{name}-state"));
        let _ = std::fs::remove_dir_all(&out);
        let _ = std::fs::remove_dir_all(&state);
        let p = local_only(plan, &out);
        // Verify's store (or, without one, this work directory) stays out
        // of the contexts.
        let own = opts.store.as_deref().unwrap_or(dir);
        let (stats, _) = embedded::build_once(&p, &state, own, opts.progress, None);
        let _ = std::fs::remove_dir_all(&state);
        if !stats.ok {
            return Err(format!(
                "{name} build: {}",
                stats.error.unwrap_or_else(|| "failed".into())
            ));
        }
        layouts.push(compare::read_layout(&out)?);
    }
    Ok(compare::compare(&layouts[0], &layouts[1]))
}

/// `plan` without registry refs, writing its image to the OCI layout `out`.
pub fn local_only(plan: &BuildPlan, out: &Path) -> BuildPlan {
    let mut p = plan.clone();
    p.tags.clear();
    p.push = false;
    p.load = false;
    p.cache_from.clear();
    p.cache_to.clear();
    p.metadata_file = None;
    p.builder = None;
    p.outputs = vec![kmigrate_lint::buildx::AttrList::new([
        ("type", "oci"),
        ("tar", "false"),
        ("dest", out.display().to_string().as_str()),
    ])];
    p
}

pub(crate) fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn errors_name_the_flag_and_keep_the_io_error() {
        let d = tempfile::tempdir().unwrap();
        let config = d.path().join("cloudbuild.yaml");
        std::fs::write(&config, "steps:\n- name: gcr.io/cloud-builders/docker\n").unwrap();
        let mut opts = VerifyOptions::new(&config);
        opts.context = Some(d.path().join("missing"));
        let e = run(&opts).unwrap_err();
        let VerifyError::Context { path, source } = &e else {
            panic!("{e:?}");
        };
        assert_eq!(path, &d.path().join("missing"));
        assert_eq!(
            e.to_string(),
            format!(
                "--context {}: {source} (pass the repository checkout the config builds from)",
                path.display()
            )
        );
        let io = e
            .source()
            .unwrap()
            .downcast_ref::<std::io::Error>()
            .unwrap();
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);

        let e = run(&VerifyOptions::new(d.path().join("none.yaml"))).unwrap_err();
        assert!(matches!(e, VerifyError::Read { .. }), "{e:?}");
        assert!(e.source().is_some());
    }
}
