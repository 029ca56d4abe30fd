//! The edits that migrate a Cloud Build file: each Kaniko step rewritten in
//! place, one `setup-buildx` step inserted before the first step that needs
//! the builder, and `waitFor` lists adjusted so every build waits for it.

use std::collections::HashMap;
use std::path::Path;

use super::digest_files;
use super::docker_steps::{self, DockerBuild};
use super::kaniko_steps::{self, Invocation, KanikoStep};
use super::separate;
use super::substitutions::{self, Handling, Substituted};
use super::{Build, Step};
use crate::buildx::cache_refs;
use crate::buildx::from_kaniko::{self, Conversion, ConvertOptions, Note, NoteKind};
use crate::buildx::registry_config::RegistryConfig;
use crate::options::{CloudbuildTarget, Options};
use crate::platform::script_edit;
use crate::shell;
use crate::source::patch::Edit;
use crate::source::render::{self, Quote, SeqLayout};
use crate::source::scalar::ScalarStyle;
use crate::source::{Entry, Item, Node, SourceFile, Syntax, Value};

/// The image every migrated step runs.
pub const DOCKER_BUILDER: &str = "gcr.io/cloud-builders/docker";
/// The id of the inserted setup step.
pub const SETUP_ID: &str = "setup-buildx";

/// What happens to one Kaniko step.
#[derive(Debug)]
pub struct StepMigration<'a> {
    pub kaniko: KanikoStep<'a>,
    /// One conversion per executor call.
    pub conversions: Vec<Conversion>,
    /// Extra notes about the step (not tied to one flag).
    pub notes: Vec<Note>,
    /// Substitutions set outside the file, handed to buildx as written (KM015).
    pub passthrough: Vec<Substituted>,
    /// The step's own edits; `None` when it must be migrated by hand.
    pub edits: Option<Vec<Edit>>,
    /// Why the step is left unchanged.
    pub blocked: Option<String>,
}

/// A docker build that exports cache on the default driver.
#[derive(Debug)]
pub struct DriverFix {
    pub step: usize,
    pub cache_exports: Vec<String>,
    pub edits: Vec<Edit>,
}

/// The whole file's plan.
#[derive(Debug)]
pub struct Migration<'a> {
    pub steps: Vec<StepMigration<'a>>,
    pub driver_fixes: Vec<DriverFix>,
    /// Edits every fix needs: the setup step and `waitFor` changes.
    pub shared: Vec<Edit>,
    pub builder: String,
    /// Where the Kaniko steps go.
    pub target: CloudbuildTarget,
}

impl Migration<'_> {
    /// What a Kaniko step's fix does, in its description.
    pub fn fix_description(&self, label: &str) -> String {
        match self.target {
            CloudbuildTarget::Buildx => format!("rewrite {label} to docker buildx build"),
            CloudbuildTarget::Fork => format!("move {label} to the maintained Kaniko fork"),
        }
    }
}

/// Plans the migration of `build`.
pub fn plan<'a>(build: &'a Build<'a>, opts: &Options) -> Migration<'a> {
    let source = build.source;
    let existing = docker_steps::setups(build)
        .into_iter()
        .find(|s| s.container_driver);
    let builder = existing
        .as_ref()
        .and_then(|s| s.name.clone())
        .unwrap_or_else(|| opts.builder.clone());

    // A step already on a maintained fork is not the archived image: there
    // is nothing to move (Cloud Build has no multi-build jobs to split).
    let found: Vec<KanikoStep> = kaniko_steps::find(build)
        .into_iter()
        .filter(|k| !k.on_fork())
        .collect();
    let (mut converted, alternatives): (Vec<Vec<Conversion>>, Vec<Vec<Alternatives>>) =
        found.iter().map(|k| convert_step(build, k, opts)).unzip();
    distinct_cache_refs(&found, &mut converted);
    let mut steps = Vec::new();
    for ((k, conversions), alts) in found.into_iter().zip(converted).zip(alternatives) {
        steps.push(match opts.cloudbuild_target {
            CloudbuildTarget::Buildx => migrate_step(build, k, conversions, &alts, &builder),
            CloudbuildTarget::Fork => super::fork::fork_step(build, k, conversions, opts),
        });
    }
    // Nothing is offered that does not build what the step built.
    super::equivalence::withhold_unfaithful(build, &mut steps, opts);

    let mut driver_fixes = Vec::new();
    for d in docker_steps::builds(build) {
        if d.cache_exports.is_empty() {
            continue;
        }
        let served = existing.as_ref().is_some_and(|s| {
            s.step < d.step
                && match (&d.builder, &s.name) {
                    (Some(b), Some(n)) => b == n,
                    (Some(_), None) => false,
                    (None, _) => true,
                }
        });
        if !served {
            driver_fixes.push(DriverFix {
                step: d.step,
                cache_exports: d.cache_exports.clone(),
                edits: builder_flag_edits(source, &d, &builder),
            });
        }
    }

    let needs_builder: Vec<usize> = steps
        .iter()
        .filter(|s| s.edits.is_some() && opts.cloudbuild_target == CloudbuildTarget::Buildx)
        .map(|s| s.kaniko.step.index)
        .chain(driver_fixes.iter().map(|d| d.step))
        .collect();
    let mut shared = Vec::new();
    if let Some(&first) = needs_builder.iter().min() {
        let mut registry = RegistryConfig::default();
        for s in steps
            .iter()
            .filter(|s| s.edits.is_some() && opts.cloudbuild_target == CloudbuildTarget::Buildx)
        {
            for c in &s.conversions {
                registry.merge(&c.registry);
            }
        }
        let setup_at = match &existing {
            Some(e) if e.step < first => e.step,
            _ => {
                shared.push(insert_setup(build, first, &builder, &registry, &steps));
                first
            }
        };
        let inserted = existing.as_ref().is_none_or(|e| e.step >= first);
        for &i in &needs_builder {
            if let Some(e) = wait_for_edit(build, &build.steps[i], setup_at, inserted) {
                shared.push(e);
            }
        }
    }
    let nl = source.line_ending.as_str();
    if nl != "\n" {
        // Some edits (script continuation lines) already use the file's
        // line ending: normalise first so none becomes `\r\r\n`.
        let fix = |e: &mut Edit| e.text = e.text.replace("\r\n", "\n").replace('\n', nl);
        shared.iter_mut().for_each(fix);
        for s in &mut steps {
            s.edits.iter_mut().flatten().for_each(fix);
        }
        for d in &mut driver_fixes {
            d.edits.iter_mut().for_each(fix);
        }
    }
    Migration {
        steps,
        driver_fixes,
        shared,
        builder,
        target: opts.cloudbuild_target,
    }
}

