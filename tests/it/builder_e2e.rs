//! End to end: busybox base from a real registry, RUN in namespaces, layers,
//! push + registry cache export, then a cold store importing the cache runs
//! nothing and reproduces the manifest digest.

use crate::support;

use support::*;

#[test]
fn cold_then_warm_from_registry_cache_is_fully_cached_with_same_digest() {
    if !(have("docker-registry") && have("busybox") && have("root")) {
        return;
    }
    let reg = Registry::start();
    let base = push_busybox(&reg);
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[
            (
                "Dockerfile",
                &format!(
                    "FROM {base}\nRUN echo one > /one && mkdir -p /app\nCOPY app.txt /app/\nRUN cat /app/app.txt > /app/copy && rm /one\nCMD [\"cat\", \"/app/copy\"]\n"
                ),
            ),
            ("app.txt", "hello from the context\n"),
        ],
    );
    let image = format!("{}/app/e2e:1", reg.addr);
    let cache = format!(
        "type=registry,ref={}/app/e2e-cache:buildcache,mode=max",
        reg.addr
    );
    let cache_from = format!("type=registry,ref={}/app/e2e-cache:buildcache", reg.addr);
    let meta = ctx.path().join("meta.json");
    let s1 = tempfile::tempdir().unwrap();
    let ctxs = ctx.path().to_str().unwrap();
    let out = ok(&kmigrate_build(
        s1.path(),
        &[
            "-t",
            &image,
            "--push",
            "--cache-to",
            &cache,
            "--cache-from",
            &cache_from,
            "--provenance=false",
            "--metadata-file",
            meta.to_str().unwrap(),
            ctxs,
        ],
    ));
    assert_eq!(counts(&out), (3, 0), "{out}");
    let d1 = image_digest(&out);
    let md: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    assert_eq!(md["containerimage.digest"], d1.as_str());
    assert_eq!(md["image.name"], image.as_str());

    // The pushed manifest is there under the tag with the same digest.
    let r = kmigrate::builder::registry::Reference::parse(&image).unwrap();
    let got = reg.client().get_manifest(&r, "1").unwrap();
    assert_eq!(got.digest, d1);

    // Fresh state: every step from the registry cache, nothing executed.
    let s2 = tempfile::tempdir().unwrap();
    let out2 = ok(&kmigrate_build(
        s2.path(),
        &["-t", &image, "--push", "--cache-from", &cache_from, ctxs],
    ));
    assert_eq!(counts(&out2), (0, 3), "{out2}");
    assert_eq!(image_digest(&out2), d1);
    // Lazy: no layer blob was downloaded into the new store.
    let blobs = std::fs::read_dir(s2.path().join("blobs/sha256"))
        .unwrap()
        .count();
    assert!(
        blobs <= 3,
        "only config/manifest blobs expected, found {blobs}"
    );

    // Fresh state pushing to a new repository: layers are mounted across
    // repositories (base and cache repos), still without downloading them.
    let copy = format!("{}/app/e2e-copy:1", reg.addr);
    let s3 = tempfile::tempdir().unwrap();
    let out3 = ok(&kmigrate_build(
        s3.path(),
        &["-t", &copy, "--push", "--cache-from", &cache_from, ctxs],
    ));
    assert_eq!(counts(&out3), (0, 3), "{out3}");
    assert_eq!(image_digest(&out3), d1);
    let blobs = std::fs::read_dir(s3.path().join("blobs/sha256"))
        .unwrap()
        .count();
    assert!(
        blobs <= 3,
        "layers were downloaded instead of mounted: {blobs} blobs"
    );
    let mut c = reg.client();
    let rc = kmigrate::builder::registry::Reference::parse(&copy).unwrap();
    let m: kmigrate::builder::image::Manifest =
        serde_json::from_slice(&c.get_manifest(&rc, "1").unwrap().bytes).unwrap();
    for l in m.layers.iter().chain([&m.config]) {
        assert!(
            c.has_blob(&rc.registry, &rc.repository, &l.digest).unwrap(),
            "{} missing",
            l.digest
        );
    }
}

