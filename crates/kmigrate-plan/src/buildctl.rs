//! `buildctl build` / `buildctl-daemonless.sh build` flags read back into a
//! [`BuildPlan`]: the inverse of what GitLab's rootless BuildKit target
//! writes (`platform::gitlab::target::buildctl_words`), so the rewrite's
//! safety net and `verify` read those builds too.

use crate::plan::{AttrList, BuildArg, BuildPlan};

/// Parses the words after `buildctl build` (the Dockerfile frontend).
pub fn parse(words: &[String]) -> Result<BuildPlan, String> {
    let mut plan = BuildPlan::default();
    let mut dockerfile_dir: Option<String> = None;
    let mut filename: Option<String> = None;
    let mut context: Option<String> = None;
    let mut it = words.iter();
    while let Some(flag) = it.next() {
        let (flag, inline) = match flag.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (flag.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("buildctl: `{flag}` needs a value"))
        };
        match flag {
            "--frontend" => {
                let f = value()?;
                if f != "dockerfile.v0" {
                    return Err(format!(
                        "buildctl: frontend `{f}` is not the Dockerfile one"
                    ));
                }
            }
            "--local" => {
                let v = value()?;
                match v.split_once('=') {
                    Some(("context", p)) => context = Some(p.to_string()),
                    Some(("dockerfile", p)) => dockerfile_dir = Some(p.to_string()),
                    _ => return Err(format!("buildctl: `--local {v}` is not read")),
                }
            }
            "--opt" => {
                let v = value()?;
                let (k, val) = v.split_once('=').unwrap_or((v.as_str(), ""));
                if let Some(arg) = k.strip_prefix("build-arg:") {
                    plan.build_args.push(BuildArg {
                        name: arg.to_string(),
                        value: Some(val.to_string()),
                    });
                } else if let Some(label) = k.strip_prefix("label:") {
                    plan.labels.push((label.to_string(), val.to_string()));
                } else {
                    match k {
                        "filename" => filename = Some(val.to_string()),
                        "target" => plan.target = Some(val.to_string()),
                        "platform" => plan
                            .platforms
                            .extend(val.split(',').filter(|p| !p.is_empty()).map(String::from)),
                        _ => return Err(format!("buildctl: `--opt {v}` is not read")),
                    }
                }
            }
            "--secret" => plan.secrets.push(value()?),
            "--output" | "-o" => {
                // Image names are buildx's `--tag`s, whichever exporter
                // carries them (image, docker or OCI tarball).
                let mut out = AttrList::parse(&value()?);
                if let Some(names) = out.get("name") {
                    for n in names.split(',').filter(|n| !n.is_empty()) {
                        if !plan.tags.iter().any(|t| t == n) {
                            plan.tags.push(n.to_string());
                        }
                    }
                }
                out.attrs.retain(|(k, _)| k != "name");
                plan.outputs.push(out);
            }
            "--export-cache" => plan.cache_to.push(AttrList::parse(&value()?)),
            "--import-cache" => plan.cache_from.push(AttrList::parse(&value()?)),
            "--metadata-file" => plan.metadata_file = Some(value()?),
            other => return Err(format!("buildctl: `{other}` is not read")),
        }
    }
    plan.context = context.ok_or("buildctl: no `--local context=…`")?;
    let dir = dockerfile_dir.unwrap_or_else(|| plan.context.clone());
    let name = filename.unwrap_or_else(|| "Dockerfile".into());
    plan.dockerfile = Some(format!("{}/{name}", dir.trim_end_matches('/')));
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn reads_what_the_buildkit_target_writes() {
        let p = parse(&words(
            "--frontend dockerfile.v0 --local context=app --local dockerfile=app/docker --opt filename=Dockerfile.prod --opt target=release --opt build-arg:A=1 --opt label:k=v --opt platform=linux/amd64,linux/arm64 --secret id=s,env=S --output type=image,name=r/a:1,push=true --export-cache type=registry,ref=r/c:b,mode=max --import-cache type=registry,ref=r/c:b",
        ))
        .unwrap();
        assert_eq!(p.context, "app");
        assert_eq!(p.dockerfile.as_deref(), Some("app/docker/Dockerfile.prod"));
        assert_eq!(p.target.as_deref(), Some("release"));
        assert_eq!(p.build_args[0].to_string(), "A=1");
        assert_eq!(p.labels, [("k".to_string(), "v".to_string())]);
        assert_eq!(p.platforms, ["linux/amd64", "linux/arm64"]);
        assert_eq!(p.secrets, ["id=s,env=S"]);
        assert_eq!(p.tags, ["r/a:1"]);
        assert_eq!(p.outputs[0].to_string(), "type=image,push=true");
        assert_eq!(p.cache_to[0].get("mode"), Some("max"));
        assert_eq!(p.cache_from[0].get("ref"), Some("r/c:b"));
    }

    #[test]
    fn several_names_and_unknown_flags() {
        let p = parse(&[
            "--local".to_string(),
            "context=.".into(),
            "--output".into(),
            "type=image,\"name=r/a:1,r/a:latest\",push=false".into(),
        ])
        .unwrap();
        assert_eq!(p.tags, ["r/a:1", "r/a:latest"]);
        let tar = parse(&words(
            "--local context=. --output type=docker,dest=i.tar,name=r/a:1",
        ))
        .unwrap();
        assert_eq!(tar.tags, ["r/a:1"]);
        assert_eq!(tar.outputs[0].to_string(), "type=docker,dest=i.tar");
        assert_eq!(p.dockerfile.as_deref(), Some("./Dockerfile"));
        assert!(parse(&words("--local context=. --frobnicate")).is_err());
        assert!(parse(&words("--frontend gateway.v0 --local context=.")).is_err());
        assert!(parse(&words("--opt target=x")).is_err());
    }
}
