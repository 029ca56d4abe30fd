//! A Kaniko call turned into a `BuildPlan`, with a note for every flag that
//! does not carry over exactly (research: kaniko-flags.md §1–§2).

use std::ops::Range;
use std::path::Path;

use super::plan::{AttrList, BuildArg, BuildPlan};
use super::registry_config::{RegistryConfig, registry_host};
use crate::kaniko::call::ProblemKind;
use crate::kaniko::{Action, Call, FlagUse};
use crate::rules::Rule;

/// Where the call runs, which decides paths and defaults.
#[derive(Debug, Clone)]
pub struct ConvertOptions<'a> {
    /// Tag given to the registry cache (`<cache repo>:<tag>`).
    pub cache_tag: &'a str,
    /// The directory the build step runs in, as Kaniko saw it
    /// (`/workspace` or `/workspace/<dir>` in Cloud Build).
    pub workdir: &'a str,
    /// Kaniko's context when `--context` is absent.
    pub default_context: &'a str,
    /// The repository directory on disk that `workdir` stands for, when
    /// known: used to resolve the Dockerfile the way Kaniko did.
    pub local_workdir: Option<&'a Path>,
}

/// Severity class of a conversion note; [`NoteKind::rule`] names its rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteKind {
    /// KM010: a flag without effect under buildx was removed.
    Dropped,
    /// KM011: translated or removed, and behaviour may change.
    Changed,
    /// KM012: cannot be translated; the call is left for a human.
    Manual,
    /// KM013: the call was already malformed for Kaniko.
    Malformed,
    /// KM005: `--cache-ttl` needs a registry cleanup policy instead.
    CacheTtl,
}

impl NoteKind {
    /// The rule a note of this kind is reported under, on every platform.
    pub fn rule(self) -> Rule {
        match self {
            NoteKind::Dropped => Rule::Km010,
            NoteKind::Changed => Rule::Km011,
            NoteKind::Manual => Rule::Km012,
            NoteKind::Malformed => Rule::Km013,
            NoteKind::CacheTtl => Rule::Km005,
        }
    }
}

/// Something the user must know about the conversion of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub kind: NoteKind,
    /// The call's args the note is about.
    pub args: Range<usize>,
    pub message: String,
    pub help: Option<String>,
}

/// The result of converting one call.
#[derive(Debug, Clone, Default)]
pub struct Conversion {
    pub plan: BuildPlan,
    pub notes: Vec<Note>,
    /// Registry settings the builder needs (`buildkitd.toml`).
    pub registry: RegistryConfig,
    /// The registry cache ref this build imports and exports, if any.
    pub cache_ref: Option<String>,
}

impl Conversion {
    /// Whether a human must migrate the call (a manual note exists).
    pub fn is_blocked(&self) -> bool {
        self.notes.iter().any(|n| n.kind == NoteKind::Manual)
    }
}

/// Says, in a note, that kmigrate chose the cache repository itself (the
/// destination is a variable): the rewritten ref differs from Kaniko's
/// default by design.
pub const CACHE_REPO_CHOSEN: &str = "cannot be derived from a variable; kmigrate uses";

/// Starts the KM011 note of a cached call under GitLab's Buildah target:
/// its cache ref lost its tag by design (read by `Explained::from_notes`).
/// Words of the KM011 note that says the cache moved to GitHub Actions'
/// cache service (read by [`super::equivalence::Explained`]).
pub const GHA_CACHE_SERVICE: &str = "moves to GitHub Actions' cache service (`type=gha`)";
pub const BUILDAH_CACHE_REPOSITORY: &str = "Buildah's registry cache takes a repository, not a tag";

