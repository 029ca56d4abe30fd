//! Security: context escapes, hostile base-image layers, host isolation of
//! RUN, and credentials kept out of output and images.

use crate::support;

use support::*;

fn fail_text(out: &std::process::Output) -> String {
    assert!(!out.status.success(), "expected failure");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn copy_sources_outside_the_context_are_refused() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let outer = tempfile::tempdir().unwrap();
    std::fs::write(outer.path().join("secret.txt"), "host secret").unwrap();
    let ctx = outer.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::os::unix::fs::symlink(outer.path().join("secret.txt"), ctx.join("link")).unwrap();
    std::os::unix::fs::symlink("/etc", ctx.join("etcdir")).unwrap();
    let state = tempfile::tempdir().unwrap();
    for (src, want) in [
        ("../secret.txt", "outside the build context"),
        ("/etc/hostname", "absolute path"),
        ("link", "outside the build context"),
        ("etcdir/hostname", "outside the build context"),
        ("sub/../../secret.txt", "outside the build context"),
    ] {
        std::fs::write(
            ctx.join("Dockerfile"),
            format!("FROM {base}\nCOPY {src} /x\n"),
        )
        .unwrap();
        let t = fail_text(&kmigrate_build(state.path(), &[ctx.to_str().unwrap()]));
        assert!(t.contains(want), "{src}: {t}");
        assert!(
            t.contains("Dockerfile:2"),
            "{src}: error must name the line: {t}"
        );
        assert!(!t.contains("host secret"));
    }
    // ADD of a remote URL is refused offline with the line.
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {base}\n\nADD https://example.com/x /x\n"),
    )
    .unwrap();
    let t = fail_text(&kmigrate_build(state.path(), &[ctx.to_str().unwrap()]));
    assert!(t.contains("Dockerfile:3") && t.contains("offline"), "{t}");
}

#[test]
fn hostile_base_layers_cannot_write_outside_the_rootfs() {
    let Some((reg, _base)) = registry_with_busybox() else {
        return;
    };
    let host = tempfile::tempdir().unwrap();
    let hp = host.path().display().to_string();
    let state = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();

    // 1. `..` traversal: refused, nothing written.
    let dotdot = format!("../../../../../../../..{hp}/dotdot");
    let img = format!("{}/evil/dotdot:1", reg.addr);
    push_busybox_plus_raw_layers(&img, &[raw_tar(&[(&dotdot, 'f', "pwned")])]);
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {img}\nRUN echo hi > /hi\n"),
    )
    .unwrap();
    let t = fail_text(&kmigrate_build(
        state.path(),
        &[ctx.path().to_str().unwrap()],
    ));
    assert!(t.contains("escapes the root"), "{t}");

    // 2. Absolute path, symlink-then-write (absolute and relative), hard link to a host file.
    let img = format!("{}/evil/links:1", reg.addr);
    push_busybox_plus_raw_layers(
        &img,
        &[
            raw_tar(&[
                (&format!("{hp}/absolute"), 'f', "pwned"),
                ("esc", 'l', &hp),
                ("esc/through-abs-link", 'f', "pwned"),
                ("up", 'l', "../../../../../../../../../../"),
            ]),
            raw_tar(&[(&format!("up{hp}/through-rel-link"), 'f', "pwned")]),
        ],
    );
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {img}\nRUN test -f {hp}/absolute && test -f {hp}/through-abs-link && test -f {hp}/through-rel-link && echo inside > /proof\n"),
    )
    .unwrap();
    let out = ok(&kmigrate_build(
        state.path(),
        &[ctx.path().to_str().unwrap()],
    ));
    assert_eq!(counts(&out), (1, 0));
    assert_eq!(
        std::fs::read_dir(host.path()).unwrap().count(),
        0,
        "something was written to the host directory"
    );

    // 3. A hard link to a host path is refused.
    let img = format!("{}/evil/hard:1", reg.addr);
    push_busybox_plus_raw_layers(
        &img,
        &[raw_tar(&[("h", 'h', "../../../../../../etc/passwd")])],
    );
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {img}\nRUN cat /h\n"),
    )
    .unwrap();
    let t = fail_text(&kmigrate_build(
        state.path(),
        &[ctx.path().to_str().unwrap()],
    ));
    assert!(
        t.contains("escapes the root") || t.contains("does not point to a file"),
        "{t}"
    );
}