/// A call converted without the words of its flag-holding substitutions:
/// all of them (`bare`), and each one alone (`each`, by substitution), so
/// the buildx flags each default becomes can be told apart.
#[derive(Debug, Default)]
struct Alternatives {
    bare: Option<Conversion>,
    each: Vec<Option<Conversion>>,
}

/// Each executor call of a Kaniko step converted, with its alternatives.
fn convert_step(
    build: &Build,
    kaniko: &KanikoStep,
    opts: &Options,
) -> (Vec<Conversion>, Vec<Alternatives>) {
    let source = build.source;
    let step = kaniko.step;
    let workdir = match step.dir.as_deref() {
        Some(d) if d.starts_with('/') => d.to_string(),
        Some(d) => format!("/workspace/{d}"),
        None => "/workspace".to_string(),
    };
    let config_dir = source.path.parent().map(|p| {
        if p.as_os_str().is_empty() {
            Path::new(".")
        } else {
            p
        }
    });
    let local = config_dir.map(|d| match step.dir.as_deref() {
        Some(sub) if !sub.starts_with('/') => d.join(sub),
        _ => d.to_path_buf(),
    });
    let convert_opts = ConvertOptions {
        cache_tag: &opts.cache_tag,
        workdir: &workdir,
        default_context: &workdir,
        // Not checked to exist: a file below a missing directory is not
        // found either, and a `stat` per step was a few percent of a check.
        local_workdir: local.as_deref(),
    };
    let mut conversions: Vec<Conversion> = kaniko
        .calls
        .iter()
        .map(|c| from_kaniko::convert(&c.call, &convert_opts))
        .collect();
    for (call, conversion) in kaniko.calls.iter().zip(&mut conversions) {
        explain_digest_files(&call.call, conversion);
        substitutions::explain_blocked(call, conversion);
    }
    let alternatives = kaniko
        .calls
        .iter()
        .map(|c| {
            let convert = |call: crate::kaniko::Call| from_kaniko::convert(&call, &convert_opts);
            Alternatives {
                bare: separate::without_flags(c, None).map(convert),
                each: (0..c.substituted.len())
                    .map(|i| separate::without_flags(c, Some(i)).map(convert))
                    .collect(),
            }
        })
        .collect();
    (conversions, alternatives)
}

/// Gives every migrated build of the file that would export to the same
/// registry cache ref as a build of another image its own tag (steps run
/// in parallel, and BuildKit keeps one cache manifest per ref).
fn distinct_cache_refs(found: &[KanikoStep], converted: &mut [Vec<Conversion>]) {
    let mut at: Vec<(usize, usize)> = Vec::new();
    let mut uses: Vec<cache_refs::CacheUse> = Vec::new();
    for (si, (k, convs)) in found.iter().zip(converted.iter()).enumerate() {
        if k.is_warmer() || k.unreadable.is_some() {
            continue;
        }
        for (ci, c) in convs.iter().enumerate() {
            let Some(r) = c.cache_ref.as_deref().filter(|_| !c.is_blocked()) else {
                continue;
            };
            at.push((si, ci));
            uses.push(cache_refs::CacheUse {
                cache_ref: r,
                plan: &c.plan,
                names: build_names(k.step, ci, convs.len(), &c.plan),
            });
        }
    }
    let assigned = cache_refs::assign(&uses);
    drop(uses);
    for ((si, ci), t) in at.into_iter().zip(assigned) {
        if let Some(t) = t {
            let call = &found[si].calls[ci].call;
            cache_refs::retag(&mut converted[si][ci], call, &t.new_ref, &t.others);
        }
    }
}

