//! What a migrated GitLab job runs: the rewrite targets, their options,
//! and the shell commands each target emits for a `BuildPlan`.

use crate::buildx::BuildPlan;
use crate::shell::{expansion_len, render_word};

/// Where `kmigrate rewrite` takes a GitLab Kaniko job (defined with the
/// options every command shares, which name it).
pub use crate::options::GitlabTarget as Target;

/// Options of the GitLab rewrite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub target: Target,
    /// Split multi-build jobs (always with `split`; default on with the
    /// other targets, off with `--no-split`).
    pub split: bool,
    /// Docker version of the `docker:<ver>-cli` / `docker:<ver>-dind` pair.
    pub docker_version: String,
    /// Image of the rootless BuildKit target.
    pub buildkit_image: String,
    /// Image of the Buildah target.
    pub buildah_image: String,
    /// Name of the docker-container builder.
    pub builder: String,
    /// Tag given to the registry cache (`<cache repo>:<tag>`).
    pub cache_tag: String,
    /// The maintained Kaniko fork of the fork target (repository).
    pub fork_image: String,
    /// The fork release it pins.
    pub fork_version: String,
}

impl Default for Options {
    fn default() -> Self {
        // The engine's defaults are the one list of them.
        super::options_from(&crate::options::Options::default())
    }
}

impl Options {
    pub fn cli_image(&self) -> String {
        format!("docker:{}-cli", self.docker_version)
    }

    pub fn dind_image(&self) -> String {
        format!("docker:{}-dind", self.docker_version)
    }

    /// The fork image replacing `original` in a job (which needs a shell).
    pub fn fork_job_image(&self, original: &str) -> String {
        crate::kaniko::fork_target().reference(&self.fork_image, &self.fork_version, original, true)
    }

    /// Whether jobs keep the Kaniko executor (they are only split, or moved
    /// to a fork).
    pub fn keeps_kaniko(&self) -> bool {
        matches!(self.target, Target::Split | Target::Fork)
    }
}

/// Shell text for one double-quote-ready value. Attribute lists quote
/// values that hold commas (`"name=a,b"`); those quotes are literal and
/// get a backslash inside the double-quoted word. Expansions (`$(… "…")`,
/// `$[[ inputs.x ]]`) are copied as written: a quote inside one belongs to
/// its own command and must not be escaped.
pub(super) fn word(dq: &str) -> String {
    let mut out = String::with_capacity(dq.len());
    let mut rest = dq;
    while let Some(c) = rest.chars().next() {
        let len = match c {
            '\\' => 1 + rest[1..].chars().next().map_or(0, char::len_utf8),
            '$' | '`' => expansion_len(rest).max(1),
            '"' => {
                out.push('\\');
                1
            }
            _ => c.len_utf8(),
        };
        out.push_str(&rest[..len]);
        rest = &rest[len..];
    }
    // GitLab replaces `$[[ inputs.x ]]` in the file's text before any shell
    // reads it, even where the shell saw single quotes (`'$[[ inputs.x ]]'`
    // reaches here as a literal `\$[[`): keep it interpolable.
    render_word(&out).replace("\\$[[", "$[[")
}

/// The `docker buildx build` words for `plan` (shell text, one word each).
pub fn buildx_words(plan: &BuildPlan) -> Vec<String> {
    let args = plan.to_args();
    // The passed-through words come just before the context, as written:
    // quoting them would stop the shell from splitting the flags they hold.
    let context = usize::from(!plan.context.is_empty());
    let opaque = args.len() - context - plan.passthrough.len()..args.len() - context;
    ["docker", "buildx", "build"]
        .iter()
        .map(|s| s.to_string())
        .chain(args.iter().enumerate().map(|(i, a)| {
            if opaque.contains(&i) {
                a.clone()
            } else {
                word(a)
            }
        }))
        .collect()
}

