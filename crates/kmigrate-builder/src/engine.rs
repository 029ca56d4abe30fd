//! The build engine: stages, steps, cache lookups with lazy materialisation,
//! layer creation, image assembly.

use std::collections::{BTreeMap, HashMap};
use std::fs;

use std::path::PathBuf;
use std::time::Instant;

use super::api::{BuildError, BuildOptions, BuildReport, StepRecord};
use super::cache::{self, CacheRecord, LayerRef};
use super::commands::{self, Command, CopyCmd, FromCmd, RunCmd, RunNetwork, Typed};
use super::context::Context;
use super::dockerfile::{self, Dockerfile, Instruction};
use super::image::{self, Descriptor, History, ImageConfig, Manifest, RootFs, RunConfig};
use super::instructions::{self, run_env};
use super::layer::{self, TarOptions};
use super::progress::human;
use super::registry::Client;
use super::sandbox;
use super::snapshot;
use super::store::Store;
use super::words;
use kmigrate_plan::BuildPlan;

pub(crate) type R<T> = Result<T, BuildError>;

/// Wraps an I/O error with what was being done and the path it was done to.
pub(crate) fn io_err(ctx: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> BuildError {
    move |source| BuildError::Io {
        context: ctx.to_string(),
        source,
    }
}

/// Wraps a JSON error with the document it is about (empty: none).
pub(crate) fn json_err(
    ctx: impl std::fmt::Display,
) -> impl FnOnce(serde_json::Error) -> BuildError {
    move |source| BuildError::Json {
        context: ctx.to_string(),
        source,
    }
}

/// Where a blob not yet in the local store can be fetched.
#[derive(Debug, Clone)]
pub(crate) enum BlobSource {
    Registry { registry: String, repo: String },
    Dir(PathBuf),
}

/// A blob known from a descriptor: where to fetch it and the size the
/// descriptor declares, which bounds the download.
#[derive(Debug, Clone)]
pub(crate) struct KnownBlob {
    pub source: BlobSource,
    pub size: u64,
}

/// A stage's result so far.
#[derive(Debug, Clone)]
pub(crate) struct StageState {
    pub name: String,
    pub config: ImageConfig,
    pub layers: Vec<LayerRef>,
    pub key: String,
    pub rootfs: Option<PathBuf>,
    /// Keys of layer steps in this image's chain (for `mode=min`).
    pub chain: Vec<String>,
    pub last_created: String,
}

pub(crate) struct Engine<'a> {
    pub plan: &'a BuildPlan,
    pub opts: &'a BuildOptions,
    pub store: Store,
    pub client: Client,
    pub blob_sources: HashMap<String, KnownBlob>,
    pub imported: HashMap<String, CacheRecord>,
    pub records: Vec<CacheRecord>,
    pub report: BuildReport,
    pub epoch: Option<u64>,
    /// The last step number given, shared by the engines of stages built
    /// in parallel.
    pub step_no: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    pub images: HashMap<String, StageState>,
    pub work_dirs: Vec<PathBuf>,
    pub platform: String,
    /// The live TTY spinner of the running step and its title.
    pub bar: Option<(indicatif::ProgressBar, String)>,
    /// `--build-arg`s some ARG declared (the others are warned about).
    pub consumed: Vec<String>,
    /// The build's `--secret`s, for `RUN --mount=type=secret`.
    pub secrets: super::secrets::Secrets,
    /// The live view of stages built in parallel on a TTY (one spinner per
    /// running step).
    pub multi: Option<indicatif::MultiProgress>,
    /// RUN output lines name their stage (`#7 [build] …`): set while
    /// stages run in parallel, when lines of several stages interleave.
    pub stage_prefix: bool,
    /// Base roots extracted ahead of their stage while other stages ran
    /// (see `parallel`), by image reference; each is taken by one stage.
    pub prepared_roots: std::sync::Arc<super::parallel::PreparedRoots>,
    /// Set once a step of the build executed (a cache miss); shared by the
    /// engines of parallel stages.
    pub executed_any: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// New layers go to the `mode=max` registry cache as they are written
    /// (see `early_upload`).
    pub early_uploads: Option<std::sync::Arc<super::early_upload::EarlyUploads>>,
    /// Stage roots as overlays on one extraction per base, when kmigrate
    /// has a mount namespace of its own (see `overlay`).
    pub overlays: Option<std::sync::Arc<super::overlay::Overlays>>,
    /// A blob is fetched by one stage at a time; the others then find it
    /// in the store.
    pub blob_fetches: std::sync::Arc<super::parallel::KeyedLocks>,
}

pub(crate) struct Stage {
    name: Option<String>,
    index: usize,
    /// The stage's FROM, and its base as read from it.
    from: Typed,
    base: FromCmd,
    body: Vec<Typed>,
}

impl Stage {
    /// The image this stage starts from (its FROM expanded with the global
    /// ARGs), or `None` for `scratch` and an earlier stage.
    pub(crate) fn base_image(&self, scope: &Scope) -> Option<String> {
        let from = self.base.expand_image(scope.globals).ok()?;
        let is_stage = find_stage(scope.names, &from, self.index).is_some();
        (!is_stage && !from.eq_ignore_ascii_case("scratch")).then_some(from)
    }
}

