//! `kmigrate.toml` / `.kmigrate.toml`: which rules run and how severe they
//! are, the rewrite options, and paths to leave out of a directory walk.
//!
//! The file is found by walking up from the checked path, or named with
//! `--config`. Unknown keys are an error that names the key and the file, so
//! a typo never silently does nothing.
//!
//! ```toml
//! [rules]
//! select = ["KM001", "KM002"]   # default: every rule
//! ignore = ["KM010"]
//! [rules.severity]
//! KM005 = "error"
//!
//! [rewrite]
//! builder = "kmigrate"
//! cache_tag = "buildcache"
//! gitlab_target = "buildkit"
//! docker_version = "27"
//! split = true
//!
//! [paths]
//! exclude = ["vendor/**", "legacy/cloudbuild-old.yaml"]
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use crate::rules::{Rule, Severity};

/// The names a configuration file may have, in the order they are looked for
/// in each directory.
pub const FILE_NAMES: &[&str] = &["kmigrate.toml", ".kmigrate.toml"];

/// A configuration problem, always naming the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: PathBuf,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for ConfigError {}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub rules: RulesConfig,
    #[serde(default)]
    pub rewrite: RewriteConfig,
    #[serde(default)]
    pub paths: PathsConfig,
}

/// `[rules]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    /// Only these rules run (every rule when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select: Option<Vec<String>>,
    /// These rules never run.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Severity overrides by rule id.
    #[serde(default)]
    pub severity: BTreeMap<String, SeverityName>,
}

/// A severity as written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SeverityName {
    Info,
    Warning,
    Error,
}

impl From<SeverityName> for Severity {
    fn from(s: SeverityName) -> Self {
        match s {
            SeverityName::Info => Severity::Info,
            SeverityName::Warning => Severity::Warning,
            SeverityName::Error => Severity::Error,
        }
    }
}

/// `[rewrite]`: how `kmigrate rewrite` writes the buildx version.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RewriteConfig {
    /// Name of the buildx builder the setup step creates.
    #[serde(default = "default_builder")]
    pub builder: String,
    /// Tag appended to the cache repository for the registry cache.
    #[serde(default = "default_cache_tag")]
    pub cache_tag: String,
    /// How rewritten GitLab jobs get a Docker daemon (passed to the GitLab
    /// rewrite; `None` lets it choose).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitlab_target: Option<crate::options::GitlabTarget>,
    /// Docker version for the `docker:<v>` / `docker:<v>-dind` images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_version: Option<String>,
    /// Split a GitLab job that builds several images into one job per image.
    #[serde(default = "default_split")]
    pub split: bool,
    /// Where rewritten Cloud Build Kaniko steps build (`None`: buildx).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloudbuild_target: Option<crate::options::CloudbuildTarget>,
    /// The maintained Kaniko fork the fork targets run (repository).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fork_image: Option<String>,
    /// The fork release they pin (a tag such as `v1.28.3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fork_version: Option<String>,
    /// Where rewritten GitHub Actions steps keep the build cache
    /// (`None`: the registry, as the Kaniko step did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github_cache: Option<crate::options::GithubCache>,
}

fn default_builder() -> String {
    crate::options::DEFAULT_BUILDER.into()
}
fn default_cache_tag() -> String {
    crate::options::DEFAULT_CACHE_TAG.into()
}
fn default_split() -> bool {
    true
}

impl Default for RewriteConfig {
    fn default() -> Self {
        Self {
            builder: default_builder(),
            cache_tag: default_cache_tag(),
            gitlab_target: None,
            docker_version: None,
            split: default_split(),
            cloudbuild_target: None,
            fork_image: None,
            fork_version: None,
            github_cache: None,
        }
    }
}

/// `[paths]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PathsConfig {
    /// Globs (relative to the configuration file's directory) that a
    /// directory walk skips. Files named on the command line are always
    /// checked.
    #[serde(default)]
    pub exclude: Vec<String>,
}

/// A configuration together with where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// The file read, or `None` for the built-in defaults.
    pub path: Option<PathBuf>,
    excludes: GlobSet,
}

impl Default for Loaded {
    fn default() -> Self {
        Self {
            config: Config::default(),
            path: None,
            excludes: GlobSet::empty(),
        }
    }
}

