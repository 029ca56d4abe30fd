//! `RUN --network` and `--security` end to end: `none` gives a RUN a
//! network of its own with only loopback (up), `default` and `host` share
//! the host's, the mode is in the step's key, and `--security=insecure` or an
//! unknown mode is refused before anything runs.

use crate::support;

use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use support::*;

/// A TCP service on the host's loopback that accepts and hangs up, until
/// dropped.
struct HostService {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HostService {
    fn start() -> HostService {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                drop(conn);
            }
        });
        HostService {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for HostService {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The RUN lines that check each mode: each fails the build unless the
/// RUN reaches the host service (or, with `none`, does not, and sees only
/// its own loopback, up).
fn network_checks(port: u16) -> String {
    format!(
        "RUN nc 127.0.0.1 {port} </dev/null\n\
         RUN --network=default nc 127.0.0.1 {port} </dev/null\n\
         RUN --network=host nc 127.0.0.1 {port} </dev/null\n\
         RUN --network=none ip -o link > /links \
         && test \"$(grep -c . /links)\" = 1 && grep -q '^1: lo: <LOOPBACK,UP' /links \
         && ! nc 127.0.0.1 {port} </dev/null\n\
         RUN --security=sandbox true\n"
    )
}

#[test]
fn network_none_is_loopback_only_and_the_others_reach_the_host() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let service = HostService::start();
    let ctx = tempfile::tempdir().unwrap();
    let df = format!("FROM {base}\n{}", network_checks(service.port));
    write_files(ctx.path(), &[("Dockerfile", &df)]);
    let state = tempfile::tempdir().unwrap();
    let text = ok(&kmigrate_build(
        state.path(),
        &[ctx.path().to_str().unwrap()],
    ));
    // `host` works here as the default does, but BuildKit needs an
    // entitlement for it: the user is told, with the line.
    assert!(
        text.contains("note: line 4: RUN --network=host:") && text.contains("--allow network.host"),
        "{text}"
    );
    assert_eq!(counts(&text), (5, 0), "{text}");
}

#[test]
fn network_none_in_a_rootless_build() {
    let Some(rl) = Rootless::new() else {
        return;
    };
    let reg = Registry::start();
    let base = push_busybox(&reg);
    let service = HostService::start();
    let ctx = rl.path("ctx");
    let df = format!("FROM {base}\n{}", network_checks(service.port));
    write_files(&ctx, &[("Dockerfile", &df)]);
    // Under a user namespace, the loopback of the RUN's network namespace
    // is set up by the namespace's root: a separate path from the root build.
    let text = ok(&rl.build(&[ctx.to_str().unwrap()]));
    assert_eq!(counts(&text), (5, 0), "{text}");
}

#[test]
fn the_network_mode_is_in_the_key() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let state = tempfile::tempdir().unwrap();
    let build = |flag: &str| {
        let ctx = tempfile::tempdir().unwrap();
        let df = format!("FROM {base}\nRUN {flag}echo built > /f\n");
        write_files(ctx.path(), &[("Dockerfile", &df)]);
        let text = ok(&kmigrate_build(
            state.path(),
            &[ctx.path().to_str().unwrap()],
        ));
        counts(&text)
    };
    // (executed, cached): the flag is part of the step's text, so of its
    // key; `none` is a step of its own, then cached.
    assert_eq!(build(""), (1, 0));
    assert_eq!(build("--network=none "), (1, 0));
    assert_eq!(build("--network=none "), (0, 1));
    assert_eq!(build(""), (0, 1));
}

#[test]
fn insecure_security_and_unknown_modes_are_refused_before_anything_runs() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let ctx = tempfile::tempdir().unwrap();
    let df = format!(
        "FROM {base}\nRUN echo first\nRUN --network=bridge true\n\
         RUN --security=insecure true\nRUN --security=other --network true\n\
         RUN --network=none --network=none true\n"
    );
    write_files(ctx.path(), &[("Dockerfile", &df)]);
    let state = tempfile::tempdir().unwrap();
    let out = kmigrate_build(state.path(), &[ctx.path().to_str().unwrap()]);
    let text = output_text(&out);
    assert!(!out.status.success(), "{text}");
    for want in [
        "RUN --network=bridge: expected default, none or host",
        "RUN --security=insecure is not supported by the embedded builder: every RUN is sandboxed",
        "--allow security.insecure",
        "RUN --security=other: expected sandbox or insecure",
        "RUN --network=: expected default, none or host",
        "duplicate flag for RUN: --network",
        "nothing was run",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    assert!(!text.contains("#2 first"), "a RUN ran:\n{text}");
}
