//! The Kaniko flag table from `rules/kaniko-flags.yaml`.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

/// The table as people edit it (read by the tests).
#[cfg(test)]
pub(super) const FLAGS_YAML: &str = include_str!("../../../../rules/kaniko-flags.yaml");
/// The same table converted to JSON by `build.rs` (read by the binary: JSON
/// parses an order of magnitude faster than YAML).
pub(super) const FLAGS_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/kaniko-flags.json"));

/// How many values a flag takes and how repeats combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arity {
    /// `--flag` or `--flag=<bool>`; a following word is never its value.
    Bool,
    /// One value; the last occurrence wins.
    Value,
    /// One value per occurrence, all kept.
    Repeatable,
    /// Repeatable `host=value`; the last value per host wins.
    Map,
}

/// What the rewrite does with a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Map,
    MapWarn,
    Drop,
    DropWarn,
    Manual,
}

/// One row of the table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagSpec {
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub arity: Arity,
    #[serde(default)]
    pub split: Option<String>,
    #[serde(default)]
    pub default: Option<bool>,
    pub action: Action,
    #[serde(default)]
    pub buildx: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub todo: Option<String>,
    #[serde(default)]
    pub fork: Option<String>,
    #[serde(default)]
    pub rule: Option<crate::rules::Rule>,
    /// How buildx spells this flag (`same`), or what it writes instead;
    /// only for the flags people keep in variables.
    #[serde(default)]
    pub passthrough: Option<String>,
    /// What GitLab's Buildah target writes for the flag, where it carries over.
    #[serde(default)]
    pub buildah: Option<String>,
    /// Why the flag is removed, changed or refused under the Buildah target.
    #[serde(default, rename = "buildah-reason")]
    pub buildah_reason: Option<String>,
}

impl FlagSpec {
    /// `--name`, as users write it.
    pub fn display(&self) -> String {
        format!("--{}", self.name)
    }

