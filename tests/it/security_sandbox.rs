//! The RUN sandbox against a hostile Dockerfile: no way back to the invoking
//! terminal (TIOCSTI, device nodes), no inherited file descriptors, host
//! sysctls read-only and kernel files masked, capabilities and
//! no_new_privs, processes bounded and never outliving kmigrate, stale work
//! directories cleaned.

use crate::support;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name} not exported: {e}"))
}

/// Waits for `child` at most `limit`, killing it past that.
fn wait_bounded(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let t0 = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            panic!("the command did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A static helper that tries `ioctl(TIOCSTI)` on `/dev/tty` and on fds
/// 0-2, pushing `echo` + a marker + newline into the terminal's input, as
/// the keystroke-injection attack does. `None` when no C compiler can build
/// a static binary here.
fn tiocsti_helper(dir: &Path, marker: &str) -> Option<std::path::PathBuf> {
    let src = dir.join("tiocsti.c");
    std::fs::write(
        &src,
        format!(
            r#"#include <fcntl.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>
int main(void) {{
    const char *cmd = "{marker}\n";
    int fds[4], n = 0;
    int t = open("/dev/tty", O_RDWR);
    if (t >= 0) fds[n++] = t;
    for (int fd = 0; fd < 3; fd++) fds[n++] = fd;
    for (int i = 0; i < n; i++) {{
        const char *c = cmd;
        while (*c && ioctl(fds[i], TIOCSTI, c) == 0) c++;
        if (!*c) {{ printf("tiocsti: injected through fd %d\n", fds[i]); return 0; }}
    }}
    printf("tiocsti: refused\n");
    return 0;
}}
"#
        ),
    )
    .unwrap();
    let bin = dir.join("tiocsti");
    let ok = Command::new("cc")
        .arg("-static")
        .arg("-O")
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .status()
        .is_ok_and(|s| s.success());
    std::fs::remove_file(&src).unwrap();
    if !ok {
        eprintln!("SKIP (TIOCSTI part): cannot build a static C helper with cc");
        return None;
    }
    Some(bin)
}

#[test]
fn run_cannot_reach_the_invoking_terminal() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    if !Path::new("/usr/bin/script").exists() {
        eprintln!("SKIP: script (util-linux) not available");
        return;
    }
    let ctx = tempfile::tempdir().unwrap();
    let marker = "kmigrate-tiocsti-marker";
    let helper = tiocsti_helper(ctx.path(), marker);
    let (copy, inject) = if helper.is_some() {
        (
            "COPY tiocsti /tiocsti\n",
            "/tiocsti > /tiocsti.out; rm /tiocsti; ",
        )
    } else {
        ("", "")
    };
    // The properties the attack needs, seen from PID 1 of the RUN: stdin,
    // stdout and stderr, whether /dev/tty opens, and the session id (1 when
    // the RUN leads its own session; 0 when the session leader is outside).
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM {base}\n{copy}RUN {inject}\
             p0=$(readlink /proc/1/fd/0); p1=$(readlink /proc/1/fd/1); p2=$(readlink /proc/1/fd/2); \
             printf 'fd0=%s\\nfd1=%s\\nfd2=%s\\n' \"$p0\" \"$p1\" \"$p2\" > /props; \
             if (: </dev/tty) 2>/dev/null; then echo tty=open; else echo tty=closed; fi >> /props; \
             echo \"sid=$(cut -d' ' -f6 /proc/1/stat)\" >> /props\n"
        ),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir().unwrap();
    // kmigrate runs on a pseudo-terminal that is its controlling tty, as in
    // an interactive shell; after it, the shell reads one line of terminal
    // input: any text a RUN pushed into the terminal would be read there.
    let build = format!(
        "{} build --progress=plain --state-dir {} --output type=local,dest={} {}; \
         read -t 2 line; echo \"READ[$line]\"",
        env!("CARGO_BIN_EXE_kmigrate"),
        state.path().display(),
        dest.path().display(),
        ctx.path().display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &build, "/dev/null"])
        .env("SHELL", "/bin/bash")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take();
    let status = wait_bounded(&mut child, Duration::from_secs(120));
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let t = output_text(&out);
    assert!(status.success(), "{t}");
    assert!(
        !t.contains(&format!("READ[{marker}")),
        "a RUN typed into the invoking terminal:\n{t}"
    );
    if helper.is_some() {
        assert_eq!(read(dest.path(), "tiocsti.out"), "tiocsti: refused\n");
    }
    let props = read(dest.path(), "props");
    let lines: Vec<&str> = props.lines().collect();
    assert_eq!(lines[0], "fd0=/dev/null", "{props}");
    assert!(lines[1].starts_with("fd1=pipe:["), "{props}");
    assert!(lines[2].starts_with("fd2=pipe:["), "{props}");
    assert_eq!(&lines[3..], ["tty=closed", "sid=1"], "{props}");
}

