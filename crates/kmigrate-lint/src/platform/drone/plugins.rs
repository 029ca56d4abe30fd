//! Which Drone / Woodpecker plugin images run Kaniko: the table in
//! `rules/plugins.yaml`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use regex::{Regex, RegexBuilder};
use serde::Deserialize;

use crate::kaniko::images::Examples;

/// The table as people edit it (read by the tests).
#[cfg(test)]
const PLUGINS_YAML: &str = include_str!("../../../../../rules/plugins.yaml");
/// The same table converted to JSON by `build.rs` (read by the binary).
const PLUGINS_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/plugins.json"));

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PluginsFile {
    targets: Targets,
    plugins: Vec<KanikoPlugin>,
}

/// The maintained buildx plugins the rewrite writes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    pub drone: String,
    pub woodpecker: String,
}

/// One Kaniko plugin of the table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KanikoPlugin {
    pub id: String,
    /// How messages name the plugin.
    pub name: String,
    image: String,
    #[allow(dead_code)] // for people: where the plugin was read
    source: String,
    /// Whether the plugin writes `registry` before `repo` and `cache_repo`.
    #[serde(default)]
    pub registry_prefixes_repo: bool,
    /// Whether `no-push` also drops the destinations and the cache.
    #[serde(default)]
    pub dry_run_drops_push: bool,
    /// What each setting means; `None`: kmigrate does not know the
    /// plugin's settings, so it only reports it.
    #[serde(default)]
    pub settings: Option<BTreeMap<String, Setting>>,
    /// Why an entry without `settings` is left for a human.
    #[serde(default)]
    pub why: Option<String>,
    #[allow(dead_code)] // read by the table test only
    examples: Examples,
}

/// What one setting means.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setting {
    /// The Kaniko flag the value goes to.
    #[serde(default)]
    pub flag: Option<String>,
    /// One flag per item (a string is split on commas).
    #[serde(default)]
    pub list: bool,
    #[serde(default)]
    pub role: Option<Role>,
    /// Why a `manual` setting cannot be translated.
    #[serde(default)]
    pub why: Option<String>,
}

/// A setting with a meaning of its own (see the table's header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Repo,
    Registry,
    Tags,
    Context,
    Dockerfile,
    Cache,
    CacheRepo,
    NoPush,
    Username,
    Password,
    Ignore,
    Manual,
}

struct Compiled {
    file: PluginsFile,
    patterns: Vec<Regex>,
}

fn table() -> &'static Compiled {
    static TABLE: OnceLock<Compiled> = OnceLock::new();
    TABLE.get_or_init(|| {
        let file: PluginsFile =
            serde_json::from_str(PLUGINS_JSON).expect("rules/plugins.yaml is checked by tests");
        let patterns = file
            .plugins
            .iter()
            .map(|p| {
                RegexBuilder::new(&format!("^(?:{})$", p.image))
                    .case_insensitive(true)
                    .build()
                    .expect("rules/plugins.yaml patterns are checked by tests")
            })
            .collect();
        Compiled { file, patterns }
    })
}

/// The buildx plugins the rewrite writes.
pub fn targets() -> &'static Targets {
    &table().file.targets
}

/// The Kaniko plugin an image reference (any tag or digest) names, if any.
pub fn match_plugin(image: &str) -> Option<&'static KanikoPlugin> {
    let name = crate::buildx::from_kaniko::repository_of(image.trim());
    let t = table();
    t.patterns
        .iter()
        .position(|p| p.is_match(name))
        .map(|i| &t.file.plugins[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_matches_as_the_table_says() {
        let file: PluginsFile = yaml_serde::from_str(PLUGINS_YAML).unwrap();
        assert!(!file.plugins.is_empty());
        for p in &file.plugins {
            for m in &p.examples.r#match {
                for reference in [
                    m.clone(),
                    format!("{m}:1.2"),
                    format!("{m}@sha256:{}", "0".repeat(64)),
                ] {
                    let found = match_plugin(&reference).map(|x| x.id.as_str());
                    assert_eq!(
                        found,
                        Some(p.id.as_str()),
                        "{reference} should match {}",
                        p.id
                    );
                }
            }
            for m in &p.examples.no_match {
                let found = match_plugin(m).map(|x| x.id.as_str());
                assert_ne!(found, Some(p.id.as_str()), "{m} should not match {}", p.id);
            }
            assert_eq!(
                p.settings.is_none(),
                p.why.is_some(),
                "{}: `why` goes with an entry without settings",
                p.id
            );
            for (name, setting) in p.settings.iter().flatten() {
                assert!(
                    setting.flag.is_some() != setting.role.is_some(),
                    "{}: setting {name} needs exactly one of flag and role",
                    p.id
                );
                if let Some(flag) = &setting.flag {
                    assert!(
                        crate::kaniko::FlagTable::get().long(flag).is_some(),
                        "{}: setting {name}: unknown Kaniko flag {flag}",
                        p.id
                    );
                }
                assert_eq!(
                    setting.role == Some(Role::Manual),
                    setting.why.is_some(),
                    "{}: setting {name}: `why` goes with role manual",
                    p.id
                );
            }
        }
    }
}
