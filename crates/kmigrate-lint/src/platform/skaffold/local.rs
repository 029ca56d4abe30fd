//! The one Skaffold migration that builds the same image: a `build:` whose
//! Kaniko artifacts use only `dockerfile`, `target` and `buildArgs` (no
//! cache, no flags, nothing else for the Kaniko pod) moves from `cluster:`
//! to `local:` with BuildKit, each `kaniko:` becoming `docker:` (the three
//! fields mean the same there). The build then runs on the Docker daemon
//! where Skaffold runs, with its `docker login` (KM004 says so), so the fix
//! changes behaviour: `rewrite --only-exact` leaves it. Before the fix is
//! offered, the rewritten artifacts are read back and compared.

use super::{Artifact, artifacts, convert_options, kaniko_call};
use crate::buildx::equivalence::{self, Explained};
use crate::buildx::from_kaniko;
use crate::buildx::{BuildArg, BuildPlan};
use crate::options::Options;
use crate::readback::equivalence::{Mismatch, REPORT_HELP};
use crate::rules::{Applicability, Edit, Fix};
use crate::source::{SourceFile, Value};

/// The `kaniko:` fields a `docker:` artifact reads the same way.
const SAME_IN_DOCKER: &[&str] = &["dockerfile", "target", "buildArgs"];

/// KM001's help when the fix exists.
pub const HELP: &str = "`kmigrate rewrite` turns it into a `docker:` artifact built by `build.local` with BuildKit (`useBuildkit: true`, `useDockerCLI: true`, `push: true`): `dockerfile`, `target` and `buildArgs` mean the same there (KM004 says what moves). To keep the build in the cluster instead, use a `custom:` artifact that runs `buildctl` against an in-cluster BuildKit (Skaffold has no in-cluster builder but Kaniko for a Dockerfile)";

/// KM004's message and help for the move.
pub const MOVES: &str = "the rewritten build runs on the Docker daemon where Skaffold runs instead of in a Kaniko pod on the cluster";
pub const MOVES_HELP: &str = "run Skaffold where Docker with BuildKit is available (a CI job with Docker, a workstation) and log in there to the registry (`docker login`): the `cluster:` settings (`namespace`, `pullSecretName`, `dockerConfig`, `resources`, …) are dropped with it";

/// The fix for `artifact` (every Kaniko artifact of its `build:` moves
/// together), or why there is none.
pub fn fix(
    source: &SourceFile,
    all: &[Artifact],
    artifact: &Artifact,
    opts: &Options,
) -> Result<Fix, String> {
    let text = &source.text;
    let build = artifact.build;
    let cluster = build
        .entry("cluster")
        .ok_or("the build does not run on `cluster:`")?;
    let siblings: Vec<&Artifact> = all
        .iter()
        .filter(|a| std::ptr::eq(a.build, build) && a.kaniko.is_some())
        .collect();
    for a in &siblings {
        let k = a.kaniko.expect("filtered");
        let fields_ok = match &k.value.value {
            Value::Null => true,
            Value::Map(m) => m
                .entries
                .iter()
                .all(|e| e.key.as_str().is_some_and(|n| SAME_IN_DOCKER.contains(&n))),
            _ => false,
        };
        if !fields_ok {
            return Err(format!(
                "artifact `{}` sets Kaniko fields a `docker:` artifact has no counterpart for",
                a.image
            ));
        }
    }
    let column = |offset: usize| {
        let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
        text[start..offset]
            .bytes()
            .all(|b| b == b' ')
            .then_some(offset - start)
    };
    let col = column(cluster.span.start).ok_or("`cluster:` is not written in block style")?;
    let pad = " ".repeat(col + 2);
    let mut edits = vec![Edit::replace(
        cluster.span.clone(),
        format!("local:\n{pad}useBuildkit: true\n{pad}useDockerCLI: true\n{pad}push: true"),
    )];
    for a in &siblings {
        edits.push(Edit::replace(
            a.kaniko.expect("filtered").key.span.clone(),
            "docker",
        ));
    }

    // The safety net: read the rewritten artifacts back and compare.
    let after_text = crate::source::patch::apply(text, &edits)
        .map_err(|_| "the edits of the build overlap".to_string())?;
    let after = SourceFile::from_text(&source.path, after_text)
        .map_err(|e| format!("the rewritten config does not parse ({})", e.message))?;
    let after_all = artifacts(&after);
    for a in &siblings {
        let conversion = from_kaniko::convert(&kaniko_call(a), &convert_options(opts));
        // Edits before the artifact move its offset: find it by label.
        let back = after_all
            .iter()
            .find(|b| b.label == a.label && b.image == a.image)
            .ok_or("the rewritten artifact cannot be found again")?;
        let plan = docker_plan(back);
        let explained = Explained::from_notes(
            conversion.notes.iter().map(|n| n.message.as_str()),
            &opts.cache_tag,
        );
        let fields = equivalence::differences(&conversion.plan, &plan, &explained);
        if !fields.is_empty() {
            let label = format!("artifact `{}`", a.image);
            let m = Mismatch {
                unit: label.clone(),
                original: true,
                fields,
            };
            return Err(format!("{} ({REPORT_HELP})", m.message(&label)));
        }
    }
    Ok(Fix::new(
        "move the build to build.local with BuildKit (`docker:` artifacts)",
        edits,
    )
    .with_applicability(Applicability::changing_behaviour_if(true)))
}

/// The build a `docker:` artifact of a `local:` build with `push: true`
/// makes. Skaffold resolves `dockerfile` against the context for both
/// builders, so it is read with the same path rules as the Kaniko side:
/// the comparison checks that every value survived the edit.
pub fn docker_plan(artifact: &Artifact) -> BuildPlan {
    let mut args = vec![
        format!("--context=dir://{}", super::WORKSPACE),
        format!("--destination={}:IMAGE_TAG", artifact.image),
    ];
    if let Some(d) = artifact.item.node.get("docker") {
        if let Some(f) = d.get("dockerfile").and_then(|f| f.as_str()) {
            args.push(format!("--dockerfile={f}"));
        }
        if let Some(t) = d.get("target").and_then(|t| t.as_str()) {
            args.push(format!("--target={t}"));
        }
        if let Some(Value::Map(m)) = d.get("buildArgs").map(|b| &b.value) {
            for e in &m.entries {
                let key = e.key.as_str().unwrap_or("");
                args.push(match e.value.as_str() {
                    Some(v) => format!("--build-arg={key}={v}"),
                    None => format!("--build-arg={key}"),
                });
            }
        }
    }
    // The same reading of paths as the Kaniko side, without its notes: a
    // `docker:` artifact has no cache and no flags.
    let call = crate::kaniko::call::parse(
        args.into_iter()
            .map(|text| crate::kaniko::call::Arg {
                text,
                span: None,
                dynamic: false,
            })
            .collect(),
    );
    let opts = Options::default();
    let mut plan = from_kaniko::convert(&call, &convert_options(&opts)).plan;
    plan.build_args = plan
        .build_args
        .iter()
        .map(|a| BuildArg::parse(&a.to_string()))
        .collect();
    plan
}