impl Config {
    /// Parses and validates the text of the file at `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let err = |message: String| ConfigError {
            path: path.to_path_buf(),
            message,
        };
        let mut config: Config = toml::from_str(text).map_err(|e| {
            let mut message = e.message().to_string();
            if let Some(span) = e.span() {
                let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                message = format!("line {line}: {message}");
            }
            err(message)
        })?;
        // Every id names a rule, and is kept as the rule spells it.
        let canonical = |key: &str, id: &mut String| -> Result<(), ConfigError> {
            let rule: Rule = id.parse().map_err(|_| {
                err(format!(
                    "`{key}` names unknown rule `{id}` (run `kmigrate rules` for the list)"
                ))
            })?;
            *id = rule.id().to_string();
            Ok(())
        };
        for id in config.rules.select.iter_mut().flatten() {
            canonical("rules.select", id)?;
        }
        for id in &mut config.rules.ignore {
            canonical("rules.ignore", id)?;
        }
        let mut severity = BTreeMap::new();
        for (mut id, level) in std::mem::take(&mut config.rules.severity) {
            canonical("rules.severity", &mut id)?;
            severity.insert(id, level);
        }
        config.rules.severity = severity;
        if config.rewrite.builder.trim().is_empty() {
            return Err(err("`rewrite.builder` must not be empty".into()));
        }
        if config.rewrite.cache_tag.trim().is_empty() {
            return Err(err("`rewrite.cache_tag` must not be empty".into()));
        }
        if let Some(why) = check_fork(&config.rewrite) {
            return Err(err(why));
        }
        for g in &config.paths.exclude {
            glob(g).map_err(|e| err(format!("`paths.exclude`: bad glob `{g}`: {e}")))?;
        }
        Ok(config)
    }

    /// Whether findings of `rule` are reported.
    pub fn rule_enabled(&self, rule: Rule) -> bool {
        let rule = rule.id();
        let selected = match &self.rules.select {
            Some(sel) => sel.iter().any(|s| s == rule),
            None => true,
        };
        selected && !self.rules.ignore.iter().any(|s| s == rule)
    }

    /// The severity `rule` is reported at (override, else the default).
    pub fn severity_of(&self, rule: Rule, default: Severity) -> Severity {
        self.rules
            .severity
            .get(rule.id())
            .map(|s| Severity::from(*s))
            .unwrap_or(default)
    }

    /// The file as TOML (for `kmigrate config --show`).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("the configuration serialises")
    }
}

impl Loaded {
    /// Reads the configuration file at `path`.
    pub fn from_file(path: &Path) -> Result<Loaded, ConfigError> {
        // Read as CI files are (regular files only, size-limited): a
        // repository's `kmigrate.toml` may be a link to `/dev/zero`.
        let text = crate::source::SourceFile::read(path)
            .and_then(|bytes| {
                String::from_utf8(bytes)
                    .map_err(|_| crate::source::SourceError::new(path, "is not valid UTF-8"))
            })
            .map_err(|e| ConfigError {
                path: path.to_path_buf(),
                message: format!("cannot read configuration: {}", e.message),
            })?;
        let config = Config::parse(path, &text)?;
        let mut builder = GlobSetBuilder::new();
        for g in &config.paths.exclude {
            // Already validated by `parse`.
            if let Ok(pattern) = glob(g) {
                builder.add(pattern);
                // `dir` also excludes everything below it.
                if let Ok(below) = glob(&format!("{}/**", g.trim_end_matches('/'))) {
                    builder.add(below);
                }
            }
        }
        let excludes = builder.build().map_err(|e| ConfigError {
            path: path.to_path_buf(),
            message: format!("`paths.exclude`: {e}"),
        })?;
        Ok(Loaded {
            config,
            path: Some(path.to_path_buf()),
            excludes,
        })
    }

    /// The configuration for checking `start`: the first `kmigrate.toml` or
    /// `.kmigrate.toml` in `start`'s directory or any parent; the defaults
    /// when there is none.
    pub fn discover(start: &Path) -> Result<Loaded, ConfigError> {
        match find_upward(start) {
            Some(path) => Loaded::from_file(&path),
            None => Ok(Loaded::default()),
        }
    }

