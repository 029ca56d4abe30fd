//! What GitLab's Buildah target runs for one converted Kaniko call:
//! `buildah build --layers` into the job's local storage, then one
//! `buildah push` per image name (Buildah pushes in a command of its own).
//! The inverse is `crate::buildx::buildah`, read by the safety net and
//! `verify`.

use super::target::word;
use crate::buildx::BuildPlan;
use crate::buildx::from_kaniko::{Conversion, repository_of};
use crate::kaniko::Call;

/// The image the job runs in (pinned: `latest` moves under the job).
pub const DEFAULT_IMAGE: &str = "quay.io/buildah/stable:v1.39.0";

/// Job variables every Buildah job sets: vfs storage and chroot isolation
/// need no privileged container and no `/dev/fuse`; Docker v2 media types
/// are what Kaniko pushed (a call that pushed OCI says `--format oci`).
pub const VARIABLES: [(&str, &str); 3] = [
    ("STORAGE_DRIVER", "vfs"),
    ("BUILDAH_ISOLATION", "chroot"),
    ("BUILDAH_FORMAT", "docker"),
];

/// Says, in the KM011 note of a cached call, that the cache ref lost its
/// tag; the safety net reads it (see `Explained::cache_repository`).
pub const CACHE_NOTE: &str = crate::buildx::from_kaniko::BUILDAH_CACHE_REPOSITORY;

/// The commands (shell words each) that build and push what `conv`
/// describes, or why Buildah cannot do it as kmigrate writes it.
pub fn commands(conv: &Conversion, call: &Call) -> Result<Vec<Vec<String>>, String> {
    let plan = &conv.plan;
    check_supported(conv, call)?;
    let outputs = read_outputs(plan)?;
    let mut out = vec![build_command(plan, outputs.format)?];
    out.extend(local_copies(plan, &outputs)?);
    if outputs.pushes {
        out.extend(push_commands(plan, call)?);
    }
    Ok(out)
}

/// Why Buildah cannot do what `why` says, as the target's error.
fn refuse<T>(why: &str) -> Result<T, String> {
    Err(format!("{why} (Buildah target)"))
}

/// Refuses what the call asks of Kaniko that Buildah has no flag for.
fn check_supported(conv: &Conversion, call: &Call) -> Result<(), String> {
    let plan = &conv.plan;
    if !plan.passthrough.is_empty() {
        return refuse(&format!(
            "`{}` holds flags for Kaniko; Buildah spells them differently",
            plan.passthrough.join(" ")
        ));
    }
    if plan.context.contains("://") {
        return refuse(&format!(
            "the remote context `{}` needs a local checkout for Buildah",
            plan.context
        ));
    }
    if !conv.registry.hosts.is_empty() {
        return refuse(
            "registry mirrors, plain-HTTP or TLS settings belong in the runner's registries.conf and /etc/containers/certs.d",
        );
    }
    if !plan.annotations.is_empty() {
        return refuse("Buildah drops annotations from Docker-format images");
    }
    if plan.platforms.len() > 1 {
        return refuse("a multi-platform build needs `buildah build --manifest`");
    }
    for name in [
        "image-name-with-digest-file",
        "image-name-tag-with-digest-file",
    ] {
        if call.all(name).next().is_some() {
            return refuse(&format!(
                "`--{name}` has no Buildah form (`buildah push --digestfile` writes the bare digest)"
            ));
        }
    }
    Ok(())
}

/// What the plan's outputs ask of Buildah.
struct Outputs<'p> {
    /// `--format`: OCI (`true`) or Docker media types, when an output says.
    format: Option<bool>,
    pushes: bool,
    /// Local destinations (Kaniko's `--tar-path`, `--oci-layout-path`):
    /// Buildah's transport and the path.
    local: Vec<(&'static str, &'p str)>,
}

