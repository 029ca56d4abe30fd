//! `docker buildx build` flags, parsed with clap so that `kmigrate build` and
//! `verify` (which reads the argv out of a rewritten config) share one parser
//! and one set of error messages.

use clap::Args;

use crate::plan::{AttrList, BuildArg, BuildPlan};

/// The `docker buildx build` flags kmigrate understands. Flags buildx has but
/// a rewritten config never needs are rejected by clap with the flag's name.
#[derive(Debug, Clone, Args, Default)]
pub struct BuildxArgs {
    /// Name of the Dockerfile (default: PATH/Dockerfile).
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub file: Option<String>,
    /// Image name and optionally a tag (name:tag); repeatable.
    #[arg(short = 't', long = "tag", value_name = "NAME")]
    pub tags: Vec<String>,
    /// Build-time variable, NAME=VALUE or NAME (taken from the environment).
    #[arg(long = "build-arg", value_name = "NAME[=VALUE]")]
    pub build_args: Vec<String>,
    /// Target build stage.
    #[arg(long)]
    pub target: Option<String>,
    /// Image metadata label, KEY=VALUE.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Image annotation.
    #[arg(long = "annotation")]
    pub annotations: Vec<String>,
    /// Target platform(s), comma separated.
    #[arg(long = "platform", value_delimiter = ',')]
    pub platforms: Vec<String>,
    /// Output destination (type=image|registry|oci|docker|local|cacheonly,...).
    #[arg(short = 'o', long = "output", value_name = "SPEC")]
    pub outputs: Vec<String>,
    /// Shorthand for --output=type=registry.
    #[arg(long)]
    pub push: bool,
    /// Shorthand for --output=type=docker.
    #[arg(long)]
    pub load: bool,
    /// External cache sources (type=registry,ref=... or type=local,src=...).
    #[arg(long = "cache-from", value_name = "SPEC")]
    pub cache_from: Vec<String>,
    /// Cache export destinations (type=registry,ref=...[,mode=min|max]).
    #[arg(long = "cache-to", value_name = "SPEC")]
    pub cache_to: Vec<String>,
    /// Provenance attestation; `--provenance=false` produces none.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub provenance: Option<String>,
    /// SBOM attestation.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub sbom: Option<String>,
    /// Secret to expose to the build (id=...,src=... or id=...,env=...).
    #[arg(long = "secret")]
    pub secrets: Vec<String>,
    /// Write build result metadata (JSON) to a file.
    #[arg(long = "metadata-file", value_name = "FILE")]
    pub metadata_file: Option<String>,
    /// Builder instance to use.
    #[arg(long)]
    pub builder: Option<String>,
    /// Progress output: auto, plain or quiet.
    #[arg(long)]
    pub progress: Option<String>,
    /// Do not use cache when building the image.
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Always attempt to pull referenced images.
    #[arg(long)]
    pub pull: bool,
    // Read back from a CI file, the words beside the context may be
    // variables passed through as flags (see [`crate::stand_in`]); the help
    // text, which users read, says only what they pass.
    #[arg(
        value_name = "PATH | URL | -",
        required = true,
        num_args = 1..,
        help = "Build context: a directory, `-`, or a URL"
    )]
    pub context: Vec<String>,
}

impl BuildxArgs {
    /// Converts parsed flags into the shared plan.
    pub fn into_plan(self) -> Result<BuildPlan, String> {
        let (context, passthrough) = split_context(self.context)?;
        Ok(BuildPlan {
            context,
            dockerfile: self.file,
            tags: self.tags,
            build_args: self.build_args.iter().map(|a| BuildArg::parse(a)).collect(),
            target: self.target,
            labels: self
                .labels
                .iter()
                .map(|l| match l.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (l.clone(), String::new()),
                })
                .collect(),
            annotations: self.annotations,
            platforms: self.platforms,
            cache_from: self.cache_from.iter().map(|c| AttrList::parse(c)).collect(),
            cache_to: self.cache_to.iter().map(|c| AttrList::parse(c)).collect(),
            outputs: self.outputs.iter().map(|o| AttrList::parse(o)).collect(),
            push: self.push,
            load: self.load,
            provenance: self.provenance,
            sbom: self.sbom,
            secrets: self.secrets,
            metadata_file: self.metadata_file,
            builder: self.builder,
            progress: self.progress,
            no_cache: self.no_cache,
            pull: self.pull,
            passthrough,
        })
    }
}

/// The context among the positional words, and the stand-ins of variables
/// passed through as flags. buildx takes one positional word: the context is
/// the last word that is not a stand-in, or, when every word is one, the
/// first (a variable that holds the context, beside others that hold flags).
fn split_context(words: Vec<String>) -> Result<(String, Vec<String>), String> {
    let at = words
        .iter()
        .rposition(|w| !crate::stand_in::is_word(w))
        .unwrap_or(0);
    let mut passthrough = words;
    let context = passthrough.remove(at);
    if let Some(extra) = passthrough.iter().find(|w| !crate::stand_in::is_word(w)) {
        return Err(format!(
            "error: unexpected argument '{extra}' found: `docker buildx build` takes one context"
        ));
    }
    Ok((context, passthrough))
}

/// Wraps [`BuildxArgs`] so clap can parse a bare argv.
#[derive(Debug, clap::Parser)]
#[command(name = "docker buildx build", no_binary_name = true)]
struct BuildxCommand {
    #[command(flatten)]
    args: BuildxArgs,
}

/// Parses the words after `docker buildx build` into a plan.
///
/// The error is clap's message, which names the offending flag.
pub fn parse_build_args<S: AsRef<str>>(argv: &[S]) -> Result<BuildPlan, String> {
    use clap::Parser;
    BuildxCommand::try_parse_from(argv.iter().map(|s| s.as_ref()))
        .map_err(|e| e.render().to_string().trim().to_string())
        .and_then(|c| c.args.into_plan())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_rewrite_emits_and_renders_it_back() {
        let argv = [
            "--builder",
            "kmigrate",
            "--file",
            "docker/Dockerfile",
            "--tag",
            "r/app:1",
            "--tag",
            "r/app:latest",
            "--build-arg",
            "A=1",
            "--build-arg",
            "B",
            "--target",
            "prod",
            "--label",
            "k=v",
            "--platform",
            "linux/amd64,linux/arm64",
            "--cache-from",
            "type=registry,ref=r/app/cache:buildcache",
            "--cache-to",
            "type=registry,ref=r/app/cache:buildcache,mode=max",
            "--push",
            "--provenance=false",
            ".",
        ];
        let plan = parse_build_args(&argv).unwrap();
        assert_eq!(plan.tags, ["r/app:1", "r/app:latest"]);
        assert_eq!(plan.platforms, ["linux/amd64", "linux/arm64"]);
        assert_eq!(plan.build_args[1].value, None);
        assert_eq!(plan.provenance.as_deref(), Some("false"));
        assert_eq!(plan.to_args(), argv);
    }

    #[test]
    fn short_flags_and_bare_provenance() {
        let plan = parse_build_args(&["-t", "x", "-f", "D", "--provenance", "ctx"]).unwrap();
        assert_eq!(plan.dockerfile.as_deref(), Some("D"));
        assert_eq!(plan.provenance.as_deref(), Some("true"));
        assert_eq!(plan.context, "ctx");
    }

    #[test]
    fn unknown_flag_is_named() {
        let err = parse_build_args(&["--squash", "."]).unwrap_err();
        assert!(err.contains("--squash"), "{err}");
    }
}
