//! Which Drone / Woodpecker plugin images run Kaniko: the table in
//! `rules/plugins.yaml`.

use std::sync::OnceLock;

use regex::{Regex, RegexBuilder};
use serde::Deserialize;

/// The table as people edit it (read by the tests).
#[cfg(test)]
const PLUGINS_YAML: &str = include_str!("../../../../../rules/plugins.yaml");
/// The same table converted to JSON by `build.rs` (read by the binary).
const PLUGINS_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/plugins.json"));

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PluginsFile {
    plugins: Vec<KanikoPlugin>,
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
    #[allow(dead_code)] // read by the table test only
    examples: Examples,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // read by the table test only
struct Examples {
    #[serde(default)]
    r#match: Vec<String>,
    #[serde(default)]
    no_match: Vec<String>,
}

fn table() -> &'static (Vec<KanikoPlugin>, Vec<Regex>) {
    static TABLE: OnceLock<(Vec<KanikoPlugin>, Vec<Regex>)> = OnceLock::new();
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
        (file.plugins, patterns)
    })
}

/// The Kaniko plugin an image reference (any tag or digest) names, if any.
pub fn match_plugin(image: &str) -> Option<&'static KanikoPlugin> {
    let name = crate::buildx::from_kaniko::repository_of(image.trim());
    let (plugins, patterns) = table();
    patterns
        .iter()
        .position(|p| p.is_match(name))
        .map(|i| &plugins[i])
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
        }
    }
}
