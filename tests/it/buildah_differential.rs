//! The embedded builder against Buildah (issue 19 item 6): each of a
//! handful of the builder's fixture Dockerfiles is built with `kmigrate
//! build` and with `buildah build`, from the same loopback base image, and
//! the two images are compared as `verify --compare-original` compares
//! (config fields, and every layer's file list: type, mode, owner, size,
//! content digest, whiteouts).
//!
//! Differences that are by design ([`by_design`]):
//! - `config.Labels[io.buildah.version]`: Buildah stamps its version on
//!   every image it builds; the embedded builder, like BuildKit, does not.
//! - RUN mount points: Buildah's chroot isolation leaves what it mounts for
//!   a RUN in that RUN's layer when the base lacks them: the directories
//!   `/dev`, `/proc`, `/sys`, `/run`, and empty `/etc/hostname`,
//!   `/etc/hosts`, `/etc/resolv.conf` (mode 755). The embedded builder,
//!   like BuildKit, leaves nothing of its sandbox in a layer.
//!
//! No difference that is not by design is allowed. (Whiteout markers were
//! one: Buildah, and BuildKit through containerd's differ, write
//! `.wh.<name>` with mode 0, the embedded builder wrote mode 644; it now
//! writes mode 0 as well, and the markers are compared like every entry.)
//!
//! (The embedded builder used to list `/etc` in the layer of every RUN, as
//! its sandbox mounts files there; it no longer does, and a RUN that
//! changes nothing makes no layer, as BuildKit marks such a layer empty.
//! Buildah's layer for that RUN then holds only its mount points and their
//! `/etc`: by design too, see [`empty_run_layers`].)
//!
//! Everything else must be equal: config fields, and every other entry of
//! every layer (type, mode, owner, size, content digest). Fixtures Buildah
//! 1.28 cannot build (heredocs, `COPY --exclude`/`--parents`, symbolic
//! `--chmod`, `${VAR/pattern/repl}`, `RUN --mount`/`--network`, `ADD <url>`)
//! are left out: there is nothing to compare.

use std::path::Path;

use kmigrate::verify::compare::{self, Difference};

use crate::buildah_env::{BuildahEnv, text};
use crate::support::{Registry, have, kmigrate_build, push_busybox_with_history};

/// The fixtures compared: the builder's coverage set (`BASE` is the
/// loopback base image), and one of this test's own for whiteouts, links
/// and modes.
const FIXTURES: &[&str] = &[
    "builder_coverage/add-compressed.Dockerfile",
    "builder_coverage/args-and-env.Dockerfile",
    "builder_coverage/copy-chown-variable.Dockerfile",
    "builder_coverage/label-legacy.Dockerfile",
    "builder_coverage/multi-stage.Dockerfile",
    "builder_coverage/nested-defaults.Dockerfile",
    "builder_coverage/shell-form.Dockerfile",
    "builder_coverage/user-and-healthcheck.Dockerfile",
    "buildah_differential/files.Dockerfile",
];

/// The layer entries Buildah's chroot isolation adds for a RUN.
const RUN_MOUNT_POINTS: &[&str] = &[
    "/dev",
    "/proc",
    "/sys",
    "/run",
    "/etc/hostname",
    "/etc/hosts",
    "/etc/resolv.conf",
];

/// The file a `layer N: /path` difference names.
fn layer_path(d: &Difference) -> Option<&str> {
    let (layer, path) = d.path.split_once(": ")?;
    layer.starts_with("layer ").then_some(path)
}

/// Why a difference (Buildah's image as the original, the embedded
/// builder's as the rewritten one) is by design, or `None`.
fn by_design(d: &Difference) -> Option<&'static str> {
    if d.path == "config.Labels[io.buildah.version]" && d.rewritten == "(unset)" {
        return Some("Buildah stamps its version on every image");
    }
    let path = layer_path(d)?;
    // `/etc` holds three of the mount points: Buildah lists it beside them.
    let mount_point = RUN_MOUNT_POINTS.contains(&path) || path == "/etc";
    (mount_point && d.rewritten == "(absent)")
        .then_some("Buildah's RUN mount points stay in the layer")
}

