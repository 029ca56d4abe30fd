//! Helpers for individual instructions: the RUN environment, ARG
//! declarations, HEALTHCHECK.

use std::collections::BTreeMap;

use super::dockerfile::{Dockerfile, Instruction};
use super::engine::R;
use super::image::RunConfig;
use super::words;

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
