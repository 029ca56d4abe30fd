//! Dockerfile forms real projects write, built by the embedded builder:
//! variables in COPY flags, LABEL's legacy form, nested defaults, and the
//! whole file checked before any step runs.

use crate::support;

use kmigrate::builder::image::{ImageConfig, Index, Manifest};
use support::*;

/// Builds `dockerfile` (with `files` beside it) into an OCI layout and
/// returns the image config; panics with the output when the build fails.
fn build_config(dockerfile: &str, files: &[(&str, &str)]) -> ImageConfig {
    let ctx = tempfile::tempdir().unwrap();
    let mut all = vec![("Dockerfile", dockerfile)];
    all.extend_from_slice(files);
    write_files(ctx.path(), &all);
    let layout = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    ok(&kmigrate_build(
        state.path(),
        &[
            "--output",
            &format!("type=oci,dest={},tar=false", layout.path().display()),
            ctx.path().to_str().unwrap(),
        ],
    ));
    let blob = |d: &str| {
        layout
            .path()
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let idx: Index =
        serde_json::from_slice(&std::fs::read(layout.path().join("index.json")).unwrap()).unwrap();
    let m: Manifest =
        serde_json::from_slice(&std::fs::read(blob(&idx.manifests[0].digest)).unwrap()).unwrap();
    serde_json::from_slice(&std::fs::read(blob(&m.config.digest)).unwrap()).unwrap()
}

/// Runs a build of `dockerfile` expected to fail; returns its output.
fn build_fails(dockerfile: &str) -> String {
    let ctx = tempfile::tempdir().unwrap();
    write_files(ctx.path(), &[("Dockerfile", dockerfile), ("a", "a\n")]);
    let state = tempfile::tempdir().unwrap();
    let out = kmigrate_build(state.path(), &[ctx.path().to_str().unwrap()]);
    let text = output_text(&out);
    assert!(!out.status.success(), "build should fail:\n{text}");
    text
}

#[test]
fn builder_cov_copy_flags_expand_variables() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    // `--from`, `--chown` and `--chmod` take variables, braced or not; the
    // RUN fails the build unless owner and mode are the expanded ones.
    let df = format!(
        "ARG SRC=src\nFROM {base} AS src\nRUN echo x > /f\n\
         FROM {base}\nARG APP_UID=1234\nARG M=640\nENV DIR_MODE=750\n\
         COPY --from=$SRC --chown=$APP_UID:${{APP_UID}} --chmod=$M /f /f\n\
         COPY --chown=${{APP_UID}} --chmod=${{DIR_MODE}} a /d/a\n\
         RUN test \"$(stat -c '%u %g %a' /f)\" = '1234 1234 640' \
         && test \"$(stat -c '%u %a' /d/a)\" = '1234 750'\n"
    );
    build_config(&df, &[("a", "a\n")]);
}

#[test]
fn builder_cov_symbolic_chmod_applies_to_each_entry() {
    use std::os::unix::fs::PermissionsExt;
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    // `--chmod=u=rwX,go=rX` (BuildKit's stable syntax takes chmod(1)'s
    // symbolic form): directories and executables get 755, other files
    // 644; `+x` adds to the mode a file had. The RUN fails the build unless
    // the modes are those.
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[
            (
                "Dockerfile",
                &format!(
                    "FROM {base}\nARG M=u=rwX,go=rX\n\
                     COPY --chmod=$M tree /t/\nCOPY --chmod=+x tree/data /x\n\
                     RUN test \"$(stat -c '%a %n' /t /t/sub /t/data /t/run /t/sub/f /x | tr '\\n' ' ')\" = \
                     '755 /t 755 /t/sub 644 /t/data 755 /t/run 644 /t/sub/f 711 /x '\n"
                ),
            ),
            ("tree/data", "d"),
            ("tree/run", "r"),
            ("tree/sub/f", "f"),
        ],
    );
    for (p, mode) in [
        ("tree", 0o700),
        ("tree/sub", 0o700),
        ("tree/data", 0o600),
        ("tree/run", 0o700),
        ("tree/sub/f", 0o600),
    ] {
        std::fs::set_permissions(ctx.path().join(p), std::fs::Permissions::from_mode(mode))
            .unwrap();
    }
    let state = tempfile::tempdir().unwrap();
    ok(&kmigrate_build(
        state.path(),
        &[ctx.path().to_str().unwrap()],
    ));
}

