//! Every image build of a config, in order, as `BuildPlan`s: Cloud Build
//! steps (`docker buildx build` args, `sh -c` scripts, `script:`, Kaniko
//! executor steps) and GitLab job scripts (`before_script` + `script`).
//! Variables are expanded on the way; names without a value are kept.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::vars::{self, GitInfo, Vars};
use crate::buildx::from_kaniko::{self, ConvertOptions};
use crate::buildx::{BuildPlan, parse_build_args};
use crate::kaniko::call::{self, Arg};
use crate::kaniko::{ImageKind, match_image};
use crate::platform::Platform;
use crate::platform::cloudbuild::{Build, Step};
use crate::platform::gitlab::Pipeline;
use crate::shell;
use crate::source::{SourceFile, Value};

/// How the build was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Buildx,
    DockerBuild,
    Kaniko,
    /// `buildctl build` (GitLab's rootless BuildKit target).
    Buildctl,
    /// `buildah build` with the `buildah push` commands after it
    /// (GitLab's Buildah target).
    Buildah,
    /// `buildah push`: completes the `buildah build` before it.
    BuildahPush,
}

/// One image build found in a config.
#[derive(Debug, Clone)]
pub struct Extracted {
    /// The step id (`Step #2`, as Cloud Build logs name it, without one) or the GitLab job name.
    pub unit: String,
    /// `file:line` of the command.
    pub location: String,
    pub kind: Kind,
    /// The plan with variables expanded and paths made absolute; `None`
    /// when the command could not be read (see `error`).
    pub plan: Option<BuildPlan>,
    /// Variable names without a value.
    pub unresolved: Vec<String>,
    /// Placeholders the plan depends on.
    pub placeholders: Vec<String>,
    pub error: Option<String>,
    /// Notes from a Kaniko conversion.
    pub notes: Vec<String>,
    /// A `buildah build`'s plan before its pushes are read (see
    /// [`attach_push`]).
    unpushed: Option<BuildPlan>,
    /// Its `buildah push` commands so far.
    pushes: Vec<crate::buildx::buildah::Push>,
    /// Where its paths are read from (CI workdir, local cwd, context
    /// directory): a push's tarball is a path of the job too.
    paths: Option<(String, PathBuf, PathBuf)>,
}

impl Extracted {
    /// A build another platform's reader found: its plan, or why it could
    /// not be read.
    pub fn read(
        unit: String,
        location: String,
        kind: Kind,
        plan: Option<BuildPlan>,
        error: Option<String>,
        notes: Vec<String>,
    ) -> Self {
        Extracted {
            unit,
            location,
            kind,
            plan,
            unresolved: Vec::new(),
            placeholders: Vec::new(),
            error,
            notes,
            unpushed: None,
            pushes: Vec::new(),
            paths: None,
        }
    }

    /// A build that could not be read, with why.
    fn failed(unit: &str, location: &str, error: String) -> Self {
        Extracted {
            unit: unit.to_string(),
            location: location.to_string(),
            kind: Kind::Buildx,
            plan: None,
            unresolved: Vec::new(),
            placeholders: Vec::new(),
            error: Some(error),
            notes: Vec::new(),
            unpushed: None,
            pushes: Vec::new(),
            paths: None,
        }
    }
}

/// Adds build `e` (read from `words`) to `out`; a `buildah push`
/// completes the build before it instead.
fn add_build(out: &mut Vec<Extracted>, e: Extracted, words: &[String]) {
    if e.kind == Kind::BuildahPush {
        attach_push(out, e, words);
    } else {
        out.push(e);
    }
}

