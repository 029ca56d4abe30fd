//! Independent stages built at the same time: proven by two stages that
//! only finish when both run at once, the same image digest as a
//! sequential build, whole output lines naming their stage, and a failing
//! stage that stops the build without hanging it.

use crate::support;

use std::path::Path;

use super::bmount_run::build_oci;
use support::*;

/// Runs `kmigrate build` on `ctx` with at most `jobs` stages at once.
fn build_jobs(state: &Path, ctx: &Path, jobs: &str, extra: &[&str]) -> std::process::Output {
    let mut args = extra.to_vec();
    args.push(ctx.to_str().unwrap());
    kmigrate_build_env(state, &args, &[("KMIGRATE_MAX_PARALLEL_STAGES", jobs)])
}

#[test]
fn independent_stages_run_at_the_same_time() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    // Each stage marks a shared cache directory and waits (WAIT tenths of
    // a second at most) for the other's mark: both succeed only if they run
    // at the same time.
    let wait = |me: &str, other: &str| {
        format!(
            "ARG WAIT\nRUN --mount=type=cache,id=sync,target=/s touch /s/{me} && echo {me}-started \
             && for i in $(seq $WAIT); do [ -e /s/{other} ] && echo {me}-saw-{other} > /{me} && exit 0; sleep 0.1; done; exit 1\n"
        )
    };
    let df = format!(
        "ARG WAIT=300\nFROM {base} AS a\n{}FROM {base} AS b\n{}FROM {base}\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n",
        wait("a", "b"),
        wait("b", "a")
    );
    let ctx = tempfile::tempdir().unwrap();
    write_files(ctx.path(), &[("Dockerfile", &df)]);
    let state = tempfile::tempdir().unwrap();
    let out = build_jobs(state.path(), ctx.path(), "2", &[]);
    let text = ok(&out);
    // RUN output of interleaved stages names its stage, on whole lines.
    let line = |stage: &str, what: &str| {
        text.lines()
            .any(|l| l.starts_with('#') && l.ends_with(&format!(" [{stage}] {what}")))
    };
    assert!(line("a", "a-started") && line("b", "b-started"), "{text}");
    // One at a time, each waits for the other in vain.
    let state = tempfile::tempdir().unwrap();
    let out = build_jobs(state.path(), ctx.path(), "1", &["--build-arg", "WAIT=20"]);
    let text = output_text(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("failed with exit code 1"), "{text}");
}

/// Stages that start together from one base fetch each of its blobs once:
/// one stage downloads, the others wait for it and find the blob stored.
#[test]
fn stages_that_start_together_fetch_each_base_blob_once() {
    let Some((reg, base)) = registry_with_busybox() else {
        return;
    };
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!(
                "FROM {base} AS a\nRUN echo a > /a\nFROM {base} AS b\nRUN echo b > /b\n\
                 FROM {base} AS c\nRUN echo c > /c\nFROM {base}\nCOPY --from=a /a /a\n\
                 COPY --from=b /b /b\nCOPY --from=c /c /c\n"
            ),
        )],
    );
    let state = tempfile::tempdir().unwrap();
    let out = build_jobs(state.path(), ctx.path(), "3", &[]);
    ok(&out);
    let log = reg.access_log();
    let mut gets: std::collections::BTreeMap<&str, usize> = Default::default();
    for line in log
        .lines()
        .filter(|l| l.contains("\"GET /v2/base/busybox/blobs/"))
    {
        let digest = line
            .split("/blobs/")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap();
        *gets.entry(digest).or_default() += 1;
    }
    assert!(!gets.is_empty(), "{log}");
    assert!(gets.values().all(|&n| n == 1), "{gets:?}");
}