fn read_outputs(plan: &BuildPlan) -> Result<Outputs<'_>, String> {
    let mut format: Option<bool> = None;
    let mut pushes = plan.push;
    let mut local: Vec<(&'static str, &str)> = Vec::new();
    for o in &plan.outputs {
        match o.kind() {
            Some("cacheonly") => {}
            Some("image") => {
                for (k, v) in &o.attrs {
                    match k.as_str() {
                        "type" => {}
                        "push" => pushes = v == "true",
                        "oci-mediatypes" => format = Some(v == "true"),
                        _ => {
                            return refuse(&format!(
                                "the image attribute `{k}={v}` has no Buildah flag kmigrate writes"
                            ));
                        }
                    }
                }
            }
            Some(kind @ ("docker" | "oci")) => {
                let transport = if kind == "docker" {
                    "docker-archive"
                } else {
                    "oci"
                };
                let plain = match kind {
                    "docker" => o.attrs.len() == 2,
                    _ => o.attrs.len() == 3 && o.get("tar") == Some("false"),
                };
                match o.get("dest") {
                    Some(dest)
                        if plain
                            && !dest.contains(':')
                            && !local.iter().any(|(t, _)| *t == transport) =>
                    {
                        local.push((transport, dest))
                    }
                    _ => {
                        return refuse(&format!(
                            "the output `{o}` has no `buildah push … {transport}:` form kmigrate writes"
                        ));
                    }
                }
            }
            _ => return refuse(&format!("the output `{o}` has no Buildah form")),
        }
    }
    Ok(Outputs {
        format,
        pushes,
        local,
    })
}

/// `buildah build --layers …` for the plan.
fn build_command(plan: &BuildPlan, format: Option<bool>) -> Result<Vec<String>, String> {
    let mut build: Vec<String> = ["buildah", "build", "--layers"].map(String::from).into();
    let mut pair = |flag: &str, value: &str| {
        build.push(flag.to_string());
        build.push(word(value));
    };
    for (caches, flag) in [
        (&plan.cache_from, "--cache-from"),
        (&plan.cache_to, "--cache-to"),
    ] {
        for c in caches {
            match (c.kind(), c.get("ref")) {
                (Some("registry"), Some(r)) => pair(flag, repository_of(r)),
                _ => {
                    return refuse(&format!(
                        "the cache `{c}` is not a registry repository, the only cache Buildah reads"
                    ));
                }
            }
        }
    }
    if let Some(f) = format {
        pair("--format", if f { "oci" } else { "docker" });
    }
    if let Some(f) = &plan.dockerfile {
        pair("--file", f);
    }
    for t in &plan.tags {
        pair("--tag", t);
    }
    for a in &plan.build_args {
        pair("--build-arg", &a.to_string());
    }
    if let Some(t) = &plan.target {
        pair("--target", t);
    }
    for (k, v) in &plan.labels {
        pair("--label", &format!("{k}={v}"));
    }
    for p in &plan.platforms {
        pair("--platform", p);
    }
    for s in &plan.secrets {
        pair("--secret", s);
    }
    build.push(word(&plan.context));
    Ok(build)
}

/// The commands that write the local destinations (`rm` of what Kaniko
/// replaced, then `buildah push` to the transport).
fn local_copies(plan: &BuildPlan, outputs: &Outputs) -> Result<Vec<Vec<String>>, String> {
    let mut out = Vec::new();
    for &(transport, dest) in &outputs.local {
        let [tag] = plan.tags.as_slice() else {
            return refuse(&format!(
                "`buildah push IMAGE {transport}:…` writes one image, and the build has not exactly one destination"
            ));
        };
        if outputs.format.is_some() {
            return refuse("a local copy of an image built with `--format` is not written");
        }
        // Kaniko replaced what it wrote; Buildah refuses an existing Docker
        // archive and adds to an OCI layout's index. A Docker archive names
        // its image, as Kaniko's tarball did.
        let (stale, named) = match transport {
            "docker-archive" => (dest.to_string(), format!("{transport}:{dest}:{tag}")),
            _ => (
                format!("{}/index.json", dest.trim_end_matches('/')),
                format!("{transport}:{dest}"),
            ),
        };
        out.push(vec!["rm".into(), "-f".into(), word(&stale)]);
        out.push(vec![
            "buildah".into(),
            "push".into(),
            word(tag),
            word(&named),
        ]);
    }
    Ok(out)
}

