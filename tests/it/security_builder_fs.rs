//! Security of the builder's filesystem work (issue 13, items 1, 2, 7, 10):
//! hostile whiteouts in base images, symlinks in stage roots that point out
//! of them (globs, `COPY --from`, WORKDIR, USER), the state directory's
//! modes, and rootless COPY owners. Every image is crafted in the test and
//! served by a real registry on 127.0.0.1.

use crate::support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use support::*;

/// `kmigrate build ARGS` run from `dir`, as a user types it in a project.
fn build_in(dir: &Path, state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kmigrate"))
        .current_dir(dir)
        .arg("build")
        .arg("--progress=plain")
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap()
}

/// A project directory: Dockerfile, a source tree, a canary file.
fn project(dockerfile: &str) -> tempfile::TempDir {
    let work = tempfile::tempdir().unwrap();
    write_files(
        work.path(),
        &[
            ("Dockerfile", dockerfile),
            ("canary", "still here"),
            ("src/main.rs", "fn main() {}"),
        ],
    );
    work
}

fn assert_project_intact(work: &Path, case: &str) {
    assert_eq!(
        std::fs::read_to_string(work.join("canary")).ok().as_deref(),
        Some("still here"),
        "{case}: the canary next to the Dockerfile was deleted"
    );
    assert!(work.join("Dockerfile").is_file(), "{case}: Dockerfile lost");
    assert!(work.join("src/main.rs").is_file(), "{case}: src/ lost");
}

/// Item 1: a whiteout naming `..`, `.` or nothing is refused with a message
/// naming the entry, and deletes nothing: not the project (local output
/// extracts into `out/` inside it), not the rootfs, not `state/tmp`.
#[test]
fn hostile_whiteouts_in_a_base_image_delete_nothing_and_fail_the_build() {
    let Some((reg, _base)) = registry_with_busybox() else {
        return;
    };
    for (i, entry) in [".wh...", "sub/.wh...", "sub/deep/.wh...", ".wh..", ".wh."]
        .iter()
        .enumerate()
    {
        let img = format!("{}/evil/whiteout{i}:1", reg.addr);
        push_busybox_plus_raw_layers(
            &img,
            &[raw_tar(&[
                ("sub/deep/keep", 'f', "k"),
                (entry, 'f', ""),
                ("after", 'f', "a"),
            ])],
        );
        // FROM only, exported to `out/` inside the project.
        let work = project(&format!("FROM {img}\n"));
        let state = tempfile::tempdir().unwrap();
        let out = build_in(
            work.path(),
            state.path(),
            &["-o", "type=local,dest=out", "."],
        );
        let t = output_text(&out);
        assert!(!out.status.success(), "{entry}: the build succeeded:\n{t}");
        assert!(t.contains("not a valid whiteout"), "{entry}: {t}");
        assert!(t.contains(entry.trim_start_matches("./")), "{entry}: {t}");
        assert_project_intact(work.path(), entry);

        // With a RUN, the layers are extracted under state/tmp, where other
        // builds keep their work: it survives too.
        let work = project(&format!("FROM {img}\nRUN true\n"));
        let other = state.path().join("tmp/rootfs-other-build");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("work"), "w").unwrap();
        let out = build_in(work.path(), state.path(), &["."]);
        let t = output_text(&out);
        assert!(!out.status.success(), "{entry}: the build succeeded:\n{t}");
        assert!(t.contains("not a valid whiteout"), "{entry}: {t}");
        assert!(other.join("work").is_file(), "{entry}: state/tmp was wiped");
        assert_project_intact(work.path(), entry);
    }
}

/// Item 1: valid whiteouts and opaque directories still apply (image
/// fidelity), inside the exported tree only.
#[test]
fn valid_whiteouts_still_apply_in_a_local_export() {
    let Some((reg, _base)) = registry_with_busybox() else {
        return;
    };
    let img = format!("{}/ok/whiteouts:1", reg.addr);
    push_busybox_plus_raw_layers(
        &img,
        &[
            raw_tar(&[
                ("d/old", 'f', "o"),
                ("d/sub/x", 'f', "x"),
                ("gone", 'f', "g"),
            ]),
            raw_tar(&[
                (".wh.gone", 'f', ""),
                ("d/.wh..wh..opq", 'f', ""),
                ("d/new", 'f', "n"),
            ]),
        ],
    );
    let work = project(&format!("FROM {img}\n"));
    let state = tempfile::tempdir().unwrap();
    ok(&build_in(
        work.path(),
        state.path(),
        &["-o", "type=local,dest=out", "."],
    ));
    let out = work.path().join("out");
    assert!(!out.join("gone").exists());
    assert!(!out.join("d/old").exists() && !out.join("d/sub").exists());
    assert_eq!(std::fs::read_to_string(out.join("d/new")).unwrap(), "n");
    assert!(out.join("bin/busybox").is_file());
    assert_project_intact(work.path(), "valid whiteouts");
}

