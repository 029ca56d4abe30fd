//! Builder features against a real registry: multi-stage `COPY --from`,
//! whiteouts, `.dockerignore`, cache hit/miss boundaries, cache modes.

use crate::support;

use std::path::Path;

use kmigrate::builder::image::{Index, Manifest};
use support::*;

fn build(state: &Path, args: &[&str]) -> String {
    ok(&kmigrate_build(state, args))
}

/// Reads an OCI layout dir: the manifest and the layer blob paths.
fn read_layout(dir: &Path) -> (Manifest, Vec<std::path::PathBuf>) {
    let idx: Index =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let blob = |d: &str| {
        dir.join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let m: Manifest =
        serde_json::from_slice(&std::fs::read(blob(&idx.manifests[0].digest)).unwrap()).unwrap();
    let layers = m.layers.iter().map(|l| blob(&l.digest)).collect();
    (m, layers)
}

fn tar_names(layer: &Path) -> Vec<String> {
    let f = std::fs::File::open(layer).unwrap();
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    ar.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().to_string())
        .collect()
}

#[test]
fn multi_stage_copy_from_and_whiteouts_unpack_correctly() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!(
                "FROM {base} AS build\nWORKDIR /src\nRUN echo built > artifact && echo junk > junk\n\
             FROM {base}\nRUN mkdir -p /data && echo keep > /data/keep && echo old > /data/mod && echo bye > /data/gone\n\
             COPY --from=build /src/artifact /app/artifact\n\
             RUN echo new > /data/mod && rm /data/gone && rm -r /bin/vi && echo created > /data/created\n"
            ),
        )],
    );
    let out = tempfile::tempdir().unwrap();
    let oci = out.path().join("oci");
    let state = tempfile::tempdir().unwrap();
    build(
        state.path(),
        &[
            "--output",
            &format!("type=oci,dest={},tar=false", oci.display()),
            ctx.path().to_str().unwrap(),
        ],
    );
    let (m, layers) = read_layout(&oci);
    // busybox base + RUN + COPY + RUN.
    assert_eq!(m.layers.len(), 4);
    let last = tar_names(&layers[3]);
    assert!(last.contains(&"data/.wh.gone".to_string()), "{last:?}");
    assert!(last.contains(&"bin/.wh.vi".to_string()), "{last:?}");
    assert!(last.contains(&"data/mod".to_string()));
    assert!(
        !last.iter().any(|n| n.starts_with("src")),
        "build stage leaked: {last:?}"
    );
    // Unpack all layers in order, as a runtime would.
    let root = tempfile::tempdir().unwrap();
    for l in &layers {
        kmigrate::builder::layer::extract(l, root.path()).unwrap();
    }
    let r = root.path();
    assert_eq!(
        std::fs::read_to_string(r.join("app/artifact")).unwrap(),
        "built\n"
    );
    assert_eq!(
        std::fs::read_to_string(r.join("data/mod")).unwrap(),
        "new\n"
    );
    assert_eq!(
        std::fs::read_to_string(r.join("data/keep")).unwrap(),
        "keep\n"
    );
    assert_eq!(
        std::fs::read_to_string(r.join("data/created")).unwrap(),
        "created\n"
    );
    assert!(!r.join("data/gone").exists());
    assert!(std::fs::symlink_metadata(r.join("bin/vi")).is_err());
    assert!(std::fs::symlink_metadata(r.join("bin/sh")).is_ok());
    assert!(
        !r.join("src").exists(),
        "the build stage's files must not be in the final image"
    );
}