/// One `buildah push` per image name, the first writing Kaniko's digest
/// file.
fn push_commands(plan: &BuildPlan, call: &Call) -> Result<Vec<Vec<String>>, String> {
    if plan.tags.is_empty() {
        return refuse("the build pushes without naming an image");
    }
    // Kaniko's `--digest-file F` is the plan's `F.metadata.json` (the
    // plan's paths are the ones the job sees: `$CI_PROJECT_DIR` kept).
    let digest = plan
        .metadata_file
        .as_deref()
        .filter(|_| call.all("digest-file").next().is_some())
        .map(|m| m.strip_suffix(".metadata.json").unwrap_or(m));
    let mut out = Vec::new();
    for (i, t) in plan.tags.iter().enumerate() {
        let mut push: Vec<String> = vec!["buildah".into(), "push".into()];
        if let (0, Some(d)) = (i, digest) {
            push.push("--digestfile".into());
            push.push(word(d));
        }
        push.push(word(t));
        out.push(push);
    }
    Ok(out)
}

/// The KM011 note of a call whose cache moves to Buildah's: the ref the
/// rewrite names, without its tag.
pub fn cache_note(conv: &Conversion) -> Option<String> {
    let r = conv.cache_ref.as_deref()?;
    Some(format!(
        "{CACHE_NOTE}: `--cache-to`/`--cache-from` name `{}` (the tag of `{r}` is dropped); Buildah stores one tag per cached layer there, so the repository fills with cache tags",
        repository_of(r)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buildx::from_kaniko::{ConvertOptions, convert};
    use crate::kaniko::call::{Arg, parse};

    fn conv(words: &[&str]) -> (Conversion, Call) {
        let call = parse(words.iter().map(|w| Arg::new(*w)).collect());
        let c = convert(
            &call,
            &ConvertOptions {
                cache_tag: "buildcache",
                workdir: "/builds/p",
                default_context: "/workspace/",
                local_workdir: None,
            },
        );
        (c, call)
    }

    fn text(words: &[&str]) -> Result<String, String> {
        let (c, call) = conv(words);
        commands(&c, &call).map(|cmds| {
            cmds.iter()
                .map(|w| w.join(" "))
                .collect::<Vec<_>>()
                .join(" && ")
        })
    }

    #[test]
    fn builds_then_pushes_every_destination() {
        assert_eq!(
            text(&[
                "--context=/builds/p/app",
                "--dockerfile=/builds/p/app/Dockerfile.prod",
                "--destination=$CI_REGISTRY_IMAGE/app:1",
                "--destination=$CI_REGISTRY_IMAGE/app:latest",
                "--cache=true",
                "--build-arg=V=1",
                "--target=release",
                "--label=k=v",
                "--custom-platform=linux/arm64",
                "--digest-file=/builds/p/digest",
            ])
            .unwrap(),
            "buildah build --layers --cache-from \"$CI_REGISTRY_IMAGE/app/cache\" --cache-to \"$CI_REGISTRY_IMAGE/app/cache\" --file app/Dockerfile.prod --tag \"$CI_REGISTRY_IMAGE/app:1\" --tag \"$CI_REGISTRY_IMAGE/app:latest\" --build-arg V=1 --target release --label k=v --platform linux/arm64 app && buildah push --digestfile /builds/p/digest \"$CI_REGISTRY_IMAGE/app:1\" && buildah push \"$CI_REGISTRY_IMAGE/app:latest\""
        );
        // `--tar-path`: a Docker archive naming the image, no push.
        assert_eq!(
            text(&[
                "--context=/builds/p",
                "-d",
                "r.example/a:1",
                "--no-push",
                "--tar-path=/builds/p/a.tar"
            ])
            .unwrap(),
            "buildah build --layers --tag r.example/a:1 . && rm -f /builds/p/a.tar && buildah push r.example/a:1 docker-archive:/builds/p/a.tar:r.example/a:1"
        );
        assert_eq!(
            text(&[
                "--context=/builds/p",
                "-d",
                "r.example/a:1",
                "--oci-layout-path=/builds/p/layout"
            ])
            .unwrap(),
            "buildah build --layers --tag r.example/a:1 . && rm -f /builds/p/layout/index.json && buildah push r.example/a:1 oci:/builds/p/layout && buildah push r.example/a:1"
        );
        // `--no-push`: the image stays in the job.
        assert_eq!(
            text(&[
                "--context=/builds/p",
                "--destination=r.example/a",
                "--no-push"
            ])
            .unwrap(),
            "buildah build --layers --tag r.example/a ."
        );
    }

    /// The plan `buildah build` and its `buildah push` commands describe,
    /// read as the safety net reads them (shell words, then
    /// `crate::buildx::buildah`).
    fn read_back(cmds: &[Vec<String>]) -> crate::buildx::BuildPlan {
        let script: Vec<String> = cmds.iter().map(|w| w.join(" ")).collect();
        let parsed = crate::shell::parse(&script.join(" && "));
        let mut build = None;
        let mut pushes = Vec::new();
        for c in &parsed.commands {
            let words: Vec<String> = c.words.iter().map(|w| w.literal().unwrap()).collect();
            match words.get(1).map(String::as_str) {
                Some("build") => {
                    build = Some(crate::buildx::buildah::parse_build(&words[2..]).unwrap())
                }
                Some("push") => {
                    pushes.push(crate::buildx::buildah::parse_push(&words[2..]).unwrap())
                }
                _ => {} // `rm -f` of a stale tarball
            }
        }
        crate::buildx::buildah::with_pushes(build.unwrap(), &pushes).unwrap()
    }

    /// Every flag of the table carries over into the Buildah commands or
    /// the table says why not (`buildah-reason`); a flag that makes the
    /// Buildah target refuse the job always says why.
    #[test]
    fn every_flag_maps_to_buildah_or_says_why() {
        for spec in &crate::kaniko::FlagTable::get().flags {
            let word = match spec.arity {
                crate::kaniko::Arity::Bool => format!("--{}", spec.name),
                crate::kaniko::Arity::Map => format!("--{}=host.example=/a,/b", spec.name),
                _ => format!("--{}=value.example/x", spec.name),
            };
            // Flags that only tune the cache show with the cache on.
            let mut base = vec!["-d", "reg.example/app"];
            if matches!(spec.name.as_str(), "cache-repo" | "no-push-cache") {
                base.push("--cache");
            }
            let before = text(&base);
            let (c, call) = conv(&[base.as_slice(), &[word.as_str()]].concat());
            let after = commands(&c, &call);
            let said = spec.buildah_reason.is_some();
            if let Ok(cmds) = &after {
                // What the target writes reads back as the same build.
                let differs = crate::buildx::equivalence::differences(
                    &c.plan,
                    &read_back(cmds),
                    &crate::buildx::equivalence::Explained {
                        cache_repository: true,
                        ..Default::default()
                    },
                );
                assert_eq!(differs, [], "{word}: {cmds:?}");
            }
            match (&after, &spec.buildah) {
                _ if c.is_blocked() => assert!(said, "{word}: blocked without a buildah-reason"),
                (Err(e), _) => assert!(said, "{word}: refused ({e}) without a buildah-reason"),
                (Ok(cmds), Some(_)) => {
                    let joined: Vec<String> = cmds.iter().map(|w| w.join(" ")).collect();
                    assert_ne!(
                        Ok(joined.join(" && ")),
                        before,
                        "{word}: `buildah` says it maps"
                    );
                }
                (Ok(_), None) => assert!(said, "{word}: neither maps nor says why"),
            }
        }
    }

    #[test]
    fn what_buildah_cannot_do_is_refused_with_why() {
        for (words, why) in [
            (
                &["-d", "r/a", "-d", "r/b", "--tar-path=/o.tar"][..],
                "docker-archive",
            ),
            (
                &["-d", "r/a", "-d", "r/b", "--oci-layout-path=/o"][..],
                "oci:",
            ),
            (&["-d", "r/a", "--insecure"][..], "registries.conf"),
            (&["-d", "r/a", "--compression=zstd"][..], "compression=zstd"),
            (
                &["-d", "r/a", "--image-name-with-digest-file=/d"][..],
                "--digestfile",
            ),
            (
                &["-d", "r/a", "--cache", "--cache-repo=oci:/c"][..],
                "registry repository",
            ),
        ] {
            let e = text(words).unwrap_err();
            assert!(
                e.contains(why) && e.ends_with("(Buildah target)"),
                "{words:?}: {e}"
            );
        }
        let (c, _) = conv(&["-d", "r.example/a:1", "--cache"]);
        let note = cache_note(&c).unwrap();
        assert!(
            note.starts_with(CACHE_NOTE) && note.contains("`r.example/a/cache`"),
            "{note}"
        );
    }
}