/// Item 2: COPY --from resolves every source inside the stage's root, as
/// if chrooted: a glob matching a symlink to `/etc` copies the stage's
/// `/etc`, never the host's.
#[test]
fn copy_from_globs_follow_symlinks_only_inside_the_stage_root() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("host-secret"), "HOST SECRET").unwrap();
    let hp = host.path().display().to_string();
    let work = project(&format!(
        "FROM {base} AS a\n\
         RUN echo image-etc > /etc/marker \
           && ln -s /etc /leaketc \
           && ln -s ../../../../../../../../etc /relleak \
           && ln -s {hp} /hostdir \
           && ln -s {hp}/host-secret /hostfile \
           && mkdir -p /chain && ln -s ../../.. /chain/up && ln -s chain/up/chain/up/etc /chained\n\
         FROM {base}\n\
         COPY --from=a /lea* /abs/\n\
         COPY --from=a /rel* /rel/\n\
         COPY --from=a /chai* /chained/\n\
         COPY --from=a /leaketc/pass* /etcglob/\n"
    ));
    let state = tempfile::tempdir().unwrap();
    let t = ok(&build_in(
        work.path(),
        state.path(),
        &["-o", "type=local,dest=out", "."],
    ));
    let out = work.path().join("out");
    for d in ["abs", "rel", "chained"] {
        assert_eq!(
            std::fs::read_to_string(out.join(d).join("marker")).unwrap_or_default(),
            "image-etc\n",
            "{d}: the stage's /etc was not copied:\n{t}"
        );
        // The host's /etc has these; the busybox image does not.
        for host_only in ["shadow", "os-release", "hostname"] {
            assert!(
                !out.join(d).join(host_only).exists(),
                "{d}: the host's /etc/{host_only} reached the image"
            );
        }
    }
    assert!(out.join("etcglob/passwd").is_file());
    assert!(
        std::fs::read_to_string(out.join("etcglob/passwd"))
            .unwrap()
            .contains("nobody:x:65534"),
        "the stage's passwd"
    );

    // A glob on a symlink to a host directory or host file finds nothing
    // inside the root: an error, never the host's content.
    for (src, what) in [("/hostd*", "hostdir"), ("/hostf*", "hostfile")] {
        let work = project(&format!(
            "FROM {base} AS a\nRUN ln -s {hp} /hostdir && ln -s {hp}/host-secret /hostfile\n\
             FROM {base}\nCOPY --from=a {src} /x/\n"
        ));
        let out = build_in(
            work.path(),
            state.path(),
            &["-o", "type=local,dest=out", "."],
        );
        let t = output_text(&out);
        assert!(!t.contains("HOST SECRET"), "{what}: {t}");
        let x = work.path().join("out/x");
        let leaked = walkdir::WalkDir::new(&x)
            .into_iter()
            .flatten()
            .any(|e| e.file_name() == "host-secret");
        assert!(!leaked, "{what}: the host file reached the image:\n{t}");
    }
}

/// Item 2: symlink loops in a stage are an error with the Dockerfile line,
/// not a hang or a crash.
#[test]
fn copy_from_symlink_loops_fail_cleanly() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let state = tempfile::tempdir().unwrap();
    for src in ["/loop*", "/loop1", "/loop1/x"] {
        let work = project(&format!(
            "FROM {base} AS a\nRUN ln -s /loop2 /loop1 && ln -s loop1 /loop2\n\
             FROM {base}\nCOPY --from=a {src} /x/\n"
        ));
        let out = build_in(work.path(), state.path(), &["."]);
        let t = output_text(&out);
        assert!(!out.status.success(), "{src}: {t}");
        assert!(t.contains("symbolic links"), "{src}: {t}");
        assert!(
            t.contains("Dockerfile:4"),
            "{src}: the error names the line: {t}"
        );
    }
}

/// Item 2: WORKDIR and USER resolve through the stage's own symlinks only.
#[test]
fn workdir_and_user_resolve_inside_the_stage_root() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let host = tempfile::tempdir().unwrap();
    let hp = host.path().display().to_string();
    std::fs::write(
        host.path().join("passwd"),
        "hostonly:x:4242:4242::/:/bin/sh\n",
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    // WORKDIR through an absolute symlink to a host directory: created
    // inside the root.
    let work = project(&format!(
        "FROM {base}\nRUN ln -s {hp} /wd && ln -s ../../../../../{hp} /wdrel\n\
         WORKDIR /wd/made\nRUN pwd > /pwd1\nWORKDIR /wdrel/made2\nRUN pwd > /pwd2\n"
    ));
    let t = ok(&build_in(
        work.path(),
        state.path(),
        &["-o", "type=local,dest=out", "."],
    ));
    assert!(
        !host.path().join("made").exists(),
        "WORKDIR created on the host: {t}"
    );
    assert!(
        !host.path().join("made2").exists(),
        "WORKDIR created on the host: {t}"
    );
    let inside = work.path().join("out").join(hp.trim_start_matches('/'));
    assert!(
        inside.join("made").is_dir() && inside.join("made2").is_dir(),
        "{t}"
    );

    // USER and --chown read the image's /etc/passwd; a symlink from there
    // to a host file resolves inside the root (where it does not exist).
    for step in ["USER hostonly\nRUN true", "COPY --chown=hostonly canary /c"] {
        let work = project(&format!(
            "FROM {base}\nRUN rm /etc/passwd && ln -s {hp}/passwd /etc/passwd\n{step}\n"
        ));
        let out = build_in(work.path(), state.path(), &["."]);
        let t = output_text(&out);
        assert!(
            !out.status.success(),
            "{step}: the host passwd was read: {t}"
        );
        assert!(t.contains("unable to find user hostonly"), "{step}: {t}");
    }
}

