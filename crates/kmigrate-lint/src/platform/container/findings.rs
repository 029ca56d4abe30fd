//! Findings for containers that run Kaniko: KM001 at the image (or the
//! executor call in a script), the flag notes of the call (KM010–KM013),
//! KM004 for the rootless container's security settings, KM012 where the
//! rewrite cannot be made; fixes rewrite a container whose executor flags
//! are its list items to rootless BuildKit, after reading the rewritten
//! container back and comparing the builds.

use std::ops::Range;

use super::rewrite::{self, DigestFile};
use super::{BUILDKIT_ROOTLESS, Container, Run};
use crate::buildx::equivalence::{self, Explained};
use crate::buildx::from_kaniko::{self, Conversion, ConvertOptions, NoteKind};
use crate::buildx::notes::note_findings;
use crate::kaniko::call::Call;
use crate::options::Options;
use crate::platform::gitlab::target::buildctl_words;
use crate::readback::equivalence::{Mismatch, REPORT_HELP};
use crate::rules::{Applicability, Finding, Fix, Rule};
use crate::source::SourceFile;
use crate::source::patch;

/// What a platform tells the shared container findings.
pub struct Context<'a> {
    pub opts: &'a Options,
    /// Tekton: a digest file is written after the build by the step's
    /// script, and Kaniko's `…-with-digest-file` results are manual.
    pub tekton: bool,
    /// Every container of a file, in order (the rewritten file is read
    /// again with it).
    pub containers: fn(&SourceFile) -> Vec<Container<'_>>,
}

/// What the rootless container needs, said in every manual task.
pub const ROOTLESS_SETUP: &str = "env `BUILDKITD_FLAGS=--oci-worker-no-process-sandbox`, and a `securityContext` with `runAsUser: 1000`, `runAsGroup: 1000`, `seccompProfile: {type: Unconfined}` and `appArmorProfile: {type: Unconfined}`";

/// How Kaniko in a container sees paths: the step or container's working
/// directory, else the executor image's `/workspace`.
fn convert_options<'a>(opts: &'a Options, c: &'a Container) -> ConvertOptions<'a> {
    ConvertOptions {
        cache_tag: &opts.cache_tag,
        workdir: c
            .working_dir
            .as_deref()
            .filter(|d| d.starts_with('/'))
            .unwrap_or("/workspace"),
        default_context: "/workspace",
        local_workdir: None,
    }
}

/// The conversion of `call` in container `c`.
pub fn convert(call: &Call, opts: &Options, c: &Container) -> Conversion {
    from_kaniko::convert(call, &convert_options(opts, c))
}

/// The manual task for a call kmigrate does not rewrite: the container to
/// write, with the call translated when it can be.
fn manual_task(call: &Call, conversion: &Conversion, opts: &Options, c: &Container) -> String {
    let template = "`buildctl-daemonless.sh build --frontend dockerfile.v0 --local context=DIR --local dockerfile=DIR --output type=image,name=IMAGE,push=true --export-cache type=registry,ref=CACHE,mode=max --import-cache type=registry,ref=CACHE`";
    let render = |conv: &Conversion| match buildctl_words(&conv.plan) {
        Ok(w) => format!("`{}`", w.join(" ")),
        Err(why) => format!("`buildctl-daemonless.sh build …` ({why})"),
    };
    // Words that stand for flags kmigrate cannot see (a Tekton
    // `$(params.EXTRA_ARGS[*])`): the rest of the call, translated, plus
    // those flags in buildctl's spelling.
    let hidden: Vec<&str> = call
        .args
        .iter()
        .filter(|a| a.dynamic)
        .map(|a| a.text.as_str())
        .collect();
    let call_text = if !conversion.is_blocked() {
        render(conversion)
    } else if hidden.is_empty() {
        template.to_string()
    } else {
        let rest =
            crate::kaniko::call::parse(call.args.iter().filter(|a| !a.dynamic).cloned().collect());
        let conv = convert(&rest, opts, c);
        if conv.is_blocked() {
            template.to_string()
        } else {
            format!(
                "{} plus the flags `{}` stands for, each in buildctl's spelling (`rules/kaniko-flags.yaml` gives the BuildKit form of every Kaniko flag); or drop `{}` from the call and run `kmigrate rewrite` again",
                render(&conv),
                hidden.join(" "),
                hidden.join(" ")
            )
        }
    };
    format!(
        "replace the container's image with `{BUILDKIT_ROOTLESS}` and run {call_text}, with {ROOTLESS_SETUP}"
    )
}