impl<'a> Engine<'a> {
    fn now_created(&self) -> String {
        let secs = self.epoch.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
        image::rfc3339(secs)
    }

    fn next_step_no(&self) -> usize {
        self.step_no
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1
    }

    fn lookup(&self, key: &str) -> Option<CacheRecord> {
        if self.plan.no_cache {
            return None;
        }
        if let Some(r) = self.imported.get(key) {
            return Some(r.clone());
        }
        let p = self.store.cache_dir().join(format!("{key}.json"));
        let r: CacheRecord = serde_json::from_slice(&fs::read(p).ok()?).ok()?;
        match &r.layer {
            Some(l) if !self.store.has(&l.digest) => None,
            _ => Some(r),
        }
    }

    fn save_record(&mut self, r: &CacheRecord) -> R<()> {
        // Write then rename, so concurrent builds on one store never read a
        // partial record.
        let p = self.store.cache_dir().join(format!("{}.json", r.key));
        let tmp = self.store.temp_file_path("record");
        fs::write(&tmp, serde_json::to_vec(r).unwrap_or_default())
            .map_err(io_err("cache record"))?;
        fs::rename(&tmp, p).map_err(io_err("cache record"))?;
        Ok(())
    }

    /// Runs the whole build up to the image; returns the target stage.
    pub fn run(&mut self) -> R<StageState> {
        let (df, ctx) = self.load_dockerfile()?;
        let build_args = self.build_args();
        let globals = self.predefined_args();
        let (stages, globals) = self.split_stages(&df, &build_args, globals)?;
        let target = match &self.plan.target {
            Some(t) => stages
                .iter()
                .position(|s| s.name.as_deref() == Some(t.to_ascii_lowercase().as_str()))
                .ok_or_else(|| {
                    BuildError::Usage(format!(
                        "target stage {t:?} could not be found in {}",
                        df.name
                    ))
                })?,
            None => stages.len() - 1,
        };
        let deps = stage_deps(&stages, &globals, &build_args);
        let needed = needed_stages(&deps, target);
        // Refusals come before any pull or RUN, all of them at once.
        super::validate::check(
            &df,
            stages
                .iter()
                .filter(|s| needed[s.index])
                .flat_map(|s| std::iter::once(&s.from).chain(&s.body))
                .map(|t| (&t.node, t.problems.as_slice())),
        )?;
        let names = stages_names(&stages);
        let scope = Scope {
            df: &df,
            ctx: &ctx,
            names: &names,
            globals: &globals,
            build_args: &build_args,
        };
        let mut done: Vec<Option<StageState>> = vec![None; stages.len()];
        let jobs = self.opts.max_parallel_stages.max(1);
        if jobs > 1 && super::parallel::can_overlap(&deps, &needed) {
            self.build_stages_in_parallel(&scope, &stages, &deps, &needed, &mut done, jobs)?;
        } else {
            for (si, stage) in stages.iter().enumerate() {
                if needed[si] {
                    done[si] = Some(self.build_stage(&scope, stage, &mut done)?);
                }
            }
        }
        let unused: Vec<&String> = build_args
            .keys()
            .filter(|k| !self.consumed.contains(k) && k.as_str() != "SOURCE_DATE_EPOCH")
            .collect();
        if !unused.is_empty() {
            self.warn(format!(
                "one or more build-args {unused:?} were not consumed"
            ));
        }
        let mut fin = done[target]
            .take()
            .ok_or_else(|| BuildError::Step("target stage not built".into()))?;
        for (k, v) in &self.plan.labels {
            fin.config.config.labels.insert(k.clone(), v.clone());
        }
        Ok(fin)
    }

    /// Checks the build context, reads and parses the Dockerfile, and opens
    /// the context with its ignore rules (kmigrate's own state excluded).
    fn load_dockerfile(&mut self) -> R<(Dockerfile, Context)> {
        let ctx_dir = PathBuf::from(&self.plan.context);
        if self.plan.context == "-"
            || self.plan.context.contains("://")
            || self.plan.context.starts_with("git@")
        {
            return Err(BuildError::Usage(format!(
                "build context {:?} is not supported: the embedded builder needs a local directory",
                self.plan.context
            )));
        }
        if !ctx_dir.is_dir() {
            return Err(BuildError::Usage(format!(
                "build context {:?} is not a directory",
                self.plan.context
            )));
        }
        let df_path = match &self.plan.dockerfile {
            Some(f) if f == "-" => {
                return Err(BuildError::Usage(
                    "-f - (Dockerfile on stdin) is not supported".into(),
                ));
            }
            Some(f) => PathBuf::from(f),
            None => ctx_dir.join("Dockerfile"),
        };
        let text =
            super::limits::read_regular_text(&df_path, super::limits::DOCKERFILE_MAX, "Dockerfile")
                .map_err(|e| {
                    BuildError::Usage(format!("cannot read Dockerfile {}: {e}", df_path.display()))
                })?;
        let df = dockerfile::parse(&df_path.display().to_string(), &text).map_err(Box::new)?;
        for n in &df.notes {
            self.log(&format!("note: {n}"));
        }
        let (ignore, ignore_file) = super::ignore::IgnoreRules::load(&ctx_dir, &df_path)
            .map_err(io_err(".dockerignore"))?;
        if let Some(f) = ignore_file {
            self.log(&format!("using ignore file {f}"));
        }
        let mut ctx = Context::new(&ctx_dir, ignore).map_err(io_err("build context"))?;
        // kmigrate's own state never enters the context it builds.
        let own = std::iter::once(self.store.root())
            .chain(self.opts.exclude_from_context.iter().map(|p| p.as_path()));
        for dir in own {
            if let Some(rel) = fs::canonicalize(dir)
                .ok()
                .and_then(|d| {
                    d.strip_prefix(&ctx.root)
                        .ok()
                        .map(|r| r.to_string_lossy().replace('\\', "/"))
                })
                .filter(|r| !r.is_empty())
            {
                ctx.ignore.exclude_always(&rel);
            }
        }
        Ok((df, ctx))
    }