#[test]
fn run_sees_only_the_image_filesystem() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let host = tempfile::tempdir().unwrap();
    let marker = host.path().join("host-marker");
    std::fs::write(&marker, "host only").unwrap();
    let ctx = tempfile::tempdir().unwrap();
    let m = marker.display();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM {base}\nRUN if [ -e {m} ]; then echo HOST-VISIBLE; exit 3; fi; \
             test ! -e /work && test ! -e /usr/lib/os-release && \
             [ \"$(cat /proc/1/cmdline | tr '\\0' ' ')\" = \"/bin/sh -c $(cat /proc/1/cmdline | tr '\\0' ' ' | cut -d' ' -f3-)\" ] && \
             [ \"$(hostname)\" = buildkitsandbox ] && mkdir -p /mnt/m && ! mount -t tmpfs none /mnt/m 2>/dev/null && \
             ! mount -t proc proc /mnt/m 2>/dev/null && ls /proc | grep -E '^[0-9]+$' | wc -l > /pids\n"
        ),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir().unwrap();
    let out = ok(&kmigrate_build(
        state.path(),
        &[
            "--output",
            &format!("type=local,dest={}", dest.path().display()),
            ctx.path().to_str().unwrap(),
        ],
    ));
    // The RUN exits 3 (and the build fails) if the host marker is visible.
    assert_eq!(counts(&out), (1, 0));
    let pids: usize = std::fs::read_to_string(dest.path().join("pids"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        pids <= 6,
        "the pid namespace should hold only the RUN's processes, saw {pids}"
    );
    // A failing RUN names the step and shows its output.
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {base}\n\nRUN echo visible-output && exit 7\n"),
    )
    .unwrap();
    let t = fail_text(&kmigrate_build(
        state.path(),
        &[ctx.path().to_str().unwrap()],
    ));
    assert!(
        t.contains("Dockerfile:3")
            && t.contains("exit code 7")
            && t.contains("visible-output")
            && t.lines().any(|l| l == "#2 visible-output"),
        "{t}"
    );
}

