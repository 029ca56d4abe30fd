//! Which GitHub Actions run Kaniko, and what their inputs mean: the table
//! in `rules/actions.yaml`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use regex::{Regex, RegexBuilder};
use serde::Deserialize;

use crate::kaniko::images::Examples;

/// The table as people edit it (read by the tests).
#[cfg(test)]
const ACTIONS_YAML: &str = include_str!("../../../../../rules/actions.yaml");
/// The same table converted to JSON by `build.rs` (read by the binary).
const ACTIONS_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/actions.json"));

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionsFile {
    actions: Vec<KanikoAction>,
}

/// One Kaniko action of the table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KanikoAction {
    pub id: String,
    /// How messages name the action.
    pub name: String,
    uses: String,
    #[allow(dead_code)] // for people: where the inputs were read
    source: String,
    /// Whether the action pushes when `push` is not given.
    #[serde(default = "yes")]
    pub push_default: bool,
    /// Executor arguments the action always passes.
    #[serde(default)]
    pub always: Vec<String>,
    /// What each input means; `None`: kmigrate does not know the action's
    /// inputs, so it only reports it.
    #[serde(default)]
    pub inputs: Option<BTreeMap<String, Input>>,
    #[allow(dead_code)] // read by the table test only
    examples: Examples,
}

fn yes() -> bool {
    true
}

/// What one input means.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The Kaniko flag the value goes to.
    #[serde(default)]
    pub flag: Option<String>,
    /// One flag per non-empty line.
    #[serde(default)]
    pub list: bool,
    #[serde(default)]
    pub role: Option<Role>,
    /// The action's default when the input is absent.
    #[serde(default)]
    pub default: Option<String>,
    /// Why a `manual` input cannot be translated.
    #[serde(default)]
    pub why: Option<String>,
}

/// An input with a meaning of its own (see the table's header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Push,
    CacheIfSet,
    CacheRepoIfCache,
    ExtraArgsLines,
    ExtraArgsWords,
    Registry,
    Image,
    Tag,
    TagWithLatest,
    Context,
    File,
    FileInContext,
    Username,
    Password,
    Ignore,
    Manual,
}

struct Compiled {
    actions: Vec<KanikoAction>,
    patterns: Vec<Regex>,
}

fn table() -> &'static Compiled {
    static TABLE: OnceLock<Compiled> = OnceLock::new();
    TABLE.get_or_init(|| {
        let file: ActionsFile =
            serde_json::from_str(ACTIONS_JSON).expect("rules/actions.yaml is checked by tests");
        let patterns = file
            .actions
            .iter()
            .map(|a| {
                RegexBuilder::new(&format!("^(?:{})$", a.uses))
                    .case_insensitive(true)
                    .build()
                    .expect("rules/actions.yaml patterns are checked by tests")
            })
            .collect();
        Compiled {
            actions: file.actions,
            patterns,
        }
    })
}

/// The Kaniko action a step's `uses:` value names, if any (`owner/repo`
/// or `owner/repo/path`, at any `@ref`).
pub fn match_action(uses: &str) -> Option<&'static KanikoAction> {
    let name = uses.split('@').next().unwrap_or(uses).trim();
    let t = table();
    t.patterns
        .iter()
        .position(|p| p.is_match(name))
        .map(|i| &t.actions[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_matches_as_the_table_says() {
        let file: ActionsFile = yaml_serde::from_str(ACTIONS_YAML).unwrap();
        assert!(!file.actions.is_empty());
        for a in &file.actions {
            for m in &a.examples.r#match {
                let found = match_action(&format!("{m}@v1")).map(|x| x.id.as_str());
                assert_eq!(found, Some(a.id.as_str()), "{m} should match {}", a.id);
            }
            for m in &a.examples.no_match {
                let found = match_action(m).map(|x| x.id.as_str());
                assert_ne!(found, Some(a.id.as_str()), "{m} should not match {}", a.id);
            }
            for (name, input) in a.inputs.iter().flatten() {
                assert!(
                    input.flag.is_some() != input.role.is_some(),
                    "{}: input {name} needs exactly one of flag and role",
                    a.id
                );
                if let Some(flag) = &input.flag {
                    assert!(
                        crate::kaniko::FlagTable::get().long(flag).is_some(),
                        "{}: input {name}: unknown Kaniko flag {flag}",
                        a.id
                    );
                }
                assert_eq!(
                    input.role == Some(Role::Manual),
                    input.why.is_some(),
                    "{}: input {name}: `why` goes with role manual",
                    a.id
                );
            }
        }
    }
}