    /// The `--build-arg` values (a bare name takes the environment's);
    /// `SOURCE_DATE_EPOCH` among them sets the build's epoch.
    fn build_args(&mut self) -> BTreeMap<String, String> {
        let mut build_args: BTreeMap<String, String> = BTreeMap::new();
        for a in &self.plan.build_args {
            let v = match &a.value {
                Some(v) => Some(v.clone()),
                None => std::env::var(&a.name).ok(),
            };
            if let Some(v) = v {
                build_args.insert(a.name.clone(), v);
            }
        }
        if let Some(e) = build_args
            .get("SOURCE_DATE_EPOCH")
            .and_then(|v| v.parse().ok())
        {
            self.epoch = Some(e);
        }
        build_args
    }

    /// BuildKit's predefined platform ARGs.
    fn predefined_args(&self) -> BTreeMap<String, String> {
        let host = image::host_platform();
        let mut globals: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in [
            ("TARGETPLATFORM", self.platform.clone()),
            ("TARGETOS", host.os.clone()),
            ("TARGETARCH", host.architecture.clone()),
            ("TARGETVARIANT", host.variant.clone().unwrap_or_default()),
            ("BUILDPLATFORM", self.platform.clone()),
            ("BUILDOS", host.os.clone()),
            ("BUILDARCH", host.architecture.clone()),
        ] {
            globals.insert(k.into(), v);
        }
        globals
    }

    /// Splits the Dockerfile into stages at each FROM; the ARGs before the
    /// first FROM are added to `globals`.
    fn split_stages(
        &mut self,
        df: &Dockerfile,
        build_args: &BTreeMap<String, String>,
        mut globals: BTreeMap<String, String>,
    ) -> R<(Vec<Stage>, BTreeMap<String, String>)> {
        let mut stages: Vec<Stage> = Vec::new();
        for ins in &df.instructions {
            let typed = commands::convert(ins).map_err(|p| p.at(df, ins))?;
            if let Command::From(base) = &typed.command {
                if let Some(p) = &base.platform {
                    self.log(&format!(
                        "note: line {}: FROM --platform={p} ignored: the build runs for {}",
                        ins.line, self.platform
                    ));
                }
                stages.push(Stage {
                    name: base.name.clone(),
                    index: stages.len(),
                    base: base.clone(),
                    from: typed,
                    body: Vec::new(),
                });
            } else if let Some(st) = stages.last_mut() {
                if let Command::Run(run) = &typed.command
                    && run.network == RunNetwork::Host
                {
                    self.log(&format!(
                        "note: line {}: RUN --network=host: the embedded builder's RUN shares the \
                         host's network anyway; BuildKit needs --allow network.host for it",
                        ins.line
                    ));
                }
                st.body.push(typed);
            } else if let Command::Arg(arg) = &typed.command {
                let decls = arg
                    .expand(&globals)
                    .map_err(|e| Box::new(df.error_at(ins, e)))?;
                for (k, v) in decls {
                    let val = build_args.get(&k).cloned().or(v).unwrap_or_default();
                    if build_args.contains_key(&k) {
                        self.consumed.push(k.clone());
                    }
                    globals.insert(k, val);
                }
            } else {
                return Err(Box::new(df.error_at(
                    ins,
                    format!(
                        "{} before the first FROM: only ARG may come first",
                        ins.keyword
                    ),
                ))
                .into());
            }
        }
        if stages.is_empty() {
            return Err(BuildError::Usage(format!(
                "{}: no FROM instruction",
                df.name
            )));
        }
        Ok((stages, globals))
    }

