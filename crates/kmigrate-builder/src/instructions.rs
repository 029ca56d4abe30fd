//! One function per metadata instruction (ENV, LABEL, WORKDIR, ...), each
//! applying its instruction to the stage's config and returning the step's
//! text when it differs from the instruction as written; and helpers for
//! RUN's environment and command line, ARG declarations, HEALTHCHECK.

use std::collections::BTreeMap;

use super::dockerfile::{Args, Dockerfile, Instruction};
use super::engine::{R, Step};
use super::image::RunConfig;
use super::words;

/// ENV: sets the pairs; the text shows them expanded.
pub(crate) fn env(step: &Step, cfg: &mut RunConfig) -> R<String> {
    let pairs = words::parse_pairs(&step.expand(&step.ins.rest)?).map_err(|e| step.err(e))?;
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
pub(crate) fn label(step: &Step, cfg: &mut RunConfig) -> R<Option<String>> {
    for (k, v) in words::parse_pairs(&step.expand(&step.ins.rest)?).map_err(|e| step.err(e))? {
        cfg.labels.insert(k, v);
    }
    Ok(None)
}

pub(crate) fn maintainer(step: &Step, cfg: &mut RunConfig) -> Option<String> {
    cfg.labels
        .insert("maintainer".into(), step.ins.rest.clone());
    None
}

/// WORKDIR: relative to the current one, cleaned; the text shows the result.
pub(crate) fn workdir(step: &Step, cfg: &mut RunConfig) -> R<String> {
    let w = step.expand(&step.ins.rest)?;
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

pub(crate) fn user(step: &Step, cfg: &mut RunConfig) -> R<String> {
    let u = step.expand(&step.ins.rest)?;
    let text = format!("USER {u}");
    cfg.user = Some(u);
    Ok(text)
}

/// EXPOSE: a port without a protocol is TCP.
pub(crate) fn expose(step: &Step, cfg: &mut RunConfig) -> R<Option<String>> {
    for p in words::split_words(&step.expand(&step.ins.rest)?) {
        let p = if p.contains('/') {
            p
        } else {
            format!("{p}/tcp")
        };
        cfg.exposed_ports.insert(p, serde_json::json!({}));
    }
    Ok(None)
}

pub(crate) fn volume(step: &Step, cfg: &mut RunConfig) -> R<Option<String>> {
    let vols = match &step.ins.args {
        Args::Json(v) => v.clone(),
        Args::Shell(s) => words::split_words(&step.expand(s)?),
    };
    for v in vols {
        cfg.volumes.insert(v, serde_json::json!({}));
    }
    Ok(None)
}

pub(crate) fn stop_signal(step: &Step, cfg: &mut RunConfig) -> R<Option<String>> {
    cfg.stop_signal = Some(step.expand(&step.ins.rest)?);
    Ok(None)
}

pub(crate) fn cmd(step: &Step, cfg: &mut RunConfig) -> Option<String> {
    cfg.cmd = Some(as_cmd(cfg, &step.ins.args));
    None
}

/// ENTRYPOINT: also clears an inherited CMD, as Docker does.
pub(crate) fn entrypoint(step: &Step, cfg: &mut RunConfig) -> Option<String> {
    cfg.entrypoint = Some(as_cmd(cfg, &step.ins.args));
    cfg.cmd = None;
    None
}

pub(crate) fn shell(step: &Step, cfg: &mut RunConfig) -> R<Option<String>> {
    match &step.ins.args {
        Args::Json(v) if !v.is_empty() => cfg.shell = Some(v.clone()),
        _ => {
            return Err(
                step.err("SHELL requires the JSON form: SHELL [\"executable\", \"parameters\"]")
            );
        }
    }
    Ok(None)
}

/// ONBUILD: kept in the config for images built from this one.
pub(crate) fn on_build(step: &Step, cfg: &mut RunConfig) -> Option<String> {
    cfg.on_build.push(step.ins.rest.clone());
    None
}

pub(crate) fn healthcheck_step(step: &Step, cfg: &mut RunConfig) -> R<Option<String>> {
    let shell = default_shell(cfg);
    cfg.healthcheck = Some(healthcheck(step.ins, &shell).map_err(|e| step.err(e))?);
    Ok(None)
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

pub(crate) fn parse_arg(
    df: &Dockerfile,
    ins: &Instruction,
    vars: &BTreeMap<String, String>,
) -> R<Vec<(String, Option<String>)>> {
    let mut out = Vec::new();
    for w in words::split_words(&ins.rest) {
        match w.split_once('=') {
            Some((k, v)) => {
                let v = words::expand(v, vars).map_err(|e| Box::new(df.error_at(ins, e)))?;
                out.push((k.to_string(), Some(v)));
            }
            None => out.push((w, None)),
        }
    }
    if out.is_empty() {
        return Err(Box::new(df.error_at(ins, "ARG requires a name")).into());
    }
    Ok(out)
}

pub(crate) fn parse_duration(s: &str) -> Result<u64, String> {
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1_000_000u64)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1_000_000_000)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000_000_000)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3_600_000_000_000)
    } else {
        return Err(format!("invalid duration {s:?}"));
    };
    let v: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    Ok((v * mult as f64) as u64)
}

pub(crate) fn healthcheck(
    ins: &Instruction,
    shell: &[String],
) -> Result<serde_json::Value, String> {
    let rest = ins.rest.trim();
    if rest.eq_ignore_ascii_case("NONE") {
        return Ok(serde_json::json!({"Test": ["NONE"]}));
    }
    let body = rest
        .strip_prefix("CMD")
        .or_else(|| rest.strip_prefix("cmd"))
        .ok_or("HEALTHCHECK needs CMD or NONE")?
        .trim();
    let test: Vec<String> = match serde_json::from_str::<Vec<String>>(body) {
        Ok(v) => std::iter::once("CMD".to_string()).chain(v).collect(),
        Err(_) => {
            let _ = shell;
            vec!["CMD-SHELL".into(), body.into()]
        }
    };
    let mut hc = serde_json::json!({ "Test": test });
    for (k, v) in &ins.flags {
        let v = v.clone().unwrap_or_default();
        let key = match k.as_str() {
            "interval" => "Interval",
            "timeout" => "Timeout",
            "start-period" => "StartPeriod",
            "start-interval" => "StartInterval",
            "retries" => {
                hc["Retries"] = serde_json::json!(
                    v.parse::<u64>()
                        .map_err(|_| format!("invalid --retries {v:?}"))?
                );
                continue;
            }
            o => return Err(format!("unknown HEALTHCHECK flag --{o}")),
        };
        hc[key] = serde_json::json!(parse_duration(&v)?);
    }
    Ok(hc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_env() {
        assert_eq!(parse_duration("30s").unwrap(), 30_000_000_000);
        assert_eq!(parse_duration("1m").unwrap(), 60_000_000_000);
        assert!(parse_duration("3").is_err());
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
