//! `RUN --mount` end to end against a real registry and busybox base:
//! cache mounts that outlive a build and never reach a layer, binds from the
//! context and from another stage, tmpfs, secrets that are in no layer, key
//! or log, and `type=ssh` refused before anything runs.

use crate::support;

use std::io::Read;
use std::path::{Path, PathBuf};

use kmigrate::builder::image::{Index, Manifest};
use support::*;

/// Builds `ctx` into an OCI layout under `out`; returns the build's output.
pub(crate) fn build_oci(state: &Path, ctx: &Path, out: &Path, extra: &[&str]) -> String {
    let dest = format!("type=oci,dest={},tar=false", out.display());
    let mut args = vec!["--output", dest.as_str()];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    ok(&kmigrate_build(state, &args))
}

/// The layer blobs of the OCI layout at `dir`, and its config blob.
fn layout_blobs(dir: &Path) -> (Vec<PathBuf>, PathBuf) {
    let idx: Index =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let blob = |d: &str| {
        dir.join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let m: Manifest =
        serde_json::from_slice(&std::fs::read(blob(&idx.manifests[0].digest)).unwrap()).unwrap();
    (
        m.layers.iter().map(|l| blob(&l.digest)).collect(),
        blob(&m.config.digest),
    )
}

/// Every layer of the image at `dir`: entry names and uncompressed bytes.
pub(crate) fn layers(dir: &Path) -> Vec<(Vec<String>, Vec<u8>)> {
    layout_blobs(dir)
        .0
        .iter()
        .map(|l| {
            let mut raw = Vec::new();
            flate2::read::GzDecoder::new(std::fs::File::open(l).unwrap())
                .read_to_end(&mut raw)
                .unwrap();
            let names = tar::Archive::new(raw.as_slice())
                .entries()
                .unwrap()
                .map(|e| e.unwrap().path().unwrap().to_string_lossy().to_string())
                .collect();
            (names, raw)
        })
        .collect()
}

/// The image's file system: its layers unpacked in order.
pub(crate) fn unpack(dir: &Path) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    for l in layout_blobs(dir).0 {
        kmigrate::builder::layer::extract(&l, root.path()).unwrap();
    }
    root
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn a_cache_mount_outlives_the_build_and_stays_out_of_every_layer() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let state = tempfile::tempdir().unwrap();
    let first = tempfile::tempdir().unwrap();
    write_files(
        first.path(),
        &[(
            "Dockerfile",
            &format!(
                "FROM {base}\n\
                 RUN --mount=type=cache,id=shared,target=/var/cache/app,sharing=locked \
                 echo made-in-build-one > /var/cache/app/f && echo layer > /in-layer\n"
            ),
        )],
    );
    let out1 = tempfile::tempdir().unwrap();
    build_oci(state.path(), first.path(), out1.path(), &[]);
    for (names, raw) in layers(out1.path()) {
        assert!(
            !names.iter().any(|n| n.starts_with("var/cache")),
            "cache mount point or content in a layer: {names:?}"
        );
        assert!(!contains(&raw, "made-in-build-one"));
    }
    assert!(unpack(out1.path()).path().join("in-layer").is_file());

    // Another Dockerfile on the same state: the cache has the file, which a
    // RUN copies out and a later stage COPYs.
    let second = tempfile::tempdir().unwrap();
    write_files(
        second.path(),
        &[(
            "Dockerfile",
            &format!(
                "FROM {base} AS b\n\
                 RUN --mount=type=cache,id=shared,target=/c cp /c/f /from-cache\n\
                 FROM {base}\nCOPY --from=b /from-cache /got\n"
            ),
        )],
    );
    let out2 = tempfile::tempdir().unwrap();
    build_oci(state.path(), second.path(), out2.path(), &[]);
    assert_eq!(
        std::fs::read_to_string(unpack(out2.path()).path().join("got")).unwrap(),
        "made-in-build-one\n"
    );
}