/// Converts a parsed call.
pub fn convert(call: &Call, opts: &ConvertOptions) -> Conversion {
    let mut out = Conversion::default();
    for p in &call.problems {
        out.notes.push(Note {
            kind: match p.kind {
                ProblemKind::Malformed => NoteKind::Malformed,
                ProblemKind::Unknowable => NoteKind::Manual,
            },
            args: p.args.clone(),
            message: p.message.clone(),
            help: Some(p.help.clone()),
        });
    }
    table_notes(call, &mut out);

    let mut image_attrs: Vec<(String, String)> = Vec::new();
    let context = context(call, opts, &mut out);
    out.plan.dockerfile = dockerfile(call, opts, &context, &mut out);
    out.plan.context = context;
    out.plan.passthrough = call.passthrough.clone();

    out.plan.tags = call
        .values("destination")
        .into_iter()
        .map(String::from)
        .collect();
    let push = !call.enabled("no-push");
    out.plan.build_args = call
        .values("build-arg")
        .into_iter()
        .map(BuildArg::parse)
        .collect();
    out.plan.target = call.value("target").map(String::from);
    out.plan.labels = call
        .values("label")
        .into_iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect();
    out.plan.annotations = call
        .values("annotation")
        .into_iter()
        .map(String::from)
        .collect();
    out.plan.secrets = call
        .values("secret")
        .into_iter()
        .map(String::from)
        .collect();
    if let Some(p) = call.value("custom-platform") {
        out.plan.platforms.push(p.to_string());
    }
    cache(call, opts, &mut out);
    registries(call, &mut out, &mut image_attrs);

    if let Some(c) = call.value("compression") {
        image_attrs.push(("compression".into(), c.to_string()));
        image_attrs.push(("force-compression".into(), "true".into()));
        if c == "zstd" {
            image_attrs.push(("oci-mediatypes".into(), "true".into()));
        }
    }
    if let Some(l) = call.value("compression-level") {
        image_attrs.push(("compression-level".into(), l.to_string()));
    }
    if let Some(f) = call.value("image-format") {
        image_attrs.push(("oci-mediatypes".into(), (f == "oci").to_string()));
    }
    if call.all("reproducible").last().is_some() && call.enabled("reproducible") {
        out.plan
            .build_args
            .push(BuildArg::parse("SOURCE_DATE_EPOCH=0"));
        image_attrs.push(("rewrite-timestamp".into(), "true".into()));
    }

    // Outputs: `--push` alone is the common case; exporter attributes need
    // the explicit `type=image` form.
    if image_attrs.is_empty() {
        out.plan.push = push;
    } else {
        let mut attrs = vec![("type".to_string(), "image".to_string())];
        attrs.push(("push".into(), push.to_string()));
        dedup_attrs(&mut image_attrs);
        attrs.extend(image_attrs);
        out.plan.outputs.push(AttrList { attrs });
    }
    if let Some(p) = call.value("tar-path") {
        out.plan
            .outputs
            .push(AttrList::new([("type", "docker"), ("dest", p)]));
    }
    if let Some(p) = call.value("oci-layout-path") {
        out.plan.outputs.push(AttrList::new([
            ("type", "oci"),
            ("dest", p),
            ("tar", "false"),
        ]));
    }
    if !push && out.plan.outputs.is_empty() {
        out.plan
            .outputs
            .push(AttrList::new([("type", "cacheonly")]));
    }
    if let Some(u) = [
        "digest-file",
        "image-name-with-digest-file",
        "image-name-tag-with-digest-file",
    ]
    .iter()
    .find_map(|n| call.all(n).last())
    {
        let path = u.value.clone().unwrap_or_default();
        out.plan.metadata_file = Some(format!("{path}.metadata.json"));
    }
    // Kaniko pushed a single manifest; buildx would add a provenance
    // attestation and push an index with a different digest.
    out.plan.provenance = Some("false".into());
    out
}

fn dedup_attrs(attrs: &mut Vec<(String, String)>) {
    let mut seen = std::collections::HashSet::new();
    attrs.retain(|(k, _)| seen.insert(k.clone()));
}