/// A layer the cache export uploaded is mounted, not uploaded again, when
/// the image is pushed to another repository of the same registry.
#[test]
fn image_push_after_cache_export_mounts_the_layers_it_uploaded() {
    let Some((reg, base)) = registry_with_busybox() else {
        return;
    };
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[("Dockerfile", &format!("FROM {base}\nCOPY blob /blob\n"))],
    );
    let blob = incompressible_blob();
    std::fs::write(ctx.path().join("blob"), &blob).unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = ok(&kmigrate_build(
        state.path(),
        &[
            "-t",
            &format!("{}/app/mount:1", reg.addr),
            "--push",
            "--cache-to",
            &format!("type=registry,ref={}/app/mount-cache:c,mode=max", reg.addr),
            ctx.path().to_str().unwrap(),
        ],
    ));
    let exported = reported_bytes(&out, "exported cache to", " bytes written");
    let pushed = reported_bytes(&out, "pushed ", " bytes uploaded");
    assert!(exported > 1_500_000, "{out}");
    // The config only: well under the layer's 1.6 MB.
    assert!(pushed < 10_000, "{out}");
    // Each layer (the base's and the new one) is mounted with one request,
    // without asking first whether the image's repository has it: the only
    // blob asked about there is the config.
    let log = reg.access_log();
    let mounts = log
        .matches("\"POST /v2/app/mount/blobs/uploads/?mount=")
        .count();
    let heads = log.matches("\"HEAD /v2/app/mount/blobs/").count();
    assert!(mounts >= 2, "{log}");
    assert_eq!(heads, 1, "{log}");
}

/// With a `mode=max` registry cache, a new layer goes to the cache's
/// repository while the build's later steps run, not after the image is
/// assembled: the COPY layer is in the registry's storage seconds before the
/// export writes the cache's tag.
#[test]
fn a_max_cache_gets_each_new_layer_while_later_steps_run() {
    let Some((reg, base)) = registry_with_busybox() else {
        return;
    };
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!("FROM {base}\nCOPY blob /blob\nRUN sleep 3\n"),
        )],
    );
    let blob = incompressible_blob();
    std::fs::write(ctx.path().join("blob"), &blob).unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = ok(&kmigrate_build(
        state.path(),
        &[
            "--cache-to",
            &format!("type=registry,ref={}/app/early-cache:c,mode=max", reg.addr),
            ctx.path().to_str().unwrap(),
        ],
    ));
    let v2 = reg.storage().join("docker/registry/v2");
    let blob_file = |digest: &str| {
        let hex = digest.strip_prefix("sha256:").unwrap();
        v2.join(format!("blobs/sha256/{}/{hex}/data", &hex[..2]))
    };
    let written = |p: &std::path::Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let tag = v2.join("repositories/app/early-cache/_manifests/tags/c/current/link");
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(blob_file(&std::fs::read_to_string(&tag).unwrap())).unwrap(),
    )
    .unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    let copy_layer = layers
        .iter()
        .max_by_key(|l| l["size"].as_u64().unwrap())
        .unwrap();
    assert!(
        copy_layer["size"].as_u64().unwrap() > 1_500_000,
        "{manifest}"
    );
    let ahead = written(&tag)
        .duration_since(written(&blob_file(copy_layer["digest"].as_str().unwrap())))
        .unwrap();
    assert!(
        ahead >= std::time::Duration::from_secs(2),
        "{ahead:?}\n{out}"
    );
    // The export still counts the layer among the bytes it wrote.
    let exported = reported_bytes(&out, "exported cache to", " bytes written");
    assert!(exported > 1_500_000, "{out}");
}

/// 1.6 MB that no compressor shrinks, so its layer is as large as the file.
fn incompressible_blob() -> Vec<u8> {
    (0..400_000u32)
        .flat_map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes())
        .collect()
}