    /// Builds stage `stage` from its base and runs its instructions.
    pub(crate) fn build_stage(
        &mut self,
        scope: &Scope,
        stage: &Stage,
        done: &mut [Option<StageState>],
    ) -> R<StageState> {
        let df = scope.df;
        let si = stage.index;
        let label = stage
            .name
            .clone()
            .unwrap_or_else(|| format!("stage-{}", stage.index));
        let from = stage
            .base
            .expand_image(scope.globals)
            .map_err(|e| Box::new(df.error_at(&stage.from.node, e)))?;
        let parent = find_stage(scope.names, &from, si);
        let mut st = if from.eq_ignore_ascii_case("scratch") {
            self.scratch(&label)
        } else if let Some(j) = parent {
            let mut s = done[j]
                .clone()
                .ok_or_else(|| BuildError::Step(format!("stage {from} was not built")))?;
            s.key = cache::root_key(&self.platform, &format!("stage:{}", s.key));
            // The rootfs of the parent stage stays with the parent.
            s.rootfs = None;
            s
        } else {
            let t0 = Instant::now();
            let n = self.next_step_no();
            self.begin(n, &format!("[{label}] FROM {from}"));
            // Where a base image cannot be had, point at its FROM line.
            let mut s = self.pull(&from).map_err(|e| match e {
                BuildError::Dockerfile(_) | BuildError::Step(_) => e,
                other => Box::new(df.error_at(&stage.from.node, other.to_string())).into(),
            })?;
            s.rootfs = self.take_prepared_root(stage.index);
            let prepared = match s.rootfs {
                Some(_) => " (root extracted while earlier stages ran)",
                None => "",
            };
            self.end(
                n,
                &format!("DONE {:.1}s{prepared}", t0.elapsed().as_secs_f64()),
            );
            s
        };
        st.name = label;
        if !st.config.config.on_build.is_empty()
            && !from.eq_ignore_ascii_case("scratch")
            && parent.is_none()
        {
            self.warn(format!(
                "{from} has ONBUILD triggers ({}), which the embedded builder does not run",
                st.config.config.on_build.join("; ")
            ));
            st.config.config.on_build.clear();
        }
        // Stage-local args start empty; declared ARGs pull in globals.
        let mut run = StageRun {
            si,
            st,
            args: BTreeMap::new(),
            total: stage.body.len(),
        };
        for (i, typed) in stage.body.iter().enumerate() {
            self.step(scope, &mut run, done, typed, i + 1)?;
        }
        Ok(run.st)
    }

    /// The empty state of `FROM scratch`.
    fn scratch(&self, label: &str) -> StageState {
        let host = image::host_platform();
        StageState {
            name: label.to_string(),
            config: ImageConfig {
                architecture: host.architecture,
                os: host.os,
                rootfs: RootFs {
                    kind: "layers".into(),
                    diff_ids: vec![],
                },
                ..Default::default()
            },
            layers: vec![],
            key: cache::root_key(&self.platform, "scratch"),
            rootfs: None,
            chain: vec![],
            last_created: image::rfc3339(self.epoch.unwrap_or(0)),
        }
    }

    /// Runs instruction `typed`, the `pos`-th of its stage: metadata
    /// instructions change the config, RUN/COPY/ADD make a layer.
    fn step(
        &mut self,
        scope: &Scope,
        run: &mut StageRun,
        done: &mut [Option<StageState>],
        typed: &Typed,
        pos: usize,
    ) -> R<()> {
        let t0 = Instant::now();
        let ins = &typed.node;
        // The build checks every needed step first; this one never runs refused.
        if let Some(p) = typed.problems.first() {
            return Err(p.at(scope.df, ins));
        }
        let step = Step::new(scope, run, ins);
        let layer = LayerCmd::of(&typed.command);
        let text = match layer {
            Some(_) => ins.text(),
            None => self.apply_metadata(&step, &typed.command, run)?,
        };
        let n = self.next_step_no();
        let title = format!(
            "[{} {pos}/{}] {}",
            run.st.name,
            run.total,
            one_line_title(&text)
        );
        match layer {
            Some(cmd) => {
                self.begin(n, &title);
                self.layer_step(&step, cmd, run, done, n, t0)
            }
            None => {
                self.line_step(n, &title);
                self.record_metadata_step(&mut run.st, ins, text, t0);
                Ok(())
            }
        }
    }

    /// Records a metadata step: its key, an empty-layer history entry and
    /// its line in the report.
    fn record_metadata_step(
        &mut self,
        st: &mut StageState,
        ins: &Instruction,
        text: String,
        t0: Instant,
    ) {
        st.key = cache::next_key(&st.key, ins.keyword.as_str(), &text, "");
        st.config.history.push(History {
            created: Some(st.last_created.clone()),
            created_by: Some(text.clone()),
            comment: Some("kmigrate".into()),
            empty_layer: true,
        });
        self.report.steps.push(StepRecord {
            stage: st.name.clone(),
            line: ins.line,
            instruction: text,
            cached: false,
            executed: false,
            duration: t0.elapsed(),
            key: st.key.clone(),
            layer: None,
        });
    }

    /// Applies a metadata command to the stage's config (ARG: to the stage's
    /// args) and returns the step's canonical text: ARG, ENV, WORKDIR and
    /// USER show their values after expansion.
    fn apply_metadata(&mut self, step: &Step, command: &Command, run: &mut StageRun) -> R<String> {
        let cfg: &mut RunConfig = &mut run.st.config.config;
        let text = match command {
            Command::Arg(c) => Some(instructions::arg(
                step,
                c,
                &mut run.args,
                &mut self.consumed,
            )?),
            Command::Env(c) => Some(instructions::env(step, c, cfg)?),
            Command::Label(c) => instructions::label(step, c, cfg)?,
            Command::Maintainer(name) => instructions::maintainer(name, cfg),
            Command::Workdir(c) => Some(instructions::workdir(step, c, cfg)?),
            Command::User(c) => Some(instructions::user(step, c, cfg)?),
            Command::Expose(c) => instructions::expose(step, c, cfg)?,
            Command::Volume(args) => instructions::volume(step, args, cfg)?,
            Command::StopSignal(c) => instructions::stop_signal(step, c, cfg)?,
            Command::Cmd(args) => instructions::cmd(args, cfg),
            Command::Entrypoint(args) => instructions::entrypoint(args, cfg),
            Command::Shell(shell) => instructions::shell(shell, cfg),
            Command::OnBuild(trigger) => instructions::on_build(trigger, cfg),
            Command::Healthcheck(check) => instructions::healthcheck(check, cfg),
            // A FROM always starts a stage, and layer steps are not metadata.
            Command::From(_) | Command::Run(_) | Command::Copy(_) => {
                return Err(step.err(format!("unsupported instruction {}", step.ins.keyword)));
            }
        };
        Ok(text.unwrap_or_else(|| step.ins.text()))
    }