/// `layers: N layers / M layers` with Buildah's extra layers (after the
/// embedded builder's M) holding nothing but its RUN mount points: a RUN
/// that changed nothing, which the embedded builder leaves out.
fn empty_run_layers(diffs: &[Difference]) -> bool {
    let Some(count) = diffs.iter().find(|d| d.path == "layers") else {
        return false;
    };
    let layers = |s: &str| s.split_whitespace().next()?.parse::<usize>().ok();
    let (Some(theirs), Some(ours)) = (layers(&count.original), layers(&count.rewritten)) else {
        return false;
    };
    let extra = |d: &&Difference| {
        d.path
            .strip_prefix("layer ")
            .and_then(|r| r.split_once(": "))
            .and_then(|(n, _)| n.parse::<usize>().ok())
            .is_some_and(|n| n > ours)
    };
    theirs > ours && diffs.iter().filter(extra).all(|d| by_design(d).is_some())
}

/// Builds `dockerfile` in `ctx` with the embedded builder into an OCI
/// layout at `out`.
fn build_kmigrate(state: &Path, dockerfile: &Path, ctx: &Path, out: &Path) {
    let o = kmigrate_build(
        state,
        &[
            "-f",
            dockerfile.to_str().unwrap(),
            "--output",
            &format!("type=oci,dest={},tar=false", out.display()),
            ctx.to_str().unwrap(),
        ],
    );
    assert!(
        o.status.success(),
        "kmigrate build {}:\n{}",
        dockerfile.display(),
        text(&o)
    );
}

/// Builds `dockerfile` in `ctx` with Buildah into an OCI layout at `out`.
fn build_buildah(env: &BuildahEnv, dockerfile: &Path, ctx: &Path, out: &Path) {
    let name = "localhost/kmigrate-differential:1";
    let o = env.buildah(
        ctx,
        &[
            "build",
            "--layers",
            "--format",
            "oci",
            "-f",
            dockerfile.to_str().unwrap(),
            "-t",
            name,
            ctx.to_str().unwrap(),
        ],
    );
    assert!(
        o.status.success(),
        "buildah build {}:\n{}",
        dockerfile.display(),
        text(&o)
    );
    let dest = format!("oci:{}", out.display());
    let o = env.buildah(ctx, &["push", name, &dest]);
    assert!(o.status.success(), "buildah push:\n{}", text(&o));
}

#[test]
fn buildah_differential_embedded_builder_matches_buildah() {
    if !(have("docker-registry") && have("busybox") && have("buildah") && have("root")) {
        return;
    }
    let reg = Registry::start();
    // Buildah 1.28 needs the base's history (see buildah_target_run).
    let base = push_busybox_with_history(&reg);
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut findings: Vec<String> = Vec::new();
    for rel in FIXTURES {
        let src = fixtures.join(rel);
        let work = tempfile::tempdir().unwrap();
        let ctx = work.path().join("ctx");
        // The fixture's own directory is its context (README.md, …).
        copy_dir(src.parent().unwrap(), &ctx);
        let df = work.path().join("Dockerfile");
        let text_df = std::fs::read_to_string(&src).unwrap();
        std::fs::write(&df, text_df.replace("BASE", &base)).unwrap();
        let (ours, theirs) = (work.path().join("kmigrate"), work.path().join("buildah"));
        build_kmigrate(&work.path().join("state"), &df, &ctx, &ours);
        let env = BuildahEnv::new(&reg.addr).unwrap();
        build_buildah(&env, &df, &ctx, &theirs);
        let a = compare::read_layout(&theirs).unwrap();
        let b = compare::read_layout(&ours).unwrap();
        let diffs = compare::compare(&a, &b);
        let empty_runs = empty_run_layers(&diffs);
        for d in diffs {
            if d.path == "layers" && empty_runs {
                continue;
            }
            if by_design(&d).is_none() {
                findings.push(format!(
                    "{rel}: {}: buildah {} / kmigrate {}",
                    d.path, d.original, d.rewritten
                ));
            }
        }
    }
    assert!(findings.is_empty(), "{}", findings.join("\n"));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}