/// The `buildctl-daemonless.sh build` words for `plan`, or why the plan
/// needs something buildctl has no flag for.
pub fn buildctl_words(plan: &BuildPlan) -> Result<Vec<String>, String> {
    if !plan.annotations.is_empty() {
        return Err(
            "`--annotation` has no buildctl-daemonless.sh equivalent kmigrate writes".into(),
        );
    }
    if !plan.passthrough.is_empty() {
        return Err(format!(
            "`{}` holds flags for buildx; buildctl spells them differently",
            plan.passthrough.join(" ")
        ));
    }
    if plan.context.contains("://") {
        return Err(format!(
            "the remote context `{}` needs a local checkout for buildctl",
            plan.context
        ));
    }
    let mut w: Vec<String> = vec![
        "buildctl-daemonless.sh".into(),
        "build".into(),
        "--frontend".into(),
        "dockerfile.v0".into(),
    ];
    let mut pair = |flag: &str, value: String| {
        w.push(flag.to_string());
        w.push(word(&value));
    };
    pair("--local", format!("context={}", plan.context));
    match &plan.dockerfile {
        None => pair("--local", format!("dockerfile={}", plan.context)),
        Some(f) => {
            let (dir, name) = match f.rfind('/') {
                Some(i) => (if i == 0 { "/" } else { &f[..i] }, &f[i + 1..]),
                None => (".", f.as_str()),
            };
            pair("--local", format!("dockerfile={dir}"));
            if name != "Dockerfile" {
                pair("--opt", format!("filename={name}"));
            }
        }
    }
    if let Some(t) = &plan.target {
        pair("--opt", format!("target={t}"));
    }
    for a in &plan.build_args {
        pair("--opt", format!("build-arg:{a}"));
    }
    for (k, v) in &plan.labels {
        pair("--opt", format!("label:{k}={v}"));
    }
    if !plan.platforms.is_empty() {
        pair("--opt", format!("platform={}", plan.platforms.join(",")));
    }
    for s in &plan.secrets {
        pair("--secret", s.clone());
    }
    if plan.push || (!plan.tags.is_empty() && plan.outputs.is_empty()) {
        pair(
            "--output",
            image_output(&plan.tags, &[("push", &plan.push.to_string())]),
        );
    }
    for o in &plan.outputs {
        if o.get("type") == Some("image") && o.get("name").is_none() {
            let rest: Vec<(&str, &str)> = o
                .attrs
                .iter()
                .filter(|(k, _)| k != "type")
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            pair("--output", image_output(&plan.tags, &rest));
        } else if matches!(o.get("type"), Some("docker" | "oci"))
            && o.get("name").is_none()
            && !plan.tags.is_empty()
        {
            // A tarball names its image as Kaniko's `--tarPath` did (buildx
            // takes the names from `--tag`; buildctl needs them here).
            let mut named = o.clone();
            named.set("name", plan.tags.join(","));
            pair("--output", named.to_string());
        } else {
            pair("--output", o.to_string());
        }
    }
    for c in &plan.cache_to {
        pair("--export-cache", c.to_string());
    }
    for c in &plan.cache_from {
        pair("--import-cache", c.to_string());
    }
    if let Some(m) = &plan.metadata_file {
        pair("--metadata-file", m.clone());
    }
    Ok(w)
}