    /// RUN: its command line, its mounts, and what its key covers besides
    /// its text (environment, user, working directory, shell, mounts).
    fn run_action(
        &mut self,
        step: &Step,
        cmd: &RunCmd,
        env: &[(String, String)],
        cfg: &RunConfig,
        done: &[Option<StageState>],
    ) -> R<(String, Action)> {
        let argv = instructions::as_cmd(cfg, &cmd.cmd);
        let wd = cfg.working_dir.clone().unwrap_or_else(|| "/".into());
        let mounts = cmd
            .mounts(&step.vars_with_globals(), &wd)
            .map_err(|p| p.at(step.scope.df, step.ins))?;
        let mut extras = run_key_extras(env, cfg);
        if !mounts.is_empty() {
            extras.push_str("|mounts|");
            extras.push_str(&self.mount_key_extras(step, &mounts, done)?);
        }
        let run = RunStep {
            argv,
            mounts,
            network: cmd.network,
        };
        Ok((extras, Action::Run(run)))
    }

    /// COPY or ADD: its plan, whose key extras cover the sources' content.
    fn copy_action(
        &mut self,
        step: &Step,
        cmd: &CopyCmd,
        st: &StageState,
        done: &mut [Option<StageState>],
    ) -> R<(String, Action)> {
        let expanded = cmd
            .expand(&step.vars, &step.vars_with_globals())
            .map_err(|p| p.at(step.scope.df, step.ins))?;
        let plan = self.plan_copy(step, cmd, expanded, st, done)?;
        Ok((plan.key_extras.clone(), Action::Copy(plan)))
    }

    /// RUN, COPY or ADD: computes the cache key, then takes the layer from
    /// the cache or executes the step, and records it.
    fn layer_step(
        &mut self,
        step: &Step,
        cmd: LayerCmd,
        run: &mut StageRun,
        done: &mut [Option<StageState>],
        n: usize,
        t0: Instant,
    ) -> R<()> {
        let ins = step.ins;
        let text = ins.text();
        let env: Vec<(String, String)> = run_env(&run.st.config.config, &run.args);
        let (extras, action) = match cmd {
            LayerCmd::Run(c) => self.run_action(step, c, &env, &run.st.config.config, done)?,
            LayerCmd::Copy(c) => self.copy_action(step, c, &run.st, done)?,
        };
        let st = &mut run.st;
        let stage_name = st.name.clone();
        let key = cache::next_key(&st.key, ins.keyword.as_str(), &text, &extras);
        let created_by = match &action {
            Action::Run(run) => format!("RUN {}", run.argv.join(" ")),
            Action::Copy(_) => text.clone(),
        };
        let (record, executed) = match self.lookup(&key) {
            Some(rec) => {
                if let (Some(root), Some(l)) = (st.rootfs.clone(), &rec.layer) {
                    let p = self.ensure_blob(&l.digest)?;
                    layer::extract(&p, &root)
                        .map_err(io_err(format!("applying cached layer {}", l.digest)))?;
                }
                self.end(n, "CACHED");
                (rec, false)
            }
            None => {
                self.executed_any
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                let job = LayerJob {
                    action: &action,
                    stage: &stage_name,
                    env: &env,
                    key: &key,
                    n,
                    text: &text,
                };
                let rec = self.execute(step, st, done, &job)?;
                self.save_record(&rec)?;
                let size = rec
                    .layer
                    .as_ref()
                    .map(|l| format!(" (layer {})", human(l.size)))
                    .unwrap_or_default();
                self.end(n, &format!("DONE {:.1}s{size}", t0.elapsed().as_secs_f64()));
                (rec, true)
            }
        };
        if let Some(l) = &record.layer {
            st.layers.push(l.clone());
            st.config.rootfs.diff_ids.push(l.diff_id.clone());
            st.chain.push(key.clone());
            st.last_created = record.created.clone();
        }
        st.config.history.push(History {
            created: Some(record.created.clone()),
            created_by: Some(created_by),
            comment: Some("kmigrate".into()),
            empty_layer: record.layer.is_none(),
        });
        if executed {
            self.report.executed += 1;
        } else {
            self.report.cached += 1;
        }
        self.report.steps.push(StepRecord {
            stage: st.name.clone(),
            line: ins.line,
            instruction: text,
            cached: !executed,
            executed,
            duration: t0.elapsed(),
            key: key.clone(),
            layer: record.layer.as_ref().map(|l| l.digest.clone()),
        });
        self.records.push(record);
        st.key = key;
        Ok(())
    }