#[test]
fn a_cache_seeded_from_a_stage_starts_with_its_files_and_is_a_cache_of_its_own() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let state = tempfile::tempdir().unwrap();
    let build = |seed: &str| {
        let ctx = tempfile::tempdir().unwrap();
        // The seeded cache starts with the stage's files and keeps what the
        // RUN adds; the same id without a seed is another, empty, cache.
        write_files(
            ctx.path(),
            &[(
                "Dockerfile",
                &format!(
                    "FROM {base} AS deps\nRUN mkdir -p /seed && echo {seed} > /seed/a\n\
                     FROM {base}\n\
                     RUN --mount=type=cache,id=c,target=/c,from=deps,source=/seed \
                     cat /c/a > /got && cat /c/b >> /got 2>/dev/null; echo marker-7f3c > /c/b\n\
                     RUN --mount=type=cache,id=c,target=/c test ! -e /c/a && test ! -e /c/b\n"
                ),
            )],
        );
        let out = tempfile::tempdir().unwrap();
        let text = build_oci(state.path(), ctx.path(), out.path(), &[]);
        for (names, raw) in layers(out.path()) {
            assert!(!names.iter().any(|n| n.starts_with("c/")), "{names:?}");
            assert!(!contains(&raw, "marker-7f3c"));
        }
        let got = std::fs::read_to_string(unpack(out.path()).path().join("got")).unwrap();
        (got, counts(&text))
    };
    assert_eq!(build("one"), ("one\n".to_string(), (3, 0)));
    // Another seed is another cache, and the seeded step (whose parent is
    // the same base) is not taken from the cache: its key has the seed.
    assert_eq!(build("two"), ("two\n".to_string(), (3, 0)));
    // The first seed's cache kept what its RUN added.
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!(
                "FROM {base} AS deps\nRUN mkdir -p /seed && echo one > /seed/a\n\
                 FROM {base}\n\
                 RUN --mount=type=cache,id=c,target=/c,from=deps,source=/seed cat /c/a /c/b > /again\n"
            ),
        )],
    );
    let out = tempfile::tempdir().unwrap();
    build_oci(state.path(), ctx.path(), out.path(), &[]);
    assert_eq!(
        std::fs::read_to_string(unpack(out.path()).path().join("again")).unwrap(),
        "one\nmarker-7f3c\n"
    );
}

#[test]
fn mount_specs_are_in_the_key_and_cache_contents_are_not() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let state = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    let df = |target: &str| {
        format!(
            "FROM {base}\nRUN --mount=type=cache,target={target} date >> {target}/runs && echo x > /x\n"
        )
    };
    write_files(ctx.path(), &[("Dockerfile", &df("/c"))]);
    let out = tempfile::tempdir().unwrap();
    let a = build_oci(state.path(), ctx.path(), out.path(), &[]);
    assert_eq!(counts(&a), (1, 0), "{a}");
    // The cache changed, the spec did not: a hit.
    let b = build_oci(state.path(), ctx.path(), out.path(), &[]);
    assert_eq!(counts(&b), (0, 1), "{b}");
    assert_eq!(image_digest(&a), image_digest(&b));
    // Another target: another key.
    write_files(ctx.path(), &[("Dockerfile", &df("/d"))]);
    let c = build_oci(state.path(), ctx.path(), out.path(), &[]);
    assert_eq!(counts(&c), (1, 0), "{c}");
}

#[test]
fn binds_show_the_context_and_other_stages_and_rw_changes_are_discarded() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let state = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[
            ("src/hello.txt", "hello from the context\n"),
            ("src/private.env", "IGNORED=1\n"),
            (".dockerignore", "src/private.env\n"),
            (
                "Dockerfile",
                &format!(
                    "ARG TOOLS_STAGE=tools\nFROM {base} AS tools\nRUN mkdir /out && echo from-tools > /out/t\n\
                     FROM {base}\nARG SRC=src\n\
                     RUN --mount=type=bind,source=$SRC,target=/ctx cat /ctx/hello.txt > /h \
                     && test ! -e /ctx/private.env && ! touch /ctx/new 2>/dev/null\n\
                     RUN --mount=type=bind,from=tools,source=/out,target=/mnt cat /mnt/t > /copied\n\
                     RUN --mount=from=tools,source=/out,target=/mnt,rw echo changed > /mnt/t && cat /mnt/t > /rw\n\
                     RUN --mount=type=bind,from=$TOOLS_STAGE,source=/out,target=/mnt cat /mnt/t > /again\n"
                ),
            ),
        ],
    );
    let out = tempfile::tempdir().unwrap();
    build_oci(state.path(), ctx.path(), out.path(), &[]);
    let root = unpack(out.path());
    let read = |p: &str| std::fs::read_to_string(root.path().join(p)).unwrap();
    assert_eq!(read("h"), "hello from the context\n");
    assert_eq!(read("copied"), "from-tools\n");
    assert_eq!(read("rw"), "changed\n");
    assert_eq!(
        read("again"),
        "from-tools\n",
        "an rw bind changed its source"
    );
    for p in ["ctx", "mnt", "out"] {
        assert!(!root.path().join(p).exists(), "/{p} is in the image");
    }

    // Unchanged: every step hits.
    let text = build_oci(state.path(), ctx.path(), out.path(), &[]);
    assert_eq!(counts(&text), (0, 5), "{text}");
    // A changed context file makes the bind's RUN miss (and the steps
    // after it); the other stage still hits.
    write_files(ctx.path(), &[("src/hello.txt", "changed\n")]);
    let text = build_oci(state.path(), ctx.path(), out.path(), &[]);
    assert_eq!(counts(&text), (4, 1), "{text}");
}