/// Readable names for call `call` of `of` in `step`, best first: the
/// step's `id`, the Dockerfile, the image, the context, the step number.
fn build_names(
    step: &Step,
    call: usize,
    of: usize,
    plan: &crate::buildx::BuildPlan,
) -> Vec<String> {
    let numbered = |base: String| {
        if of > 1 {
            format!("{base}-{}", call + 1)
        } else {
            base
        }
    };
    let mut names = Vec::new();
    if let Some(id) = &step.id {
        names.push(numbered(id.clone()));
    }
    let split = crate::platform::gitlab::split::CallName::of(plan);
    names.extend(split.suffixes[1].clone());
    names.extend(split.image.clone());
    names.extend(split.suffixes[2].clone());
    names.push(numbered(format!("step-{}", step.index + 1)));
    names
}

fn migrate_step<'a>(
    build: &'a Build<'a>,
    kaniko: KanikoStep<'a>,
    conversions: Vec<Conversion>,
    alternatives: &[Alternatives],
    builder: &str,
) -> StepMigration<'a> {
    let source = build.source;
    let step = kaniko.step;
    let mut notes = Vec::new();
    let mut blocked = None;
    if kaniko.is_warmer() {
        blocked = Some("the step runs Kaniko's base-image warmer, which buildx does not need: remove the step (BuildKit pulls base images itself and caches them in the builder)".to_string());
    } else if let Some(why) = &kaniko.unreadable {
        blocked = Some(format!("{why}; migrate the step by hand"));
    } else if conversions.iter().any(Conversion::is_blocked) {
        blocked = Some("a flag cannot be translated exactly (see the KM012 findings); the step is left unchanged".into());
    } else if kaniko.calls.iter().any(|c| matches!(c.invocation, Invocation::Script { nesting, .. } if nesting != shell::Nesting::TopLevel)) {
        blocked = Some("the executor runs inside a loop or conditional, where a rewrite could change which images are built; migrate the script by hand".into());
    } else if matches!(step.args.map(|a| &a.value.value), Some(Value::Alias(_))) {
        blocked = Some("`args` is an alias of an anchor used elsewhere; edit the anchor by hand".into());
    } else if let Some(anchor) = step.args.and_then(|a| a.value.anchor.as_deref())
        && aliased(&source.text, anchor)
    {
        // Rewriting the anchor would hand the other users buildx args.
        blocked = Some(format!("`args` is the anchor `&{anchor}`, which is used elsewhere (`*{anchor}`): rewriting it would change those uses too; edit the anchor by hand"));
    }
    if let Some(n) = step.name.and_then(|e| e.value.as_str())
        && n.contains('$')
        && blocked.is_none()
    {
        notes.push(Note {
            kind: NoteKind::Changed,
            args: 0..0,
            message: format!("the image substitution in `{n}` is no longer used by this step"),
            help: Some("remove the substitution if nothing else uses it: Cloud Build rejects unused substitutions unless `options.substitutionOption: ALLOW_LOOSE` is set".into()),
        });
    }

    let layouts: Vec<separate::Layout> = kaniko
        .calls
        .iter()
        .zip(&conversions)
        .zip(alternatives)
        .map(|((call, with), alt)| {
            separate::layout(
                build,
                call,
                |c| build_argv(c, builder),
                with,
                alt.bare.as_ref(),
                &alt.each,
            )
        })
        .collect();
    let mut conversions = conversions;
    for (l, c) in layouts.iter().zip(&mut conversions) {
        c.notes.extend(
            l.notes
                .iter()
                .filter(|n| n.kind == NoteKind::Manual)
                .cloned(),
        );
        if blocked.is_none() {
            blocked = l.blocked.clone();
        }
    }
    let passthrough: Vec<Substituted> = kaniko
        .calls
        .iter()
        .flat_map(|c| &c.substituted)
        .filter(|s| matches!(s.handling, Handling::Passthrough { .. }))
        .cloned()
        .collect();
    let edits = if blocked.is_some() {
        None
    } else {
        step_edits(source, step, &kaniko, &conversions, &layouts)
    };
    if edits.is_none() && blocked.is_none() {
        blocked = Some(
            "the script's quoting style cannot hold the rewritten call; migrate it by hand".into(),
        );
    }
    // What the rewrite fixes about substitutions is only true of a
    // migrated step.
    if blocked.is_none() {
        for ((call, c), l) in kaniko.calls.iter().zip(&mut conversions).zip(&layouts) {
            c.notes.extend(substitutions::bool_notes(build, call));
            c.notes.extend(
                l.notes
                    .iter()
                    .filter(|n| n.kind != NoteKind::Manual)
                    .cloned(),
            );
        }
    }
    StepMigration {
        kaniko,
        conversions,
        notes,
        passthrough,
        edits,
        blocked,
    }
}