    /// Executes a layer step on the stage's root and turns its filesystem
    /// diff into a layer in the store.
    fn execute(
        &mut self,
        step: &Step,
        st: &mut StageState,
        done: &mut [Option<StageState>],
        job: &LayerJob,
    ) -> R<CacheRecord> {
        let root = self.ensure_rootfs_pub(st)?;
        let before = snapshot::take(&root).map_err(io_err("snapshot"))?;
        match job.action {
            Action::Run(run) => {
                let cfg = &st.config.config;
                let mut prepared = self.prepare_mounts(step, done, &root, &run.mounts)?;
                let res = self.run_in_sandbox(step, cfg, &root, run, job, &prepared);
                // Mount points leave the root before the diff is taken.
                let cleaned = prepared
                    .cleanup()
                    .map_err(io_err("removing RUN --mount points"));
                res?;
                cleaned?;
            }
            Action::Copy(plan) => self.do_copy(step, done, plan, &root)?,
        }
        let after = snapshot::take(&root).map_err(io_err("snapshot"))?;
        let diff = snapshot::diff(&before, &after);
        let created = self.now_created();
        let layer_ref = if diff.is_empty() {
            None
        } else {
            let tmp = self.store.temp_file_path("layer");
            let w = layer::write_diff(
                &root,
                &diff,
                &tmp,
                TarOptions {
                    epoch: self.epoch,
                    map_to_root: rootless_ids(),
                },
            )
            .map_err(io_err("writing layer"))?;
            self.store
                .adopt(&tmp, &w.digest)
                .map_err(io_err("storing layer"))?;
            if let Some(up) = &self.early_uploads {
                up.send(
                    &w.digest,
                    self.store.blob_path(&w.digest).map_err(io_err("blob"))?,
                );
            }
            Some(LayerRef {
                digest: w.digest,
                diff_id: w.diff_id,
                size: w.size,
                media_type: layer::GZIP_LAYER.into(),
            })
        };
        Ok(CacheRecord {
            key: job.key.to_string(),
            parent: st.key.clone(),
            stage: st.name.clone(),
            instruction: job.text.to_string(),
            layer: layer_ref,
            created,
        })
    }

    /// RUN: runs `argv` in the sandbox on `root` as the config's user in its
    /// working directory, streaming output lines to the log.
    fn run_in_sandbox(
        &mut self,
        step: &Step,
        cfg: &RunConfig,
        root: &std::path::Path,
        run: &RunStep,
        job: &LayerJob,
        mounts: &super::mount_prep::Prepared,
    ) -> R<()> {
        let (df, ins, n, text) = (step.scope.df, step.ins, job.n, job.text);
        let wd = cfg.working_dir.clone().unwrap_or_else(|| "/".into());
        let wd_host = super::fsutil::secure_join(root, &wd, true).map_err(io_err("WORKDIR"))?;
        fs::create_dir_all(&wd_host).map_err(io_err(format!("creating WORKDIR {wd}")))?;
        let (uid, gid, groups) = super::user::resolve(root, cfg.user.as_deref().unwrap_or("root"))
            .map_err(|e| Box::new(df.error_at(ins, e)))?;
        let mut env = job.env.to_vec();
        // Secrets given as variables: in this RUN's environment only.
        for (k, v) in &mounts.env {
            env.retain(|(n, _)| n != k);
            env.push((k.clone(), v.clone()));
        }
        if !env.iter().any(|(k, _)| k == "HOME") {
            env.push(("HOME".into(), super::user::home(root, uid)));
        }
        let log_path = self.store.temp_file_path("run-log");
        let scratch = self.store.temp_dir("etc").map_err(io_err("work dir"))?;
        self.work_dirs.push(scratch.clone());
        let etc = sandbox::EtcFiles::prepare(root, &scratch)
            .map_err(io_err("preparing /etc files for RUN"))?;
        let spec = sandbox::RunSpec {
            rootfs: root.to_path_buf(),
            argv: run.argv.clone(),
            env,
            cwd: wd,
            uid,
            gid,
            groups,
            binds: etc.binds.clone(),
            pids_limit: self.opts.run_pids_limit,
            mounts: mounts.mounts.clone(),
            no_network: run.network == RunNetwork::None,
        };
        let sink = self.opts.log.clone();
        let bar = self.bar.as_ref().map(|(b, _)| b.clone());
        let quiet = self.opts.progress == super::api::Progress::Quiet;
        let secret_values = mounts.secret_values.clone();
        let prefix = if self.stage_prefix {
            format!("#{n} [{}] ", job.stage)
        } else {
            format!("#{n} ")
        };
        let on_line = move |l: &str| {
            if quiet {
                return;
            }
            let line = format!("{prefix}{}", super::secrets::redact(l, &secret_values));
            match &bar {
                Some(b) => b.println(line),
                None => {
                    if let Ok(mut w) = sink.lock() {
                        let _ = writeln!(w, "{line}");
                    }
                }
            }
        };
        let res = sandbox::run_streaming(&spec, &log_path, &on_line);
        etc.cleanup();
        let out =
            res.map_err(|e| BuildError::Step(format!("{}:{}: {text}: {e}", df.name, ins.line)))?;
        let _ = fs::remove_file(&log_path);
        let shown =
            super::secrets::redact(&String::from_utf8_lossy(&out.output), &mounts.secret_values);
        let limited = out.pids_limit_reached.map(|n| {
            format!(
                "the RUN reached its limit of {n} processes (raise it with --run-pids-limit or KMIGRATE_RUN_PIDS_LIMIT)"
            )
        });
        if out.code != 0 {
            return Err(BuildError::Step(format!(
                "{}:{}: step `{text}` failed with exit code {}{}\n{}",
                df.name,
                ins.line,
                out.code,
                limited.map(|l| format!(": {l}")).unwrap_or_default(),
                shown.trim_end()
            )));
        }
        if let Some(l) = limited {
            self.warn(format!("{}:{}: {l}", df.name, ins.line));
        }
        Ok(())
    }

