//! GitHub Actions findings: KM001 for every step that runs Kaniko, the
//! flag notes (KM005, KM010–KM013) of its call, KM002 for a container job
//! that builds several images with cache, and KM012 where kmigrate cannot
//! translate; fixes rewrite Kaniko action steps to
//! `docker/setup-buildx-action` + `docker/build-push-action` (and
//! `docker/login-action` where the step held credentials).

use super::build_push::{self, BUILD_PUSH, LOGIN, SETUP_BUILDX};
use super::detect::{self, KanikoStep, RunCall, Via};
use super::translate::{self, Login, Translation, WORKSPACE};
use super::workflow::{self, Job, Step};
use crate::buildx::AttrList;
use crate::buildx::equivalence::{self, Explained};
use crate::buildx::from_kaniko::{self, Conversion, ConvertOptions, Note, NoteKind};
use crate::buildx::notes::note_findings;
use crate::kaniko::call;
use crate::options::{GithubCache, Options};
use crate::readback::equivalence::{Mismatch, REPORT_HELP};
use crate::rules::{Applicability, Edit, Finding, Fix, Rule};
use crate::source::SourceFile;
use crate::source::render::{Quote, scalar};

/// How the executor sees paths in a Kaniko action (the workspace).
pub fn convert_options(opts: &Options) -> ConvertOptions<'_> {
    ConvertOptions {
        cache_tag: &opts.cache_tag,
        workdir: WORKSPACE,
        default_context: WORKSPACE,
        local_workdir: None,
    }
}

/// KM001's help for a step `kmigrate rewrite` moves to build-push-action.
fn rewrite_help(opts: &Options) -> &'static str {
    match opts.github_cache {
        GithubCache::Registry => {
            "`kmigrate rewrite` turns it into docker/setup-buildx-action and docker/build-push-action with a registry cache"
        }
        GithubCache::Gha => {
            "`kmigrate rewrite` turns it into docker/setup-buildx-action and docker/build-push-action with GitHub Actions' cache service (`--github-cache gha`)"
        }
    }
}

/// `--github-cache gha`: the build's registry cache moves to GitHub
/// Actions' cache service, with a KM011 note that says what that changes.
fn use_cache_service(conversion: &mut Conversion, opts: &Options) {
    let plan = &mut conversion.plan;
    let registry = |a: &AttrList| a.get("type") == Some("registry");
    if opts.github_cache != GithubCache::Gha
        || plan
            .cache_from
            .iter()
            .chain(&plan.cache_to)
            .all(|a| !registry(a))
    {
        return;
    }
    let mut refs: Vec<String> = Vec::new();
    for a in plan.cache_from.iter().chain(&plan.cache_to) {
        if let Some(r) = a.get("ref")
            && !refs.iter().any(|x| x == r)
        {
            refs.push(r.to_string());
        }
    }
    let to_service = |a: &AttrList| {
        if !registry(a) {
            return a.clone();
        }
        let mut out = AttrList::parse("type=gha");
        out.attrs.extend(
            a.attrs
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "type" | "ref"))
                .cloned(),
        );
        out
    };
    plan.cache_from = plan.cache_from.iter().map(to_service).collect();
    plan.cache_to = plan.cache_to.iter().map(to_service).collect();
    conversion.notes.push(Note {
        kind: NoteKind::Changed,
        args: 0..0,
        message: format!(
            "the registry cache `{}` {}: nothing is written to the registry any more; GitHub keeps a repository's cache within its size limit, evicts entries left unused, and a branch reads only its own cache and its base branch's",
            refs.join("`, `"),
            from_kaniko::GHA_CACHE_SERVICE
        ),
        help: Some(
            "keep the registry cache (`--github-cache registry`, the default) when builds outside GitHub Actions share it".into(),
        ),
    });
}

/// What to tell the user to do with a step kmigrate leaves alone.
const BY_HAND: &str = "replace the step with docker/setup-buildx-action and docker/build-push-action by hand (a registry cache is `cache-from: type=registry,ref=REF` and `cache-to: type=registry,ref=REF,mode=max`)";

/// A Kaniko action step read as its executor call, converted.
pub struct ActionBuild {
    pub translation: Translation,
    pub conversion: Option<Conversion>,
}