#[test]
fn builder_cov_label_legacy_and_spaced_forms() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    // BuildKit reads a first word without `=` as the legacy `KEY VALUE`
    // form: the key is that word and the value the rest of the line.
    let cfg = build_config(
        &format!(
            "FROM {base}\nARG V=1.2\n\
             LABEL org.opencontainers.image.source https://example.com/x y\n\
             LABEL version \"$V\"\nLABEL key = \"value\"\nLABEL a=1 b=\"two words\"\n"
        ),
        &[],
    );
    let l = &cfg.config.labels;
    assert_eq!(
        l["org.opencontainers.image.source"],
        "https://example.com/x y"
    );
    assert_eq!(l["version"], "1.2");
    assert_eq!(l["key"], "= value");
    assert_eq!(l["a"], "1");
    assert_eq!(l["b"], "two words");
}

#[test]
fn builder_cov_nested_default_in_arg_and_from() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let cfg = build_config(
        &format!(
            "ARG REG=\nARG IMAGE=\"${{REG:-${{UNSET:-{base}}}}}\"\nFROM $IMAGE\n\
             ARG E=\nARG S=set\n\
             LABEL nested=\"${{E:-${{S:+x${{S}}y}}}}\" empty=\"${{E:-}}\" plus=\"${{S:+}}\" \
             unset_plus=\"${{NOPE:+z}}\" set_dash=\"${{E-d}}\"\n"
        ),
        &[],
    );
    let l = &cfg.config.labels;
    assert_eq!(l["nested"], "xsety");
    assert_eq!(l["empty"], "");
    assert_eq!(l["plus"], "");
    assert_eq!(l["unset_plus"], "");
    assert_eq!(l["set_dash"], "");
}

#[test]
fn builder_cov_pattern_replacement_in_from_env_copy_and_label() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    // `${A/p/r}` and `${A//p/r}` as BuildKit's default Dockerfile syntax
    // has them since 1.7: in a global ARG used by FROM, in ENV, in a COPY
    // destination and in a LABEL. The RUN fails the build unless the COPY
    // went where the expansion says.
    let cfg = build_config(
        &format!(
            "ARG IMAGE={base}-SUFFIX\nFROM ${{IMAGE/-SUFFIX/}}\n\
             ARG NAME=my-app\nARG VERSION=1.22.3\nARG ARCH=arm64\n\
             ENV SERVICE=${{NAME/-/_}} ABBR=${{VERSION//./}}\n\
             COPY a /opt/${{NAME//-/}}/a\n\
             LABEL url=\"https://x/foo-${{ARCH/arm64/aarch64}}.tar.gz\" \
             last=\"${{VERSION/*./v}}\"\n\
             RUN test -f /opt/myapp/a\n"
        ),
        &[("a", "a\n")],
    );
    let env = &cfg.config.env;
    assert!(env.contains(&"SERVICE=my_app".to_string()), "{env:?}");
    assert!(env.contains(&"ABBR=1223".to_string()), "{env:?}");
    assert_eq!(cfg.config.labels["url"], "https://x/foo-aarch64.tar.gz");
    // The longest match: `*.` takes `1.22.`.
    assert_eq!(cfg.config.labels["last"], "v3");
}