#[test]
fn dockerignore_excludes_files_and_their_changes_do_not_miss() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[
            (
                "Dockerfile",
                &format!("FROM {base}\nCOPY . /ctx/\nRUN ls -R /ctx > /listing\n"),
            ),
            (".dockerignore", "*.log\nsecrets/\n!keep.log\n"),
            ("a.txt", "a"),
            ("debug.log", "noise"),
            ("keep.log", "kept"),
            ("secrets/key", "k"),
        ],
    );
    let state = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir().unwrap();
    let c = ctx.path().to_str().unwrap();
    let o = format!("type=local,dest={}", dest.path().display());
    let out = build(state.path(), &["--output", &o, c]);
    assert_eq!(counts(&out), (2, 0));
    let d = dest.path();
    assert!(d.join("ctx/a.txt").exists());
    assert!(d.join("ctx/keep.log").exists());
    assert!(!d.join("ctx/debug.log").exists());
    assert!(!d.join("ctx/secrets").exists());
    // Changing an ignored file is not a change of the context.
    std::fs::write(ctx.path().join("debug.log"), "other noise").unwrap();
    std::fs::write(ctx.path().join("secrets/key"), "rotated").unwrap();
    let out = build(state.path(), &[c]);
    assert_eq!(counts(&out), (0, 2), "{out}");
    // A Dockerfile-specific ignore file wins over .dockerignore.
    write_files(ctx.path(), &[("Dockerfile.dockerignore", "a.txt\n")]);
    let dest2 = tempfile::tempdir().unwrap();
    build(
        state.path(),
        &[
            "--output",
            &format!("type=local,dest={}", dest2.path().display()),
            c,
        ],
    );
    assert!(!dest2.path().join("ctx/a.txt").exists());
    assert!(dest2.path().join("ctx/debug.log").exists());
}

#[test]
fn cache_misses_start_exactly_at_the_changed_copy() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[
            (
                "Dockerfile",
                &format!(
                    "FROM {base}\nRUN echo first > /first\nCOPY conf/ /conf/\nRUN ls /conf > /list\nCOPY app.txt /app.txt\nRUN cat /app.txt > /copy\n"
                ),
            ),
            ("conf/a.cfg", "a"),
            ("app.txt", "v1"),
            ("unrelated.md", "docs"),
        ],
    );
    let state = tempfile::tempdir().unwrap();
    let c = ctx.path().to_str().unwrap();
    let steps = |out: &str| -> Vec<bool> {
        // true = CACHED, per layer step in order.
        let mut v = Vec::new();
        let lines: Vec<&str> = out.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if l.contains("] RUN ") || l.contains("] COPY ") {
                let n = l.split(' ').next().unwrap();
                let rest = &lines[i + 1..];
                v.push(rest.iter().any(|x| *x == format!("{n} CACHED")));
            }
        }
        v
    };
    let o = build(state.path(), &[c]);
    assert_eq!(steps(&o), [false; 5]);
    // Unrelated file: all hits.
    std::fs::write(ctx.path().join("unrelated.md"), "more docs").unwrap();
    assert_eq!(steps(&build(state.path(), &[c])), [true; 5]);
    // Content change of a copied file: miss from that COPY on.
    std::fs::write(ctx.path().join("app.txt"), "v2").unwrap();
    assert_eq!(
        steps(&build(state.path(), &[c])),
        [true, true, true, false, false]
    );
    // Rename inside a copied directory (same content): miss from that COPY on.
    std::fs::rename(ctx.path().join("conf/a.cfg"), ctx.path().join("conf/b.cfg")).unwrap();
    assert_eq!(
        steps(&build(state.path(), &[c])),
        [true, false, false, false, false]
    );
    // A build arg used by RUN busts RUN steps only from the first RUN.
    let o = build(state.path(), &["--build-arg", "X=1", c]);
    assert!(o.contains("were not consumed"), "{o}");
    assert_eq!(steps(&o), [true; 5]);
    // --no-cache executes everything.
    assert_eq!(steps(&build(state.path(), &["--no-cache", c])), [false; 5]);
}

