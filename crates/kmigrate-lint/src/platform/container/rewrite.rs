//! A Kaniko container rewritten to rootless BuildKit: the image, the
//! `buildctl-daemonless.sh build` call (as `command`/`args`, or a Tekton
//! `script:` when the digest must be written to a file afterwards), the
//! environment and `securityContext` the rootless daemon needs; and the
//! reverse reading of such a container, which the safety net and `verify`
//! use.

use std::ops::Range;

use super::{BUILDKIT_ROOTLESS, Container, Entry};
use crate::buildx::BuildPlan;
use crate::platform::gitlab::target::buildctl_words;
use crate::rules::Edit;
use crate::shell;
use crate::source::render::{Quote, scalar};
use crate::source::{Node, Value};

/// The flag that lets rootless BuildKit run without a process sandbox,
/// which an unprivileged pod cannot create.
const NO_SANDBOX: &str = "--oci-worker-no-process-sandbox";

/// Where the migrated container writes its image digest, when Kaniko wrote
/// one with `--digest-file`.
pub struct DigestFile<'a> {
    /// The file Kaniko wrote (e.g. `$(results.IMAGE_DIGEST.path)`).
    pub path: &'a str,
    /// buildctl's metadata file, which holds `containerimage.digest`.
    pub metadata: &'a str,
}

/// The words of `buildctl_words` as the program receives them (quotes
/// removed; substitutions such as `$(params.IMAGE)` kept as written).
pub fn raw_words(shell_words: &[String]) -> Result<Vec<String>, String> {
    let text = shell_words.join(" ");
    let parsed = shell::parse(&text);
    match parsed.commands.as_slice() {
        [cmd] if cmd.words.len() == shell_words.len() => Ok(cmd
            .words
            .iter()
            .map(|w| w.literal().unwrap_or_else(|| shell::unescape_dq(&w.dq)))
            .collect()),
        _ => Err("the buildctl command does not read back as one command".into()),
    }
}

/// The column `offset` is at, when only spaces precede it on its line.
fn block_column(text: &str, offset: usize) -> Option<usize> {
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let before = &text[line_start..offset];
    before.bytes().all(|b| b == b' ').then_some(before.len())
}

/// The whole lines an entry is written on (with their line break).
fn entry_lines(text: &str, e: &Entry) -> Option<Range<usize>> {
    block_column(text, e.span.start)?;
    let start = text[..e.span.start].rfind('\n').map_or(0, |i| i + 1);
    let end = text[e.span.end..]
        .find('\n')
        .map_or(text.len(), |i| e.span.end + i + 1);
    Some(start..end)
}

/// A YAML list of `items` under a key at `col`.
fn block_list(key: &str, items: &[String], col: usize) -> String {
    let pad = " ".repeat(col);
    let mut s = format!("{key}:");
    for i in items {
        s.push_str(&format!("\n{pad}  - {}", scalar(i, Quote::Plain, false)));
    }
    s
}

/// The `script:` that runs the build, then copies the digest from the
/// metadata file to the file Kaniko wrote it to.
fn script_block(words: &[String], digest: &DigestFile, col: usize) -> String {
    let pad = " ".repeat(col + 2);
    let mut s = format!(
        "script: |\n{pad}#!/bin/sh\n{pad}set -e\n{pad}{} {}",
        words[0], words[1]
    );
    let mut i = 2;
    while i < words.len() {
        let flag = &words[i];
        match words.get(i + 1) {
            Some(v) if flag.starts_with("--") && !v.starts_with("--") => {
                s.push_str(&format!(" \\\n{pad}  {flag} {v}"));
                i += 2;
            }
            _ => {
                s.push_str(&format!(" \\\n{pad}  {flag}"));
                i += 1;
            }
        }
    }
    s.push_str(&format!(
        "\n{pad}sed -n 's/.*\"containerimage.digest\": *\"\\([^\"]*\\)\".*/\\1/p' \"{}\" | tr -d '\\n' > \"{}\"",
        digest.metadata, digest.path
    ));
    s
}

/// Whether `p` means the same inside double quotes: no quote, backslash or
/// backquote, and `$` only as a Tekton `$(…)` substitution (replaced in the
/// text before the shell reads it).
fn safe_in_quotes(p: &str) -> bool {
    !p.contains(['"', '\\', '`'])
        && p.match_indices('$')
            .all(|(i, _)| p[i + 1..].starts_with('('))
}

/// The env items the rootless daemon needs (and Kaniko's credentials
/// directory, when a volume is mounted there).
fn env_items(c: &Container) -> Vec<(&'static str, &'static str)> {
    let mut v = vec![("BUILDKITD_FLAGS", NO_SANDBOX)];
    if c.mounts_kaniko_docker {
        v.push(("DOCKER_CONFIG", "/kaniko/.docker"));
    }
    v
}

fn security_block(col: usize) -> String {
    let pad = " ".repeat(col);
    format!(
        "securityContext:\n{pad}  # rootless BuildKit: its user, and the unconfined profiles it needs to create namespaces\n{pad}  runAsUser: 1000\n{pad}  runAsGroup: 1000\n{pad}  seccompProfile:\n{pad}    type: Unconfined\n{pad}  appArmorProfile:\n{pad}    type: Unconfined"
    )
}