    /// Writes the config and manifest of a finished stage into the store.
    pub fn assemble(&mut self, st: &StageState) -> R<(Vec<u8>, Vec<u8>)> {
        let mut cfg = st.config.clone();
        let host = image::host_platform();
        cfg.architecture = host.architecture;
        cfg.os = host.os;
        cfg.created = Some(match self.epoch {
            Some(e) => image::rfc3339(e),
            None => st.last_created.clone(),
        });
        cfg.rootfs.kind = "layers".into();
        let cfg_bytes = serde_json::to_vec(&cfg).map_err(json_err(""))?;
        let cfg_digest = self.store.put_bytes(&cfg_bytes).map_err(io_err("config"))?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(image::MANIFEST.into()),
            artifact_type: None,
            config: Descriptor::new(image::CONFIG, &cfg_digest, cfg_bytes.len() as u64),
            layers: st
                .layers
                .iter()
                .map(|l| Descriptor::new(&l.media_type, &l.digest, l.size))
                .collect(),
            annotations: BTreeMap::new(),
        };
        let m_bytes = serde_json::to_vec(&manifest).map_err(json_err(""))?;
        let m_digest = self.store.put_bytes(&m_bytes).map_err(io_err("manifest"))?;
        self.report.manifest_digest = m_digest;
        self.report.config_digest = cfg_digest;
        Ok((cfg_bytes, m_bytes))
    }

    /// Removes the stage roots and other work directories on a thread of
    /// its own: once every stage is built, the image, its export and its
    /// outputs come from the store, so the removal can overlap them.
    pub fn release_work_dirs(&mut self) -> std::thread::JoinHandle<()> {
        let dirs = std::mem::take(&mut self.work_dirs);
        let overlays = self.overlays.clone();
        std::thread::spawn(move || remove_work_dirs(overlays.as_deref(), dirs))
    }

    pub fn cleanup(&mut self) {
        remove_work_dirs(
            self.overlays.as_deref(),
            std::mem::take(&mut self.work_dirs),
        );
    }
}

/// Removes a build's work directories, its overlay roots unmounted first
/// (a removal through a mounted root would delete inside it).
fn remove_work_dirs(overlays: Option<&super::overlay::Overlays>, dirs: Vec<PathBuf>) {
    if let Some(o) = overlays {
        o.unmount_all();
    }
    for d in dirs {
        let _ = fs::remove_dir_all(d);
    }
}

/// The host ids that are root inside a rootless sandbox, when not root.
pub(crate) fn rootless_ids() -> Option<(u32, u32)> {
    let uid = nix::unistd::Uid::effective();
    (!uid.is_root()).then(|| (uid.as_raw(), nix::unistd::Gid::effective().as_raw()))
}

fn stages_names(stages: &[Stage]) -> Vec<Option<String>> {
    stages.iter().map(|s| s.name.clone()).collect()
}

/// The stage before `before` that `name` refers to, by name or by index.
pub(crate) fn find_stage(names: &[Option<String>], name: &str, before: usize) -> Option<usize> {
    let lower = name.to_ascii_lowercase();
    names[..before]
        .iter()
        .position(|n| n.as_deref() == Some(lower.as_str()))
        .or_else(|| name.parse::<usize>().ok().filter(|i| *i < before))
}

/// Which stages the target needs: its base stages and the stages its
/// COPY/ADD `--from` and `RUN --mount=from=` name, transitively.
fn needed_stages(deps: &[Vec<usize>], target: usize) -> Vec<bool> {
    let mut needed = vec![false; deps.len()];
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if !needed[i] {
            needed[i] = true;
            todo.extend(&deps[i]);
        }
    }
    needed
}

/// The earlier stages each stage uses directly: its base stage, and the
/// stages its COPY/ADD `--from` and `RUN --mount=from=` name.
fn stage_deps(
    stages: &[Stage],
    globals: &BTreeMap<String, String>,
    build_args: &BTreeMap<String, String>,
) -> Vec<Vec<usize>> {
    let names = stages_names(stages);
    stages
        .iter()
        .enumerate()
        .map(|(i, stage)| {
            let mut deps = Vec::new();
            let from = stage.base.expand_image(globals).unwrap_or_default();
            if let Some(j) = find_stage(&names, &from, i) {
                deps.push(j);
            }
            // `--from` expands as the step will: globals, then the stage's
            // ARGs and ENVs so far.
            let mut vars = globals.clone();
            for typed in &stage.body {
                match &typed.command {
                    Command::Arg(arg) => {
                        for (k, default) in &arg.decls {
                            let default = default
                                .as_deref()
                                .map(|v| words::expand(v, &vars).unwrap_or_default());
                            let v = build_args
                                .get(k)
                                .cloned()
                                .or(default)
                                .or_else(|| globals.get(k).cloned())
                                .unwrap_or_default();
                            vars.insert(k.clone(), v);
                        }
                    }
                    Command::Env(env) => vars.extend(env.expand(&vars).unwrap_or_default()),
                    Command::Copy(copy) => {
                        if let Some(f) = &copy.from
                            && let Some(j) =
                                find_stage(&names, &words::expand(f, &vars).unwrap_or_default(), i)
                        {
                            deps.push(j);
                        }
                    }
                    Command::Run(run) => {
                        for f in run.mount_sources(&vars) {
                            if let Some(j) = find_stage(&names, &f, i) {
                                deps.push(j);
                            }
                        }
                    }
                    _ => {}
                }
            }
            deps.sort_unstable();
            deps.dedup();
            deps
        })
        .collect()
}

