//! `buildah build` and `buildah push` read back into a [`BuildPlan`]: the
//! inverse of what GitLab's Buildah target writes
//! (`platform::gitlab::buildah::commands`), so the rewrite's safety net and
//! `verify` read those builds too.
//!
//! Buildah builds into local storage and pushes in a second command, once
//! per image name: a build's plan is complete only with its pushes
//! ([`with_pushes`]).

use crate::plan::{AttrList, BuildArg, BuildPlan};

/// Parses the words after `buildah build` (or `buildah bud`). The plan
/// has no output yet: see [`with_pushes`].
pub fn parse_build(words: &[String]) -> Result<BuildPlan, String> {
    let mut plan = BuildPlan::default();
    let mut context: Option<String> = None;
    let mut layers = false;
    let mut it = words.iter();
    while let Some(word) = it.next() {
        if !word.starts_with('-') || word == "-" {
            if context.replace(word.clone()).is_some() {
                return Err(format!("buildah build: a second context `{word}`"));
            }
            continue;
        }
        let (flag, inline) = match word.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (word.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("buildah build: `{flag}` needs a value"))
        };
        match flag {
            "--layers" => layers = inline.as_deref().is_none_or(|v| v == "true"),
            "-f" | "--file" => plan.dockerfile = Some(value()?),
            "-t" | "--tag" => plan.tags.push(value()?),
            "--build-arg" => plan.build_args.push(BuildArg::parse(&value()?)),
            "--target" => plan.target = Some(value()?),
            "--label" => {
                let v = value()?;
                let (k, val) = v.split_once('=').unwrap_or((v.as_str(), ""));
                plan.labels.push((k.to_string(), val.to_string()));
            }
            "--annotation" => plan.annotations.push(value()?),
            "--platform" => plan.platforms.extend(
                value()?
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(String::from),
            ),
            "--secret" => plan.secrets.push(value()?),
            // Buildah's registry cache is a repository (one tag per layer);
            // written as buildx's `type=registry` with Buildah's ref.
            "--cache-to" => plan.cache_to.push(AttrList::new([
                ("type", "registry"),
                ("ref", value()?.as_str()),
                ("mode", "max"),
            ])),
            "--cache-from" => plan.cache_from.push(AttrList::new([
                ("type", "registry"),
                ("ref", value()?.as_str()),
            ])),
            // The image's media types: what buildx's exporter calls
            // `oci-mediatypes` (Docker v2 by default, as Kaniko pushed).
            "--format" => {
                let f = value()?;
                let oci = match f.as_str() {
                    "oci" => true,
                    "docker" => false,
                    _ => return Err(format!("buildah build: `--format {f}` is not read")),
                };
                plan.outputs.push(AttrList::new([
                    ("type", "image"),
                    ("oci-mediatypes", oci.to_string().as_str()),
                ]));
            }
            other => return Err(format!("buildah build: `{other}` is not read")),
        }
    }
    if (!plan.cache_to.is_empty() || !plan.cache_from.is_empty()) && !layers {
        return Err("buildah build: `--cache-to`/`--cache-from` need `--layers`".into());
    }
    plan.context = context.ok_or("buildah build: no context")?;
    Ok(plan)
}

/// One `buildah push`: the local image it pushes and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    pub image: String,
    /// `--digestfile`.
    pub digest_file: Option<String>,
    /// A local destination instead of the registry, as buildx's output:
    /// `docker-archive:PATH[:NAME]` is `type=docker,dest=PATH`,
    /// `oci:DIR[:NAME]` is `type=oci,dest=DIR,tar=false`.
    pub output: Option<AttrList>,
}

/// Parses the words after `buildah push`. Only a push to the registry the
/// image is named after, to a Docker archive or to an OCI layout, is read
/// (the forms the Buildah target writes).
pub fn parse_push(words: &[String]) -> Result<Push, String> {
    let mut positional = Vec::new();
    let mut digest_file = None;
    let mut it = words.iter();
    while let Some(word) = it.next() {
        if !word.starts_with('-') {
            positional.push(word.clone());
            continue;
        }
        let (flag, inline) = match word.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (word.as_str(), None),
        };
        match flag {
            "--digestfile" => {
                digest_file = Some(
                    inline
                        .or_else(|| it.next().cloned())
                        .ok_or("buildah push: `--digestfile` needs a value")?,
                )
            }
            other => return Err(format!("buildah push: `{other}` is not read")),
        }
    }
    match positional.as_slice() {
        [_] => {}
        [image, dest] if dest.strip_prefix("docker://") == Some(image.as_str()) => {}
        [_, dest] if dest.starts_with("docker-archive:") || dest.starts_with("oci:") => {}
        [_, dest] => {
            return Err(format!(
                "buildah push: the destination `{dest}` is not read"
            ));
        }
        _ => return Err("buildah push: expected an image and at most one destination".into()),
    }
    // `TRANSPORT:PATH[:NAME]`: the path ends at the first `:`.
    let path = |rest: &str| rest.split(':').next().unwrap_or(rest).to_string();
    let output = positional.get(1).and_then(|d| {
        if let Some(rest) = d.strip_prefix("docker-archive:") {
            Some(AttrList::new([
                ("type", "docker"),
                ("dest", path(rest).as_str()),
            ]))
        } else {
            let rest = d.strip_prefix("oci:")?;
            Some(AttrList::new([
                ("type", "oci"),
                ("dest", path(rest).as_str()),
                ("tar", "false"),
            ]))
        }
    });
    Ok(Push {
        image: positional.swap_remove(0),
        digest_file,
        output,
    })
}