/// Notes that come straight from the table (everything except `map`).
fn table_notes(call: &Call, out: &mut Conversion) {
    for u in &call.uses {
        let spec = u.spec;
        let written = written(u);
        let reason = spec.reason.clone().unwrap_or_default();
        let (kind, message) = match spec.action {
            Action::Map => continue,
            Action::MapWarn => (
                NoteKind::Changed,
                format!("`{written}` translated with a change: {reason}"),
            ),
            Action::Drop => (NoteKind::Dropped, format!("`{written}` removed: {reason}")),
            Action::DropWarn => (NoteKind::Changed, format!("`{written}` removed: {reason}")),
            Action::Manual => (
                NoteKind::Manual,
                format!("`{written}` cannot be translated: {reason}"),
            ),
        };
        let kind = match spec.rule {
            Some(Rule::Km005) => NoteKind::CacheTtl,
            _ => kind,
        };
        if kind == NoteKind::CacheTtl {
            continue; // written by `cache`, which knows the cache repository
        }
        // A bool that only restates its default changes nothing.
        if spec.default == u.enabled && u.enabled.is_some() && spec.action != Action::Manual {
            out.notes.push(Note {
                kind: NoteKind::Dropped,
                args: u.args.clone(),
                message: format!("`{written}` removed: it restates Kaniko's default; {reason}"),
                help: None,
            });
            continue;
        }
        out.notes.push(Note {
            kind,
            args: u.args.clone(),
            message,
            help: spec.todo.clone(),
        });
    }
}

fn written(u: &FlagUse) -> String {
    match &u.value {
        Some(v) => format!("{}={v}", u.spelled),
        None => u.spelled.clone(),
    }
}

fn flag_args(call: &Call, name: &str) -> Range<usize> {
    call.all(name)
        .last()
        .map(|u| u.args.clone())
        .unwrap_or(0..0)
}

/// Strips Kaniko's `/workspace` prefix so the path reads as buildx expects it
/// when run from the step's directory.
fn relative_to_workdir(path: &str, workdir: &str) -> String {
    let path = path.trim_end_matches('/');
    let workdir = workdir.trim_end_matches('/');
    if path == workdir || path.is_empty() {
        return ".".into();
    }
    match path.strip_prefix(workdir).and_then(|r| r.strip_prefix('/')) {
        Some(rest) => rest.to_string(),
        None => path.to_string(),
    }
}

fn context(call: &Call, opts: &ConvertOptions, out: &mut Conversion) -> String {
    let raw = call
        .value("context")
        .unwrap_or(opts.default_context)
        .to_string();
    let args = flag_args(call, "context");
    let sub = call.value("context-sub-path");
    let manual = |out: &mut Conversion, why: &str, todo: &str| {
        out.notes.push(Note {
            kind: NoteKind::Manual,
            args: args.clone(),
            message: format!("the context `{raw}` {why}"),
            help: Some(todo.to_string()),
        });
    };
    if let Some(rest) = raw.strip_prefix("git://") {
        let mut parts = rest.split('#');
        let repo = parts.next().unwrap_or_default();
        let refs: Vec<&str> = parts.collect();
        // `#refs/heads/b#sha` names a commit on a branch: the commit is exact.
        let mut fragment = refs.last().map(|r| r.to_string());
        if let Some(branch) = call
            .value("git")
            .and_then(|g| g.split(',').find_map(|kv| kv.strip_prefix("branch=")))
            .filter(|_| fragment.is_none())
        {
            fragment = Some(branch.to_string());
        }
        let mut url = format!("https://{repo}");
        if fragment.is_some() || sub.is_some() {
            url.push('#');
            url.push_str(fragment.as_deref().unwrap_or(""));
            if let Some(s) = sub {
                url.push(':');
                url.push_str(s.trim_matches('/'));
            }
        }
        out.notes.push(Note {
            kind: NoteKind::Changed,
            args,
            message: format!("git context `{raw}` is fetched by BuildKit as `{url}`"),
            help: Some("BuildKit clones over https without Kaniko's GIT_TOKEN/GIT_USERNAME variables; for a private repository pass `--secret id=GIT_AUTH_TOKEN,env=GIT_TOKEN`".into()),
        });
        return url;
    }
    for (prefix, why) in [
        (
            "gs://",
            "is downloaded from Cloud Storage, which buildx cannot read",
        ),
        ("s3://", "is downloaded from S3, which buildx cannot read"),
        (
            "tar://",
            "is a tar archive, which buildx reads only from stdin",
        ),
    ] {
        if raw.starts_with(prefix) {
            manual(
                out,
                why,
                "add a step that fetches and unpacks the context into the workspace, then build that directory",
            );
            return raw;
        }
    }
    if raw.starts_with("https://") || raw.starts_with("http://") {
        if raw.contains(".blob.core.windows.net") {
            manual(
                out,
                "is an Azure blob read with AZURE_STORAGE_ACCESS_KEY, which buildx cannot use",
                "download the context in an earlier step, or use a SAS URL",
            );
        }
        return raw;
    }
    let local = raw.strip_prefix("dir://").unwrap_or(&raw);
    let mut path = relative_to_workdir(local, opts.workdir);
    if let Some(s) = sub {
        let s = s.trim_matches('/');
        path = if path == "." {
            s.to_string()
        } else {
            format!("{path}/{s}")
        };
    }
    path
}