/// Every finding of container `k` (of `ctx.containers(source)`).
pub fn container_findings(
    source: &SourceFile,
    c: &Container,
    k: usize,
    ctx: &Context,
) -> Vec<Finding> {
    let Some(run) = c.run() else {
        return Vec::new();
    };
    let image_span = c
        .image
        .map_or_else(|| c.item.span.clone(), |e| e.value.span.clone());
    let image_text = c
        .image
        .and_then(|e| e.value.as_str())
        .unwrap_or("")
        .to_string();
    // A Tekton `$(params.X)` image is named with the default it runs.
    let runs = |name: &str| match &c.image_ref {
        Some(r) if *r != image_text => {
            format!("runs `{image_text}` (the param's default `{r}`), {name}")
        }
        _ => crate::kaniko::runs_image(&image_text, name),
    };
    let mut out = Vec::new();
    match run {
        Run::Idle(m) => {
            out.push(
                Finding::new(
                    Rule::Km001,
                    image_span,
                    format!("{} {}", c.label, runs(m.name)),
                )
                .with_help(format!(
                    "not rewritten automatically: no executor call is written in the container (another file, such as a Jenkinsfile's `container(…)` block, runs it there); replace its image with `{BUILDKIT_ROOTLESS}` and run `buildctl-daemonless.sh build --frontend dockerfile.v0 --local context=DIR --local dockerfile=DIR --output type=image,name=IMAGE,push=true --export-cache type=registry,ref=CACHE,mode=max --import-cache type=registry,ref=CACHE` where the executor was called, with {ROOTLESS_SETUP}"
                )),
            );
        }
        Run::Script(calls) => {
            for s in &calls {
                let conversion = convert(&s.call, ctx.opts, c);
                out.push(
                    Finding::new(
                        Rule::Km001,
                        s.span.clone(),
                        format!("{} {}", c.label, crate::kaniko::RUNS_EXECUTOR),
                    )
                    .with_help(format!(
                        "not rewritten automatically (the call is in a shell script): {}",
                        manual_task(&s.call, &conversion, ctx.opts, c)
                    )),
                );
                out.extend(note_findings(&s.call.args, &conversion, &s.span, None));
            }
        }
        Run::Args(call) => {
            let m = c.kaniko_image().expect("an args call runs a Kaniko image");
            let message = format!("{} {}", c.label, runs(m.name));
            out.extend(args_findings(source, c, k, &call, image_span, message, ctx));
        }
    }
    out
}