/// Adds the `buildah push` in `push` (a finished [`Kind::BuildahPush`]) to
/// the last build of `out` from the same unit, which must be a `buildah
/// build`: its plan is remade with every push read so far.
fn attach_push(out: &mut Vec<Extracted>, push: Extracted, words: &[String]) {
    let build = out
        .iter_mut()
        .rev()
        .find(|e| e.unit == push.unit)
        .filter(|e| e.kind == Kind::Buildah);
    let Some(build) = build else {
        out.push(Extracted {
            error: Some(
                "`buildah push` without a `buildah build` before it in the same job".into(),
            ),
            ..push
        });
        return;
    };
    for u in push.unresolved {
        push_missing(&mut build.unresolved, u);
    }
    let Some(unpushed) = build.unpushed.clone() else {
        return;
    };
    let parsed = classify(words)
        .map(|(_, start)| crate::buildx::buildah::parse_push(&words[start..]))
        .unwrap_or_else(|| Err("not a `buildah push`".into()));
    let Ok(p) = parsed.map_err(|e| {
        // A push kmigrate cannot read: the build is not read either.
        build.plan = None;
        build.unpushed = None;
        build.error = Some(e);
    }) else {
        return;
    };
    build.pushes.push(p);
    // A build whose later pushes are still to come reads as not pushed
    // yet (an error until every tag is pushed).
    let with_local_paths = |mut plan: BuildPlan| -> Result<BuildPlan, String> {
        if let Some((ci, cwd, ctx)) = &build.paths {
            for (_, p) in crate::buildx::plan::path_slots(&mut plan) {
                *p = local_path(p, ci, cwd, ctx)?;
            }
        }
        Ok(plan)
    };
    match crate::buildx::buildah::with_pushes(unpushed, &build.pushes).and_then(with_local_paths) {
        Ok(plan) => {
            build.plan = Some(plan);
            build.error = None;
        }
        Err(e) => {
            build.plan = None;
            build.error = Some(e);
        }
    }
}

/// What extraction needs besides the config.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    /// The directory that stands for `/workspace` and `$CI_PROJECT_DIR`.
    pub context_dir: &'a Path,
    pub git: &'a GitInfo,
    /// `--substitution` / `--variable` overrides.
    pub overrides: &'a BTreeMap<String, String>,
}

/// Extracts the builds of `text` (the config at `path`).
pub fn extract(
    path: &Path,
    text: &str,
    platform: Platform,
    inputs: &Inputs,
) -> Result<Vec<Extracted>, String> {
    platform.support().extract(path, text, inputs)
}

/// A command found in a step or script, variables expanded.
struct Found {
    words: Vec<String>,
    unresolved: Vec<String>,
    /// Where the command starts in its script.
    offset: usize,
}

/// Placeholders named in `raw`.
fn used_placeholders(raw: &str, vars: &Vars) -> Vec<String> {
    vars.placeholders
        .iter()
        .filter(|p| {
            let bare = format!("${p}");
            raw.contains(&format!("${{{p}}}"))
                || raw.match_indices(&bare).any(|(i, _)| {
                    !raw[i + bare.len()..]
                        .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                })
        })
        .cloned()
        .collect()
}

/// Runs through a shell script: assignments and `export` update `vars`,
/// build commands are returned with their words expanded.
fn shell_commands(script: &str, vars: &mut Vars) -> (Vec<Found>, Vec<String>) {
    let parsed = shell::parse(script);
    let mut out = Vec::new();
    let problems = parsed
        .problems
        .iter()
        .map(|(at, msg)| format!("offset {at}: {msg}"))
        .collect();
    // Bare `NAME=value` statements (the shell reader keeps only commands).
    let statements = assignment_statements(script);
    let mut next = 0;
    for cmd in &parsed.commands {
        while next < statements.len() && statements[next].0 < cmd.span.start {
            let (_, name, value) = &statements[next];
            let (v, _) = vars::expand_word(value, vars);
            vars.set(name, v);
            next += 1;
        }
        let assign = |vars: &mut Vars, dq: &str| {
            if let Some((name, value)) = dq.split_once('=') {
                let (v, _) = vars::expand_word(value, vars);
                vars.set(name, v);
            }
        };
        if cmd.words.is_empty() {
            for a in &cmd.assignments {
                assign(vars, &a.dq);
            }
            continue;
        }
        let first = cmd.words[0].literal();
        if first.as_deref() == Some("export") {
            for w in &cmd.words[1..] {
                if w.dq.contains('=') {
                    assign(vars, &w.dq);
                }
            }
            continue;
        }
        let mut words = Vec::new();
        let mut unresolved = Vec::new();
        for w in &cmd.words {
            let (v, missing) = vars::expand_word(&w.dq, vars);
            for m in missing {
                if !unresolved.contains(&m) {
                    unresolved.push(m);
                }
            }
            if w.unquoted_expansion {
                words.extend(v.split_whitespace().map(String::from));
            } else {
                words.push(v);
            }
        }
        if classify(&words).is_some() {
            out.push(Found {
                words,
                unresolved,
                offset: cmd.span.start,
            });
        }
    }
    for (_, name, value) in &statements[next..] {
        let (v, _) = vars::expand_word(value, vars);
        vars.set(name, v);
    }
    (out, problems)
}