/// Whether `text` uses the anchor `name` (`*name` as a whole word).
fn aliased(text: &str, name: &str) -> bool {
    let alias = format!("*{name}");
    text.match_indices(&alias).any(|(i, _)| {
        !text[i + alias.len()..]
            .starts_with(|c: char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
    })
}

/// The digest-file notes say what the rewrite does about them: the step
/// writes the file again from the metadata (see [`digest_files`]).
fn explain_digest_files(call: &crate::kaniko::Call, conversion: &mut Conversion) {
    for u in &call.uses {
        if !digest_files::FLAGS.contains(&u.spec.name.as_str()) {
            continue;
        }
        let file = u.value.as_deref().unwrap_or_default();
        for note in conversion.notes.iter_mut().filter(|n| n.args == u.args) {
            note.help = Some(format!(
                "the rewritten step writes `{file}` again after the build, from the metadata file with `sed`, so steps that read it keep working; the digest differs from Kaniko's"
            ));
        }
    }
}

/// `buildx build --builder NAME <plan args>`.
fn build_argv(conversion: &Conversion, builder: &str) -> Vec<String> {
    let mut plan = conversion.plan.clone();
    plan.builder = None;
    let mut argv = vec![
        "buildx".to_string(),
        "build".into(),
        "--builder".into(),
        builder.to_string(),
    ];
    argv.extend(plan.to_args());
    argv
}

fn step_edits(
    source: &SourceFile,
    step: &Step,
    kaniko: &KanikoStep,
    conversions: &[Conversion],
    layouts: &[separate::Layout],
) -> Option<Vec<Edit>> {
    let mut edits = Vec::new();
    if let Some(name) = step.name {
        edits.push(replace_scalar(source, &name.value, DOCKER_BUILDER));
    }
    for ((call, conversion), layout) in kaniko.calls.iter().zip(conversions).zip(layouts) {
        let argv = &layout.argv;
        for (node, value) in &layout.defaults {
            edits.push(replace_scalar(source, node, value));
        }
        // Kaniko's digest files, written again from the metadata file after
        // the build; `$$` is Cloud Build's escape for the shell's `$`.
        let then: Vec<String> = conversion
            .plan
            .metadata_file
            .as_deref()
            .map(|m| digest_files::extraction(&call.call, m))
            .unwrap_or_default()
            .iter()
            .map(|line| line.replace('$', "$$"))
            .collect();
        let then = (!then.is_empty()).then_some(then);
        match &call.invocation {
            Invocation::Args => {
                let args = step.args?;
                let Some(then) = then else {
                    edits.push(replace_args(source, &args.value, argv)?);
                    if let Some(ep) = step.entrypoint {
                        let map = step.node.as_map()?;
                        edits.push(remove_entry(
                            source,
                            &map.entries,
                            ep,
                            map.flow || source.syntax == Syntax::Json,
                        ));
                    }
                    continue;
                };
                // Two commands need a shell: `sh -c 'docker … && sed …'`.
                let mut words = vec!["docker".to_string()];
                words.extend(argv.iter().map(|a| args_item_as_shell_word(a)));
                edits.push(replace_args_with_script(
                    source,
                    &args.value,
                    &words,
                    &then,
                )?);
                edits.push(match step.entrypoint {
                    Some(ep) => replace_scalar(source, &ep.value, "sh"),
                    None => insert_entrypoint_before(source, step, args)?,
                });
            }
            Invocation::Script {
                node,
                command,
                in_list,
                ..
            } => {
                let written = written_words(node, command);
                let mut words = vec!["docker".to_string()];
                words.extend(argv.iter().enumerate().map(|(i, a)| {
                    if layout.raw.contains(&i) {
                        return a.clone();
                    }
                    written
                        .get(a.as_str())
                        .cloned()
                        .unwrap_or_else(|| shell::render_word(a))
                }));
                let edit = script_edit::replace_command(source, node, command.clone(), &words)?;
                edits.push(match then {
                    Some(then) => and_then(node, edit, &then, *in_list)?,
                    None => edit,
                });
                if let Some(ep) = step.entrypoint
                    && ep
                        .value
                        .as_str()
                        .is_some_and(|e| e.starts_with("/busybox/"))
                {
                    edits.push(replace_scalar(source, &ep.value, "sh"));
                }
            }
        }
    }
    Some(edits)
}

/// The quoted words of the script command at `command` (decoded range),
/// by value: a value the rewrite passes on is written as the file wrote it
/// (`--build-arg "BASE=python:3.12-slim"` keeps its quotes). The value of a
/// `--flag="value"` word counts too.
fn written_words(node: &Node, command: &std::ops::Range<usize>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let Value::Scalar(scalar) = &node.value else {
        return out;
    };
    let script = shell::parse(&scalar.text);
    let Some(cmd) = script.commands.iter().find(|c| c.span == *command) else {
        return out;
    };
    for w in &cmd.words {
        let text = &scalar.text[w.span.clone()];
        if text.contains('\n') || text == w.dq {
            continue;
        }
        out.insert(w.dq.clone(), text.to_string());
        if let (Some((flag, value)), Some((_, dq_value))) =
            (text.split_once('='), w.dq.split_once('='))
            && flag.starts_with("--")
            && value != dq_value
        {
            out.insert(dq_value.to_string(), value.to_string());
        }
    }
    out
}

/// An `args` item (the literal word the program receives, with Cloud Build
/// substitutions) as a word of a `sh -c` script: double-quoted when needed,
/// substitutions left for Cloud Build, and `$$` (a literal `$` for the
/// program) kept from the shell as `\$$`.
fn args_item_as_shell_word(item: &str) -> String {
    let mut dq = String::with_capacity(item.len());
    let mut chars = item.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' if chars.peek() == Some(&'$') => {
                chars.next();
                dq.push_str("\\$$");
            }
            '`' | '"' | '\\' => {
                dq.push('\\');
                dq.push(c);
            }
            c => dq.push(c),
        }
    }
    shell::render_word(&dq)
}