#[test]
fn builder_cov_copy_parents_keeps_source_paths() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    // `COPY --parents` (stable since Dockerfile 1.20): each source keeps its
    // path from the context's or the stage's root, or from a `/./` in the
    // pattern; parents made on the way take the source directories' modes.
    // The RUN fails the build unless the tree is exactly that.
    let df = format!(
        "FROM {base} AS st\n\
         RUN mkdir -p /usr/share/keys/a /usr/share/keys/b && touch /usr/share/keys/a/k1 \
         /usr/share/keys/b/k2 && chmod 750 /usr/share/keys && chmod 700 /usr/share/keys/b\n\
         FROM {base}\nWORKDIR /w\n\
         COPY --parents x/a.txt y/a.txt /parents/\n\
         COPY --parents ./x/./y/*.txt /pivot/\n\
         COPY --parents src/**/package.json /app/\n\
         COPY --parents --from=st /usr/share/keys/b /keys/\n\
         COPY --parents --from=st /usr/share/./keys/a/k1 /keys2/\n\
         ADD --parents x/y rel\n\
         COPY --parents=false x/a.txt /flat/\n\
         RUN test \"$(cd / && find parents pivot app keys keys2 w flat | sort | tr '\\n' ' ')\" = \
         'app app/src app/src/a app/src/a/package.json app/src/b app/src/b/c app/src/b/c/package.json \
         flat flat/a.txt keys keys/usr keys/usr/share keys/usr/share/keys keys/usr/share/keys/b \
         keys/usr/share/keys/b/k2 keys2 keys2/keys keys2/keys/a keys2/keys/a/k1 parents parents/x \
         parents/x/a.txt parents/y parents/y/a.txt pivot pivot/y pivot/y/b.txt pivot/y/c.txt \
         w w/rel w/rel/x w/rel/x/y w/rel/x/y/b.txt w/rel/x/y/c.txt ' \
         && test \"$(cat /parents/y/a.txt)\" = y \
         && test \"$(stat -c %a /keys/usr/share/keys /keys/usr/share/keys/b | tr '\\n' ' ')\" = '750 700 '\n"
    );
    build_config(
        &df,
        &[
            ("x/a.txt", "x"),
            ("y/a.txt", "y"),
            ("x/y/b.txt", "b"),
            ("x/y/c.txt", "c"),
            ("src/a/package.json", "{}"),
            ("src/b/c/package.json", "{}"),
            ("src/b/other.json", "{}"),
        ],
    );
}

#[test]
fn builder_cov_copy_from_takes_wildcards_in_any_component() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    // BuildKit's own `--parents` example copies `/usr/**/keys` from a stage;
    // a wildcard before the last component used to find nothing.
    let df = format!(
        "FROM {base} AS st\n\
         RUN mkdir -p /usr/share/keys/a /usr/lib/keys && touch /usr/share/keys/a/k1 /usr/lib/keys/k2\n\
         FROM {base}\n\
         COPY --from=st /usr/*/keys /flat/\n\
         COPY --parents --from=st /usr/**/keys /tree/\n\
         RUN test \"$(cd / && find flat tree -type f | sort | tr '\\n' ' ')\" = \
         'flat/a/k1 flat/k2 tree/usr/lib/keys/k2 tree/usr/share/keys/a/k1 '\n"
    );
    build_config(&df, &[]);
}

#[test]
fn builder_cov_copy_parents_takes_only_a_boolean() {
    let text = build_fails("FROM scratch\nCOPY --parents=yes a /a\n");
    assert!(text.contains("Dockerfile:2"), "{text}");
    assert!(
        text.contains("COPY --parents=yes: expected true or false"),
        "{text}"
    );
}

#[test]
fn builder_cov_copy_exclude_leaves_out_matching_files() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    // Patterns match a source by its name and, inside a directory source,
    // relative to that directory; a matching directory goes with its files.
    let df = format!(
        "FROM {base} AS st
RUN mkdir -p /s && touch /s/keep.txt /s/drop.md
         FROM {base}
ARG PAT=*.md
         COPY --exclude=$PAT --exclude=skip docs home* /out/
         COPY --from=st --exclude=*.md /s /st/
         RUN cd /out && test \"$(find . | sort | tr '\\n' ' ')\" = '. ./a.txt ./home.txt ./sub ./sub/b.txt ' \
         && test -f /st/keep.txt && test ! -e /st/drop.md\n"
    );
    build_config(
        &df,
        &[
            ("docs/a.txt", "a"),
            ("docs/a.md", "a"),
            ("docs/skip/c.txt", "c"),
            ("docs/sub/b.txt", "b"),
            ("home.txt", "h"),
            ("home.md", "h"),
        ],
    );
}