fn join(base: &str, rel: &str) -> String {
    if base == "." || base.is_empty() {
        rel.to_string()
    } else {
        format!("{}/{rel}", base.trim_end_matches('/'))
    }
}

/// Kaniko looks for a relative Dockerfile in the working directory first,
/// then inside the context; buildx only in the working directory.
fn dockerfile(
    call: &Call,
    opts: &ConvertOptions,
    context: &str,
    out: &mut Conversion,
) -> Option<String> {
    let written = call.value("dockerfile");
    let args = flag_args(call, "dockerfile");
    let raw = written.unwrap_or("Dockerfile");
    if raw.starts_with("http://") || raw.starts_with("https://") {
        out.notes.push(Note {
            kind: NoteKind::Manual,
            args,
            message: format!("the Dockerfile `{raw}` is a URL, which buildx does not fetch"),
            help: Some("download the Dockerfile in an earlier step and pass its path".into()),
        });
        return Some(raw.to_string());
    }
    let is_remote = context.contains("://");
    let resolved = if raw.starts_with('/') {
        relative_to_workdir(raw, opts.workdir)
    } else if is_remote {
        raw.to_string()
    } else {
        let in_cwd = raw.to_string();
        let in_context = join(context, raw);
        match opts.local_workdir {
            // Both places are the same: nothing to look for on disk.
            _ if context == "." => in_cwd,
            Some(dir) if dir.join(&in_cwd).is_file() => in_cwd,
            Some(dir) if dir.join(&in_context).is_file() => in_context,
            _ => {
                // Not on disk: a bare name is almost always meant inside the
                // context; a path that already starts with the context is
                // meant from the working directory.
                let guess = if raw.starts_with(&format!("{}/", context.trim_end_matches('/')))
                    || raw.starts_with("./")
                {
                    in_cwd
                } else {
                    in_context
                };
                if written.is_some() && !raw.contains('$') {
                    out.notes.push(Note {
                        kind: NoteKind::Changed,
                        args,
                        message: format!(
                            "Kaniko looked for `{raw}` in the working directory, then in the context; buildx only in the working directory, so kmigrate uses `{guess}`"
                        ),
                        help: Some("check that the path names the Dockerfile Kaniko built (run kmigrate next to the repository checkout to resolve it on disk)".into()),
                    });
                }
                guess
            }
        }
    };
    if is_remote {
        return written.map(String::from);
    }
    let default = join(context, "Dockerfile");
    let normalized = resolved.trim_start_matches("./");
    if normalized == default || (context == "." && normalized == "Dockerfile") {
        None
    } else {
        Some(resolved)
    }
}

/// Strips the tag (and digest) from an image reference.
pub fn repository_of(reference: &str) -> &str {
    let no_digest = reference.split('@').next().unwrap_or(reference);
    match no_digest.rfind(':') {
        Some(i) if !no_digest[i..].contains('/') => &no_digest[..i],
        _ => no_digest,
    }
}

