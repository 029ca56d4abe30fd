//! Rootless RUN: the builder started as an unprivileged user runs RUN in a
//! user namespace (root inside maps to the caller) and writes layers whose
//! files the RUN created are owned by 0:0, as Docker would.

use crate::support;

use support::*;

#[test]
fn unprivileged_user_builds_with_a_user_namespace() {
    let Some(rl) = Rootless::new() else {
        return;
    };
    let reg = Registry::start();
    let base = push_busybox(&reg);
    let ctx = rl.path("ctx");
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            &format!("FROM {base}\nRUN id -u > /uid && echo made > /made\n"),
        )],
    );
    let oci = rl.path("oci");
    let dest = format!("type=oci,dest={},tar=false", oci.display());
    let out = rl.build(&["--output", &dest, ctx.to_str().unwrap()]);
    let text = ok(&out);
    assert_eq!(counts(&text), (1, 0));
    let idx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(oci.join("index.json")).unwrap()).unwrap();
    let blob = |d: &str| {
        oci.join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(blob(idx["manifests"][0]["digest"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    let last = m["layers"].as_array().unwrap().last().unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(
        std::fs::File::open(blob(&last)).unwrap(),
    ));
    let mut seen = 0;
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().to_string();
        if name == "uid" || name == "made" {
            seen += 1;
            assert_eq!(
                (e.header().uid().unwrap(), e.header().gid().unwrap()),
                (0, 0),
                "{name}"
            );
            if name == "uid" {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut e, &mut s).unwrap();
                assert_eq!(s, "0\n", "RUN is root inside the user namespace");
            }
        }
    }
    assert_eq!(seen, 2);
}