#[test]
fn device_nodes_made_in_run_cannot_be_opened() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    // CAP_MKNOD is in Docker's default set, so a root RUN can make a node;
    // without a device cgroup only `nodev` keeps it from opening host
    // devices (a terminal, a disk). 1:5 is /dev/zero: harmless to try.
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM {base}\nRUN for p in /znode /dev/znode /tmp/znode; do mknod $p c 1 5 || exit 9; \
             if head -c 1 $p >/dev/null 2>&1; then echo \"$p opened\"; else echo \"$p refused\"; fi; \
             rm $p; done > /mknod\n"
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
        read(dest.path(), "mknod"),
        "/znode refused\n/dev/znode refused\n/tmp/znode refused\n"
    );
}

#[test]
fn inherited_file_descriptors_do_not_reach_run() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("secret.txt"), "host secret").unwrap();
    let file = std::fs::File::open(host.path().join("secret.txt")).unwrap();
    let dir = std::fs::File::open(host.path()).unwrap();
    let ctx = tempfile::tempdir().unwrap();
    // Processes of the RUN list their descriptors (`ls` sees its own, plus
    // the one it lists /proc/self/fd with: 3) and try to read through the
    // inherited ones. (Not PID 1's: the shell holds descriptors of its own
    // while redirecting.)
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM {base}\nRUN ls /proc/self/fd > /fds; \
             sh -c 'for fd in 3 7 10 251; do cat /proc/self/fd/$fd; ls /proc/self/fd/$fd/; done' > /leak 2>/dev/null; true\n"
        ),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir().unwrap();
    let (f, d) = (
        std::os::fd::AsRawFd::as_raw_fd(&file),
        std::os::fd::AsRawFd::as_raw_fd(&dir),
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kmigrate"));
    cmd.args(["build", "--progress=plain", "--state-dir"])
        .arg(state.path())
        .arg("--output")
        .arg(format!("type=local,dest={}", dest.path().display()))
        .arg(ctx.path());
    // As a shell's `exec 7<file` would: descriptors without close-on-exec
    // that kmigrate inherits (dup2 clears the flag).
    // SAFETY: the closure runs between fork and exec and only calls dup2,
    // which is async-signal-safe, on descriptors this test owns.
    unsafe {
        cmd.pre_exec(move || {
            for (src, dst) in [(f, 7), (d, 10), (f, 251), (d, 3)] {
                if nix::libc::dup2(src, dst) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    let fds = read(dest.path(), "fds");
    let listed: Vec<&str> = fds.split_whitespace().collect();
    assert_eq!(
        listed,
        ["0", "1", "2", "3"],
        "RUN inherited descriptors: {fds}"
    );
    let leak = read(dest.path(), "leak");
    assert!(
        !leak.contains("host secret") && !leak.contains("secret.txt"),
        "a host file leaked through an inherited descriptor: {leak}"
    );
}

/// Docker's default capability set as a `CapBnd:` mask: CHOWN, DAC_OVERRIDE,
/// FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP, NET_BIND_SERVICE, NET_RAW,
/// SYS_CHROOT, MKNOD, AUDIT_WRITE, SETFCAP.
const DOCKER_CAPS: &str = "00000000a80425fb";

#[test]
fn run_cannot_write_host_sysctls_or_read_kernel_files() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let core_before = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    let ctx = tempfile::tempdir().unwrap();
    // Writing core_pattern back with its own value: harmless even where the
    // sandbox is broken, and a route to host root where it is writable.
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM {base}\nRUN cat /proc/sys/kernel/core_pattern > /cp; \
             if (cat /cp > /proc/sys/kernel/core_pattern) 2>/dev/null; then echo written; else echo refused; fi > /sysctl; rm /cp; \
             for f in kcore keys timer_list sched_debug latency_stats timer_stats interrupts; do \
               [ -e /proc/$f ] && echo \"$f $(head -c 64 /proc/$f 2>/dev/null | wc -c)\"; done > /masked; \
             for d in acpi scsi asound; do [ -e /proc/$d ] && echo \"$d $(ls -A /proc/$d | wc -l)\"; done >> /masked; \
             for p in sys sysrq-trigger irq bus fs; do \
               grep \" /proc/$p \" /proc/self/mountinfo | cut -d' ' -f5,6 | cut -d, -f1; done > /readonly; \
             grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):' /proc/self/status | tr -s '\\t ' ' ' > /status\n"
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
    assert_eq!(read(dest.path(), "sysctl"), "refused\n");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(),
        core_before
    );
    // Every masked file reads as empty, every masked directory is empty.
    let masked = read(dest.path(), "masked");
    for l in masked.lines() {
        assert!(l.ends_with(" 0"), "readable through a mask: {l}\n{masked}");
    }
    assert!(masked.contains("timer_list 0"), "{masked}");
    let readonly = read(dest.path(), "readonly");
    for p in ["sys", "sysrq-trigger", "irq", "bus", "fs"] {
        if Path::new("/proc").join(p).exists() {
            assert!(
                readonly.lines().any(|l| l == format!("/proc/{p} ro")),
                "/proc/{p} is not read-only: {readonly}"
            );
        }
    }
    let status = read(dest.path(), "status");
    assert_eq!(
        status,
        format!(
            "CapInh: 0000000000000000\nCapPrm: {DOCKER_CAPS}\nCapEff: {DOCKER_CAPS}\n\
             CapBnd: {DOCKER_CAPS}\nCapAmb: 0000000000000000\nNoNewPrivs: 1\n"
        )
    );
}

/// `/proc/<pid>` of every process whose command line is exactly `argv`.
fn processes_running(argv: &[&str]) -> Vec<i32> {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .collect()
}

#[test]
fn a_killed_build_leaves_no_process_and_the_next_build_removes_its_work_dirs() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    // A number no other test uses, so the sleep is recognisable on the host.
    let secs = format!("{}", 900_000 + std::process::id() % 1000);
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {base}\nRUN sleep {secs} & sleep {secs}\n"),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    // SIGKILL to kmigrate alone once the RUN runs (as the OOM killer or
    // `kill -9` would; `timeout` would kill its whole process group).
    let mut child = Command::new(env!("CARGO_BIN_EXE_kmigrate"))
        .args(["build", "--progress=plain", "--state-dir"])
        .arg(state.path())
        .arg(ctx.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while processes_running(&["sleep", &secs]).len() < 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(60) && child.try_wait().unwrap().is_none(),
            "the RUN did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let t0 = Instant::now();
    let mut left = processes_running(&["sleep", &secs]);
    while !left.is_empty() && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(100));
        left = processes_running(&["sleep", &secs]);
    }
    // Do not leave them behind whatever happens next.
    for pid in &left {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    assert!(
        left.is_empty(),
        "RUN processes outlived the killed build: {left:?}\n{}",
        output_text(&out)
    );
    let tmp = state.path().join("tmp");
    let stale: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        !stale.is_empty(),
        "the killed build left no work dir to clean"
    );
    // The next build (another Dockerfile) removes what the killed one left.
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {base}\nRUN echo next > /next\n"),
    )
    .unwrap();
    ok(&kmigrate_build(
        state.path(),
        &[ctx.path().to_str().unwrap()],
    ));
    let after: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        after.is_empty(),
        "stale work dirs kept: {after:?} (were {stale:?})"
    );
}