fn has_tag(reference: &str) -> bool {
    repository_of(reference).len() != reference.len()
}

fn cache(call: &Call, opts: &ConvertOptions, out: &mut Conversion) {
    let enabled = call.enabled("cache");
    let repo = call.value("cache-repo");
    let ttl = call.all("cache-ttl").last();
    if !enabled {
        if let Some(u) = call.all("cache-repo").last() {
            out.notes.push(Note {
                kind: NoteKind::Dropped,
                args: u.args.clone(),
                message: format!("`{}` removed: caching is off (no --cache=true)", written(u)),
                help: None,
            });
        }
        for u in ttl.into_iter().chain(call.all("no-push-cache").last()) {
            out.notes.push(Note {
                kind: NoteKind::Dropped,
                args: u.args.clone(),
                message: format!("`{}` removed: caching is off (no --cache=true)", written(u)),
                help: None,
            });
        }
        return;
    }
    let (from, to, cache_ref) = if let Some(dir) = repo.and_then(|r| r.strip_prefix("oci:")) {
        (
            AttrList::new([("type", "local"), ("src", dir)]),
            AttrList::new([("type", "local"), ("dest", dir), ("mode", "max")]),
            None,
        )
    } else {
        let r = match repo {
            Some(r) if has_tag(r) => r.to_string(),
            Some(r) => format!("{r}:{}", opts.cache_tag),
            None => {
                let Some(dest) = call.values("destination").first().copied() else {
                    out.notes.push(Note {
                        kind: NoteKind::Manual,
                        args: flag_args(call, "cache"),
                        message: "`--cache` without --destination or --cache-repo: Kaniko has no cache repository to use".into(),
                        help: Some("add --cache-repo with the repository the cache should live in".into()),
                    });
                    return;
                };
                if dest.starts_with('$') && !dest.contains(':') && !dest.contains('/') {
                    out.notes.push(Note {
                        kind: NoteKind::Changed,
                        args: flag_args(call, "cache"),
                        message: format!(
                            "Kaniko's default cache repository is `<repository of {dest}>/cache`, which {CACHE_REPO_CHOSEN} `{dest}-{}`",
                            opts.cache_tag
                        ),
                        help: Some("add --cache-repo to choose the cache repository explicitly".into()),
                    });
                    format!("{dest}-{}", opts.cache_tag)
                } else {
                    format!("{}/cache:{}", repository_of(dest), opts.cache_tag)
                }
            }
        };
        (
            AttrList::new([("type", "registry"), ("ref", r.as_str())]),
            AttrList::new([("type", "registry"), ("ref", r.as_str()), ("mode", "max")]),
            Some(r),
        )
    };
    out.plan.cache_from.push(from);
    if !call.enabled("no-push-cache") {
        out.plan.cache_to.push(to);
    }
    if let (Some(u), Some(r)) = (ttl, cache_ref.as_deref()) {
        out.notes.push(cache_ttl_note(u, r));
    }
    out.cache_ref = cache_ref;
}

/// How the KM005 help introduces the policy to paste.
const PASTE_POLICY: &str = "save as policy.json";