#[test]
fn cache_mode_min_exports_final_image_layers_and_max_every_stage() {
    let Some((reg, base)) = registry_with_busybox() else {
        return;
    };
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!(
                "FROM {base} AS build\nRUN echo tool > /tool && echo more > /more\nRUN echo step2 > /s2\nFROM {base}\nCOPY --from=build /tool /tool\nRUN cat /tool > /used\n"
            ),
        )],
    );
    let c = ctx.path().to_str().unwrap();
    let min_ref = format!("{}/cache/app:min", reg.addr);
    let max_ref = format!("{}/cache/app:max", reg.addr);
    let state = tempfile::tempdir().unwrap();
    build(
        state.path(),
        &[
            "--cache-to",
            &format!("type=registry,ref={min_ref},mode=min"),
            "--cache-to",
            &format!("type=registry,ref={max_ref},mode=max"),
            c,
        ],
    );
    let mut client = reg.client();
    let read = |client: &mut kmigrate::builder::registry::Client, r: &str| {
        let rf = kmigrate::builder::registry::Reference::parse(r).unwrap();
        let m = client.get_manifest(&rf, rf.reference()).unwrap();
        let man: Manifest = serde_json::from_slice(&m.bytes).unwrap();
        assert_eq!(
            man.artifact_type.as_deref(),
            Some(kmigrate::builder::cache::ARTIFACT_TYPE)
        );
        let tmp = tempfile::NamedTempFile::new().unwrap();
        client
            .get_blob(
                &rf.registry,
                &rf.repository,
                &man.config.digest,
                man.config.size,
                tmp.path(),
            )
            .unwrap();
        let cfg: kmigrate::builder::cache::CacheConfig =
            serde_json::from_slice(&std::fs::read(tmp.path()).unwrap()).unwrap();
        (man, cfg)
    };
    let (min_m, min_c) = read(&mut client, &min_ref);
    let (max_m, max_c) = read(&mut client, &max_ref);
    assert_eq!(min_c.mode, "min");
    assert_eq!(min_m.layers.len(), 2, "final stage: COPY + RUN");
    assert!(min_c.records.iter().all(|r| r.stage == "stage-1"));
    assert_eq!(max_m.layers.len(), 4, "both stages");
    assert_eq!(
        max_c.records.iter().filter(|r| r.stage == "build").count(),
        2
    );

    // From an empty store with the mode=max cache, every step of both stages
    // hits (COPY --from keys on the build stage's key, so nothing is extracted).
    let s2 = tempfile::tempdir().unwrap();
    let out = build(
        s2.path(),
        &["--cache-from", &format!("type=registry,ref={max_ref}"), c],
    );
    assert_eq!(counts(&out), (0, 4), "{out}");
    // ignore-error: a cache export to a closed port warns; without it, fails.
    let closed = format!("type=registry,ref=127.0.0.1:{}/x/y:z", free_port());
    let s3 = tempfile::tempdir().unwrap();
    let o = build(
        s3.path(),
        &["--cache-to", &format!("{closed},ignore-error=true"), c],
    );
    assert!(o.contains("WARNING: cache export"), "{o}");
    let bad = kmigrate_build(s3.path(), &["--cache-to", &closed, c]);
    assert!(!bad.status.success());
}