    /// The configuration with every default written out (what `kmigrate
    /// config --show` prints).
    pub fn effective(&self) -> Config {
        let mut c = self.config.clone();
        let defaults = crate::options::Options::default();
        c.rewrite
            .gitlab_target
            .get_or_insert(defaults.gitlab_target);
        c.rewrite
            .docker_version
            .get_or_insert(defaults.docker_version);
        c.rewrite
            .cloudbuild_target
            .get_or_insert(defaults.cloudbuild_target);
        c.rewrite.fork_image.get_or_insert(defaults.fork_image);
        c.rewrite.fork_version.get_or_insert(defaults.fork_version);
        c.rewrite.github_cache.get_or_insert(defaults.github_cache);
        c
    }

    /// The rewrite options this configuration asks for.
    pub fn options(&self) -> crate::options::Options {
        let r = self.effective().rewrite;
        crate::options::Options {
            builder: r.builder,
            cache_tag: r.cache_tag,
            gitlab_target: r.gitlab_target.unwrap_or_default(),
            docker_version: r.docker_version.unwrap_or_default(),
            split: r.split,
            cloudbuild_target: r.cloudbuild_target.unwrap_or_default(),
            fork_image: r.fork_image.unwrap_or_default(),
            fork_version: r.fork_version.unwrap_or_default(),
            github_cache: r.github_cache.unwrap_or_default(),
        }
    }

    /// Whether a walked file is excluded by `paths.exclude`. Patterns are
    /// relative to the configuration file's directory.
    pub fn is_excluded(&self, path: &Path) -> bool {
        self.excluded_by(path).is_some()
    }

    /// The first `paths.exclude` pattern that excludes `path`, if any (see
    /// [`Loaded::is_excluded`]).
    pub fn excluded_by(&self, path: &Path) -> Option<&str> {
        if self.excludes.is_empty() {
            return None;
        }
        let config_path = self.path.as_ref()?;
        let base = config_path.parent().unwrap_or(Path::new(""));
        let abs = absolute(path);
        let base_abs = absolute(base);
        let matched = match abs.strip_prefix(&base_abs) {
            Ok(rel) => self.excludes.matches(rel),
            Err(_) => self.excludes.matches(path),
        };
        // Each pattern adds two globs to the set: itself and `pattern/**`.
        let first = *matched.first()?;
        self.config.paths.exclude.get(first / 2).map(String::as_str)
    }
}

/// An exclude pattern: `*` and `?` stay within one path component, `**`
/// crosses directories.
fn glob(pattern: &str) -> Result<Glob, globset::Error> {
    GlobBuilder::new(pattern).literal_separator(true).build()
}