#[test]
fn registry_credentials_are_used_but_never_appear_in_output_or_image() {
    if !(have("docker-registry") && have("busybox") && have("root")) {
        return;
    }
    let password = "S3cretPassw0rd-kmigrate";
    let reg = Registry::start_with_auth("builduser", password);
    let b64 = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("builduser:{password}"))
    };
    let closed = format!("127.0.0.1:{}", free_port());
    let cfg = tempfile::tempdir().unwrap();
    let cfg_file = cfg.path().join("config.json");
    std::fs::write(
        &cfg_file,
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{b64}"}},"{closed}":{{"auth":"{b64}"}}}}}}"#,
            reg.addr
        ),
    )
    .unwrap();
    let rootfs = tempfile::tempdir().unwrap();
    busybox_rootfs(rootfs.path());
    let base = format!("{}/base/busybox:auth", reg.addr);
    push_image_from_dir_with(
        rootfs.path(),
        &base,
        kmigrate::builder::registry::RegistryConfig {
            docker_config: Some(cfg_file.clone()),
            ..Default::default()
        },
    );
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {base}\nRUN env > /env.txt\n"),
    )
    .unwrap();
    let c = ctx.path().to_str().unwrap();
    let env = [("DOCKER_CONFIG", cfg.path().to_str().unwrap())];
    let state = tempfile::tempdir().unwrap();
    let oci = tempfile::tempdir().unwrap();
    let image = format!("{}/cred/app:1", reg.addr);
    let cache = format!("type=registry,ref={}/cred/cache:c,mode=max", reg.addr);
    // With credentials: pull, push and cache export against the auth registry.
    let out = kmigrate_build_env(
        state.path(),
        &[
            "-t",
            &image,
            "--push",
            "--cache-to",
            &cache,
            "--output",
            &format!("type=oci,dest={},tar=false", oci.path().display()),
            c,
        ],
        &env,
    );
    let text = ok(&out);
    // Without credentials: a clear error, no leak.
    let empty = tempfile::tempdir().unwrap();
    let s2 = tempfile::tempdir().unwrap();
    let no_creds = kmigrate_build_env(
        s2.path(),
        &[c],
        &[("DOCKER_CONFIG", empty.path().to_str().unwrap())],
    );
    let no_creds_text = fail_text(&no_creds);
    assert!(no_creds_text.contains("docker login"), "{no_creds_text}");
    // The same registry through a credential helper (credHelpers).
    let helper_dir = tempfile::tempdir().unwrap();
    let helper = helper_dir.path().join("docker-credential-ktest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\n[ \"$server\" = \"{}\" ] || exit 1\n\
             echo '{{\"ServerURL\":\"'$server'\",\"Username\":\"builduser\",\"Secret\":\"{password}\"}}'\n",
            reg.addr
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let hcfg = tempfile::tempdir().unwrap();
    std::fs::write(
        hcfg.path().join("config.json"),
        format!(r#"{{"credHelpers":{{"{}":"ktest"}}}}"#, reg.addr),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        helper_dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let s3 = tempfile::tempdir().unwrap();
    let helper_text = ok(&kmigrate_build_env(
        s3.path(),
        &["-t", &format!("{}/cred/helper:1", reg.addr), "--push", c],
        &[
            ("DOCKER_CONFIG", hcfg.path().to_str().unwrap()),
            ("PATH", &path),
        ],
    ));
    // A failing push to a host with credentials configured.
    let bad = kmigrate_build_env(
        state.path(),
        &["-t", &format!("{closed}/x/y:1"), "--push", c],
        &env,
    );
    let bad_text = fail_text(&bad);
    for t in [&text, &no_creds_text, &bad_text, &helper_text] {
        assert!(
            !t.contains(password) && !t.contains(&b64),
            "credential leaked:\n{t}"
        );
    }
    // Nothing in the image or the local store carries them.
    for dir in [oci.path(), state.path()] {
        for e in walkdir::WalkDir::new(dir) {
            let e = e.unwrap();
            if e.file_type().is_file() {
                let bytes = std::fs::read(e.path()).unwrap();
                let mut plain = bytes.clone();
                if bytes.starts_with(&[0x1f, 0x8b]) {
                    use std::io::Read;
                    plain.clear();
                    flate2::read::GzDecoder::new(&bytes[..])
                        .read_to_end(&mut plain)
                        .unwrap();
                }
                let s = String::from_utf8_lossy(&plain);
                assert!(
                    !s.contains(password) && !s.contains(&b64),
                    "credential in {}",
                    e.path().display()
                );
            }
        }
    }
}

#[test]
fn run_gets_private_etc_files_that_reach_neither_host_nor_layer() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let host_resolv = std::fs::read("/etc/resolv.conf").ok();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM {base}\nRUN grep -q localhost /etc/hosts && test \"$(cat /etc/hostname)\" = buildkitsandbox && \
             echo 'nameserver 192.0.2.1' > /etc/resolv.conf && echo '192.0.2.2 evil' >> /etc/hosts && echo kept > /etc/kept\n"
        ),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir().unwrap();
    ok(&kmigrate_build(
        state.path(),
        &[
            "--output",
            &format!("type=local,dest={}", dest.path().display()),
            ctx.path().to_str().unwrap(),
        ],
    ));
    assert_eq!(
        std::fs::read("/etc/resolv.conf").ok(),
        host_resolv,
        "host resolv.conf changed"
    );
    assert!(
        !std::fs::read_to_string("/etc/hosts")
            .unwrap_or_default()
            .contains("192.0.2.2")
    );
    let d = dest.path();
    assert_eq!(
        std::fs::read_to_string(d.join("etc/kept")).unwrap(),
        "kept\n"
    );
    assert!(
        !d.join("etc/resolv.conf").exists(),
        "placeholder leaked into the image"
    );
    assert!(!d.join("etc/hosts").exists());
    assert!(!d.join("etc/hostname").exists());
}