/// `NAME=value` statements standing alone (not prefixing a command), with
/// their offset and the value in double-quote-ready form.
fn assignment_statements(script: &str) -> Vec<(usize, String, String)> {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(
            r#"(?m)(?:^|[;&|]\s*)[ \t]*([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|'[^']*'|[^\s;&|'"]*)[ \t]*(?:$|;|&&|\|\|)"#,
        )
        .expect("valid regex")
    });
    re.captures_iter(script)
        .filter_map(|c| {
            let name = c.get(1)?;
            let raw = c.get(2)?.as_str();
            let value = if let Some(v) = raw.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
                shell::escape_dq(v)
            } else if let Some(v) = raw.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                v.to_string()
            } else {
                raw.to_string()
            };
            Some((name.start(), name.as_str().to_string(), value))
        })
        .collect()
}

fn push_missing(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}

/// The kind of build a command runs and where its flags start.
fn classify(words: &[String]) -> Option<(Kind, usize)> {
    let prog = words.first()?;
    let base = prog.rsplit('/').next().unwrap_or(prog);
    let w = |i: usize| words.get(i).map(String::as_str);
    if base == "docker" {
        return match (w(1), w(2)) {
            (Some("buildx"), Some("build")) => Some((Kind::Buildx, 3)),
            (Some("build"), _) => Some((Kind::DockerBuild, 2)),
            (Some("image"), Some("build")) => Some((Kind::DockerBuild, 3)),
            _ => None,
        };
    }
    if base == "executor" && (prog.contains("kaniko") || prog == "executor") {
        return Some((Kind::Kaniko, 1));
    }
    if matches!(base, "buildctl" | "buildctl-daemonless.sh") && w(1) == Some("build") {
        return Some((Kind::Buildctl, 2));
    }
    if base == "buildah" {
        return match w(1) {
            Some("build" | "bud") => Some((Kind::Buildah, 2)),
            Some("push") => Some((Kind::BuildahPush, 2)),
            _ => None,
        };
    }
    None
}

/// Makes a plan from classified words.
fn plan_of(
    words: &[String],
    workdir_ci: &str,
    local_cwd: &Path,
    context_dir: &Path,
) -> Result<(Kind, BuildPlan, Vec<String>), String> {
    let (kind, start) = classify(words).ok_or("not a build command")?;
    let rest = &words[start..];
    let (mut plan, notes) = match kind {
        Kind::Buildx | Kind::DockerBuild => (parse_build_args(rest)?, Vec::new()),
        Kind::Buildctl => (crate::buildx::buildctl::parse(rest)?, Vec::new()),
        Kind::Buildah => (crate::buildx::buildah::parse_build(rest)?, Vec::new()),
        Kind::BuildahPush => return Err("`buildah push` is read with its build".into()),
        Kind::Kaniko => {
            let call = call::parse(rest.iter().map(Arg::new).collect());
            let conv = from_kaniko::convert(
                &call,
                &ConvertOptions {
                    cache_tag: "buildcache",
                    workdir: workdir_ci,
                    default_context: workdir_ci,
                    local_workdir: Some(local_cwd).filter(|p| p.is_dir()),
                },
            );
            if conv.is_blocked() {
                let why: Vec<String> = conv
                    .notes
                    .iter()
                    .filter(|n| n.kind == from_kaniko::NoteKind::Manual)
                    .map(|n| n.message.clone())
                    .collect();
                return Err(format!(
                    "this Kaniko call cannot be converted automatically: {}",
                    why.join("; ")
                ));
            }
            let notes = conv.notes.iter().map(|n| n.message.clone()).collect();
            (conv.plan, notes)
        }
    };
    plan.context = local_path(&plan.context, workdir_ci, local_cwd, context_dir)?;
    if let Some(f) = &plan.dockerfile {
        plan.dockerfile = Some(local_path(f, workdir_ci, local_cwd, context_dir)?);
    }
    // Local caches and outputs are paths of the CI job too, not of
    // wherever verify runs.
    for (_, p) in crate::buildx::plan::path_slots(&mut plan) {
        *p = local_path(p, workdir_ci, local_cwd, context_dir)?;
    }
    Ok((kind, plan, notes))
}