/// `args` replaced by `-c` and a script that runs `words`, then each of
/// `then` when the previous command succeeded: a literal block in a block
/// list (the call over continuation lines, one command a line), one quoted
/// line in a flow list or JSON.
fn replace_args_with_script(
    source: &SourceFile,
    node: &Node,
    words: &[String],
    then: &[String],
) -> Option<Edit> {
    let Value::Seq(seq) = &node.value else {
        return None;
    };
    if seq.flow || source.syntax == Syntax::Json {
        let mut script = words.join(" ");
        for t in then {
            script.push_str(" && ");
            script.push_str(t);
        }
        return replace_args(source, node, &["-c".to_string(), script]);
    }
    let first = seq.items.first()?;
    let col = column(&source.text, first.span.start);
    let pad = " ".repeat(col + 2);
    let mut script = script_edit::continuation_lines(words, &format!("{pad}  "), "\n");
    for t in then {
        script.push_str(&format!(" &&\n{pad}  {t}"));
    }
    let quote = Quote::of_seq(seq, source.syntax);
    Some(Edit::replace(
        node.span.clone(),
        format!(
            "- {}\n{}- |\n{pad}{script}",
            render::scalar("-c", quote, false),
            " ".repeat(col)
        ),
    ))
}

/// `entrypoint: sh` as a new entry just before the step's `args`.
fn insert_entrypoint_before(source: &SourceFile, step: &Step, args: &Entry) -> Option<Edit> {
    let map = step.node.as_map()?;
    let text = if source.syntax == Syntax::Json {
        "\"entrypoint\": \"sh\", ".to_string()
    } else if map.flow {
        "entrypoint: sh, ".to_string()
    } else {
        format!(
            "entrypoint: sh\n{}",
            " ".repeat(column(&source.text, args.span.start))
        )
    };
    Some(Edit::insert(args.span.start, text))
}

/// Runs `then` after the rewritten command in `edit` when it succeeds,
/// written in the script scalar's style; a command inside a list or
/// pipeline is grouped first so the list keeps its meaning.
fn and_then(node: &Node, mut edit: Edit, then: &[String], in_list: bool) -> Option<Edit> {
    let Value::Scalar(scalar) = &node.value else {
        return None;
    };
    let (sep, then) = match scalar.style {
        // One command a line; `plan` turns `\n` into the file's line ending.
        ScalarStyle::Literal(_) => (
            format!(" &&\n{}", " ".repeat(scalar.block_indent + 2)),
            then.to_vec(),
        ),
        ScalarStyle::DoubleQuoted => (
            " && ".to_string(),
            then.iter()
                .map(|t| t.replace('\\', "\\\\").replace('"', "\\\""))
                .collect(),
        ),
        ScalarStyle::SingleQuoted => (
            " && ".to_string(),
            then.iter().map(|t| t.replace('\'', "''")).collect(),
        ),
        ScalarStyle::Plain if then.iter().all(|t| render::plain_safe(t, false)) => {
            (" && ".to_string(), then.to_vec())
        }
        _ => return None,
    };
    let mut text = std::mem::take(&mut edit.text);
    for t in then {
        text.push_str(&sep);
        text.push_str(&t);
    }
    edit.text = if in_list {
        format!("{{ {text}; }}")
    } else {
        text
    };
    Some(edit)
}

/// Replaces a scalar keeping its quoting.
pub(super) fn replace_scalar(source: &SourceFile, node: &Node, text: &str) -> Edit {
    let quote = Quote::of_node(node, source.syntax);
    Edit::replace(
        node.span.clone(),
        render::scalar(text, quote, is_in_flow(source, node)),
    )
}

/// Whether a node sits inside a flow collection (JSON counts).
///
/// Block collections cannot sit inside flow ones, so the way down from the
/// root to the node meets a flow collection before the node exactly when
/// the node is in one. Each step down finds the child by binary search, so
/// a call costs the depth times the log of the widths: scanning the text
/// before the node instead made a file of many flow steps quadratic.
fn is_in_flow(source: &SourceFile, node: &Node) -> bool {
    if source.syntax == Syntax::Json {
        return true;
    }
    let at = node.span.start;
    let docs = &source.tree.documents;
    let Some(mut cur) = docs[..docs.partition_point(|d| d.full_span.start <= at)].last() else {
        return false;
    };
    loop {
        if std::ptr::eq(cur, node) || !(cur.full_span.start <= at && at <= cur.full_span.end) {
            return false;
        }
        cur = match &cur.value {
            Value::Seq(s) if s.flow => return cur.span.start < at,
            Value::Map(m) if m.flow => return cur.span.start < at,
            Value::Seq(s) => {
                let i = s.items.partition_point(|i| i.span.start <= at);
                match i.checked_sub(1) {
                    Some(i) => &s.items[i].node,
                    None => return false,
                }
            }
            Value::Map(m) => {
                let i = m.entries.partition_point(|e| e.span.start <= at);
                match i.checked_sub(1).map(|i| &m.entries[i]) {
                    Some(e) if e.value.full_span.start <= at => &e.value,
                    Some(e) => &e.key,
                    None => return false,
                }
            }
            _ => return false,
        };
    }
}

/// Column of `offset` in its line.
fn column(text: &str, offset: usize) -> usize {
    offset - text[..offset].rfind('\n').map(|i| i + 1).unwrap_or(0)
}

fn line_start(text: &str, offset: usize) -> usize {
    text[..offset].rfind('\n').map(|i| i + 1).unwrap_or(0)
}