/// What every step of one build reads.
pub(crate) struct Scope<'s> {
    pub df: &'s Dockerfile,
    pub ctx: &'s Context,
    /// Stage names (`AS name`, lower case) by index.
    pub names: &'s [Option<String>],
    /// ARGs declared before the first FROM, and the predefined ones.
    pub globals: &'s BTreeMap<String, String>,
    pub build_args: &'s BTreeMap<String, String>,
}

/// A stage being built: its state and its declared ARGs.
pub(crate) struct StageRun {
    pub si: usize,
    pub st: StageState,
    pub args: BTreeMap<String, String>,
    /// Instructions in the stage (for `[stage n/total]` titles).
    pub total: usize,
}

/// One instruction as it runs: the build's scope, its stage, and the
/// variables it expands with (stage ARGs, then ENV, which wins).
pub(crate) struct Step<'s> {
    pub scope: &'s Scope<'s>,
    pub si: usize,
    pub ins: &'s Instruction,
    pub vars: BTreeMap<String, String>,
}

impl<'s> Step<'s> {
    fn new(scope: &'s Scope<'s>, run: &StageRun, ins: &'s Instruction) -> Self {
        let mut vars = run.args.clone();
        for e in &run.st.config.config.env {
            if let Some((k, v)) = e.split_once('=') {
                vars.insert(k.into(), v.into());
            }
        }
        Step {
            scope,
            si: run.si,
            ins,
            vars,
        }
    }

    /// An error pointing at the instruction.
    pub fn err(&self, message: impl Into<String>) -> BuildError {
        Box::new(self.scope.df.error_at(self.ins, message)).into()
    }

    /// `s` with the step's variables expanded.
    pub fn expand(&self, s: &str) -> R<String> {
        words::expand(s, &self.vars).map_err(|e| self.err(e))
    }

    /// The step's variables over the global ARGs: what `COPY --from` and
    /// `RUN --mount` expand with, as they may name an image through a
    /// global ARG (`from=$BUILDER_IMAGE`).
    pub fn vars_with_globals(&self) -> BTreeMap<String, String> {
        let mut vars = self.scope.globals.clone();
        vars.extend(self.vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        vars
    }
}

/// A layer step to execute: what to do, with which environment, and its
/// key, step number and text.
pub(crate) struct LayerJob<'j> {
    pub action: &'j Action,
    /// The stage's label, for RUN output lines of parallel stages.
    pub stage: &'j str,
    pub env: &'j [(String, String)],
    pub key: &'j str,
    pub n: usize,
    pub text: &'j str,
}

/// A step's text on one line, for its progress title: an instruction with
/// heredocs shows its first line and the start of the first body, as
/// BuildKit does (`RUN <<EOF (set -e...)`).
fn one_line_title(text: &str) -> String {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    match lines.next() {
        None => first.to_string(),
        Some(body) => {
            let start: String = body.chars().take(40).collect();
            format!("{first} ({start}...)")
        }
    }
}

/// What a RUN's cache key covers besides its text: its environment, user,
/// working directory and shell.
fn run_key_extras(env: &[(String, String)], cfg: &RunConfig) -> String {
    let mut e: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    e.sort();
    format!(
        "env|{}|{}|user={}|workdir={}|shell={:?}",
        e.len(),
        e.join("\n"),
        cfg.user.clone().unwrap_or_default(),
        cfg.working_dir.clone().unwrap_or_default(),
        cfg.shell
    )
}

/// The commands that make a layer.
#[derive(Clone, Copy)]
enum LayerCmd<'c> {
    Run(&'c RunCmd),
    Copy(&'c CopyCmd),
}

impl<'c> LayerCmd<'c> {
    fn of(command: &'c Command) -> Option<Self> {
        match command {
            Command::Run(c) => Some(LayerCmd::Run(c)),
            Command::Copy(c) => Some(LayerCmd::Copy(c)),
            _ => None,
        }
    }
}

pub(crate) enum Action {
    Run(RunStep),
    Copy(super::copy::CopyPlan),
}

/// A RUN as it executes: the command line, the mounts and the network,
/// every variable expanded.
pub(crate) struct RunStep {
    argv: Vec<String>,
    mounts: Vec<super::run_mount::RunMount>,
    network: RunNetwork,
}

#[cfg(test)]
mod tests {
    use super::one_line_title;

    #[test]
    fn heredoc_titles_fit_on_one_line() {
        assert_eq!(one_line_title("RUN echo a"), "RUN echo a");
        assert_eq!(
            one_line_title("RUN <<EOF\nset -e\necho\nEOF"),
            "RUN <<EOF (set -e...)"
        );
    }
}