    /// Whether buildx takes this flag spelled as Kaniko spells it (the
    /// table's `passthrough: same`), so a value holding it works for both.
    pub fn buildx_spells_it_the_same(&self) -> bool {
        self.passthrough.as_deref() == Some("same")
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlagsFile {
    flags: Vec<FlagSpec>,
}

/// The loaded table with look-ups by every spelling.
#[derive(Debug)]
pub struct FlagTable {
    pub flags: Vec<FlagSpec>,
    long: HashMap<String, usize>,
    short: HashMap<char, usize>,
}

impl FlagTable {
    #[cfg(test)]
    fn load(yaml: &str) -> Result<Self, String> {
        Self::build(yaml_serde::from_str(yaml).map_err(|e| e.to_string())?)
    }

    fn build(file: FlagsFile) -> Result<Self, String> {
        let mut long = HashMap::new();
        let mut short = HashMap::new();
        for (i, f) in file.flags.iter().enumerate() {
            let mut names = vec![f.name.as_str()];
            for alias in &f.aliases {
                if let Some(c) = alias.strip_prefix('-').filter(|a| !a.starts_with('-')) {
                    let mut chars = c.chars();
                    match (chars.next(), chars.next()) {
                        (Some(ch), None) => {
                            if short.insert(ch, i).is_some() {
                                return Err(format!("short flag -{ch} listed twice"));
                            }
                        }
                        _ => return Err(format!("{}: bad short alias {alias}", f.name)),
                    }
                } else {
                    names.push(alias);
                }
            }
            for n in names {
                if long.insert(n.to_string(), i).is_some() {
                    return Err(format!("flag --{n} listed twice"));
                }
            }
            let needs_buildx = matches!(f.action, Action::Map | Action::MapWarn);
            if needs_buildx != f.buildx.is_some() {
                return Err(format!(
                    "--{}: `buildx` must be set exactly for map actions",
                    f.name
                ));
            }
            if f.action != Action::Map && f.reason.is_none() {
                return Err(format!(
                    "--{}: a {:?} flag needs a reason",
                    f.name, f.action
                ));
            }
            if f.buildah.is_none() && f.buildah_reason.is_none() {
                return Err(format!(
                    "--{}: say what the Buildah target writes (`buildah`) or why not (`buildah-reason`)",
                    f.name
                ));
            }
            if matches!(f.action, Action::Manual) && f.todo.is_none() {
                return Err(format!("--{}: a manual flag needs a todo", f.name));
            }
        }
        Ok(FlagTable {
            flags: file.flags,
            long,
            short,
        })
    }

    /// The table compiled into the binary.
    pub fn get() -> &'static FlagTable {
        static TABLE: OnceLock<FlagTable> = OnceLock::new();
        TABLE.get_or_init(|| {
            let file = serde_json::from_str(FLAGS_JSON).expect("build.rs wrote valid JSON");
            FlagTable::build(file).expect("rules/kaniko-flags.yaml is checked by tests")
        })
    }

    /// Looks up a long spelling without its dashes.
    pub fn long(&self, name: &str) -> Option<&FlagSpec> {
        self.long.get(name).map(|&i| &self.flags[i])
    }

    /// Looks up a one-letter short form.
    pub fn short(&self, c: char) -> Option<&FlagSpec> {
        self.short.get(&c).map(|&i| &self.flags[i])
    }

    /// Every long spelling, for "did you mean" suggestions.
    pub fn long_names(&self) -> impl Iterator<Item = &str> {
        self.long.keys().map(String::as_str)
    }

    /// The closest long spelling to `name`, if it is close enough to be a typo.
    pub fn suggest(&self, name: &str) -> Option<&str> {
        self.long_names()
            .map(|n| (edit_distance(n, name), n))
            .filter(|(d, n)| *d <= 2.max(n.len() / 5))
            .min()
            .map(|(_, n)| n)
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_loads_and_has_every_upstream_spelling() {
        let t = FlagTable::get();
        for name in [
            "context",
            "dockerfile",
            "destination",
            "cache",
            "cache-repo",
            "cache-ttl",
            "tarPath",
            "tar-path",
            "customPlatform",
            "snapshotMode",
            "whitelist-var-run",
            "registry-map",
            "skip-unused-stages",
            "reproducible",
            "digest-file",
        ] {
            assert!(t.long(name).is_some(), "--{name} missing");
        }
        for c in ['c', 'f', 'd', 'b', 'v'] {
            assert!(t.short(c).is_some(), "-{c} missing");
        }
        assert_eq!(t.short('c').unwrap().name, "context");
        assert!(t.short('t').is_none(), "-t is not a Kaniko flag");
        let upstream = t
            .flags
            .iter()
            .filter(|f| f.fork.is_none())
            .map(|f| 1 + f.aliases.iter().filter(|a| !a.starts_with('-')).count())
            .sum::<usize>();
        assert!(upstream >= 60, "only {upstream} upstream spellings");
        assert_eq!(t.long("registry-map").unwrap().split.as_deref(), Some(";"));
    }

    #[test]
    fn table_validation_catches_mistakes() {
        let dup = "flags:\n  - {name: a, arity: bool, action: map, buildx: x, buildah: y}\n  - {name: a, arity: bool, action: map, buildx: x, buildah: y}\n";
        assert!(FlagTable::load(dup).unwrap_err().contains("twice"));
        let no_reason = "flags:\n  - {name: a, arity: bool, action: drop, buildah-reason: r}\n";
        assert!(FlagTable::load(no_reason).unwrap_err().contains("reason"));
        let no_buildah = "flags:\n  - {name: a, arity: bool, action: drop, reason: r}\n";
        assert!(FlagTable::load(no_buildah).unwrap_err().contains("Buildah"));
        let unknown = "flags:\n  - {name: a, arity: bool, action: drop, reason: r, buildah-reason: r, colour: red}\n";
        assert!(FlagTable::load(unknown).is_err());
    }

    #[test]
    fn suggestions_catch_typos_only() {
        let t = FlagTable::get();
        assert_eq!(t.suggest("destinaton"), Some("destination"));
        assert_eq!(t.suggest("cache-reop"), Some("cache-repo"));
        assert_eq!(t.suggest("platform"), None);
    }
}