#[test]
fn builder_cov_whole_file_is_checked_before_any_step_runs() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    // Line 2 would print marker-42; lines 5 and 7 are unsupported. The
    // build lists both lines and runs nothing.
    let text = build_fails(&format!(
        "FROM {base} AS first\nRUN echo marker-$((40+2))\nFROM {base}\nCOPY --from=first /bin/sh /sh\n\
         RUN --security=insecure true\nENV A=1\nRUN --mount=type=ssh true\n"
    ));
    assert!(!text.contains("marker-42"), "a RUN ran:\n{text}");
    assert!(text.contains("Dockerfile:5"), "{text}");
    assert!(text.contains("Dockerfile:7"), "{text}");
    assert!(text.contains("RUN --mount"), "{text}");
    let five = text.find("Dockerfile:5").unwrap();
    let seven = text.find("Dockerfile:7").unwrap();
    assert!(five < seven, "listed in file order:\n{text}");
}

#[test]
fn builder_cov_unneeded_stage_is_not_checked() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    // A stage the target does not need may use what the builder refuses.
    build_config(
        &format!("FROM {base} AS other\nRUN --mount=type=ssh true\nFROM {base}\nENV A=1\n"),
        &[],
    );
}

#[test]
fn builder_cov_copy_from_names_a_stage_through_a_stage_arg() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    // The stage ARG (not a global one) names the stage `--from` copies
    // from; that stage must be built first.
    build_config(
        &format!(
            "FROM {base} AS src\nRUN echo from-src > /f\n\
             FROM {base}\nARG SRC=src\nENV OTHER=unused\nCOPY --from=${{SRC}} /f /f\n\
             RUN grep -q from-src /f\n"
        ),
        &[],
    );
}

#[test]
fn builder_cov_heredocs_in_run_and_copy() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    // Each RUN fails the build unless the heredoc did what the Dockerfile
    // frontend documents.
    let df = format!(
        "FROM {base}\nARG NAME=world\n\
         RUN <<EOF\nset -e\necho \"hello $NAME\" > /run1\n# a comment line in the script\ntest -f /run1\nEOF\n\
         RUN <<-EOF\n\techo tabs > /run2\n\tEOF\n\
         RUN cat <<A > /multi && cat <<'B' >> /multi\nfirst $NAME\nA\nsecond $NAME\nB\n\
         COPY <<EOF /etc/greeting\nhi ${{NAME}}, don't\nEOF\n\
         COPY <<\"RAW\" <<two.txt /docs/\nkeep $NAME\nRAW\nsecond file\ntwo.txt\n\
         RUN test \"$(cat /run1)\" = 'hello world' && test \"$(cat /run2)\" = tabs \
         && test \"$(cat /multi)\" = \"$(printf 'first world\\nsecond $NAME')\" \
         && test \"$(cat /etc/greeting)\" = \"hi world, don't\" \
         && test \"$(cat /docs/RAW)\" = 'keep $NAME' && test \"$(cat /docs/two.txt)\" = 'second file' \
         && test \"$(stat -c %a /etc/greeting)\" = 644\n"
    );
    build_config(&df, &[]);
    // A script with a #! line is refused by name, before anything runs.
    let text = build_fails(&format!(
        "FROM {base}\nRUN echo marker-$((40+2))\nRUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\n"
    ));
    assert!(text.contains("Dockerfile:3"), "{text}");
    assert!(text.contains("#! line"), "{text}");
    assert!(!text.contains("marker-42"), "{text}");
}