/// The edits that turn container `c` (whose Kaniko call converted to
/// `plan`) into a rootless BuildKit container. `digest`: write the digest
/// file after the build (a `script:`, Tekton only).
pub fn edits(
    text: &str,
    c: &Container,
    plan: &BuildPlan,
    digest: Option<&DigestFile>,
    keep_workdir: bool,
) -> Result<Vec<Edit>, String> {
    let layout = "kmigrate rewrites block-style containers only; this one is written in flow style";
    if c.map.flow {
        return Err(layout.into());
    }
    let image = c.image.ok_or("the container has no `image:`")?;
    let col = block_column(text, image.span.start).ok_or(layout)?;
    let anchor = c.args.or(c.command).ok_or("the container has no `args:`")?;
    block_column(text, anchor.span.start).ok_or(layout)?;
    let words = raw_words(&buildctl_words(plan)?)?;
    let pad = " ".repeat(col);
    let mut body = match digest {
        Some(d) => {
            for p in [d.path, d.metadata] {
                if !safe_in_quotes(p) {
                    return Err(format!(
                        "the digest file `{p}` cannot be written in a double-quoted shell word as it is"
                    ));
                }
            }
            script_block(&buildctl_words(plan)?, d, col)
        }
        None => format!(
            "{}\n{pad}{}",
            block_list("command", &words[..1], col),
            block_list("args", &words[1..], col)
        ),
    };
    let mut edits = vec![Edit::replace(image.value.span.clone(), BUILDKIT_ROOTLESS)];
    let env = env_items(c);
    match c.env {
        None => {
            body.push_str(&format!("\n{pad}env:"));
            for (k, v) in &env {
                body.push_str(&format!(
                    "\n{pad}  - name: {k}\n{pad}    value: {}",
                    scalar(v, Quote::Plain, false)
                ));
            }
        }
        Some(e) => {
            let Value::Seq(seq) = &e.value.value else {
                return Err("`env:` is not a list".into());
            };
            let last = seq.items.last().ok_or("`env:` is empty")?;
            let item_col = block_column(text, last.span.start).ok_or(layout)?;
            if seq.flow {
                return Err(layout.into());
            }
            let ipad = " ".repeat(item_col);
            let mut add = String::new();
            for (k, v) in &env {
                if seq
                    .items
                    .iter()
                    .any(|i| i.node.get("name").and_then(Node::as_str) == Some(k))
                {
                    return Err(format!("`env:` already sets {k}"));
                }
                add.push_str(&format!(
                    "\n{ipad}- name: {k}\n{ipad}  value: {}",
                    scalar(v, Quote::Plain, false)
                ));
            }
            edits.push(Edit::insert(last.span.end, add));
        }
    }
    // Kaniko's image works in /workspace, BuildKit's in /home/user: a
    // container that relied on the image's directory keeps Kaniko's.
    if keep_workdir && c.working_dir.is_none() {
        body.push_str(&format!("\n{pad}workingDir: /workspace"));
    }
    body.push_str(&format!("\n{pad}{}", security_block(col)));
    // A comment after the replaced list stays, on its own line above.
    let line_end = text[anchor.span.end..]
        .find('\n')
        .map_or(text.len(), |n| anchor.span.end + n);
    let rest = text[anchor.span.end..line_end].trim();
    if rest.starts_with('#') {
        edits.push(Edit::replace(
            anchor.span.start..line_end,
            format!("{rest}\n{pad}{body}"),
        ));
    } else {
        edits.push(Edit::replace(anchor.span.clone(), body));
    }
    for other in [c.command, c.args, c.security, c.script]
        .into_iter()
        .flatten()
    {
        if std::ptr::eq(other, anchor) {
            continue;
        }
        edits.push(Edit::replace(entry_lines(text, other).ok_or(layout)?, ""));
    }
    Ok(edits)
}

/// The build a rootless BuildKit container runs: `buildctl(-daemonless.sh)
/// build` as `command`/`args`, or in its `script:`. `None`: not one.
pub fn buildctl_plan(c: &Container) -> Option<Result<BuildPlan, String>> {
    let list = |e: Option<&Entry>| -> Vec<String> {
        e.and_then(|e| e.value.as_seq())
            .map(|s| {
                s.items
                    .iter()
                    .filter_map(|i| i.node.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let is_buildctl = |w: &str| {
        let base = w.rsplit('/').next().unwrap_or(w);
        matches!(base, "buildctl" | "buildctl-daemonless.sh")
    };
    if let Some(s) = c.script.and_then(|s| s.value.as_str()) {
        for cmd in shell::parse(s).commands {
            let words: Vec<String> = cmd
                .words
                .iter()
                .map(|w| w.literal().unwrap_or_else(|| shell::unescape_dq(&w.dq)))
                .collect();
            if words.first().is_some_and(|w| is_buildctl(w))
                && words.get(1).map(String::as_str) == Some("build")
            {
                return Some(crate::buildx::buildctl::parse(&words[2..]));
            }
        }
        return None;
    }
    let words: Vec<String> = list(c.command).into_iter().chain(list(c.args)).collect();
    if words.first().is_some_and(|w| is_buildctl(w))
        && words.get(1).map(String::as_str) == Some("build")
    {
        return Some(crate::buildx::buildctl::parse(&words[2..]));
    }
    None
}