/// Item 7: the state directory and its work areas are private to the
/// caller, so setuid binaries of extracted images are not reachable by
/// other local users; older state directories are tightened.
#[test]
fn state_directories_are_private() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let parent = tempfile::tempdir().unwrap();
    let state = parent.path().join("fresh/state");
    // A RUN as another user still works: it sees the image's `/`, not the
    // private directories above it.
    let work = project(&format!(
        "FROM {base}\nRUN true\nUSER nobody\nRUN ls / > /tmp/listing && id -u\n"
    ));
    ok(&build_in(work.path(), &state, &["."]));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for sub in ["", "tmp", "blobs", "cache"] {
        assert_eq!(mode(&state.join(sub)), 0o700, "state/{sub}");
    }
    // A state directory from an older version (0755 everywhere).
    let old = parent.path().join("old");
    for sub in ["", "tmp", "blobs/sha256", "cache"] {
        std::fs::create_dir_all(old.join(sub)).unwrap();
        std::fs::set_permissions(old.join(sub), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    ok(&build_in(work.path(), &old, &["."]));
    for sub in ["tmp", "blobs", "cache"] {
        assert_eq!(mode(&old.join(sub)), 0o700, "old state/{sub}");
    }
}

/// Item 7: a setuid binary keeps its bit in the exported layer (image
/// fidelity) while its extracted copy stays under the private state dir.
#[test]
fn setuid_bits_are_kept_in_layers() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let work = project(&format!(
        "FROM {base}\nRUN cp /bin/busybox /suid && chmod 4755 /suid\nCOPY --chmod=2755 canary /sgid\n"
    ));
    let state = tempfile::tempdir().unwrap();
    ok(&build_in(
        work.path(),
        state.path(),
        &["-o", "type=local,dest=out", "."],
    ));
    let mode = |p: &str| {
        std::fs::symlink_metadata(work.path().join("out").join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("suid"), 0o4755);
    assert_eq!(mode("sgid"), 0o2755);
}

/// Item 10: rootless COPY works (files the caller creates are root in the
/// image, owned 0:0 in the layer); `--chown` to another id is refused with
/// the line and what to do.
#[test]
fn rootless_copy_maps_owners_to_root() {
    let Some(rl) = Rootless::new() else {
        return;
    };
    let reg = Registry::start();
    let base = push_busybox(&reg);
    let ctx = rl.path("ctx");
    write_files(
        &ctx,
        &[
            ("a.txt", "a"),
            ("dir/b.txt", "b"),
            ("dir/sub/c.txt", "c"),
            (
                "bad/Dockerfile",
                &format!("FROM {base}\nCOPY --chown=1000:1000 a.txt /a\n"),
            ),
            (
                "Dockerfile",
                &format!(
                    "FROM {base}\nCOPY a.txt /a.txt\nCOPY dir /dir/\nCOPY --chown=0:0 --chmod=640 a.txt /root-a\nRUN test -f /dir/sub/c.txt\n"
                ),
            ),
        ],
    );
    let run = |args: &[&str]| rl.build(args);
    let oci = rl.path("oci");
    let dest = format!("type=oci,dest={},tar=false", oci.display());
    let t = ok(&run(&["--output", &dest, ctx.to_str().unwrap()]));
    assert_eq!(counts(&t), (4, 0), "{t}");
    // Every entry of the COPY layers is owned by 0:0.
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
    let mut seen = Vec::new();
    for l in &m["layers"].as_array().unwrap()[1..] {
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(
            std::fs::File::open(blob(l["digest"].as_str().unwrap())).unwrap(),
        ));
        for e in ar.entries().unwrap() {
            let e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().to_string();
            let h = e.header();
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0), "{name}");
            if name == "root-a" {
                assert_eq!(h.mode().unwrap() & 0o7777, 0o640);
            }
            seen.push(name);
        }
    }
    for want in ["a.txt", "dir/", "dir/sub/c.txt", "root-a"] {
        assert!(seen.iter().any(|s| s == want), "{want} not in {seen:?}");
    }
    let bad = ctx.join("bad/Dockerfile");
    let out = run(&["-f", bad.to_str().unwrap(), ctx.to_str().unwrap()]);
    let t = output_text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        t.contains("Dockerfile:2") && t.contains("needs root"),
        "{t}"
    );
    assert!(!t.contains("Operation not permitted"), "{t}");
}