/// Renders argv items in the quoting the list uses; values with commas are
/// always quoted so a flow list cannot split them.
fn format_items(argv: &[String], quote: Quote, flow: bool) -> Vec<String> {
    argv.iter()
        .map(|a| {
            if a.contains(',') {
                render::quoted(a, quote)
            } else {
                render::scalar(a, quote, flow)
            }
        })
        .collect()
}

pub(super) fn replace_args(source: &SourceFile, node: &Node, argv: &[String]) -> Option<Edit> {
    let text = &source.text;
    let nl = "\n";
    match &node.value {
        Value::Seq(seq) if !seq.flow && source.syntax != Syntax::Json => {
            let quote = Quote::of_seq(seq, source.syntax);
            let first = seq.items.first()?;
            let pad = " ".repeat(column(text, first.span.start));
            let items = format_items(argv, quote, false);
            let body = items
                .iter()
                .map(|i| format!("- {i}"))
                .collect::<Vec<_>>()
                .join(&format!("{nl}{pad}"));
            Some(Edit::replace(node.span.clone(), body))
        }
        Value::Seq(seq) => {
            let quote = Quote::of_seq(seq, source.syntax);
            let items = format_items(argv, quote, true);
            let layout = flow_layout(source, node, seq.items.first());
            Some(Edit::replace(
                node.span.clone(),
                render::sequence(&items, &layout, nl),
            ))
        }
        _ => None,
    }
}

fn flow_layout(source: &SourceFile, node: &Node, first: Option<&Item>) -> SeqLayout {
    let text = &source.text;
    let written = &text[node.span.clone()];
    match first {
        Some(first)
            if written.contains('\n')
                && text[node.span.start + 1..first.span.start].contains('\n') =>
        {
            SeqLayout::FlowLines {
                column: column(text, first.span.start),
                close_column: column(text, node.span.end - 1),
            }
        }
        _ => SeqLayout::FlowInline,
    }
}

/// Removes a mapping entry: its whole lines in block style, the entry and
/// one separating comma in flow style.
fn remove_entry(source: &SourceFile, entries: &[Entry], entry: &Entry, flow: bool) -> Edit {
    let text = &source.text;
    if !flow {
        let start = line_start(text, entry.span.start);
        let end = text[entry.span.end..]
            .find('\n')
            .map(|i| entry.span.end + i + 1)
            .unwrap_or(text.len());
        return Edit::replace(start..end, "");
    }
    let pos = entries
        .iter()
        .position(|e| e.span == entry.span)
        .unwrap_or(0);
    if let Some(next) = entries.get(pos + 1) {
        Edit::replace(entry.span.start..next.span.start, "")
    } else if pos > 0 {
        Edit::replace(entries[pos - 1].span.end..entry.span.end, "")
    } else {
        Edit::replace(entry.span.clone(), "")
    }
}

/// `--builder NAME` for a docker build that exports cache (KM003);
/// `docker build` becomes `docker buildx build`.
fn builder_flag_edits(source: &SourceFile, d: &DockerBuild, builder: &str) -> Vec<Edit> {
    let text = &source.text;
    let build_node = &d.items[d.build_item].node;
    let flow = is_in_flow(source, build_node);
    // New items quoted as the list's own items are.
    let quote = Quote::of_items(d.items, source.syntax);
    let mut new_items: Vec<String> = Vec::new();
    let mut edits = Vec::new();
    if d.classic {
        edits.push(replace_scalar(source, build_node, "buildx"));
        new_items.push("build".into());
    }
    if d.builder.is_none() {
        new_items.push("--builder".into());
        new_items.push(builder.into());
    }
    if new_items.is_empty() {
        return edits;
    }
    let rendered = format_items(&new_items, quote, flow);
    let at = build_node.span.end;
    let insert = if flow {
        rendered
            .iter()
            .map(|i| format!(", {i}"))
            .collect::<String>()
    } else {
        let item = &d.items[d.build_item];
        let pad = " ".repeat(column(text, item.span.start));
        rendered.iter().map(|i| format!("\n{pad}- {i}")).collect()
    };
    edits.push(Edit::insert(at, insert));
    edits
}

/// Where the setup step writes the builder's registry settings: Cloud
/// Build's home directory, which every step shares, and not `/workspace`,
/// the build context a `COPY . .` would put it from into the image. `buildx
/// create` reads it at once and keeps a copy with the builder.
const BUILDKITD_TOML: &str = "/builder/home/buildkitd.toml";

/// The setup step's argv.
fn setup_argv(builder: &str, registry: &RegistryConfig) -> (Option<&'static str>, Vec<String>) {
    let mut create = vec![
        "buildx".to_string(),
        "create".into(),
        "--name".into(),
        builder.to_string(),
        "--driver".into(),
        "docker-container".into(),
        "--driver-opt".into(),
        "network=cloudbuild".into(),
    ];
    if registry.is_empty() {
        create.push("--use".into());
        return (None, create);
    }
    // Registry settings live in buildkitd.toml; write it, then create.
    create.push("--buildkitd-config".into());
    create.push(BUILDKITD_TOML.into());
    create.push("--use".into());
    let lines: Vec<String> = registry
        .to_toml_lines()
        .iter()
        .map(|l| format!("'{}'", l.replace('\'', "'\\''")))
        .collect();
    let script = format!(
        "printf '%s\\n' {} > {BUILDKITD_TOML} && docker {}",
        lines.join(" "),
        create.join(" ")
    );
    (Some("sh"), vec!["-c".into(), script])
}