/// KM005: the TTL turns into a registry cleanup policy; for Artifact
/// Registry the policy and the command are spelled out.
fn cache_ttl_note(u: &FlagUse, cache_ref: &str) -> Note {
    let ttl = u.value.clone().unwrap_or_default();
    let repo = repository_of(cache_ref);
    let mut help = format!(
        "the BuildKit registry cache has no TTL: each export overwrites `{cache_ref}`; expire old cache data with a cleanup policy on `{repo}`"
    );
    let parts: Vec<&str> = repo.split('/').collect();
    if parts.len() >= 4 && parts[0].ends_with("-docker.pkg.dev") {
        let location = parts[0].trim_end_matches("-docker.pkg.dev");
        let (project, repository, package) = (parts[1], parts[2], parts[3..].join("/"));
        help.push_str(&format!(
            ". For Artifact Registry {PASTE_POLICY}:\n  [{{\"name\": \"expire-buildcache\", \"action\": {{\"type\": \"Delete\"}}, \"condition\": {{\"tagState\": \"any\", \"packageNamePrefixes\": [\"{package}\"], \"olderThan\": \"{ttl}\"}}}}]\nthen run:\n  gcloud artifacts repositories set-cleanup-policies {repository} --project={project} --location={location} --policy=policy.json"
        ));
    }
    Note {
        kind: NoteKind::CacheTtl,
        args: u.args.clone(),
        message: format!("`{}` has no buildx equivalent", written(u)),
        help: Some(help),
    }
}

/// Makes a KM005 cleanup policy paste-able once the platform has filled in
/// what it can see (substitution defaults, job variables): each `${NAME}`
/// or `$NAME` left is a value only the user knows, and becomes a `<NAME>`
/// placeholder (a shell refuses to run the command while one is left, where
/// `$NAME` would silently expand to nothing); the help then says so.
pub fn with_placeholders(help: &str) -> String {
    use std::sync::OnceLock;
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
            .expect("valid regex")
    });
    // Only the Artifact Registry policy and command are pasted; the prose
    // of other registries keeps the names as the file writes them.
    if !help.contains(PASTE_POLICY) || !re.is_match(help) {
        return help.to_string();
    }
    let marked = re.replace_all(help, |c: &regex::Captures| {
        let name = c.get(1).or_else(|| c.get(2)).map_or("", |m| m.as_str());
        format!("<{name}>")
    });
    format!(
        "{marked}\nreplace each `<…>` placeholder with its value first: kmigrate cannot see it in the file (a substitution without a default, a built-in one such as `$PROJECT_ID`, or a CI variable)"
    )
}

