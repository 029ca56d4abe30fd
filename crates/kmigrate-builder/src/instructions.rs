//! One function per metadata instruction (ARG, ENV, LABEL, WORKDIR, ...),
//! each applying its typed command to the stage's config (ARG: to the
//! stage's args) and returning the step's text when it differs from the
//! instruction as written; and helpers for RUN's environment and command
//! line and HEALTHCHECK's durations.

use std::collections::BTreeMap;

use super::commands::{ArgCmd, Healthcheck, PairsCmd, TextCmd};
use super::dockerfile::Args;
use super::engine::{R, Step};
use super::image::RunConfig;
use super::words;

/// ARG: declares stage args from `--build-arg`, the default, or the global
/// of that name, in that order; `consumed` gets the `--build-arg`s used.
/// The text shows every stage arg with its value.
pub(crate) fn arg(
    step: &Step,
    cmd: &ArgCmd,
    args: &mut BTreeMap<String, String>,
    consumed: &mut Vec<String>,
) -> R<String> {
    let build_args = step.scope.build_args;
    for (k, v) in cmd.expand(&step.vars).map_err(|e| step.err(e))? {
        let val = build_args
            .get(&k)
            .cloned()
            .or(v)
            .or_else(|| step.scope.globals.get(&k).cloned())
            .unwrap_or_default();
        if build_args.contains_key(&k) {
            consumed.push(k.clone());
        }
        args.insert(k, val);
    }
    Ok(format!(
        "ARG {}",
        args.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    ))
}

/// ENV: sets the pairs; the text shows them expanded.
pub(crate) fn env(step: &Step, cmd: &PairsCmd, cfg: &mut RunConfig) -> R<String> {
    let pairs = cmd.expand(&step.vars).map_err(|e| step.err(e))?;
    for (k, v) in &pairs {
        cfg.env_set(k, v);
    }
    Ok(format!(
        "ENV {}",
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    ))
}

/// LABEL: `k=v` pairs, or the legacy `LABEL key value` form.
pub(crate) fn label(step: &Step, cmd: &PairsCmd, cfg: &mut RunConfig) -> R<Option<String>> {
    for (k, v) in cmd.expand(&step.vars).map_err(|e| step.err(e))? {
        cfg.labels.insert(k, v);
    }
    Ok(None)
}

pub(crate) fn maintainer(name: &str, cfg: &mut RunConfig) -> Option<String> {
    cfg.labels.insert("maintainer".into(), name.to_string());
    None
}

/// WORKDIR: relative to the current one, cleaned; the text shows the result.
pub(crate) fn workdir(step: &Step, cmd: &TextCmd, cfg: &mut RunConfig) -> R<String> {
    let w = cmd.expand(&step.vars).map_err(|e| step.err(e))?;
    let cur = cfg.working_dir.clone().unwrap_or_else(|| "/".into());
    let joined = if w.starts_with('/') {
        w
    } else {
        format!("{}/{w}", cur.trim_end_matches('/'))
    };
    let clean = format!("/{}", super::fsutil::clean_components(&joined).join("/"));
    let text = format!("WORKDIR {clean}");
    cfg.working_dir = Some(clean);
    Ok(text)
}

pub(crate) fn user(step: &Step, cmd: &TextCmd, cfg: &mut RunConfig) -> R<String> {
    let u = cmd.expand(&step.vars).map_err(|e| step.err(e))?;
    let text = format!("USER {u}");
    cfg.user = Some(u);
    Ok(text)
}

pub(crate) fn expose(step: &Step, cmd: &TextCmd, cfg: &mut RunConfig) -> R<Option<String>> {
    for p in cmd.ports(&step.vars).map_err(|e| step.err(e))? {
        cfg.exposed_ports.insert(p, serde_json::json!({}));
    }
    Ok(None)
}

pub(crate) fn volume(step: &Step, args: &Args, cfg: &mut RunConfig) -> R<Option<String>> {
    let vols = match args {
        Args::Json(v) => v.clone(),
        Args::Shell(s) => words::split_words(&step.expand(s)?),
    };
    for v in vols {
        cfg.volumes.insert(v, serde_json::json!({}));
    }
    Ok(None)
}

pub(crate) fn stop_signal(step: &Step, cmd: &TextCmd, cfg: &mut RunConfig) -> R<Option<String>> {
    cfg.stop_signal = Some(cmd.expand(&step.vars).map_err(|e| step.err(e))?);
    Ok(None)
}

pub(crate) fn cmd(args: &Args, cfg: &mut RunConfig) -> Option<String> {
    cfg.cmd = Some(as_cmd(cfg, args));
    None
}

/// ENTRYPOINT: also clears an inherited CMD, as Docker does.
pub(crate) fn entrypoint(args: &Args, cfg: &mut RunConfig) -> Option<String> {
    cfg.entrypoint = Some(as_cmd(cfg, args));
    cfg.cmd = None;
    None
}

pub(crate) fn shell(shell: &[String], cfg: &mut RunConfig) -> Option<String> {
    cfg.shell = Some(shell.to_vec());
    None
}

/// ONBUILD: kept in the config for images built from this one.
pub(crate) fn on_build(trigger: &str, cfg: &mut RunConfig) -> Option<String> {
    cfg.on_build.push(trigger.to_string());
    None
}

pub(crate) fn healthcheck(check: &Healthcheck, cfg: &mut RunConfig) -> Option<String> {
    cfg.healthcheck = Some(check.to_config());
    None
}

/// The config's SHELL, else `/bin/sh -c`.
fn default_shell(cfg: &RunConfig) -> Vec<String> {
    cfg.shell
        .clone()
        .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
}

/// The command line of a JSON-form argument, or of a shell-form one run by
/// the config's shell.
pub(crate) fn as_cmd(cfg: &RunConfig, args: &Args) -> Vec<String> {
    match args {
        Args::Json(v) => v.clone(),
        Args::Shell(s) => {
            let mut v = default_shell(cfg);
            v.push(s.clone());
            v
        }
    }
}

/// The environment of a RUN: image env plus build args in scope (env wins),
/// with Docker's default PATH.
pub(crate) fn run_env(cfg: &RunConfig, args: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for e in &cfg.env {
        if let Some((k, v)) = e.split_once('=') {
            out.push((k.into(), v.into()));
        }
    }
    for (k, v) in args {
        if !out.iter().any(|(n, _)| n == k) {
            out.push((k.clone(), v.clone()));
        }
    }
    if !out.iter().any(|(k, _)| k == "PATH") {
        out.push((
            "PATH".into(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_env_has_config_env_over_args_and_a_path() {
        let mut cfg = RunConfig::default();
        cfg.env_set("A", "env");
        let args: BTreeMap<String, String> = [
            ("A".to_string(), "arg".to_string()),
            ("B".into(), "b".into()),
        ]
        .into();
        let env = run_env(&cfg, &args);
        assert!(env.contains(&("A".into(), "env".into())));
        assert!(env.contains(&("B".into(), "b".into())));
        assert!(env.iter().any(|(k, _)| k == "PATH"));
    }
}