#[test]
fn a_parallel_build_gives_the_same_image_as_a_sequential_one() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let df = format!(
        "FROM {base} AS deps\nRUN --mount=type=cache,target=/root/.cache echo deps > /deps && sleep 1\n\
         FROM {base} AS tools\nWORKDIR /t\nRUN echo tools > tool && sleep 1\n\
         FROM deps AS app\nCOPY --from=tools /t/tool /app/tool\nRUN cat /deps /app/tool > /app/all\n\
         FROM {base}\nCOPY --from=app /app /app\nCOPY --from=deps /deps /deps\n"
    );
    let ctx = tempfile::tempdir().unwrap();
    write_files(ctx.path(), &[("Dockerfile", &df)]);
    let mut digests = Vec::new();
    for jobs in ["1", "4"] {
        let state = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let dest = format!("type=oci,dest={},tar=false", out.path().display());
        let run = build_jobs(
            state.path(),
            ctx.path(),
            jobs,
            &["--build-arg", "SOURCE_DATE_EPOCH=0", "--output", &dest],
        );
        let text = ok(&run);
        assert_eq!(counts(&text), (6, 0), "{text}");
        digests.push(image_digest(&text));
    }
    assert_eq!(digests[0], digests[1]);
    // And the cache a parallel build left serves a sequential one.
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    build_oci(state.path(), ctx.path(), out.path(), &[]);
    let text = ok(&build_jobs(state.path(), ctx.path(), "1", &[]));
    assert_eq!(counts(&text), (0, 6), "{text}");
}

#[test]
fn a_failing_stage_stops_a_parallel_build() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let df = format!(
        "FROM {base} AS bad\nRUN echo failing && exit 3\n\
         FROM {base} AS slow\nRUN sleep 1 && touch /slow\n\
         FROM {base} AS never\nCOPY --from=bad /bin/sh /x\n\
         FROM {base}\nCOPY --from=slow /slow /slow\nCOPY --from=never /x /x\n"
    );
    let ctx = tempfile::tempdir().unwrap();
    write_files(ctx.path(), &[("Dockerfile", &df)]);
    let state = tempfile::tempdir().unwrap();
    let out = build_jobs(state.path(), ctx.path(), "4", &[]);
    let text = output_text(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains(":2: step `RUN echo failing && exit 3` failed with exit code 3"),
        "{text}"
    );
    assert!(
        !text.contains("[never 1/1]"),
        "a stage after the failed one started:\n{text}"
    );
}

/// A stage waiting for the stages it copies from starts on a root
/// extracted meanwhile, once a step has executed; a build served from the
/// cache extracts nothing ahead.
#[test]
fn a_waiting_stage_gets_its_base_root_while_earlier_stages_run() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    const NOTE: &str = "(root extracted while earlier stages ran)";
    let df = format!(
        "FROM {base} AS a\nRUN sleep 1 && echo a > /a\n\
         FROM {base} AS b\nRUN sleep 1 && echo b > /b\n\
         FROM {base}\nCOPY --from=a /a /a\nCOPY --from=b /b /b\nRUN cat /a /b > /ab\n"
    );
    let ctx = tempfile::tempdir().unwrap();
    write_files(ctx.path(), &[("Dockerfile", &df)]);
    let state = tempfile::tempdir().unwrap();
    let text = ok(&build_jobs(state.path(), ctx.path(), "2", &[]));
    assert_eq!(counts(&text), (5, 0), "{text}");
    // Only the final stage waited; stages a and b started at once.
    assert_eq!(text.matches(NOTE).count(), 1, "{text}");
    let from_final = text
        .lines()
        .position(|l| l.contains("[stage-2] FROM"))
        .expect("final FROM line");
    let id = text
        .lines()
        .nth(from_final)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with(&format!("{id} DONE")) && l.ends_with(NOTE)),
        "{text}"
    );
    // Again on the same store: every step cached, nothing executed, so
    // nothing extracted ahead. The image shows the final stage's RUN ran
    // on that root, with the base's `cat` and both copies.
    let out = tempfile::tempdir().unwrap();
    let dest = format!("type=local,dest={}", out.path().display());
    let text = ok(&build_jobs(
        state.path(),
        ctx.path(),
        "2",
        &["--output", &dest],
    ));
    assert_eq!(counts(&text), (0, 5), "{text}");
    assert!(!text.contains(NOTE), "{text}");
    assert_eq!(
        std::fs::read_to_string(out.path().join("ab")).unwrap(),
        "a\nb\n"
    );
}