fn registries(call: &Call, out: &mut Conversion, image_attrs: &mut Vec<(String, String)>) {
    let dest_hosts: Vec<String> = call
        .values("destination")
        .iter()
        .map(|d| registry_host(d))
        .collect();
    if call.all("insecure").last().is_some() && call.enabled("insecure") {
        image_attrs.push(("registry.insecure".into(), "true".into()));
        for h in &dest_hosts {
            out.registry.host(h).http = true;
        }
    }
    if call.all("skip-tls-verify").last().is_some() && call.enabled("skip-tls-verify") {
        image_attrs.push(("registry.insecure".into(), "true".into()));
        for h in &dest_hosts {
            out.registry.host(h).insecure = true;
        }
    }
    for h in call.values("insecure-registry") {
        out.registry.host(h).http = true;
    }
    for h in call.values("skip-tls-verify-registry") {
        out.registry.host(h).insecure = true;
    }
    for m in call.values("registry-mirror") {
        out.registry.host("docker.io").mirrors.push(m.to_string());
    }
    for m in call.values("registry-map") {
        if let Some((from, to)) = m.split_once('=') {
            for mirror in to.split(',') {
                out.registry.host(from).mirrors.push(mirror.to_string());
            }
        }
    }
    for c in call.values("registry-certificate") {
        if let Some((h, path)) = c.split_once('=') {
            out.registry.host(h).ca.push(path.to_string());
        }
    }
    for c in call.values("registry-client-cert") {
        if let Some((h, pair)) = c.split_once('=')
            && let Some((cert, key)) = pair.split_once(',')
        {
            out.registry
                .host(h)
                .keypairs
                .push((cert.to_string(), key.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kaniko::FlagTable;
    use crate::kaniko::call::{Arg, parse};

    fn opts() -> ConvertOptions<'static> {
        ConvertOptions {
            cache_tag: "buildcache",
            workdir: "/workspace",
            default_context: "/workspace",
            local_workdir: None,
        }
    }

    fn conv(words: &[&str]) -> Conversion {
        convert(
            &parse(words.iter().map(|w| Arg::new(*w)).collect()),
            &opts(),
        )
    }

    fn argv(c: &Conversion) -> String {
        c.plan.to_args().join(" ")
    }

    #[test]
    fn the_issue_example_maps_to_a_registry_cache() {
        let c = conv(&[
            "--dockerfile=Dockerfile",
            "--context=dir:///workspace",
            "--destination=asia-northeast1-docker.pkg.dev/my-proj/app/api:$SHORT_SHA",
            "--cache=true",
            "--cache-repo=asia-northeast1-docker.pkg.dev/my-proj/app/cache",
            "--cache-ttl=6h",
        ]);
        assert_eq!(
            argv(&c),
            "--tag asia-northeast1-docker.pkg.dev/my-proj/app/api:$SHORT_SHA --cache-from type=registry,ref=asia-northeast1-docker.pkg.dev/my-proj/app/cache:buildcache --cache-to type=registry,ref=asia-northeast1-docker.pkg.dev/my-proj/app/cache:buildcache,mode=max --push --provenance=false ."
        );
        let ttl = c
            .notes
            .iter()
            .find(|n| n.kind == NoteKind::CacheTtl)
            .unwrap();
        let help = ttl.help.as_deref().unwrap();
        assert!(help.contains("\"olderThan\": \"6h\""), "{help}");
        assert!(
            help.contains("--project=my-proj --location=asia-northeast1"),
            "{help}"
        );
        assert!(
            help.contains("\"packageNamePrefixes\": [\"cache\"]"),
            "{help}"
        );
        assert!(!c.is_blocked());
    }

    #[test]
    fn default_cache_repo_follows_kaniko() {
        let c = conv(&["-d", "gcr.io/p/app:v1", "--cache"]);
        assert_eq!(
            c.cache_ref.as_deref(),
            Some("gcr.io/p/app/cache:buildcache")
        );
        let c = conv(&["-d", "${_IMAGE}", "--cache"]);
        assert_eq!(c.cache_ref.as_deref(), Some("${_IMAGE}-buildcache"));
        assert!(c.notes.iter().any(|n| n.kind == NoteKind::Changed));
        let c = conv(&[
            "-d",
            "localhost:5000/app",
            "--cache",
            "--cache-repo=localhost:5000/c:tagged",
        ]);
        assert_eq!(c.cache_ref.as_deref(), Some("localhost:5000/c:tagged"));
        let c = conv(&["-d", "x/app", "--cache", "--no-push-cache"]);
        assert_eq!(c.plan.cache_to.len(), 0);
        assert_eq!(c.plan.cache_from.len(), 1);
        let c = conv(&["-d", "x/app", "--cache", "--cache-repo=oci:/cache"]);
        assert_eq!(
            argv(&c),
            "--tag x/app --cache-from type=local,src=/cache --cache-to type=local,dest=/cache,mode=max --push --provenance=false ."
        );
        let c = conv(&["-d", "x/app", "--cache-repo=x/c"]);
        assert!(c.plan.cache_from.is_empty(), "no --cache, no cache");
    }

    #[test]
    fn contexts_and_dockerfiles() {
        let c = conv(&["-c", "/workspace/svc", "-f", "Dockerfile.prod", "-d", "x"]);
        assert_eq!(c.plan.context, "svc");
        assert_eq!(c.plan.dockerfile.as_deref(), Some("svc/Dockerfile.prod"));
        let c = conv(&["-c", "svc", "-f", "svc/Dockerfile", "-d", "x"]);
        assert_eq!(c.plan.dockerfile, None, "svc/Dockerfile is the default");
        let c = conv(&[
            "-c",
            "/workspace",
            "-f",
            "/workspace/build/Dockerfile",
            "-d",
            "x",
        ]);
        assert_eq!(
            (c.plan.context.as_str(), c.plan.dockerfile.as_deref()),
            (".", Some("build/Dockerfile"))
        );
        let c = conv(&[
            "-c",
            "git://github.com/o/r.git#refs/heads/main",
            "--context-sub-path=app",
            "-d",
            "x",
        ]);
        assert_eq!(
            c.plan.context,
            "https://github.com/o/r.git#refs/heads/main:app"
        );
        let c = conv(&["-c", "gs://bucket/ctx.tar.gz", "-d", "x"]);
        assert!(c.is_blocked());
    }

    #[test]
    fn dockerfile_is_resolved_on_disk_like_kaniko() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("svc")).unwrap();
        std::fs::write(dir.path().join("Dockerfile.ci"), "FROM scratch\n").unwrap();
        std::fs::write(dir.path().join("svc/Dockerfile.app"), "FROM scratch\n").unwrap();
        let o = ConvertOptions {
            local_workdir: Some(dir.path()),
            ..opts()
        };
        let parse_words = |w: &[&str]| parse(w.iter().map(|w| Arg::new(*w)).collect());
        let c = convert(
            &parse_words(&["-c", "svc", "-f", "Dockerfile.ci", "-d", "x"]),
            &o,
        );
        assert_eq!(
            c.plan.dockerfile.as_deref(),
            Some("Dockerfile.ci"),
            "working directory first"
        );
        let c = convert(
            &parse_words(&["-c", "svc", "-f", "Dockerfile.app", "-d", "x"]),
            &o,
        );
        assert_eq!(
            c.plan.dockerfile.as_deref(),
            Some("svc/Dockerfile.app"),
            "then the context"
        );
        assert!(c.notes.is_empty(), "{:?}", c.notes);
    }

    #[test]
    fn outputs_and_exporter_attributes() {
        let c = conv(&[
            "-d",
            "reg.local:5000/app",
            "--insecure",
            "--compression=zstd",
            "--tar-path=/out/app.tar",
        ]);
        assert_eq!(
            argv(&c),
            "--tag reg.local:5000/app --output type=image,push=true,registry.insecure=true,compression=zstd,force-compression=true,oci-mediatypes=true --output type=docker,dest=/out/app.tar --provenance=false ."
        );
        assert!(c.registry.hosts["reg.local:5000"].http);
        let c = conv(&["-d", "x", "--no-push"]);
        assert_eq!(
            argv(&c),
            "--tag x --output type=cacheonly --provenance=false ."
        );
        let c = conv(&[
            "-d",
            "x",
            "--registry-map=index.docker.io=m.example;quay.io=q.example",
            "--registry-mirror=mirror.gcr.io",
        ]);
        assert_eq!(c.registry.hosts["quay.io"].mirrors, ["q.example"]);
        assert_eq!(c.registry.hosts["docker.io"].mirrors, ["mirror.gcr.io"]);
        let c = conv(&[
            "-d",
            "x",
            "--reproducible",
            "--digest-file=/workspace/digest",
        ]);
        assert!(argv(&c).contains("--build-arg SOURCE_DATE_EPOCH=0"));
        assert!(argv(&c).contains("rewrite-timestamp=true"));
        assert_eq!(
            c.plan.metadata_file.as_deref(),
            Some("/workspace/digest.metadata.json")
        );
    }

    /// Every flag in the table either maps into the plan or yields a note.
    #[test]
    fn every_flag_maps_or_is_reported() {
        for spec in &FlagTable::get().flags {
            let word = match spec.arity {
                crate::kaniko::Arity::Bool => format!("--{}", spec.name),
                crate::kaniko::Arity::Map => format!("--{}=host.example=/a,/b", spec.name),
                _ => format!("--{}=value.example/x", spec.name),
            };
            let base = conv(&["-d", "reg.example/app"]);
            let c = conv(&["-d", "reg.example/app", &word]);
            let noted = c.notes.iter().any(|n| n.args == (2..3));
            let changed = c.plan != base.plan || c.registry != base.registry;
            assert!(noted || changed, "{word} neither maps nor is reported");
            if spec.action == Action::Manual {
                assert!(c.is_blocked(), "{word} must block the rewrite");
            }
        }
    }
}
