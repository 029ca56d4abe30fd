//! Rootless RUN: the builder started as an unprivileged user runs RUN in a
//! user namespace (root inside maps to the caller) and writes layers whose
//! files the RUN created are owned by 0:0, as Docker would.

use crate::support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use support::*;

#[test]
fn unprivileged_user_builds_with_a_user_namespace() {
    if !(have("docker-registry") && have("busybox") && have("root")) {
        return;
    }
    if !Path::new("/usr/bin/setpriv").exists() && !Path::new("/bin/setpriv").exists() {
        eprintln!("SKIP: setpriv not available");
        return;
    }
    // Unprivileged user namespaces are a kernel setting, not a package: skip with a reason.
    let probe = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "unshare",
            "--user",
            "--map-root-user",
            "true",
        ])
        .output()
        .unwrap();
    if !probe.status.success() {
        eprintln!("SKIP: unprivileged user namespaces are disabled on this kernel");
        return;
    }
    let reg = Registry::start();
    let base = push_busybox(&reg);
    let work = tempfile::tempdir().unwrap();
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let bin = work.path().join("kmigrate");
    std::fs::copy(env!("CARGO_BIN_EXE_kmigrate"), &bin).unwrap();
    let ctx = work.path().join("ctx");
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            &format!("FROM {base}\nRUN id -u > /uid && echo made > /made\n"),
        )],
    );
    for e in walkdir::WalkDir::new(work.path()) {
        let p = e.unwrap().into_path();
        let mode = if p.is_dir() { 0o777 } else { 0o755 };
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let oci = work.path().join("oci");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&bin)
        .args(["build", "--progress=plain", "--state-dir"])
        .arg(work.path().join("state"))
        .arg("--output")
        .arg(format!("type=oci,dest={},tar=false", oci.display()))
        .arg(&ctx)
        .env("HOME", work.path())
        .output()
        .unwrap();
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