fn args_findings(
    source: &SourceFile,
    c: &Container,
    k: usize,
    call: &Call,
    image_span: Range<usize>,
    message: String,
    ctx: &Context,
) -> Vec<Finding> {
    let conversion = convert(call, ctx.opts, c);
    let mut km001 = Finding::new(Rule::Km001, image_span.clone(), message);
    let mut out = Vec::new();
    let mut manual: Vec<String> = Vec::new();
    if ctx.tekton {
        for name in [
            "image-name-with-digest-file",
            "image-name-tag-with-digest-file",
        ] {
            if let Some(u) = call.all(name).last() {
                let span = call.args[u.args.start]
                    .span
                    .clone()
                    .unwrap_or(image_span.clone());
                let why = format!(
                    "`--{name}` writes `repo@digest` lines that buildctl does not write; the step's result would be left empty"
                );
                out.push(Finding::new(Rule::Km012, span, why.clone()).with_help(format!(
                    "write the lines from buildctl's `--metadata-file` (`image.name`, `containerimage.digest`) in the step's script; {}",
                    manual_task(call, &conversion, ctx.opts, c)
                )));
                manual.push(why);
            }
        }
    }
    let digest_path = if ctx.tekton {
        call.value("digest-file").map(String::from)
    } else {
        None
    };
    let fix = if manual.is_empty() && !conversion.is_blocked() {
        match rewrite_checked(source, c, k, &conversion, digest_path.as_deref(), ctx) {
            Ok(edits) => Some(
                Fix::new(
                    format!(
                        "rewrite {} to rootless BuildKit (buildctl-daemonless.sh)",
                        c.label
                    ),
                    edits,
                )
                .with_applicability(Applicability::changing_behaviour_if(
                    conversion.notes.iter().any(|n| n.kind == NoteKind::Changed),
                )),
            ),
            Err(why) => {
                out.push(
                    Finding::new(Rule::Km012, image_span.clone(), why.clone())
                        .with_help(manual_task(call, &conversion, ctx.opts, c)),
                );
                manual.push(why);
                None
            }
        }
    } else {
        None
    };
    let mut notes = note_findings(&call.args, &conversion, &image_span, fix.as_ref());
    // The rewritten Tekton step writes the digest file itself.
    if fix.is_some()
        && let Some(path) = &digest_path
    {
        for n in notes
            .iter_mut()
            .filter(|n| n.message.starts_with("`--digest-file"))
        {
            n.help = Some(format!(
                "the rewritten step's script copies `containerimage.digest` from buildctl's metadata file to `{path}` after the build, as Kaniko wrote it"
            ));
        }
    }
    out.extend(notes);
    km001 = match fix {
        Some(fix) => {
            out.push(
                Finding::new(
                    Rule::Km004,
                    image_span.clone(),
                    format!(
                        "{} is rewritten to rootless BuildKit, which runs as uid 1000 with seccomp and AppArmor unconfined (its `securityContext` is replaced): Kaniko ran as root under the runtime's default profiles",
                        c.label
                    ),
                )
                .with_help("the namespace must admit Unconfined seccomp and AppArmor profiles (Pod Security level `privileged`: `baseline` and `restricted` refuse them), the workspace must be readable by uid 1000, and the node's kernel must allow unprivileged user namespaces"),
            );
            km001
                .with_help(format!(
                    "`kmigrate rewrite` turns it into a `{BUILDKIT_ROOTLESS}` container running `buildctl-daemonless.sh build` with a registry cache"
                ))
                .with_fix(fix)
        }
        None if !manual.is_empty() => km001.with_help(format!(
            "not rewritten automatically: {}; {}",
            manual.join("; "),
            manual_task(call, &conversion, ctx.opts, c)
        )),
        None => km001.with_help(format!(
            "not rewritten automatically: a flag cannot be translated (see the KM012 finding); {}",
            manual_task(call, &conversion, ctx.opts, c)
        )),
    };
    out.insert(0, km001);
    out
}

/// The rewrite's edits, after applying them, reading container `k` of the
/// rewritten file back and comparing its build with the conversion's.
fn rewrite_checked(
    source: &SourceFile,
    c: &Container,
    k: usize,
    conversion: &Conversion,
    digest_path: Option<&str>,
    ctx: &Context,
) -> Result<Vec<crate::rules::Edit>, String> {
    // buildctl names a Dockerfile by its directory: a bare `dockerfile`
    // reads back as `./dockerfile`, the same file.
    let mut plan = conversion.plan.clone();
    if let Some(f) = &mut plan.dockerfile
        && !f.contains('/')
        && !f.contains("://")
    {
        *f = format!("./{f}");
    }
    let metadata = plan.metadata_file.clone().unwrap_or_default();
    let digest = digest_path.map(|path| DigestFile {
        path,
        metadata: &metadata,
    });
    let edits = rewrite::edits(&source.text, c, &plan, digest.as_ref(), !ctx.tekton)?;
    let after = patch::apply(&source.text, &edits)
        .map_err(|_| "the rewrite's edits overlap".to_string())?;
    let back = SourceFile::from_text(&source.path, after)
        .map_err(|e| format!("the rewritten file does not parse ({})", e.message))?;
    let back_plan = (ctx.containers)(&back)
        .get(k)
        .and_then(rewrite::buildctl_plan)
        .ok_or("the rewritten container does not read back as a buildctl build")??;
    let explained = Explained::from_notes(
        conversion.notes.iter().map(|n| n.message.as_str()),
        &ctx.opts.cache_tag,
    );
    let fields = equivalence::differences(&plan, &back_plan, &explained);
    if !fields.is_empty() {
        let m = Mismatch {
            unit: c.label.clone(),
            original: true,
            fields,
        };
        return Err(format!("{} ({REPORT_HELP})", m.message(&c.label)));
    }
    Ok(edits)
}