/// Translates and converts the action step.
pub fn action_build(
    step: &Step,
    action: &'static super::actions::KanikoAction,
    opts: &Options,
) -> ActionBuild {
    let mut translation = translate::action_call(step, action);
    if action.inputs.is_none() {
        return ActionBuild {
            translation,
            conversion: None,
        };
    }
    let call = call::parse(translation.args.clone());
    // Kaniko's default cache repository is derived from the first
    // destination, which an expression hides until run time.
    if call.enabled("cache")
        && call.value("cache-repo").is_none()
        && call
            .values("destination")
            .first()
            .is_some_and(|d| d.contains("${{"))
    {
        let span = call
            .all("cache")
            .last()
            .and_then(|u| call.args[u.args.start].span.clone())
            .unwrap_or_else(|| step.item.span.clone());
        translation.manual.push((
            span,
            "the cache repository Kaniko derives from the first tag is only known at run time; set the action's cache repository input and run kmigrate again".into(),
        ));
    }
    let conversion = from_kaniko::convert(&call, &convert_options(opts));
    ActionBuild {
        translation,
        conversion: Some(conversion),
    }
}

/// Every GitHub Actions finding in `source`.
pub fn findings(source: &SourceFile, opts: &Options) -> Vec<Finding> {
    let mut out = Vec::new();
    for job in workflow::jobs(source) {
        out.extend(job_findings(source, &job, opts));
    }
    out
}

/// A Kaniko step being checked, with what its findings and fix read.
struct StepSite<'a> {
    source: &'a SourceFile,
    job: &'a Job<'a>,
    step: &'a Step<'a>,
    opts: &'a Options,
    /// The job sets up buildx before the step.
    has_setup: bool,
}

fn job_findings(source: &SourceFile, job: &Job, opts: &Options) -> Vec<Finding> {
    let mut out = Vec::new();
    // The setup step goes before the first step rewritten, shared by all,
    // unless the job sets up buildx before it (one set up later would come
    // too late: the docker driver cannot export a cache).
    let mut setup: Option<Edit> = None;
    let mut container_calls: Vec<RunCall> = Vec::new();
    let mut found_any = false;
    for (i, step) in job.steps.iter().enumerate() {
        let has_setup = job.steps[..i]
            .iter()
            .any(|s| s.uses_value().is_some_and(build_push::is_setup_buildx));
        let Some(kind) = detect::kaniko_step(job, step) else {
            continue;
        };
        found_any = true;
        let site = StepSite {
            source,
            job,
            step,
            opts,
            has_setup,
        };
        match kind {
            KanikoStep::Action(action) => {
                let mut build = action_build(step, action, opts);
                if let Some(c) = build.conversion.as_mut() {
                    use_cache_service(c, opts);
                }
                out.extend(action_findings(&site, action, &build, &mut setup));
            }
            KanikoStep::Image(m) => {
                let call = detect::image_call(step);
                let uses = step.uses.expect("an image step has `uses:`");
                out.push(
                    Finding::new(
                        Rule::Km001,
                        uses.value.span.clone(),
                        format!(
                            "{} {}",
                            step.label(job),
                            crate::kaniko::runs_image(uses.value.as_str().unwrap_or(""), m.name)
                        ),
                    )
                    .with_help(format!(
                        "not rewritten automatically: the step runs the executor image with `args:` and the runner's mounts; {BY_HAND}"
                    )),
                );
                let conversion = from_kaniko::convert(&call, &convert_options(opts));
                out.extend(note_findings(
                    &call.args,
                    &conversion,
                    &uses.value.span,
                    None,
                ));
            }
            KanikoStep::Run(calls) => {
                for c in &calls {
                    out.extend(run_findings(&site, c, &mut setup));
                }
                container_calls.extend(calls.into_iter().filter(|c| c.via == Via::Container));
            }
        }
    }
    // KM002: one container, several builds with cache.
    let cached = container_calls
        .iter()
        .filter(|c| c.call.enabled("cache"))
        .count();
    if container_calls.len() > 1 && cached > 0 {
        out.push(
            Finding::new(
                Rule::Km002,
                container_calls[1].span.clone(),
                format!(
                    "job `{}` runs the Kaniko executor {} times in one container with the cache on: later builds see what earlier ones left behind",
                    job.id,
                    container_calls.len()
                ),
            )
            .with_help("build each image in its own docker/build-push-action step (see KM001)"),
        );
    }
    // A reusable workflow named after Kaniko: its builds are where it is
    // defined.
    if let Some(uses) = job.entry.value.get("uses")
        && let Some(name) = uses.as_str()
        && super::actions::match_action(name).is_some()
    {
        out.push(
            Finding::new(
                Rule::Km001,
                uses.span.clone(),
                format!("job `{}` calls the reusable workflow `{name}`, which is named after Kaniko", job.id),
            )
            .with_help("not rewritten automatically: check and migrate the workflow where it is defined (`kmigrate check` on that repository)"),
        );
    }
    // A job in a Kaniko container whose script kmigrate did not see call it.
    if !found_any && let Some(m) = detect::container_image(job) {
        let node = job.container.expect("container_image found one");
        out.push(
            Finding::new(
                Rule::Km001,
                node.span.clone(),
                format!(
                    "job `{}` {}",
                    job.id,
                    crate::kaniko::runs_image(node.as_str().unwrap_or(""), m.name)
                ),
            )
            .with_help(format!(
                "not rewritten automatically: the job runs in the Kaniko image; {BY_HAND}"
            )),
        );
    }
    out
}

