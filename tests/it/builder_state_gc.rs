//! The state directory's bound (`--state-max-size`): after a build, what
//! earlier builds left goes least recently used first, what the build used
//! stays, and a later build of a collected image simply runs again.

use crate::support;

use std::path::Path;

use support::*;

fn dockerfile(base: &str, name: &str) -> String {
    format!(
        "FROM {base}\n\
         RUN --mount=type=cache,id={name},target=/c head -c 300000 /dev/urandom > /c/{name} \\\n \
         && cp /c/{name} /{name}\n"
    )
}

fn cache_mounts(state: &Path) -> usize {
    std::fs::read_dir(state.join("run-cache"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .count()
        })
        .unwrap_or(0)
}

/// Two contexts, A and B, whose builds each use a cache mount of their own.
fn contexts(base: &str) -> (tempfile::TempDir, String, String) {
    let d = tempfile::tempdir().unwrap();
    for name in ["a", "b"] {
        write_files(
            &d.path().join(name),
            &[("Dockerfile", &dockerfile(base, name))],
        );
    }
    let ctx = |n: &str| d.path().join(n).to_str().unwrap().to_string();
    let (a, b) = (ctx("a"), ctx("b"));
    (d, a, b)
}

#[test]
fn a_bounded_state_directory_drops_other_builds_and_keeps_this_ones() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let state = tempfile::tempdir().unwrap();
    let (_dirs, a, b) = contexts(&base);

    let first = ok(&kmigrate_build(state.path(), &[&a]));
    assert_eq!(counts(&first).0, 1, "{first}");
    assert!(!first.contains("state directory over"), "{first}");
    assert_eq!(cache_mounts(state.path()), 1);

    // B under a bound far below one layer: A's layer, record and cache
    // mount go; B's own (and the base it used) stay.
    let second = ok(&kmigrate_build(
        state.path(),
        &["--state-max-size", "1k", &b],
    ));
    assert!(
        second.contains("state directory over 1.0 kB: removed "),
        "{second}"
    );
    assert_eq!(
        cache_mounts(state.path()),
        1,
        "only B's cache mount is left"
    );

    let b_again = ok(&kmigrate_build(state.path(), &[&b]));
    assert_eq!(counts(&b_again), (0, 1), "B is still cached:\n{b_again}");
    let a_again = ok(&kmigrate_build(state.path(), &[&a]));
    assert_eq!(counts(&a_again), (1, 0), "A was collected:\n{a_again}");
}

#[test]
fn no_bound_keeps_everything() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let state = tempfile::tempdir().unwrap();
    let (_dirs, a, b) = contexts(&base);
    ok(&kmigrate_build(state.path(), &[&a]));
    let out = kmigrate_build_env(state.path(), &[&b], &[("KMIGRATE_STATE_MAX_SIZE", "0")]);
    assert!(!ok(&out).contains("state directory over"));
    assert_eq!(cache_mounts(state.path()), 2);
    let a_again = ok(&kmigrate_build(state.path(), &[&a]));
    assert_eq!(counts(&a_again), (0, 1), "{a_again}");
}

#[test]
fn a_malformed_bound_is_a_usage_error() {
    let state = tempfile::tempdir().unwrap();
    let out = kmigrate_build(state.path(), &["--state-max-size", "ten", "."]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid size \"ten\": use bytes with an optional k, m, g or t suffix"),
        "{err}"
    );
}
