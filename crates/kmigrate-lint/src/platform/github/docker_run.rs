//! A `run:` step whose whole script is `docker run … <Kaniko image> …`
//! with the workspace mounted at `/workspace`: the one shape of a hand-run
//! executor that becomes a build-push-action step without guessing. Any
//! other option or mount keeps the step for a human, with why.

use super::detect::RunCall;
use super::workflow::Step;
use crate::buildx::from_kaniko::ConvertOptions;

/// Where the executor image looks for its context and resolves relative
/// paths (its working directory).
pub const KANIKO_WORKDIR: &str = "/workspace";

/// How a `docker run` of the executor sees paths.
pub fn convert_options(cache_tag: &str) -> ConvertOptions<'_> {
    ConvertOptions {
        cache_tag,
        workdir: KANIKO_WORKDIR,
        default_context: KANIKO_WORKDIR,
        local_workdir: None,
    }
}

/// How the workspace root is written as a mount source.
const WORKSPACE: &[&str] = &[
    "$PWD",
    "${PWD}",
    "$(pwd)",
    "`pwd`",
    ".",
    "$GITHUB_WORKSPACE",
    "${GITHUB_WORKSPACE}",
    "${{ github.workspace }}",
    "${{github.workspace}}",
];

/// `docker run` options that change nothing in the build.
const HARMLESS: &[&str] = &["--rm", "-i", "-t", "-it", "-ti", "--interactive", "--tty"];

/// Whether the runner's own Docker credentials are what the mount hands
/// the executor (build-push-action reads the same file).
fn is_runner_docker_config(host: &str, container: &str) -> bool {
    container
        .trim_end_matches('/')
        .starts_with("/kaniko/.docker")
        && ["$HOME/.docker", "${HOME}/.docker", "~/.docker"]
            .iter()
            .any(|h| host.starts_with(h))
}

/// `Ok` when the call can become a build-push-action step, else why not.
pub fn translatable(c: &RunCall, step: &Step) -> Result<(), String> {
    if !c.alone || c.nested {
        return Err("the step's script does more than run the executor".into());
    }
    for key in ["shell", "working-directory"] {
        if step.item.node.get(key).is_some() {
            return Err(format!(
                "the step sets `{key}:`, which a step that uses an action cannot"
            ));
        }
    }
    let mut workspace = false;
    let mut options = c.docker_options.iter();
    while let Some(o) = options.next() {
        if HARMLESS.contains(&o.as_str()) {
            continue;
        }
        let mount = match o.as_str() {
            "-v" | "--volume" => options.next().cloned().unwrap_or_default(),
            _ => match o.strip_prefix("--volume=").or_else(|| o.strip_prefix("-v")) {
                Some(m) if !m.is_empty() => m.to_string(),
                _ => {
                    return Err(format!(
                        "the `docker run` option `{o}` has no build-push-action form"
                    ));
                }
            },
        };
        let parts: Vec<&str> = mount.split(':').collect();
        let (host, container) = match parts.as_slice() {
            [h, c] | [h, c, _] => (*h, *c),
            _ => return Err(format!("the mount `{mount}` is not `SOURCE:TARGET`")),
        };
        let host_root = WORKSPACE.contains(&host.trim_end_matches('/'));
        if host_root && container.trim_end_matches('/') == KANIKO_WORKDIR {
            workspace = true;
        } else if !is_runner_docker_config(host, container) {
            return Err(format!(
                "the mount `{mount}` has no build-push-action form (kmigrate translates the workspace mounted at {KANIKO_WORKDIR} and the runner's Docker credentials)"
            ));
        }
    }
    if !workspace {
        return Err(format!(
            "the workspace is not mounted at {KANIKO_WORKDIR}, so the executor's paths do not name files of the checkout"
        ));
    }
    Ok(())
}