/// A path as the CI job sees it, on this machine.
fn local_path(
    p: &str,
    workdir_ci: &str,
    local_cwd: &Path,
    context_dir: &Path,
) -> Result<String, String> {
    if p.contains("://") || p.starts_with("git@") || p == "-" {
        return Err(format!(
            "context `{p}` is remote or stdin; verify builds local contexts only (check the repository out and pass --context)"
        ));
    }
    let path = if let Some(rest) = p.strip_prefix("/workspace") {
        context_dir.join(rest.trim_start_matches('/'))
    } else if let Some(rest) = p
        .strip_prefix(workdir_ci)
        .filter(|_| workdir_ci.starts_with('/'))
    {
        local_cwd.join(rest.trim_start_matches('/'))
    } else if Path::new(p).is_absolute() {
        PathBuf::from(p)
    } else {
        local_cwd.join(p)
    };
    Ok(normalize(&path).display().to_string())
}

fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            o => out.push(o),
        }
    }
    out
}

fn finish(
    unit: &str,
    location: String,
    found: Found,
    placeholders: Vec<String>,
    workdir_ci: &str,
    local_cwd: &Path,
    context_dir: &Path,
) -> Extracted {
    let kind = classify(&found.words).map(|k| k.0).unwrap_or(Kind::Buildx);
    let mut e = Extracted {
        unit: unit.to_string(),
        location,
        kind,
        plan: None,
        unresolved: found.unresolved,
        placeholders,
        error: None,
        notes: Vec::new(),
        unpushed: None,
        pushes: Vec::new(),
        paths: None,
    };
    if !e.unresolved.is_empty() || kind == Kind::BuildahPush {
        return e;
    }
    match plan_of(&found.words, workdir_ci, local_cwd, context_dir) {
        Ok((_, plan, notes)) => {
            if kind == Kind::Buildah {
                // Not pushed until a `buildah push` says so.
                e.plan = crate::buildx::buildah::with_pushes(plan.clone(), &[]).ok();
                e.unpushed = Some(plan);
                e.paths = Some((
                    workdir_ci.to_string(),
                    local_cwd.to_path_buf(),
                    context_dir.to_path_buf(),
                ));
            } else {
                e.plan = Some(plan);
            }
            e.notes = notes;
        }
        Err(err) => e.error = Some(err),
    }
    e
}

/// A script the shell reader could not make sense of, when it may hold a
/// build: reported rather than skipped.
fn unreadable_script(
    unit: &str,
    location: &str,
    text: &str,
    problems: &[String],
) -> Option<Extracted> {
    if problems.is_empty() || !(text.contains("docker") || text.contains("executor")) {
        return None;
    }
    Some(Extracted::failed(
        unit,
        location,
        format!(
            "the script could not be read ({}): a build in it may be missed; fix the quoting",
            problems.join("; ")
        ),
    ))
}

fn with_overrides(mut v: Vars, overrides: &BTreeMap<String, String>) -> Vars {
    for (k, val) in overrides {
        v.set(k, val);
    }
    v
}

/// `raw` with user substitutions replaced by their (unexpanded) defaults,
/// so the built-ins a default names are seen.
fn inline_defaults(raw: &str, defaults: &BTreeMap<String, String>) -> String {
    let mut s = raw.to_string();
    for _ in 0..3 {
        for (k, v) in defaults {
            s = s
                .replace(&format!("${{{k}}}"), v)
                .replace(&format!("${k}"), v);
        }
    }
    s
}

