//! `--compare-original` at the unit level: the Kaniko plan of the Cloud
//! Build fixture against deliberately wrong mappings of it (a dropped
//! `--target`, a dropped build arg, a dropped label) must yield findings
//! that name the path; the faithful mapping must yield none.

use crate::support;

use std::path::Path;

use kmigrate::buildx::BuildPlan;
use kmigrate::buildx::from_kaniko::{self, ConvertOptions};
use kmigrate::kaniko::call::{self, Arg};
use kmigrate::verify::{VerifyOptions, compare_plans};
use support::*;

fn kaniko_plan(ctx: &Path, base: &str) -> BuildPlan {
    let args = [
        "--dockerfile=docker/Dockerfile".to_string(),
        format!("--context=dir://{}", ctx.display()),
        "--destination=registry.example/app:1".to_string(),
        format!("--build-arg=BASE={base}"),
        "--build-arg=GREETING=hello-from-cloudbuild".to_string(),
        "--target=runtime".to_string(),
        "--label=org.opencontainers.image.title=app".to_string(),
    ];
    let c = call::parse(args.iter().map(Arg::new).collect());
    let workdir = ctx.display().to_string();
    let conv = from_kaniko::convert(
        &c,
        &ConvertOptions {
            cache_tag: "buildcache",
            workdir: &workdir,
            default_context: &workdir,
            local_workdir: Some(ctx),
        },
    );
    assert!(!conv.is_blocked(), "{:?}", conv.notes);
    let mut p = conv.plan;
    // Paths as verify resolves them: absolute on this machine.
    fn abs(ctx: &Path, s: &str) -> String {
        if Path::new(s).is_absolute() {
            s.to_string()
        } else {
            ctx.join(s).display().to_string()
        }
    }
    p.context = abs(ctx, &p.context);
    p.dockerfile = p.dockerfile.as_deref().map(|d| abs(ctx, d));
    p
}

#[test]
fn compare_original_catches_a_dropped_target_build_arg_and_label() {
    if !(have("docker-registry") && have("busybox") && have("root")) {
        return;
    }
    let reg = Registry::start();
    let base = push_busybox(&reg);
    let ctx = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/verify/cloudbuild");
    let original = kaniko_plan(&ctx, &base);
    assert_eq!(original.target.as_deref(), Some("runtime"));
    let work = tempfile::tempdir().unwrap();
    let opts = VerifyOptions::new(ctx.join("cloudbuild.yaml"));

    // The faithful mapping: no difference.
    let same = compare_plans(
        &opts,
        &work.path().join("same"),
        &original,
        &original.clone(),
    )
    .unwrap();
    assert!(same.is_empty(), "{same:#?}");

    // A rewrite that dropped --target builds the last stage (`debug`).
    let mut no_target = original.clone();
    no_target.target = None;
    let d = compare_plans(&opts, &work.path().join("target"), &original, &no_target).unwrap();
    assert!(
        d.iter()
            .any(|x| x.path.ends_with(": /tmp/debug") && x.original == "(absent)"),
        "{d:#?}"
    );

    // A rewrite that dropped a build arg changes the file a RUN wrote.
    let mut no_arg = original.clone();
    no_arg.build_args.retain(|a| a.name != "GREETING");
    let d = compare_plans(&opts, &work.path().join("arg"), &original, &no_arg).unwrap();
    assert!(
        d.iter().any(|x| x.path.ends_with(": /app/greeting.txt")),
        "{d:#?}"
    );

    // A dropped label is a config difference with its key.
    let mut no_label = original.clone();
    no_label.labels.clear();
    let d = compare_plans(&opts, &work.path().join("label"), &original, &no_label).unwrap();
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0].path, "config.Labels[org.opencontainers.image.title]");
    assert_eq!(d[0].original, "app");
    assert_eq!(d[0].rewritten, "(unset)");
}