/// The plan of a build with the pushes that follow it: pushing every tag
/// is buildx's `--push`; no push keeps the image in the job's local
/// storage only (nothing leaves the job but the cache: `type=cacheonly`).
pub fn with_pushes(mut plan: BuildPlan, pushes: &[Push]) -> Result<BuildPlan, String> {
    for p in pushes {
        if !plan.tags.contains(&p.image) {
            return Err(format!(
                "buildah push: `{}` is not a tag of the build before it",
                p.image
            ));
        }
        if let Some(f) = &p.digest_file {
            plan.metadata_file = Some(f.clone());
        }
    }
    let to_registry = |p: &&Push| p.output.is_none();
    let pushed = plan
        .tags
        .iter()
        .filter(|t| pushes.iter().filter(to_registry).any(|p| p.image == **t))
        .count();
    let format = plan.outputs.iter().position(|o| o.kind() == Some("image"));
    let archives: Vec<AttrList> = pushes.iter().filter_map(|p| p.output.clone()).collect();
    // Nothing leaves the job but the cache (an image output carrying the
    // media types stays, with `push=false`, as from_kaniko writes it).
    if pushed == 0 && archives.is_empty() && format.is_none() {
        plan.outputs.push(AttrList::new([("type", "cacheonly")]));
        return Ok(plan);
    }
    plan.outputs.extend(archives);
    if pushed == 0 {
        if let Some(i) = format {
            plan.outputs[i]
                .attrs
                .insert(1, ("push".into(), "false".into()));
        }
    } else if pushed < plan.tags.len() {
        return Err("buildah: only some of the build's tags are pushed".into());
    } else if let Some(i) = format {
        plan.outputs[i]
            .attrs
            .insert(1, ("push".into(), "true".into()));
    } else {
        plan.push = true;
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn reads_what_the_buildah_target_writes() {
        let p = parse_build(&words(
            "--layers --cache-from r/app/cache --cache-to r/app/cache --file app/Dockerfile.prod --tag r/app:1 --tag r/app:latest --build-arg A=1 --target release --label k=v --platform linux/arm64 app",
        ))
        .unwrap();
        assert_eq!(p.context, "app");
        assert_eq!(p.dockerfile.as_deref(), Some("app/Dockerfile.prod"));
        assert_eq!(p.target.as_deref(), Some("release"));
        assert_eq!(p.build_args[0].to_string(), "A=1");
        assert_eq!(p.labels, [("k".to_string(), "v".to_string())]);
        assert_eq!(p.platforms, ["linux/arm64"]);
        assert_eq!(
            p.cache_to[0].to_string(),
            "type=registry,ref=r/app/cache,mode=max"
        );
        assert_eq!(p.cache_from[0].get("ref"), Some("r/app/cache"));
        let pushes = [
            parse_push(&words("--digestfile d.txt r/app:1")).unwrap(),
            parse_push(&words("r/app:latest docker://r/app:latest")).unwrap(),
        ];
        let done = with_pushes(p.clone(), &pushes).unwrap();
        assert!(done.push && done.outputs.is_empty());
        assert_eq!(done.metadata_file.as_deref(), Some("d.txt"));
        // Not pushed: only the cache leaves the job.
        let local = with_pushes(p.clone(), &[]).unwrap();
        assert_eq!(local.outputs[0].to_string(), "type=cacheonly");
        assert!(with_pushes(p, &pushes[..1]).is_err(), "half pushed");
    }

    #[test]
    fn formats_and_refusals() {
        let p = parse_build(&words("--format oci -t r/a .")).unwrap();
        // Kaniko's `--no-push --image-format=oci`, as from_kaniko writes it.
        let local = with_pushes(p.clone(), &[]).unwrap();
        assert_eq!(
            local.outputs[0].to_string(),
            "type=image,push=false,oci-mediatypes=true"
        );
        let p = with_pushes(p, &[parse_push(&words("r/a")).unwrap()]).unwrap();
        assert_eq!(
            p.outputs[0].to_string(),
            "type=image,push=true,oci-mediatypes=true"
        );
        assert!(
            parse_build(&words("--cache-to r/c .")).is_err(),
            "no --layers"
        );
        assert!(parse_build(&words("--squash .")).is_err());
        assert!(parse_build(&words("-t x")).is_err(), "no context");
        assert!(parse_push(&words("r/a dir:/tmp/x")).is_err());
        let oci = parse_push(&words("r/a oci:/tmp/x")).unwrap();
        assert_eq!(
            oci.output.unwrap().to_string(),
            "type=oci,dest=/tmp/x,tar=false"
        );
        // A tarball: buildx's `type=docker` output, the image not pushed.
        let p = parse_build(&words("-t r/a:1 .")).unwrap();
        let tar = parse_push(&words("r/a:1 docker-archive:/out/a.tar:r/a:1")).unwrap();
        assert_eq!(tar.output.as_ref().unwrap().get("dest"), Some("/out/a.tar"));
        let p = with_pushes(p, &[tar]).unwrap();
        assert!(!p.push);
        assert_eq!(p.outputs[0].to_string(), "type=docker,dest=/out/a.tar");
        assert!(parse_push(&words("--tls-verify=false r/a")).is_err());
    }
}