fn action_findings(
    site: &StepSite,
    action: &super::actions::KanikoAction,
    build: &ActionBuild,
    setup: &mut Option<Edit>,
) -> Vec<Finding> {
    let StepSite {
        source, job, step, ..
    } = *site;
    let label = step.label(job);
    let uses = step.uses.expect("an action step has `uses:`");
    let span = uses.value.span.clone();
    let mut km001 = Finding::new(
        Rule::Km001,
        span.clone(),
        format!(
            "{label} uses `{}` ({}), which runs the Kaniko executor (archived in June 2025)",
            uses.value.as_str().unwrap_or(""),
            action.name
        ),
    );
    let mut out = Vec::new();
    let mut manual: Vec<String> = Vec::new();
    for output in outputs_only_kaniko_sets(source, step) {
        let why = format!(
            "the workflow reads the step's output `{output}`, which docker/build-push-action does not set (it sets `digest`, `imageid` and `metadata`)"
        );
        out.push(Finding::new(Rule::Km012, span.clone(), why.clone()).with_help(BY_HAND));
        manual.push(why);
    }
    for (at, why) in &build.translation.manual {
        out.push(Finding::new(Rule::Km012, at.clone(), why.clone()).with_help(BY_HAND));
        manual.push(why.clone());
    }
    let Some(conversion) = &build.conversion else {
        km001 = km001.with_help(format!(
            "not rewritten automatically: {}",
            manual.join("; ")
        ));
        out.insert(0, km001);
        return out;
    };
    let rendered = if manual.is_empty() && !conversion.is_blocked() {
        match rewrite_edits(site, conversion, build.translation.login.as_ref(), setup) {
            Ok(edits) => Some(edits),
            Err(why) => {
                out.push(Finding::new(Rule::Km012, span.clone(), why.clone()).with_help(BY_HAND));
                manual.push(why);
                None
            }
        }
    } else {
        None
    };
    let changed = conversion.notes.iter().any(|n| n.kind == NoteKind::Changed);
    let fix = rendered.map(|edits| {
        Fix::new(
            format!("rewrite {label} to docker/build-push-action"),
            edits,
        )
        .with_applicability(Applicability::changing_behaviour_if(changed))
    });
    out.extend(note_findings(
        &build.translation.args,
        conversion,
        &span,
        fix.as_ref(),
    ));
    km001 = match fix {
        Some(fix) => km001.with_help(rewrite_help(site.opts)).with_fix(fix),
        None if !manual.is_empty() => km001.with_help(format!(
            "not rewritten automatically: {}",
            manual.join("; ")
        )),
        None => km001.with_help(
            "not rewritten automatically: a flag cannot be translated (see the KM012 finding)",
        ),
    };
    out.insert(0, km001);
    out
}