pub(crate) fn cloudbuild(
    path: &Path,
    text: &str,
    inputs: &Inputs,
) -> Result<Vec<Extracted>, String> {
    let src = SourceFile::from_text(path, text.to_string()).map_err(|e| e.message)?;
    let build = Build::parse(&src).map_err(|e| e.message)?;
    let defaults: BTreeMap<String, String> = build
        .substitutions
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let repo = inputs
        .context_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("repo");
    let base = vars::cloudbuild(inputs.git, repo, &defaults, inputs.overrides);
    let mut out = Vec::new();
    for step in &build.steps {
        let (line, _) = src.position(step.node.span.start);
        let s = StepReading {
            step,
            unit: step.unit(),
            location: format!("{}:{line}", path.display()),
            base: &base,
        };
        let name = step.name.and_then(|e| e.value.as_str()).map(|n| s.sub(n).0);
        let entrypoint = step
            .entrypoint
            .and_then(|e| e.value.as_str())
            .map(|e| s.sub(e).0);
        let (args, raw_args) = s.args(&src, &mut out);
        let (workdir_ci, local_cwd) = step_workdir(step, inputs.context_dir);
        let is_shell = entrypoint.as_deref().is_some_and(|e| {
            let b = e.rsplit('/').next().unwrap_or(e);
            matches!(b, "sh" | "bash" | "ash" | "dash")
        });
        let script = step.script.and_then(|e| e.value.as_str()).map(String::from);
        let mut raw = raw_args.clone();
        let found = if let Some(script) = script.or_else(|| {
            if is_shell {
                let c = args.iter().position(|a| a == "-c")?;
                args.get(c + 1).cloned()
            } else {
                None
            }
        }) {
            raw.push_str(&script);
            s.script_builds(&script, &mut out)
        } else {
            s.call_builds(&args, name.as_deref(), entrypoint.as_deref())
        };
        for f in found {
            let ph = used_placeholders(&inline_defaults(&raw, &defaults), &base);
            let words = f.words.clone();
            let e = finish(
                &s.unit,
                s.location.clone(),
                f,
                ph,
                &workdir_ci,
                &local_cwd,
                inputs.context_dir,
            );
            add_build(&mut out, e, &words);
        }
    }
    Ok(out)
}

/// The directory a step runs in, in the build (`/workspace/…`) and here.
fn step_workdir(step: &Step, context_dir: &Path) -> (String, PathBuf) {
    let dir = step.dir.clone().unwrap_or_default();
    let workdir_ci = if dir.is_empty() {
        "/workspace".to_string()
    } else if dir.starts_with('/') {
        dir.clone()
    } else {
        format!("/workspace/{dir}")
    };
    let local_cwd = context_dir.join(
        workdir_ci
            .trim_start_matches("/workspace")
            .trim_start_matches('/'),
    );
    (workdir_ci, local_cwd)
}

/// One Cloud Build step being read back.
struct StepReading<'a> {
    step: &'a Step<'a>,
    unit: String,
    /// `file:line` of the step, for messages.
    location: String,
    /// The build's substitutions.
    base: &'a Vars,
}

impl StepReading<'_> {
    /// `s` with the build's substitutions, and the ones it names that
    /// have no value.
    fn sub(&self, s: &str) -> (String, Vec<String>) {
        vars::substitute_cloudbuild(s, self.base)
    }

    /// The step's `args` as written, and joined (for the placeholders
    /// they name); an item that is not a string is a failure in `out`.
    fn args(&self, src: &SourceFile, out: &mut Vec<Extracted>) -> (Vec<String>, String) {
        let unit = &self.unit;
        let mut args = Vec::new();
        let mut raw_args = String::new();
        if let Some(items) = self.step.arg_nodes(src) {
            for i in items {
                match &i.node.value {
                    Value::Scalar(s) => {
                        raw_args.push_str(&s.text);
                        raw_args.push(' ');
                        args.push(s.text.clone());
                    }
                    _ => out.push(Extracted::failed(
                        unit,
                        &self.location,
                        format!(
                            "an `args` item of {unit} is a {}, not a string",
                            i.node.kind_name()
                        ),
                    )),
                }
            }
        }
        (args, raw_args)
    }

    /// The builds a shell script of the step runs.
    fn script_builds(&self, script: &str, out: &mut Vec<Extracted>) -> Vec<Found> {
        let (text, missing) = self.sub(script);
        let mut v = self.base.clone();
        // The step's `env:` entries are environment variables of the script.
        if let Some(env) = self.step.node.get("env").and_then(|n| n.as_seq()) {
            for item in &env.items {
                if let Some((k, val)) = item.node.as_str().and_then(|e| e.split_once('=')) {
                    let (val, _) = self.sub(val);
                    v.set(k, val);
                }
            }
        }
        let (cmds, problems) = shell_commands(&text, &mut v);
        if let Some(e) = unreadable_script(&self.unit, &self.location, &text, &problems) {
            out.push(e);
        }
        let mut found = Vec::new();
        for mut f in cmds {
            for m in &missing {
                if !f.unresolved.contains(m) {
                    f.unresolved.push(m.clone());
                }
            }
            found.push(f);
        }
        found
    }

    /// The build a step that runs its image (or entrypoint) with `args`
    /// makes, if it is one.
    fn call_builds(
        &self,
        args: &[String],
        name: Option<&str>,
        entrypoint: Option<&str>,
    ) -> Vec<Found> {
        let mut words = Vec::new();
        let mut missing = Vec::new();
        for a in args {
            let (v, m) = self.sub(a);
            words.push(v);
            for x in m {
                push_missing(&mut missing, x);
            }
        }
        let prog = match entrypoint {
            Some(e) => Some(e.to_string()),
            None => name.map(|n| {
                let repo = from_kaniko::repository_of(n);
                let last = repo.rsplit('/').next().unwrap_or(repo);
                match match_image(n) {
                    Some(m) if m.kind == ImageKind::Executor => "/kaniko/executor".to_string(),
                    Some(_) => "warmer".to_string(),
                    None if last == "docker" => "docker".to_string(),
                    None => n.to_string(),
                }
            }),
        };
        let mut found = Vec::new();
        if let Some(p) = prog {
            let p = if p == "executor" && name.and_then(match_image).is_some() {
                "/kaniko/executor".to_string()
            } else {
                p
            };
            words.insert(0, p);
            if classify(&words).is_some() {
                found.push(Found {
                    words,
                    unresolved: missing,
                    offset: 0,
                });
            }
        }
        found
    }
}