/// `type=image,"name=a,b",push=true`: BuildKit reads the output as CSV,
/// so a name list is quoted as a whole field.
fn image_output(tags: &[String], attrs: &[(&str, &str)]) -> String {
    let mut fields = vec!["type=image".to_string()];
    match tags {
        [] => {}
        [one] => fields.push(format!("name={one}")),
        many => fields.push(format!("\"name={}\"", many.join(","))),
    }
    fields.extend(attrs.iter().map(|(k, v)| format!("{k}={v}")));
    fields.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> BuildPlan {
        crate::buildx::parse_build_args(
            &[
                "--tag",
                "$CI_REGISTRY_IMAGE/a:1",
                "--tag",
                "$CI_REGISTRY_IMAGE/a:latest",
                "--file",
                "docker/Dockerfile.prod",
                "--cache-from",
                "type=registry,ref=$CI_REGISTRY_IMAGE/a/cache:buildcache",
                "--cache-to",
                "type=registry,ref=$CI_REGISTRY_IMAGE/a/cache:buildcache,mode=max",
                "--build-arg",
                "V=1",
                "--push",
                "--provenance=false",
                ".",
            ]
            .map(String::from),
        )
        .unwrap()
    }

    #[test]
    fn buildx_words_quote_expansions() {
        let w = buildx_words(&plan()).join(" ");
        assert!(
            w.starts_with(
                "docker buildx build --file docker/Dockerfile.prod --tag \"$CI_REGISTRY_IMAGE/a:1\""
            ),
            "{w}"
        );
        assert!(
            w.contains(
                "--cache-to \"type=registry,ref=$CI_REGISTRY_IMAGE/a/cache:buildcache,mode=max\""
            ),
            "{w}"
        );
        assert!(w.ends_with("--push --provenance=false ."), "{w}");
    }

    #[test]
    fn a_tarball_output_names_its_image_for_buildctl() {
        // Kaniko's `--no-push --destination X --tarPath t.tar` wrote a
        // tarball naming X; buildctl names it only in the output itself.
        let tar = crate::buildx::parse_build_args(
            &[
                "--tag",
                "$CI_REGISTRY_IMAGE/a:1",
                "--output",
                "type=docker,dest=image.tar",
                ".",
            ]
            .map(String::from),
        )
        .unwrap();
        let w = buildctl_words(&tar).unwrap().join(" ");
        assert!(
            w.contains("--output \"type=docker,dest=image.tar,name=$CI_REGISTRY_IMAGE/a:1\""),
            "{w}"
        );
    }

    #[test]
    fn passed_through_words_stay_unquoted_before_the_context() {
        let mut p = plan();
        p.passthrough = vec!["$KANIKO_ARGS".into(), "$[[ inputs.args ]]".into()];
        let w = buildx_words(&p).join(" ");
        assert!(w.ends_with(" $KANIKO_ARGS $[[ inputs.args ]] ."), "{w}");
        // A variable that holds the context: no positional of the call's own.
        p.context.clear();
        let w = buildx_words(&p).join(" ");
        assert!(
            w.ends_with("--provenance=false $KANIKO_ARGS $[[ inputs.args ]]"),
            "{w}"
        );
        assert!(
            buildctl_words(&p).is_err(),
            "buildctl spells flags differently"
        );
    }

    #[test]
    fn quotes_inside_expansions_stay_unescaped() {
        // Attribute-list quotes are literal; a quote inside `$(…)` is not.
        assert_eq!(word("\"a,b\""), "\"\\\"a,b\\\"\"");
        assert_eq!(
            word("REV=$(git describe --tags \"$(git rev-list -n1)\")"),
            "\"REV=$(git describe --tags \"$(git rev-list -n1)\")\""
        );
        assert_eq!(
            word("$[[ inputs.image ]]:$[[ inputs.tag ]]"),
            "\"$[[ inputs.image ]]:$[[ inputs.tag ]]\""
        );
        assert_eq!(word("a\\$b\\\"c"), "\"a\\$b\\\"c\"");
        assert_eq!(word("\\$[[ inputs.x ]]"), "\"$[[ inputs.x ]]\"");
    }

    #[test]
    fn buildctl_words_map_every_part() {
        let w = buildctl_words(&plan()).unwrap().join(" ");
        assert_eq!(
            w,
            "buildctl-daemonless.sh build --frontend dockerfile.v0 --local context=. --local dockerfile=docker --opt filename=Dockerfile.prod --opt build-arg:V=1 --output \"type=image,\\\"name=$CI_REGISTRY_IMAGE/a:1,$CI_REGISTRY_IMAGE/a:latest\\\",push=true\" --export-cache \"type=registry,ref=$CI_REGISTRY_IMAGE/a/cache:buildcache,mode=max\" --import-cache \"type=registry,ref=$CI_REGISTRY_IMAGE/a/cache:buildcache\""
        );
        assert_eq!(Target::parse("buildkit"), Some(Target::Buildkit));
        // One list for the CLI, kmigrate.toml and the engine: names the
        // first two never accepted are not targets here either.
        assert_eq!(Target::parse("dind"), None);
        assert_eq!(Target::parse("buildkit-rootless"), None);
        assert_eq!(Target::parse("kaniko"), None);
    }
}
