//! Stage roots as overlay mounts on one extraction of their base (as root,
//! `kmigrate build` in a mount namespace of its own): the stages of a base
//! share its files and keep their changes apart, a base file a step deletes
//! is a whiteout in that step's layer, and no mount outlives the build,
//! even a killed one.

use crate::support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::bmount_run::{build_oci, layers, unpack};
use support::*;

/// Lines of the host's mount table that name `dir`.
fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.canonicalize().unwrap().display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&dir))
        .map(str::to_string)
        .collect()
}

#[test]
fn stages_of_one_base_share_its_files_and_keep_their_changes_apart() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!(
                "FROM {base} AS a\n\
                 RUN stat -c %i /bin/busybox > /ino && echo changed-by-a >> /etc/passwd\n\
                 FROM {base} AS b\n\
                 RUN stat -c %i /bin/busybox > /ino && rm /bin/ls\n\
                 FROM {base}\n\
                 COPY --from=a /ino /a.ino\n\
                 COPY --from=a /etc/passwd /a.passwd\n\
                 COPY --from=b /ino /b.ino\n\
                 RUN grep -q changed-by-a /a.passwd && ! grep -q changed-by-a /etc/passwd \
                 && test -e /bin/ls && touch /checked\n"
            ),
        )],
    );
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    build_oci(state.path(), ctx.path(), out.path(), &[]);
    let fs = unpack(out.path());
    assert!(fs.path().join("checked").exists());
    let ino = |f: &str| std::fs::read_to_string(fs.path().join(f)).unwrap();
    // One extraction of the base: the same file (inode) under both stages.
    assert_eq!(ino("a.ino"), ino("b.ino"));

    // Stage b's layer deletes the base's /bin/ls with a whiteout.
    let out_b = tempfile::tempdir().unwrap();
    build_oci(state.path(), ctx.path(), out_b.path(), &["--target", "b"]);
    let names = layers(out_b.path()).pop().unwrap().0;
    assert!(names.iter().any(|n| n == "bin/.wh.ls"), "{names:?}");
    // Overlay's own whiteouts (character devices) are not carried.
    assert!(!names.iter().any(|n| n == "bin/ls"), "{names:?}");
    assert!(mounts_under(state.path()).is_empty());
}

#[test]
fn a_killed_build_leaves_no_mount() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!("FROM {base}\nRUN echo $((6 * 7)) && sleep 60\n"),
        )],
    );
    let state = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kmigrate"))
        .args(["build", "--progress=plain", "--state-dir"])
        .arg(state.path())
        .arg(ctx.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while std::io::BufRead::read_line(&mut err, &mut line).unwrap() > 0
        && !line.trim_end().ends_with(" 42")
    {
        line.clear();
    }
    // The RUN's output (its title shows the expression, not the value).
    assert!(line.trim_end().ends_with(" 42"), "the RUN did not start");
    // The RUN's root is an overlay mount, in kmigrate's namespace only.
    let ns_mounts = std::fs::read_to_string(format!("/proc/{}/mountinfo", child.id())).unwrap();
    let state_dir = state.path().canonicalize().unwrap().display().to_string();
    assert!(
        ns_mounts
            .lines()
            .any(|l| l.contains(" - overlay ") && l.contains(&state_dir)),
        "{ns_mounts}"
    );
    assert!(mounts_under(state.path()).is_empty());
    child.kill().unwrap();
    child.wait().unwrap();
    let t0 = Instant::now();
    while !mounts_under(state.path()).is_empty() && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(mounts_under(state.path()).is_empty());
    // The next build removes what the killed one left and builds.
    write_files(
        ctx.path(),
        &[("Dockerfile", &format!("FROM {base}\nRUN true\n"))],
    );
    ok(&kmigrate_build(
        state.path(),
        &[ctx.path().to_str().unwrap()],
    ));
    let tmp: Vec<_> = std::fs::read_dir(state.path().join("tmp"))
        .unwrap()
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
}
