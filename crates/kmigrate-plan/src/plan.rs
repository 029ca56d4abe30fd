//! The target-neutral description of one image build.
//!
//! A `BuildPlan` is what every part of kmigrate agrees on: the rewrite engine
//! produces one from a Kaniko call and renders it as `docker buildx build`
//! argv; `verify` reads one back from a rewritten config; the embedded builder
//! and the Docker Engine backend execute one.

use std::fmt;

/// One `docker buildx build` invocation, flag by flag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildPlan {
    /// The build context as written: a local path, `-`, or a remote URL.
    pub context: String,
    /// `-f/--file`; `None` means `<context>/Dockerfile`.
    pub dockerfile: Option<String>,
    /// `-t/--tag`, in order.
    pub tags: Vec<String>,
    /// `--build-arg`, in order.
    pub build_args: Vec<BuildArg>,
    /// `--target`.
    pub target: Option<String>,
    /// `--label key=value`, in order.
    pub labels: Vec<(String, String)>,
    /// `--annotation`, verbatim.
    pub annotations: Vec<String>,
    /// `--platform`, one entry per platform (comma lists are split).
    pub platforms: Vec<String>,
    /// `--cache-from`.
    pub cache_from: Vec<AttrList>,
    /// `--cache-to`.
    pub cache_to: Vec<AttrList>,
    /// `-o/--output`.
    pub outputs: Vec<AttrList>,
    /// `--push` (shorthand for `--output type=registry`).
    pub push: bool,
    /// `--load` (shorthand for `--output type=docker`).
    pub load: bool,
    /// `--provenance`; `Some("false")` keeps a single-manifest image like Kaniko pushed.
    pub provenance: Option<String>,
    /// `--sbom`.
    pub sbom: Option<String>,
    /// `--secret`, verbatim.
    pub secrets: Vec<String>,
    /// `--metadata-file`.
    pub metadata_file: Option<String>,
    /// `--builder`.
    pub builder: Option<String>,
    /// `--progress`.
    pub progress: Option<String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--pull`.
    pub pull: bool,
    /// Shell words handed to buildx as written, before the context: a
    /// variable holding flags (`$KANIKO_ARGS`) whose value kmigrate does not
    /// rewrite. Opaque: the shell splits them at run time.
    pub passthrough: Vec<String>,
}

/// A `--build-arg`: `NAME=value`, or a bare `NAME` that takes its value from
/// the environment of the process running the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildArg {
    pub name: String,
    pub value: Option<String>,
}

impl BuildArg {
    /// Parses `NAME=value` or `NAME`.
    pub fn parse(raw: &str) -> Self {
        match raw.split_once('=') {
            Some((name, value)) => Self {
                name: name.to_string(),
                value: Some(value.to_string()),
            },
            None => Self {
                name: raw.to_string(),
                value: None,
            },
        }
    }
}

impl fmt::Display for BuildArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}={v}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// A comma-separated `key=value` list as buildx takes for `--cache-from`,
/// `--cache-to` and `--output` (`type=registry,ref=R,mode=max`).
///
/// Order is kept so a rendered list reads as it was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttrList {
    pub attrs: Vec<(String, String)>,
}

impl AttrList {
    /// Builds a list from pairs, in order.
    pub fn new<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Self {
            attrs: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Parses `a=b,c=d`. A bare value without `=` is buildx's shorthand for a
    /// ref (`--cache-from user/app:cache`) or, for outputs, a local directory;
    /// it is kept under the key `""` so the caller decides what it means.
    /// Double quotes group a value that contains commas (`"a,b"`), as in
    /// buildx's CSV reader.
    pub fn parse(raw: &str) -> Self {
        let mut attrs = Vec::new();
        for field in split_csv(raw) {
            if field.is_empty() {
                continue;
            }
            match field.split_once('=') {
                Some((k, v)) => attrs.push((k.trim().to_string(), v.to_string())),
                None => attrs.push((String::new(), field)),
            }
        }
        Self { attrs }
    }

    /// The value of `key`, last one wins as in buildx.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `type=…`, or `None` when absent.
    pub fn kind(&self) -> Option<&str> {
        self.get("type")
    }

    /// Sets `key` to `value`, replacing an existing entry in place.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        match self.attrs.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.attrs.push((key.to_string(), value)),
        }
    }
}

impl fmt::Display for AttrList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.attrs.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let v = if v.contains(',') {
                format!("\"{v}\"")
            } else {
                v.clone()
            };
            if k.is_empty() {
                f.write_str(&v)?;
            } else {
                write!(f, "{k}={v}")?;
            }
        }
        Ok(())
    }
}

/// Splits on commas outside double quotes, dropping the quotes.
fn split_csv(raw: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    for c in raw.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    fields.push(field);
    fields
}

impl BuildPlan {
    /// The registry cache refs this build imports from (`type=registry,ref=…`).
    pub fn registry_cache_imports(&self) -> impl Iterator<Item = &str> {
        self.cache_from
            .iter()
            .filter(|c| c.kind() == Some("registry"))
            .filter_map(|c| c.get("ref"))
    }

    /// The registry cache refs this build exports to.
    pub fn registry_cache_exports(&self) -> impl Iterator<Item = &str> {
        self.cache_to
            .iter()
            .filter(|c| c.kind() == Some("registry"))
            .filter_map(|c| c.get("ref"))
    }

    /// True when some `--cache-to` needs a builder that can export caches,
    /// i.e. anything but `inline` (the only exporter of the `docker` driver).
    pub fn exports_cache_beyond_inline(&self) -> bool {
        self.cache_to
            .iter()
            .any(|c| !matches!(c.kind(), Some("inline")))
    }

    /// Renders the flags after `docker buildx build`, in the order the rewrite
    /// engine documents: builder, file, tags, build args, target, labels,
    /// annotations, platforms, secrets, cache, outputs, push/load, provenance,
    /// metadata file, and the context last.
    pub fn to_args(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut pair = |flag: &str, value: &str| {
            out.push(flag.to_string());
            out.push(value.to_string());
        };
        if let Some(b) = &self.builder {
            pair("--builder", b);
        }
        if let Some(f) = &self.dockerfile {
            pair("--file", f);
        }
        if !fault::drops_tags() {
            for t in &self.tags {
                pair("--tag", t);
            }
        }
        for a in &self.build_args {
            pair("--build-arg", &a.to_string());
        }
        if let Some(t) = &self.target {
            pair("--target", t);
        }
        for (k, v) in &self.labels {
            pair("--label", &format!("{k}={v}"));
        }
        for a in &self.annotations {
            pair("--annotation", a);
        }
        if !self.platforms.is_empty() {
            pair("--platform", &self.platforms.join(","));
        }
        for s in &self.secrets {
            pair("--secret", s);
        }
        for c in &self.cache_from {
            pair("--cache-from", &c.to_string());
        }
        for c in &self.cache_to {
            pair("--cache-to", &c.to_string());
        }
        for o in &self.outputs {
            pair("--output", &o.to_string());
        }
        if let Some(m) = &self.metadata_file {
            pair("--metadata-file", m);
        }
        if let Some(p) = &self.progress {
            pair("--progress", p);
        }
        if self.no_cache {
            out.push("--no-cache".into());
        }
        if self.pull {
            out.push("--pull".into());
        }
        if self.push {
            out.push("--push".into());
        }
        if self.load {
            out.push("--load".into());
        }
        if let Some(p) = &self.provenance {
            out.push(format!("--provenance={p}"));
        }
        if let Some(s) = &self.sbom {
            out.push(format!("--sbom={s}"));
        }
        out.extend(self.passthrough.iter().cloned());
        // An empty context: a passed-through variable holds it.
        if !self.context.is_empty() {
            out.push(self.context.clone());
        }
        out
    }
}

/// The host paths of `plan` other than its context and Dockerfile: local
/// cache sources and destinations and output destinations, each with what
/// it is. Mutable, so the extractor can place them where the CI job would.
pub fn path_slots(plan: &mut BuildPlan) -> Vec<(&'static str, &mut String)> {
    fn slots<'a>(
        list: &'a mut [AttrList],
        what: &'static str,
        kinds: &[Option<&str>],
        keys: &[&str],
        out: &mut Vec<(&'static str, &'a mut String)>,
    ) {
        for spec in list {
            let kind = spec.kind().map(str::to_string);
            if !kinds.contains(&kind.as_deref()) {
                continue;
            }
            for (k, v) in spec.attrs.iter_mut() {
                if keys.contains(&k.as_str()) && v != "-" && !v.is_empty() {
                    out.push((what, v));
                }
            }
        }
    }
    let mut out = Vec::new();
    slots(
        &mut plan.cache_from,
        "local cache source",
        &[Some("local")],
        &["src"],
        &mut out,
    );
    slots(
        &mut plan.cache_to,
        "local cache destination",
        &[Some("local")],
        &["dest"],
        &mut out,
    );
    slots(
        &mut plan.outputs,
        "output destination",
        &[
            None,
            Some("local"),
            Some("oci"),
            Some("docker"),
            Some("tar"),
        ],
        &["dest", ""],
        &mut out,
    );
    out
}

/// A deliberately broken translation, for the tests of the safety net
/// (`verify::equivalence`): with it on, rendered plans lose their tags, as
/// a flag table that dropped `--destination` would. Compiled in only for
/// kmigrate-plan's own tests and with the `test-fault` feature, which the
/// linter's tests turn on (never the binary's features).
pub mod fault {
    #[cfg(any(test, feature = "test-fault"))]
    thread_local! {
        static DROP_TAGS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    /// Whether rendering drops `--tag` (always false outside tests).
    pub fn drops_tags() -> bool {
        #[cfg(any(test, feature = "test-fault"))]
        return DROP_TAGS.with(|d| d.get());
        #[cfg(not(any(test, feature = "test-fault")))]
        false
    }

    /// Runs `f` with the broken translation on (this thread only).
    #[cfg(any(test, feature = "test-fault"))]
    pub fn dropping_tags<T>(f: impl FnOnce() -> T) -> T {
        DROP_TAGS.with(|d| d.set(true));
        let out = f();
        DROP_TAGS.with(|d| d.set(false));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attr_list_round_trips_and_quotes_commas() {
        let a = AttrList::parse("type=registry,ref=r/app:cache,mode=max");
        assert_eq!(a.kind(), Some("registry"));
        assert_eq!(a.get("ref"), Some("r/app:cache"));
        assert_eq!(a.to_string(), "type=registry,ref=r/app:cache,mode=max");

        let q = AttrList::parse(r#"type=image,"name=a:1,b:2",push=true"#);
        assert_eq!(q.get("name"), Some("a:1,b:2"));
        assert_eq!(q.to_string(), r#"type=image,name="a:1,b:2",push=true"#);
    }

    #[test]
    fn bare_attr_is_kept_under_empty_key() {
        let a = AttrList::parse("user/app:cache");
        assert_eq!(a.get(""), Some("user/app:cache"));
        assert_eq!(a.kind(), None);
    }

    #[test]
    fn build_arg_forms() {
        assert_eq!(BuildArg::parse("A=b=c").value.as_deref(), Some("b=c"));
        assert_eq!(BuildArg::parse("A").value, None);
        assert_eq!(BuildArg::parse("A=").to_string(), "A=");
    }

    #[test]
    fn renders_context_last_and_cache_flags() {
        let plan = BuildPlan {
            context: ".".into(),
            tags: vec!["r/app:1".into()],
            cache_to: vec![AttrList::parse("type=registry,ref=r/c:b,mode=max")],
            push: true,
            provenance: Some("false".into()),
            ..Default::default()
        };
        assert_eq!(
            plan.to_args(),
            [
                "--tag",
                "r/app:1",
                "--cache-to",
                "type=registry,ref=r/c:b,mode=max",
                "--push",
                "--provenance=false",
                "."
            ]
        );
        assert!(plan.exports_cache_beyond_inline());
    }
}