/// The byte count a build's line starting with `prefix` gives before `unit`
/// (`exported cache to … (N bytes written)`, `pushed … (…, N bytes uploaded)`).
fn reported_bytes(out: &str, prefix: &str, unit: &str) -> u64 {
    let line = out.lines().find(|l| l.starts_with(prefix)).expect(prefix);
    let before = line.split(unit).next().unwrap();
    before.rsplit([' ', '(']).next().unwrap().parse().unwrap()
}

/// The library API `verify` uses: report fields, captured logs, and
/// reproducible cold builds under `SOURCE_DATE_EPOCH` (as a build arg).
#[test]
fn library_api_reports_steps_and_cold_builds_reproduce_with_source_date_epoch() {
    use kmigrate::builder::{BuildOptions, Progress, build};
    use std::sync::{Arc, Mutex};
    if !(have("docker-registry") && have("busybox") && have("root")) {
        return;
    }
    let reg = Registry::start();
    let base = push_busybox(&reg);
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[
            (
                "Dockerfile",
                &format!(
                    "FROM {base}\nARG V\nRUN echo $V > /v && mkdir -p /d && touch /d/stamp\nCOPY f /f\nENV X=1\n"
                ),
            ),
            ("f", "file"),
        ],
    );
    let image = format!("{}/lib/app:1", reg.addr);
    let cache = format!("{}/lib/cache:c", reg.addr);
    let argv = |extra: &[&str]| {
        let mut a: Vec<String> = vec![
            "-t".into(),
            image.clone(),
            "--push".into(),
            "--build-arg".into(),
            "V=one".into(),
            "--build-arg".into(),
            "SOURCE_DATE_EPOCH=1700000000".into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a.push(ctx.path().to_str().unwrap().into());
        kmigrate::buildx::parse_build_args(&a).unwrap()
    };
    let run = |plan: &kmigrate::buildx::BuildPlan| {
        let state = tempfile::tempdir().unwrap();
        let buf = Arc::new(Mutex::new(Vec::<u8>::new()));
        let mut opts = BuildOptions::new(state.path());
        opts.progress = Progress::Plain;
        opts.log = buf.clone();
        let r = build(plan, &opts).unwrap();
        let log = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        (r, log)
    };
    let (r1, log1) = run(&argv(&[
        "--cache-to",
        &format!("type=registry,ref={cache},mode=max"),
    ]));
    assert_eq!((r1.executed, r1.cached), (2, 0));
    assert!(r1.cache_bytes_exported > 0);
    assert_eq!(
        r1.pushed,
        [format!("{}/lib/app@{}", reg.addr, r1.manifest_digest)]
    );
    let layer_steps: Vec<_> = r1.steps.iter().filter(|s| s.layer.is_some()).collect();
    assert_eq!(layer_steps.len(), 2);
    assert!(
        r1.steps
            .iter()
            .any(|s| s.instruction == "ENV X=1" && !s.cached && !s.executed && s.line == 5)
    );
    assert!(log1.contains("kmigrate build: 2 layer steps: 2 executed, 0 cached"));

    // A second cold build (new store, no cache) reproduces the digest although
    // RUN created files with fresh mtimes: they are clamped to the epoch.
    let (r2, _) = run(&argv(&[]));
    assert_eq!(r2.executed, 2);
    assert_eq!(r2.manifest_digest, r1.manifest_digest);

    // Warm from the registry cache: nothing executed, same digest, 0 new bytes.
    let (r3, _) = run(&argv(&[
        "--cache-from",
        &format!("type=registry,ref={cache}"),
    ]));
    assert_eq!((r3.executed, r3.cached), (0, 2));
    assert!(
        r3.steps
            .iter()
            .filter(|s| s.layer.is_some())
            .all(|s| s.cached)
    );
    assert_eq!(r3.manifest_digest, r1.manifest_digest);

    // A changed build arg misses the RUN (and the COPY after it).
    let mut plan = argv(&["--cache-from", &format!("type=registry,ref={cache}")]);
    plan.build_args[0] = kmigrate::buildx::BuildArg::parse("V=two");
    let (r4, _) = run(&plan);
    assert_eq!((r4.executed, r4.cached), (2, 0));
    assert_ne!(r4.manifest_digest, r1.manifest_digest);
}