/// Whether this host can bound a RUN's processes with a pids cgroup (as
/// root, `RLIMIT_NPROC` does not apply).
fn pids_cgroup_available() -> bool {
    let v2 = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
        .is_ok_and(|c| c.split_whitespace().any(|w| w == "pids"));
    v2 || Path::new("/sys/fs/cgroup/pids/cgroup.procs").exists()
}

#[test]
fn a_fork_bomb_is_bounded_by_the_process_limit() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    if !pids_cgroup_available() {
        eprintln!("SKIP: no pids cgroup on this host");
        return;
    }
    // At most 60 short sleeps even with no limit at all, so the test cannot
    // hurt the machine; with a limit of 16 the shell's fork fails first.
    let secs = format!("{}", 20 + std::process::id() % 10);
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM {base}\nRUN i=0; while [ $i -lt 60 ]; do sleep {secs} & i=$((i+1)); done; wait\n"
        ),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let out = kmigrate_build_env(
        state.path(),
        &[ctx.path().to_str().unwrap()],
        &[("KMIGRATE_RUN_PIDS_LIMIT", "16")],
    );
    let t = output_text(&out);
    assert!(!out.status.success(), "the RUN was not bounded:\n{t}");
    assert!(
        t.contains("Dockerfile:2") && t.contains("limit of 16 processes"),
        "{t}"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(15),
        "the bounded RUN kept running: {:?}",
        t0.elapsed()
    );
    assert!(processes_running(&["sleep", &secs]).is_empty());
}