/// Jobs in stage order, moved so that every job comes after the jobs it
/// `needs:` (GitLab allows needs within a stage). A cycle keeps stage order.
fn needs_order(jobs: Vec<&crate::platform::gitlab::Job>) -> Vec<&crate::platform::gitlab::Job> {
    let mut out: Vec<&crate::platform::gitlab::Job> = Vec::with_capacity(jobs.len());
    let mut pending = jobs;
    while !pending.is_empty() {
        let ready = pending.iter().position(|j| {
            j.needs.iter().all(|n| {
                out.iter().any(|o| o.name == n.value) || !pending.iter().any(|p| p.name == n.value)
            })
        });
        // A cycle (GitLab rejects those) keeps the stage order.
        out.push(pending.remove(ready.unwrap_or(0)));
    }
    out
}

pub(crate) fn gitlab(path: &Path, text: &str, inputs: &Inputs) -> Result<Vec<Extracted>, String> {
    let root = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let root = if root.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        root
    };
    let p = Pipeline::from_text(&root, path, text.to_string())
        .map_err(|e| format!("{}: {}", e.path.display(), e.message))?;
    Ok(pipeline_builds(&p, inputs, &|j| !j.hidden))
}

/// The builds of the jobs of a loaded pipeline that `select` picks
/// (`verify` runs the jobs; the rewrite's safety net also reads the
/// hidden templates a template library ships).
pub fn pipeline_builds(
    p: &Pipeline,
    inputs: &Inputs,
    select: &dyn Fn(&crate::platform::gitlab::Job) -> bool,
) -> Vec<Extracted> {
    let mut jobs: Vec<_> = p.jobs.iter().filter(|j| select(j)).collect();
    let stage_of = |j: &&crate::platform::gitlab::Job| {
        let s = j.stage.as_ref().map(|s| s.value.as_str()).unwrap_or("test");
        p.stages.iter().position(|x| x == s).unwrap_or(usize::MAX)
    };
    jobs.sort_by_key(stage_of);
    let jobs = needs_order(jobs);
    let project_dir = inputs.context_dir;
    let mut out = Vec::new();
    for job in jobs {
        // `--variable` values act as pipeline variables: they win over
        // `variables:` and are seen when those are expanded.
        let mut v = with_overrides(
            vars::gitlab(inputs.git, project_dir, &job.name),
            inputs.overrides,
        );
        let mut ordered: Vec<_> = job.variables.iter().filter(|x| x.global).collect();
        ordered.extend(job.variables.iter().filter(|x| !x.global));
        for var in ordered {
            if inputs.overrides.contains_key(&var.name) {
                continue;
            }
            if let Some(val) = &var.value {
                let (s, missing) = vars::expand_value(&val.value, &v);
                v.set_broken(&var.name, s, missing);
            }
        }
        let base = v.clone();
        let workdir_ci = project_dir.display().to_string();
        for line in job.before_script.iter().chain(&job.script) {
            let (cmds, problems) = shell_commands(&line.text, &mut v);
            let file = &p.files[line.origin.file];
            let (l, _) = file.position(line.origin.span.start);
            let here = format!("{}:{l}", file.path.display());
            if let Some(e) = unreadable_script(&job.name, &here, &line.text, &problems) {
                out.push(e);
            }
            for f in cmds {
                let at = line.source_range(f.offset..f.offset + 1).start;
                let (l, _) = file.position(at);
                let location = format!("{}:{l}", file.path.display());
                let ph = used_placeholders(&line.text, &base);
                let words = f.words.clone();
                let e = finish(
                    &job.name,
                    location,
                    f,
                    ph,
                    &workdir_ci,
                    project_dir,
                    project_dir,
                );
                add_build(&mut out, e, &words);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs<'a>(dir: &'a Path, git: &'a GitInfo, o: &'a BTreeMap<String, String>) -> Inputs<'a> {
        Inputs {
            context_dir: dir,
            git,
            overrides: o,
        }
    }

    #[test]
    fn cloudbuild_buildx_args_and_scripts_in_order() {
        let dir = Path::new("/src/repo");
        let git = GitInfo {
            commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
            branch: Some("main".into()),
            tag: None,
        };
        let o = BTreeMap::new();
        let text = "substitutions:\n  _IMG: reg.example/p/app\nsteps:\n- name: gcr.io/cloud-builders/docker\n  args: [buildx, build, -t, '${_IMG}:$SHORT_SHA', --target, prod, .]\n- name: gcr.io/cloud-builders/docker\n  entrypoint: sh\n  dir: sub\n  args: [-c, 'X=1; docker buildx build --build-arg \"V=$$X\" -f d/Dockerfile -t ${_IMG}/two .']\n- name: gcr.io/kaniko-project/executor:latest\n  args: ['--destination=${_IMG}:k', '--dockerfile=Dockerfile', '--context=dir:///workspace/ctx']\n- name: gcr.io/cloud-builders/docker\n  entrypoint: bash\n  env: ['TAG=from-env', 'IMG=${_IMG}']\n  args: [-c, 'docker build -t \"$$IMG:$$TAG\" .']\n";
        let got = extract(
            Path::new("cloudbuild.yaml"),
            text,
            Platform::CloudBuild,
            &inputs(dir, &git, &o),
        )
        .unwrap();
        assert_eq!(got.len(), 4, "{got:#?}");
        let p3 = got[3].plan.as_ref().unwrap();
        assert_eq!(p3.tags, vec!["reg.example/p/app:from-env"]);
        let p0 = got[0].plan.as_ref().unwrap();
        assert_eq!(p0.tags, vec!["reg.example/p/app:0123456"]);
        assert_eq!(p0.target.as_deref(), Some("prod"));
        assert_eq!(p0.context, "/src/repo");
        let p1 = got[1]
            .plan
            .as_ref()
            .unwrap_or_else(|| panic!("{:?}", got[1]));
        assert_eq!(p1.build_args[0].to_string(), "V=1");
        assert_eq!(p1.context, "/src/repo/sub");
        assert_eq!(p1.dockerfile.as_deref(), Some("/src/repo/sub/d/Dockerfile"));
        assert_eq!(got[2].kind, Kind::Kaniko);
        let p2 = got[2].plan.as_ref().unwrap();
        assert_eq!(p2.context, "/src/repo/ctx");
        assert_eq!(p2.tags, vec!["reg.example/p/app:k"]);
        assert!(got[0].placeholders.is_empty());
    }

    #[test]
    fn gitlab_variables_overrides_and_broken_values() {
        let git = GitInfo::default();
        let o: BTreeMap<String, String> =
            [("REG".to_string(), "127.0.0.1:5000".to_string())].into();
        let text = "variables:\n  BASE: \"$REG/base:1\"\n  OTHER: \"$NOPE/x\"\n.tpl:\n  script:\n    - docker buildx build --build-arg BASE=$BASE -t \"$CI_REGISTRY_IMAGE/app:$CI_COMMIT_SHORT_SHA\" \"$CI_PROJECT_DIR/sub\"\nbuild:\n  extends: .tpl\n  variables:\n    TAGGED: \"yes\"\nuses-other:\n  script:\n    - TAG=v1\n    - docker build -t \"$OTHER:$TAG\" .\n";
        let got = extract(
            Path::new("/p/.gitlab-ci.yml"),
            text,
            Platform::GitLab,
            &inputs(Path::new("/p"), &git, &o),
        )
        .unwrap();
        assert_eq!(got.len(), 2, "{got:#?}");
        assert_eq!(got[0].unit, "build");
        let p = got[0].plan.as_ref().unwrap();
        assert_eq!(p.build_args[0].to_string(), "BASE=127.0.0.1:5000/base:1");
        assert_eq!(
            p.tags,
            vec!["registry.gitlab.example.com/group/p/app:00000000"]
        );
        assert_eq!(p.context, "/p/sub");
        assert_eq!(
            got[0].placeholders,
            vec![
                "CI_REGISTRY_IMAGE".to_string(),
                "CI_COMMIT_SHORT_SHA".to_string()
            ]
        );
        assert_eq!(got[1].kind, Kind::DockerBuild);
        assert_eq!(got[1].unresolved, vec!["NOPE".to_string()]);
        assert!(got[1].plan.is_none());
    }

    #[test]
    fn buildah_builds_are_read_with_their_pushes() {
        let git = GitInfo::default();
        let o = BTreeMap::new();
        let text = "a:\n  script:\n    - >-\n      buildah build --layers --cache-from r/a/cache --cache-to r/a/cache --tag \"r/a:$V\" --tag r/a:latest .\n      && buildah push --digestfile d \"r/a:$V\"\n      && buildah push r/a:latest\n  variables: {V: '1'}\nlocal:\n  script:\n    - buildah build --layers -t r/b sub\nhalf:\n  script:\n    - buildah bud -t r/c:1 -t r/c:2 .\n    - buildah push r/c:1\nstray:\n  script: [buildah push r/d]\n";
        let got = extract(
            Path::new("/p/.gitlab-ci.yml"),
            text,
            Platform::GitLab,
            &inputs(Path::new("/p"), &git, &o),
        )
        .unwrap();
        assert_eq!(got.len(), 4, "{got:#?}");
        assert_eq!(got[0].kind, Kind::Buildah);
        let a = got[0]
            .plan
            .as_ref()
            .unwrap_or_else(|| panic!("{:?}", got[0]));
        assert!(a.push && a.outputs.is_empty(), "{a:?}");
        assert_eq!(a.tags, ["r/a:1", "r/a:latest"]);
        assert_eq!(a.cache_to[0].get("ref"), Some("r/a/cache"));
        let b = got[1].plan.as_ref().unwrap();
        assert!(!b.push && b.outputs[0].kind() == Some("cacheonly"), "{b:?}");
        assert_eq!(b.context, "/p/sub");
        assert!(
            got[2].error.as_deref().unwrap().contains("only some"),
            "{:?}",
            got[2]
        );
        assert!(
            got[3]
                .error
                .as_deref()
                .unwrap()
                .contains("without a `buildah build`")
        );
    }

    #[test]
    fn gitlab_jobs_follow_stages_and_needs() {
        let git = GitInfo::default();
        let o = BTreeMap::new();
        let text = "stages: [build, test]\nlate:\n  stage: test\n  script: [docker build -t r/late .]\napp:\n  stage: build\n  needs: [base]\n  script: [docker build -t r/app .]\nbase:\n  stage: build\n  script: [docker build -t r/base .]\n";
        let got = extract(
            Path::new("/p/.gitlab-ci.yml"),
            text,
            Platform::GitLab,
            &inputs(Path::new("/p"), &git, &o),
        )
        .unwrap();
        let units: Vec<&str> = got.iter().map(|e| e.unit.as_str()).collect();
        assert_eq!(units, vec!["base", "app", "late"]);
    }

    #[test]
    fn unresolved_substitution_is_named() {
        let git = GitInfo::default();
        let o = BTreeMap::new();
        let text = "steps:\n- name: gcr.io/cloud-builders/docker\n  args: [buildx, build, -t, '${_REGION}-docker.pkg.dev/$PROJECT_ID/app', .]\n";
        let got = extract(
            Path::new("cloudbuild.yaml"),
            text,
            Platform::CloudBuild,
            &inputs(Path::new("/r"), &git, &o),
        )
        .unwrap();
        assert_eq!(got[0].unresolved, vec!["_REGION".to_string()]);
        assert!(got[0].plan.is_none());
        assert_eq!(got[0].placeholders, vec!["PROJECT_ID".to_string()]);
        let o: BTreeMap<String, String> = [("_REGION".to_string(), "eu".to_string())].into();
        let got = extract(
            Path::new("cloudbuild.yaml"),
            text,
            Platform::CloudBuild,
            &inputs(Path::new("/r"), &git, &o),
        )
        .unwrap();
        assert_eq!(
            got[0].plan.as_ref().unwrap().tags,
            vec!["eu-docker.pkg.dev/kmigrate-verify/app"]
        );
    }
}