/// Inserts the setup step before step `before` (and the comments above it).
fn insert_setup(
    build: &Build,
    before: usize,
    builder: &str,
    registry: &RegistryConfig,
    steps: &[StepMigration],
) -> Edit {
    let source = build.source;
    let (entrypoint, argv) = setup_argv(builder, registry);
    let file_quote = file_quote(build);
    let wait_quote = build
        .steps
        .iter()
        .find_map(|s| s.wait_for.and_then(|w| w.value.as_seq()))
        .map(|seq| Quote::of_seq(seq, source.syntax))
        .filter(|q| *q != Quote::Plain)
        .or(file_quote)
        .unwrap_or(Quote::Single);
    let setup = SetupStep {
        build,
        item: build.steps[before].item,
        entrypoint,
        argv,
        file_quote,
        wait_quote,
    };
    let steps_flow =
        build.steps_entry.value.as_seq().is_some_and(|s| s.flow) || source.syntax == Syntax::Json;
    if steps_flow {
        return setup.flow();
    }
    // `id:`, `name:` and `entrypoint:` quoted as the next step's name is.
    let name_quote = build.steps[before]
        .name
        .map(|n| Quote::of_node(&n.value, source.syntax))
        .unwrap_or(Quote::Plain);
    // The args style of the first migrated step's list, for consistency.
    let template_args = steps
        .iter()
        .filter(|s| s.edits.is_some())
        .find_map(|s| s.kaniko.step.args)
        .or(build.steps[before].args);
    setup.block(name_quote, template_args)
}

/// The setup step, written in the style of the steps around it.
struct SetupStep<'a> {
    build: &'a Build<'a>,
    /// The step it goes before.
    item: &'a Item,
    entrypoint: Option<&'static str>,
    argv: Vec<String>,
    /// See [`file_quote`].
    file_quote: Option<Quote>,
    /// How the file quotes `waitFor:` items.
    wait_quote: Quote,
}

impl SetupStep<'_> {
    /// The step as a flow mapping (flow steps, JSON).
    fn flow(&self) -> Edit {
        let (source, item, argv) = (self.build.source, self.item, &self.argv);
        let text = &source.text;
        let json = source.syntax == Syntax::Json;
        let q = if json { Quote::Json } else { Quote::Plain };
        let key = |k: &str| {
            if json {
                format!("\"{k}\"")
            } else {
                k.to_string()
            }
        };
        let arg_items = format_items(argv, self.file_quote.unwrap_or(Quote::Single), true);
        let mut fields = vec![
            format!("{}: {}", key("id"), render::scalar(SETUP_ID, q, true)),
            format!(
                "{}: {}",
                key("name"),
                render::scalar(DOCKER_BUILDER, q, true)
            ),
        ];
        if let Some(ep) = self.entrypoint {
            fields.push(format!(
                "{}: {}",
                key("entrypoint"),
                render::scalar(ep, q, true)
            ));
        }
        fields.push(format!("{}: [{}]", key("args"), arg_items.join(", ")));
        fields.push(format!(
            "{}: [{}]",
            key("waitFor"),
            render::quoted("-", self.wait_quote)
        ));
        let node_start = item.node.span.start;
        let on_own_line = text[line_start(text, node_start)..node_start]
            .trim()
            .is_empty();
        let first_key = item
            .node
            .as_map()
            .and_then(|m| m.entries.first())
            .map(|e| e.span.start);
        match first_key {
            Some(k) if on_own_line && text[node_start..k].contains('\n') => {
                let brace_pad = " ".repeat(column(text, node_start));
                let key_pad = " ".repeat(column(text, k));
                let body = fields
                    .iter()
                    .map(|f| format!("{key_pad}{f}"))
                    .collect::<Vec<_>>()
                    .join(",\n");
                Edit::insert(
                    line_start(text, node_start),
                    format!("{brace_pad}{{\n{body}\n{brace_pad}}},\n"),
                )
            }
            _ => Edit::insert(node_start, format!("{{{}}}, ", fields.join(", "))),
        }
    }

    /// Block steps: `- id: …` lines at the file's own columns, scalars
    /// quoted as `name_quote`, `args:` in the style of `template_args`.
    fn block(&self, name_quote: Quote, template_args: Option<&Entry>) -> Edit {
        let (text, item) = (&self.build.source.text, self.item);
        let value = |v: &str| render::scalar(v, name_quote, false);
        let dash_col = column(text, item.span.start);
        let key_col = column(text, item.node.span.start);
        let first = format!(
            "{}-{}",
            " ".repeat(dash_col),
            " ".repeat(key_col.saturating_sub(dash_col + 1).max(1))
        );
        let pad = " ".repeat(key_col);
        let args_text = self.block_args(template_args, key_col);
        let mut out = format!(
            "{first}id: {}\n{pad}name: {}\n",
            value(SETUP_ID),
            value(DOCKER_BUILDER)
        );
        if let Some(ep) = self.entrypoint {
            out.push_str(&format!("{pad}entrypoint: {}\n", value(ep)));
        }
        out.push_str(&format!("{pad}args:{args_text}\n"));
        out.push_str(&format!(
            "{pad}waitFor: [{}]\n",
            render::quoted("-", self.wait_quote)
        ));
        let at = attached_comments_start(text, item.span.start);
        // Steps separated by blank lines keep that rhythm.
        if text[..at].ends_with("\n\n") || text[..at].ends_with("\n\r\n") {
            out.push('\n');
        }
        Edit::insert(at, out)
    }

    /// The text after `args:` of a block step whose keys are at `key_col`:
    /// a block list laid out as `template_args` is, else a flow list.
    fn block_args(&self, template_args: Option<&Entry>, key_col: usize) -> String {
        let (source, argv) = (self.build.source, &self.argv);
        let text = &source.text;
        match template_args.map(|a| (&a.value, a)) {
            Some((node, entry)) if matches!(&node.value, Value::Seq(s) if !s.flow) => {
                let seq = node.as_seq().expect("checked above");
                let offset = seq
                    .items
                    .first()
                    .map(|i| {
                        column(text, i.span.start) as isize
                            - column(text, entry.span.start) as isize
                    })
                    .unwrap_or(2)
                    .max(0) as usize;
                let items = format_items(argv, Quote::of_seq(seq, source.syntax), false);
                render::sequence(
                    &items,
                    &SeqLayout::Block {
                        column: key_col + offset,
                    },
                    "\n",
                )
            }
            Some((node, _)) => {
                let quote = node
                    .as_seq()
                    .map(|s| Quote::of_seq(s, source.syntax))
                    .unwrap_or(Quote::Plain);
                format!(
                    " {}",
                    render::sequence(
                        &format_items(argv, quote, true),
                        &SeqLayout::FlowInline,
                        "\n"
                    )
                )
            }
            None => format!(
                " {}",
                render::sequence(
                    &format_items(argv, Quote::Plain, true),
                    &SeqLayout::FlowInline,
                    "\n"
                )
            ),
        }
    }
}