#[test]
fn tmpfs_is_empty_bounded_and_not_in_the_layer() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let state = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!(
                "FROM {base}\n\
                 RUN --mount=type=tmpfs,target=/scratch,size=1m echo x > /scratch/y \
                 && ! dd if=/dev/zero of=/scratch/big bs=1024 count=2048 2>/dev/null \
                 && echo ok > /done\n\
                 RUN --mount=type=tmpfs,target=/deep/new/dir --mount=type=cache,target=/opt/c \
                 touch /deep/new/dir/x /opt/c/y\n"
            ),
        )],
    );
    let out = tempfile::tempdir().unwrap();
    let text = build_oci(state.path(), ctx.path(), out.path(), &[]);
    let layers = layers(out.path());
    for (names, _) in &layers {
        assert!(!names.iter().any(|n| n.starts_with("scratch")), "{names:?}");
    }
    // The base and the first RUN: a RUN that only wrote to its mounts
    // leaves no layer (its mount points and their parents' mtimes are undone).
    let names: Vec<_> = layers.iter().map(|(n, _)| n).collect();
    assert_eq!(layers.len(), 2, "{text}{names:?}");
    assert!(unpack(out.path()).path().join("done").is_file());
}

const SECRET: &str = "s3cr3t-Value-7f1c9a";

#[test]
fn secrets_reach_the_run_and_no_layer_key_config_or_log() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let state = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    // The Dockerfile checks the value by its digest: the text must not
    // hold it either.
    let digest = kmigrate::builder::digest::sha256_hex(SECRET.as_bytes());
    let secret_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret_file.path(), SECRET).unwrap();
    write_files(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!(
                "FROM {base}\n\
                 RUN --mount=type=secret,id=tok test \"$(sha256sum < /run/secrets/tok | cut -c1-64)\" = {digest} && echo file-ok > /file-ok\n\
                 RUN --mount=type=secret,id=envtok,env=TOKEN,required=true test \"$(printf %s \"$TOKEN\" | sha256sum | cut -c1-64)\" = {digest} && echo env-ok > /env-ok\n\
                 RUN --mount=type=secret,id=tok,target=/etc/app/key,mode=0444 cat /etc/app/key && echo printed > /printed\n\
                 RUN --mount=type=secret,id=absent echo optional-ok > /optional-ok\n"
            ),
        )],
    );
    let out = tempfile::tempdir().unwrap();
    let src = format!("id=tok,src={}", secret_file.path().display());
    let dest = format!("type=oci,dest={},tar=false", out.path().display());
    let run = kmigrate_build_env(
        state.path(),
        &[
            "--secret",
            &src,
            "--secret",
            "id=envtok,env=BMOUNT_TEST_TOKEN",
            "--output",
            &dest,
            ctx.path().to_str().unwrap(),
        ],
        &[("BMOUNT_TEST_TOKEN", SECRET)],
    );
    let log = ok(&run);
    assert!(
        !log.contains(SECRET),
        "the secret is in the build log:\n{log}"
    );
    assert!(log.contains("****"), "{log}");
    let root = unpack(out.path());
    for f in ["file-ok", "env-ok", "printed", "optional-ok"] {
        assert!(root.path().join(f).is_file(), "/{f} missing:\n{log}");
    }
    assert!(!root.path().join("run/secrets").exists());
    assert!(!root.path().join("etc/app").exists());
    for (names, raw) in layers(out.path()) {
        assert!(
            !contains(&raw, SECRET),
            "the secret is in a layer: {names:?}"
        );
        assert!(!names.iter().any(|n| n.contains("secrets")), "{names:?}");
    }
    let config = std::fs::read(layout_blobs(out.path()).1).unwrap();
    assert!(!contains(&config, SECRET));
    // Nothing the state keeps (cache records, blobs' uncompressed
    // metadata, work files) has it either.
    for e in walkdir::WalkDir::new(state.path()) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let bytes = std::fs::read(e.path()).unwrap();
            assert!(!contains(&bytes, SECRET), "{}", e.path().display());
        }
    }
}