#[test]
fn copy_flags_add_archives_users_and_oci_layout_base() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let ctx = tempfile::tempdir().unwrap();
    // A gzip tar for ADD to extract.
    let mut tb = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    let mut h = tar::Header::new_gnu();
    h.set_size(6);
    h.set_mode(0o644);
    h.set_cksum();
    tb.append_data(&mut h, "inner/file.txt", &b"inside"[..])
        .unwrap();
    let gz = tb.into_inner().unwrap().finish().unwrap();
    std::fs::write(ctx.path().join("files.tar.gz"), gz).unwrap();
    write_files(
        ctx.path(),
        &[
            (
                "Dockerfile",
                &format!(
                    "ARG BASE={base}\nFROM $BASE\nADD files.tar.gz /unpacked/\nCOPY --chown=nobody:nogroup --chmod=600 secret.txt /s/secret.txt\n\
             COPY a.txt b.txt /multi/\nCOPY dir /dirdest\nCOPY --from=$BASE /etc/passwd /from-image/\nUSER nobody\nRUN id -u > /tmp/uid && echo $HOME > /tmp/home\n\
             LABEL org.example.k=v\nEXPOSE 8080\nENTRYPOINT [\"/bin/sh\"]\n"
                ),
            ),
            ("secret.txt", "s"),
            ("a.txt", "a"),
            ("b.txt", "b"),
            ("dir/x/y.txt", "y"),
        ],
    );
    let state = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir().unwrap();
    let layout = tempfile::tempdir().unwrap();
    let c = ctx.path().to_str().unwrap();
    build(
        state.path(),
        &[
            "-t",
            "example/app:v1",
            "--label",
            "from.flag=yes",
            "--output",
            &format!("type=local,dest={}", dest.path().display()),
            "--output",
            &format!("type=oci,dest={},tar=false", layout.path().display()),
            c,
        ],
    );
    use std::os::unix::fs::MetadataExt;
    let d = dest.path();
    assert_eq!(
        std::fs::read_to_string(d.join("unpacked/inner/file.txt")).unwrap(),
        "inside"
    );
    let m = std::fs::metadata(d.join("s/secret.txt")).unwrap();
    assert_eq!((m.mode() & 0o777, m.uid(), m.gid()), (0o600, 65534, 65534));
    assert!(d.join("multi/a.txt").is_file() && d.join("multi/b.txt").is_file());
    assert_eq!(
        std::fs::read_to_string(d.join("dirdest/x/y.txt")).unwrap(),
        "y"
    );
    assert!(!d.join("dirdest/dir").exists());
    assert!(
        std::fs::read_to_string(d.join("from-image/passwd"))
            .unwrap()
            .contains("nobody")
    );
    assert_eq!(
        std::fs::read_to_string(d.join("tmp/uid")).unwrap(),
        "65534\n"
    );
    assert_eq!(
        std::fs::read_to_string(d.join("tmp/home")).unwrap(),
        "/nonexistent\n"
    );
    // Config carries the metadata instructions and --label.
    let (man, _) = read_layout(layout.path());
    let cfg: kmigrate::builder::image::ImageConfig = serde_json::from_slice(
        &std::fs::read(
            layout
                .path()
                .join("blobs/sha256")
                .join(man.config.digest.trim_start_matches("sha256:")),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(cfg.config.user.as_deref(), Some("nobody"));
    assert_eq!(cfg.config.labels["org.example.k"], "v");
    assert_eq!(cfg.config.labels["from.flag"], "yes");
    assert!(cfg.config.exposed_ports.contains_key("8080/tcp"));
    assert_eq!(
        cfg.config.entrypoint.as_deref(),
        Some(&["/bin/sh".to_string()][..])
    );
    assert_eq!(cfg.rootfs.diff_ids.len(), man.layers.len());

    // The layout is usable as a base image without any registry.
    let ctx2 = tempfile::tempdir().unwrap();
    write_files(
        ctx2.path(),
        &[(
            "Dockerfile",
            &format!(
                "FROM oci-layout://{}:v1\nRUN cat /unpacked/inner/file.txt > /tmp/again\n",
                layout.path().display()
            ),
        )],
    );
    let dest2 = tempfile::tempdir().unwrap();
    let s2 = tempfile::tempdir().unwrap();
    build(
        s2.path(),
        &[
            "--output",
            &format!("type=local,dest={}", dest2.path().display()),
            ctx2.path().to_str().unwrap(),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(dest2.path().join("tmp/again")).unwrap(),
        "inside"
    );
}

#[test]
fn usage_errors_are_clear() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[("Dockerfile", &format!("FROM {base} AS a\nRUN true\n"))],
    );
    let state = tempfile::tempdir().unwrap();
    let c = ctx.path().to_str().unwrap();
    let text = |o: std::process::Output| {
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    assert!(
        text(kmigrate_build(
            state.path(),
            &["--platform", "linux/s390x", c]
        ))
        .contains("host platform")
    );
    assert!(
        text(kmigrate_build(state.path(), &["--target", "nope", c]))
            .contains("\"nope\" could not be found")
    );
    assert!(
        text(kmigrate_build(
            state.path(),
            &["--output", "type=tarball", c]
        ))
        .contains("unknown --output type")
    );
    assert!(text(kmigrate_build(state.path(), &["--frobnicate", c])).contains("--frobnicate"));
    write_files(
        ctx.path(),
        &[(
            "Dockerfile",
            // Heredocs are supported; one never terminated is refused.
            &format!("FROM {base}\nRUN <<EOF\necho\nEOFX\n"),
        )],
    );
    let t = text(kmigrate_build(state.path(), &[c]));
    assert!(
        t.contains("Dockerfile:2") && t.contains("heredoc <<EOF is not terminated"),
        "{t}"
    );
    std::fs::write(
        ctx.path().join("a.tar.xz"),
        [0xfd, b'7', b'z', b'X', b'Z', 0, 1, 2],
    )
    .unwrap();
    write_files(
        ctx.path(),
        &[("Dockerfile", &format!("FROM {base}\nADD a.tar.xz /x/\n"))],
    );
    // Bytes that only start like xz are no archive: copied as they are,
    // as Docker does (real xz, bzip2 and zstd archives are unpacked: see
    // `bmount_add_url`).
    let t = ok(&kmigrate_build(state.path(), &[c]));
    assert!(t.contains("1 executed"), "{t}");
    // Accepted and ignored: --builder, --provenance=false; the host platform.
    write_files(
        ctx.path(),
        &[("Dockerfile", &format!("FROM {base}\nRUN true\n"))],
    );
    let p = format!(
        "linux/{}",
        kmigrate::builder::image::host_platform().architecture
    );
    ok(&kmigrate_build(
        state.path(),
        &[
            "--builder",
            "kmigrate",
            "--provenance=false",
            "--platform",
            &p,
            c,
        ],
    ));
}

#[test]
fn local_cache_export_and_import_serve_a_cold_store() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[
            (
                "Dockerfile",
                &format!("FROM {base}\nRUN echo a > /a\nCOPY f /f\nRUN cat /f /a > /both\n"),
            ),
            ("f", "f"),
        ],
    );
    let c = ctx.path().to_str().unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let cd = cache_dir.path().join("cache");
    let s1 = tempfile::tempdir().unwrap();
    let o1 = build(
        s1.path(),
        &[
            "--cache-to",
            &format!("type=local,dest={},mode=max", cd.display()),
            c,
        ],
    );
    assert_eq!(counts(&o1), (3, 0));
    assert!(cd.join("index.json").is_file() && cd.join("oci-layout").is_file());
    let s2 = tempfile::tempdir().unwrap();
    let o2 = build(
        s2.path(),
        &[
            "--cache-from",
            &format!("type=local,src={}", cd.display()),
            c,
        ],
    );
    assert_eq!(counts(&o2), (0, 3), "{o2}");
    assert_eq!(image_digest(&o2), image_digest(&o1));
    // A tampered blob in the local cache is detected when it is needed.
    let (man, layers) = read_layout(&cd);
    assert_eq!(man.layers.len(), 3);
    for p in layers {
        std::fs::write(&p, b"tampered").unwrap();
    }
    let s3 = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir().unwrap();
    let bad = kmigrate_build(
        s3.path(),
        &[
            "--cache-from",
            &format!("type=local,src={}", cd.display()),
            "--output",
            &format!("type=local,dest={}", dest.path().display()),
            c,
        ],
    );
    let t = String::from_utf8_lossy(&bad.stderr);
    // Caught by its size (shorter than the descriptor says) or its digest.
    assert!(
        !bad.status.success()
            && (t.contains("has digest") || t.contains("bytes its descriptor declares")),
        "{t}"
    );
}

#[test]
fn concurrent_builds_can_share_one_state_dir() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[
            (
                "Dockerfile",
                &format!("FROM {base}\nCOPY f /f\nRUN cat /f > /g && sleep 0.2\n"),
            ),
            ("f", "shared"),
        ],
    );
    let state = tempfile::tempdir().unwrap();
    let c = ctx.path().to_str().unwrap().to_string();
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let (s, c) = (state.path().to_path_buf(), c.clone());
            std::thread::spawn(move || kmigrate_build(&s, &[&c]))
        })
        .collect();
    for h in handles {
        ok(&h.join().unwrap());
    }
    // Afterwards the shared store serves a fully cached build.
    let out = build(state.path(), &[&c]);
    assert_eq!(counts(&out), (0, 2), "{out}");
}
