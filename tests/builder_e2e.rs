//! End to end: busybox base from a real registry, RUN in namespaces, layers,
//! push + registry cache export, then a cold store importing the cache runs
//! nothing and reproduces the manifest digest.

mod support;

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
}