#[test]
fn a_missing_required_secret_and_ssh_mounts_name_their_line() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let state = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!(
                "FROM {base}\nRUN touch /ran\nRUN --mount=type=secret,id=npm,required echo x\n"
            ),
        )],
    );
    let out = kmigrate_build(state.path(), &[ctx.path().to_str().unwrap()]);
    let text = output_text(&out);
    assert!(!out.status.success());
    assert!(
        text.contains(":3: secret \"npm\" is required but the build has no --secret id=npm"),
        "{text}"
    );
    write_files(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!(
                "FROM {base}\nRUN touch /ran\nRUN --mount=type=ssh git clone git@example.com:x/y\n"
            ),
        )],
    );
    let out = kmigrate_build(state.path(), &[ctx.path().to_str().unwrap()]);
    let text = output_text(&out);
    assert!(!out.status.success());
    assert!(
        text.contains(
            ":3: RUN --mount=type=ssh is not supported by the embedded builder: no SSH agent is forwarded into a RUN"
        ),
        "{text}"
    );
    // Refused before the RUN on line 2 ran (or the base was pulled).
    assert!(!text.contains("DONE"), "{text}");
}

#[test]
fn mounts_work_in_a_rootless_build() {
    let Some(rl) = Rootless::new() else {
        return;
    };
    let reg = Registry::start();
    let base = push_busybox(&reg);
    let ctx = rl.path("ctx");
    write_files(
        &ctx,
        &[
            ("in-context.txt", "ctx\n"),
            ("secret.txt", SECRET),
            (
                "Dockerfile",
                &format!(
                    "FROM {base} AS other\nRUN echo other > /o\nFROM {base}\n\
                     RUN --mount=type=cache,target=/c --mount=type=tmpfs,target=/t \
                     --mount=target=/ctx --mount=from=other,source=/o,target=/o \
                     --mount=type=secret,id=s,required \
                     touch /c/x /t/y && cat /ctx/in-context.txt /o > /got && test -s /run/secrets/s\n"
                ),
            ),
        ],
    );
    let oci = rl.path("oci");
    let secret = format!("id=s,src={}", ctx.join("secret.txt").display());
    let dest = format!("type=oci,dest={},tar=false", oci.display());
    ok(&rl.build(&[
        "--secret",
        &secret,
        "--output",
        &dest,
        ctx.to_str().unwrap(),
    ]));
    assert_eq!(
        std::fs::read_to_string(unpack(&oci).path().join("got")).unwrap(),
        "ctx\nother\n"
    );
}

#[test]
fn hostile_bind_sources_and_targets_stay_inside() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let outer = tempfile::tempdir().unwrap();
    std::fs::write(outer.path().join("host.txt"), "host file").unwrap();
    let ctx = outer.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::os::unix::fs::symlink(outer.path().join("host.txt"), ctx.join("link")).unwrap();
    let state = tempfile::tempdir().unwrap();
    for (mount, want) in [
        ("source=link,target=/x", "outside the build context"),
        (
            "source=../host.txt,target=/x",
            "not found in the build context",
        ),
    ] {
        write_files(
            &ctx,
            &[(
                "Dockerfile",
                &format!("FROM {base}\nRUN --mount={mount} cat /x\n"),
            )],
        );
        let out = kmigrate_build(state.path(), &[ctx.to_str().unwrap()]);
        let text = output_text(&out);
        assert!(!out.status.success(), "{mount}: {text}");
        assert!(
            text.contains("Dockerfile:2") && text.contains(want),
            "{mount}: {text}"
        );
        assert!(!text.contains("host file"), "{mount}: {text}");
    }
    // A symlink in the image leading out of it: the mount lands inside the
    // root, and the host directory it names gets nothing.
    let host_dir = outer.path().join("hostdir");
    std::fs::create_dir(&host_dir).unwrap();
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            &format!(
                "FROM {base}\nRUN ln -s {} /escape\n\
                 RUN --mount=type=cache,target=/escape/c --mount=type=tmpfs,target=/up/../../t \
                 touch /escape/c/x /t/y && ls -la / > /listing\n",
                host_dir.display()
            ),
        )],
    );
    ok(&kmigrate_build(state.path(), &[ctx.to_str().unwrap()]));
    assert!(
        std::fs::read_dir(&host_dir).unwrap().next().is_none(),
        "a mount point was made on the host"
    );
}