/// The outputs of `step` the workflow reads (`steps.ID.outputs.NAME`)
/// that build-push-action does not set under the same name.
fn outputs_only_kaniko_sets(source: &SourceFile, step: &Step) -> Vec<String> {
    const BUILD_PUSH_OUTPUTS: &[&str] = &["digest", "imageid", "metadata"];
    let Some(id) = step.item.node.get("id").and_then(|n| n.as_str()) else {
        return Vec::new();
    };
    let needle = format!("steps.{id}.outputs.");
    let mut out: Vec<String> = Vec::new();
    for (at, _) in source.text.match_indices(&needle) {
        let name: String = source.text[at + needle.len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        if !name.is_empty() && !BUILD_PUSH_OUTPUTS.contains(&name.as_str()) && !out.contains(&name)
        {
            out.push(name);
        }
    }
    out
}

/// The column `offset` is at, when only spaces precede it on its line.
fn block_column(text: &str, offset: usize) -> Option<usize> {
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let before = &text[line_start..offset];
    before.bytes().all(|b| b == b' ').then_some(before.len())
}

/// Where new steps go before the step at `item` (whose `-` is at column
/// `dash`): above the comment lines written right above it at the same
/// column, which belong to the step.
fn insertion_point(text: &str, item: usize, dash: usize) -> usize {
    let mut at = item;
    loop {
        let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
        if line_start == 0 {
            return at;
        }
        let prev_start = text[..line_start - 1].rfind('\n').map_or(0, |i| i + 1);
        let prev = &text[prev_start..line_start - 1];
        let indent = prev.len() - prev.trim_start_matches(' ').len();
        if indent == dash && prev[indent..].starts_with('#') {
            at = prev_start + indent;
        } else {
            return at;
        }
    }
}

/// The edits that rewrite an action step, after checking that the
/// build-push-action inputs read back as the same build; the setup step,
/// made by the first step rewritten in the job, is shared through `setup`.
fn rewrite_edits(
    site: &StepSite,
    conversion: &Conversion,
    login: Option<&Login>,
    setup: &mut Option<Edit>,
) -> Result<Vec<Edit>, String> {
    let StepSite {
        source,
        job,
        step,
        opts,
        has_setup,
    } = *site;
    let text = &source.text;
    let layout = "kmigrate rewrites block-style steps only; this one is written in flow style";
    if step.map.flow {
        return Err(layout.into());
    }
    let dash = block_column(text, step.item.span.start).ok_or(layout)?;
    let key_col = match step.map.entries.first() {
        Some(first) => {
            let line_start = text[..first.span.start].rfind('\n').map_or(0, |i| i + 1);
            first.span.start - line_start
        }
        None => dash + 2,
    };
    // The entry the `uses:` goes in: the action's own, or the `run:` it
    // replaces.
    let anchor = step
        .uses
        .or(step.run)
        .expect("a Kaniko step has `uses:` or `run:`");
    let with_col = match step.with {
        Some(w) => block_column(text, w.span.start).ok_or(layout)?,
        None => block_column(text, anchor.span.start).ok_or(layout)?,
    };
    let inputs = build_push::inputs(&conversion.plan)?;
    let with_text = build_push::render_with(&inputs, with_col, "\n");

    // The safety net: read the written inputs back and compare the builds.
    let back = SourceFile::from_text(
        std::path::Path::new("with.yaml"),
        build_push::render_with(&inputs, 0, "\n"),
    )
    .map_err(|e| format!("the build-push-action inputs do not parse ({})", e.message))?;
    let after = build_push::read_plan(back.root().and_then(|r| r.get("with")));
    let explained = Explained::from_notes(
        conversion.notes.iter().map(|n| n.message.as_str()),
        &opts.cache_tag,
    );
    let fields = equivalence::differences(&conversion.plan, &after, &explained);
    if !fields.is_empty() {
        let m = Mismatch {
            unit: step.label(job),
            original: true,
            fields,
        };
        return Err(format!("{} ({REPORT_HELP})", m.message(&step.label(job))));
    }

    let dash_pad = " ".repeat(dash);
    let item_key_pad = " ".repeat(dash + (key_col.saturating_sub(dash)).max(2));
    let mut edits = Vec::new();
    let before = insertion_point(text, step.item.span.start, dash);
    if !has_setup {
        let e = setup.get_or_insert_with(|| {
            Edit::insert(
                before,
                format!(
                    "- name: Set up Docker Buildx\n{item_key_pad}uses: {SETUP_BUILDX}\n{dash_pad}"
                ),
            )
        });
        edits.push(e.clone());
    }
    if let Some(l) = login {
        let v = |s: &str| scalar(s, Quote::Plain, false);
        let mut t = format!(
            "- name: Log in to {}\n{item_key_pad}uses: {LOGIN}\n{item_key_pad}with:\n",
            l.registry.as_deref().unwrap_or("Docker Hub")
        );
        if let Some(r) = &l.registry {
            t.push_str(&format!("{item_key_pad}  registry: {}\n", v(r)));
        }
        t.push_str(&format!("{item_key_pad}  username: {}\n", v(&l.username)));
        t.push_str(&format!(
            "{item_key_pad}  password: {}\n{dash_pad}",
            v(&l.password)
        ));
        edits.push(Edit::insert(before, t));
    }
    match (step.uses, step.with) {
        (Some(uses), Some(w)) => {
            edits.push(Edit::replace(uses.value.span.clone(), BUILD_PUSH));
            edits.push(Edit::replace(w.span.clone(), with_text));
        }
        (Some(uses), None) => {
            edits.push(Edit::replace(uses.value.span.clone(), BUILD_PUSH));
            edits.push(Edit::insert(
                uses.span.end,
                format!("\n{}{with_text}", " ".repeat(with_col)),
            ));
        }
        // A `run:` step: its script becomes the action.
        (None, _) => edits.push(Edit::replace(
            anchor.span.clone(),
            format!("uses: {BUILD_PUSH}\n{}{with_text}", " ".repeat(with_col)),
        )),
    }
    Ok(edits)
}

/// How a `run:` call's executor sees paths.
pub fn run_conversion(c: &RunCall, opts: &Options) -> Conversion {
    let options = match c.via {
        Via::Container => convert_options(opts),
        Via::DockerRun => super::docker_run::convert_options(&opts.cache_tag),
    };
    from_kaniko::convert(&c.call, &options)
}

fn run_findings(site: &StepSite, c: &RunCall, setup: &mut Option<Edit>) -> Vec<Finding> {
    let StepSite {
        job, step, opts, ..
    } = *site;
    let label = step.label(job);
    let mut conversion = run_conversion(c, opts);
    if c.via == Via::DockerRun {
        use_cache_service(&mut conversion, opts);
    }
    let rewrite = match c.via {
        Via::Container if job.container.is_some() => Err(format!(
            "the job runs in a Kaniko image (`container:`); move the build to a job on a runner with Docker and {BY_HAND}"
        )),
        Via::Container => Err(format!(
            "`/kaniko/executor` exists only inside a Kaniko image, which this step does not say how it gets; {BY_HAND}"
        )),
        Via::DockerRun => super::docker_run::translatable(c, step)
            .and_then(|()| {
                let plan = &conversion.plan;
                let outside = |p: &str| p.starts_with('/');
                if outside(&plan.context) || plan.dockerfile.as_deref().is_some_and(outside) {
                    return Err(format!(
                        "the context or Dockerfile is outside the workspace mounted at {}",
                        super::docker_run::KANIKO_WORKDIR
                    ));
                }
                if conversion.is_blocked() {
                    return Err("a flag cannot be translated (see the KM012 finding)".into());
                }
                rewrite_edits(site, &conversion, None, setup)
            })
            .map_err(|why| format!("{why}; {BY_HAND}")),
    };
    let km001 = Finding::new(
        Rule::Km001,
        c.span.clone(),
        format!("{label} {}", crate::kaniko::RUNS_EXECUTOR),
    );
    let changed = conversion.notes.iter().any(|n| n.kind == NoteKind::Changed);
    let (km001, fix) = match rewrite {
        Ok(edits) => {
            let fix = Fix::new(
                format!("rewrite {label} to docker/build-push-action"),
                edits,
            )
            .with_applicability(Applicability::changing_behaviour_if(changed));
            (
                km001.with_help(rewrite_help(opts)).with_fix(fix.clone()),
                Some(fix),
            )
        }
        Err(why) => (
            km001.with_help(format!("not rewritten automatically: {why}")),
            None,
        ),
    };
    let mut out = vec![km001];
    out.extend(note_findings(
        &c.call.args,
        &conversion,
        &c.span,
        fix.as_ref(),
    ));
    out
}