/// The quoting the file's steps use most (`Json` for JSON), `None` when
/// they quote nothing.
fn file_quote(build: &Build) -> Option<Quote> {
    if build.source.syntax == Syntax::Json {
        return Some(Quote::Json);
    }
    let (mut single, mut double) = (0usize, 0usize);
    let mut count = |node: &Node| {
        if let Value::Scalar(s) = &node.value {
            match s.style {
                ScalarStyle::SingleQuoted => single += 1,
                ScalarStyle::DoubleQuoted => double += 1,
                _ => {}
            }
        }
    };
    for step in &build.steps {
        for entry in [step.name, step.entrypoint].into_iter().flatten() {
            count(&entry.value);
        }
        for entry in [step.args, step.wait_for].into_iter().flatten() {
            for item in entry.value.as_seq().map_or(&[][..], |s| &s.items) {
                count(&item.node);
            }
        }
    }
    match (single, double) {
        (0, 0) => None,
        (s, d) if d > s => Some(Quote::Double),
        _ => Some(Quote::Single),
    }
}

/// The start of the comment lines directly above `offset`'s line (no blank
/// line between), which belong to the step.
fn attached_comments_start(text: &str, offset: usize) -> usize {
    let mut start = line_start(text, offset);
    while start > 0 {
        let prev = line_start(text, start - 1);
        if text[prev..start].trim_start().starts_with('#') {
            start = prev;
        } else {
            break;
        }
    }
    start
}

/// Makes step `step` wait for the setup step when it could otherwise start
/// before it.
fn wait_for_edit(build: &Build, step: &Step, setup_at: usize, inserted: bool) -> Option<Edit> {
    let source = build.source;
    let entry = step.wait_for?;
    let seq = entry.value.as_seq()?;
    let ids = step.wait_for_ids()?;
    if ids == ["-"] {
        let node = &seq.items[0].node;
        return Some(replace_scalar(source, node, SETUP_ID));
    }
    if depends_on_setup(build, &ids, setup_at, inserted, 0) {
        return None;
    }
    let quote = Quote::of_seq(seq, source.syntax);
    let last = seq.items.last()?;
    if seq.flow || source.syntax == Syntax::Json {
        Some(Edit::insert(
            last.node.span.end,
            format!(", {}", render::scalar(SETUP_ID, quote, true)),
        ))
    } else {
        let pad = " ".repeat(column(&source.text, last.span.start));
        Some(Edit::insert(
            last.span.end,
            format!("\n{pad}- {}", render::scalar(SETUP_ID, quote, false)),
        ))
    }
}

/// Whether waiting for `ids` implies the setup step has finished.
fn depends_on_setup(
    build: &Build,
    ids: &[String],
    setup_at: usize,
    inserted: bool,
    depth: usize,
) -> bool {
    if depth > build.steps.len() {
        return false; // a waitFor cycle; Cloud Build rejects those anyway
    }
    ids.iter().any(|id| {
        if id == SETUP_ID {
            return true;
        }
        let Some(t) = build
            .steps
            .iter()
            .find(|s| s.id.as_deref() == Some(id.as_str()))
        else {
            return false;
        };
        if !inserted && t.index == setup_at {
            return true;
        }
        let after = if inserted {
            t.index >= setup_at
        } else {
            t.index > setup_at
        };
        match t.wait_for_ids() {
            None => after,
            Some(w) if w == ["-"] => false,
            Some(w) => depends_on_setup(build, &w, setup_at, inserted, depth + 1),
        }
    })
}