/// The nearest configuration file at or above `start`.
pub fn find_upward(start: &Path) -> Option<PathBuf> {
    let start = absolute(start);
    let mut dir = if start.is_dir() {
        Some(start.as_path())
    } else {
        start.parent()
    };
    while let Some(d) = dir {
        for name in FILE_NAMES {
            let candidate = d.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
        dir = d.parent();
    }
    None
}

/// `path` made absolute against the current directory, `.` and `..`
/// resolved lexically (the file need not exist).
pub fn absolute(path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(path)
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Why the fork keys of `[rewrite]` cannot be used, if they cannot: the
/// image and version are written into CI files, and the rewritten job must
/// still be read as Kaniko (a maintained fork `rules/images.yaml` knows) by
/// `check`, `verify` and the safety net.
fn check_fork(r: &RewriteConfig) -> Option<String> {
    let image_char =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':');
    if let Some(image) = &r.fork_image {
        if image.is_empty() || !image.chars().all(image_char) || image.contains('@') {
            return Some(format!(
                "`rewrite.fork_image` = {image:?} is not an image repository (e.g. \"ghcr.io/osscontainertools/kaniko\", without tag)"
            ));
        }
        let example = format!("{image}:v1");
        match crate::kaniko::match_image(&example) {
            Some(m) if !m.archived => {}
            Some(_) => {
                return Some(format!(
                    "`rewrite.fork_image` = {image:?} is the archived Kaniko image; name a maintained fork"
                ));
            }
            None => {
                return Some(format!(
                    "`rewrite.fork_image` = {image:?} is not a Kaniko fork kmigrate knows (rules/images.yaml), so the rewritten jobs could not be checked; use one it lists (e.g. ghcr.io/osscontainertools/kaniko, martizih/kaniko, cgr.dev/<org>/kaniko)"
                ));
            }
        }
    }
    if let Some(v) = &r.fork_version {
        let tag_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if v.is_empty() || v.len() > 128 || !v.chars().all(tag_char) {
            return Some(format!(
                "`rewrite.fork_version` = {v:?} is not an image tag (e.g. \"v1.28.3\")"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fork_keys_are_read_and_checked() {
        let c = parse(
            "[rewrite]\ncloudbuild_target = \"fork\"\ngitlab_target = \"fork\"\nfork_image = \"martizih/kaniko\"\nfork_version = \"v1.27.6\"\n",
        )
        .unwrap();
        let o = Loaded {
            config: c,
            ..Loaded::default()
        }
        .options();
        assert_eq!(o.cloudbuild_target, crate::options::CloudbuildTarget::Fork);
        assert_eq!(o.gitlab_target, crate::options::GitlabTarget::Fork);
        assert_eq!(
            (o.fork_image.as_str(), o.fork_version.as_str()),
            ("martizih/kaniko", "v1.27.6")
        );
        // Defaults: buildx on Cloud Build, the fork documented in the table.
        let d = Loaded::default().options();
        assert_eq!(
            d.cloudbuild_target,
            crate::options::CloudbuildTarget::Buildx
        );
        assert_eq!(d.fork_image, crate::kaniko::fork_target().image);
        for (bad, what) in [
            (
                "fork_image = \"gcr.io/kaniko-project/executor\"",
                "archived",
            ),
            (
                "fork_image = \"registry.example/tools/builder\"",
                "not a Kaniko fork",
            ),
            ("fork_image = \"a b\"", "not an image repository"),
            ("fork_version = \"v1\\nimage: x\"", "not an image tag"),
            ("cloudbuild_target = \"buildkit\"", "unknown variant"),
        ] {
            let e = parse(&format!("[rewrite]\n{bad}\n")).unwrap_err();
            assert!(e.to_string().contains(what), "{bad}: {e}");
            assert!(e.to_string().contains("kmigrate.toml"), "{e}");
        }
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("dir/kmigrate.toml"), text)
    }

    #[test]
    fn empty_file_gives_the_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.rewrite.builder, "kmigrate");
        assert_eq!(c.rewrite.cache_tag, "buildcache");
        assert!(c.rewrite.split);
        assert!(c.rule_enabled(Rule::Km001));
    }

    #[test]
    fn the_buildah_target_is_a_gitlab_target_in_the_file() {
        let c = parse("[rewrite]\ngitlab_target = \"buildah\"").unwrap();
        assert_eq!(
            c.rewrite.gitlab_target,
            Some(crate::options::GitlabTarget::Buildah)
        );
        assert_eq!(parse(&c.to_toml()).unwrap(), c);
    }

    #[test]
    fn full_file_parses() {
        let c = parse(
            r#"
[rules]
select = ["KM001", "KM005", "KM010"]
ignore = ["KM010"]
[rules.severity]
KM005 = "error"

[rewrite]
builder = "ci"
cache_tag = "cache"
gitlab_target = "buildkit"
docker_version = "27"
split = false

[paths]
exclude = ["vendor/**"]
"#,
        )
        .unwrap();
        assert!(c.rule_enabled(Rule::Km001));
        assert!(!c.rule_enabled(Rule::Km002), "not selected");
        assert!(!c.rule_enabled(Rule::Km010), "ignored wins over select");
        assert_eq!(
            c.severity_of(Rule::Km005, Severity::Warning),
            Severity::Error
        );
        assert_eq!(c.severity_of(Rule::Km001, Severity::Error), Severity::Error);
        assert_eq!(c.rewrite.builder, "ci");
        assert_eq!(c.rewrite.docker_version.as_deref(), Some("27"));
        assert!(!c.rewrite.split);
        // What `config --show` prints reads back as the same configuration.
        assert_eq!(parse(&c.to_toml()).unwrap(), c);
    }

    #[test]
    fn unknown_keys_are_errors_naming_key_and_file() {
        for (text, key) in [
            ("colour = true", "colour"),
            ("[rules]\nselekt = []", "selekt"),
            ("[rewrite]\ncache-tag = \"x\"", "cache-tag"),
            ("[paths]\nexcludes = []", "excludes"),
        ] {
            let e = parse(text).unwrap_err();
            let shown = e.to_string();
            assert!(shown.starts_with("dir/kmigrate.toml: "), "{shown}");
            assert!(shown.contains(&format!("`{key}`")), "{shown}");
        }
    }

    #[test]
    fn rule_ids_are_read_as_the_command_line_reads_them() {
        let c = parse("[rules]\nselect = [\" km001\"]\nignore = [\"km010\"]\n[rules.severity]\nkm005 = \"error\"").unwrap();
        assert!(c.rule_enabled(Rule::Km001));
        assert!(!c.rule_enabled(Rule::Km010));
        assert_eq!(
            c.severity_of(Rule::Km005, Severity::Warning),
            Severity::Error
        );
        // `config --show` prints each id as the rule spells it.
        assert_eq!(c.rules.select, Some(vec!["KM001".to_string()]));
        assert!(c.to_toml().contains("KM005 = \"error\""), "{}", c.to_toml());
    }

    #[test]
    fn unknown_rule_ids_and_bad_values_are_errors() {
        let e = parse("[rules]\nignore = [\"KM999\"]").unwrap_err();
        assert!(e.message.contains("KM999"), "{e}");
        let e = parse("[rules.severity]\nKM001 = \"fatal\"").unwrap_err();
        assert!(e.message.contains("fatal"), "{e}");
        assert!(parse("[paths]\nexclude = [\"a/[\"]").is_err());
        assert!(parse("[rewrite]\nbuilder = \"\"").is_err());
        let e = parse("[rewrite]\ngitlab_target = \"kaniko\"").unwrap_err();
        assert!(e.message.contains("buildkit"), "{e}");
        let e = parse("[rules]\nignore = 3").unwrap_err();
        assert!(e.message.starts_with("line 2:"), "{e}");
    }

    #[test]
    fn discovery_walks_up_and_excludes_are_relative_to_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("a/b/vendor")).unwrap();
        std::fs::write(
            root.join("a/.kmigrate.toml"),
            "[paths]\nexclude = [\"b/vendor\"]\n",
        )
        .unwrap();
        let found = find_upward(&root.join("a/b/cloudbuild.yaml")).unwrap();
        assert_eq!(found, root.join("a/.kmigrate.toml"));
        let loaded = Loaded::discover(&root.join("a/b")).unwrap();
        assert!(loaded.is_excluded(&root.join("a/b/vendor/cloudbuild.yaml")));
        assert!(loaded.is_excluded(&root.join("a/b/vendor/deep/cloudbuild.yaml")));
        assert!(!loaded.is_excluded(&root.join("a/b/cloudbuild.yaml")));
        std::fs::write(
            root.join("a/.kmigrate.toml"),
            "[paths]\nexclude = [\"*.json\", \"**/old-*.yaml\"]\n",
        )
        .unwrap();
        let loaded = Loaded::discover(&root.join("a/b")).unwrap();
        assert!(loaded.is_excluded(&root.join("a/cloudbuild.json")));
        assert!(
            !loaded.is_excluded(&root.join("a/b/cloudbuild.json")),
            "`*` stays in one directory"
        );
        assert!(loaded.is_excluded(&root.join("a/b/c/old-cloudbuild.yaml")));
        // kmigrate.toml wins over .kmigrate.toml in the same directory.
        std::fs::write(root.join("a/kmigrate.toml"), "").unwrap();
        assert_eq!(
            find_upward(&root.join("a/b")).unwrap(),
            root.join("a/kmigrate.toml")
        );
    }

    #[test]
    fn absolute_resolves_dots() {
        assert_eq!(absolute(Path::new("/x/./y/../z")), PathBuf::from("/x/z"));
    }
}
