//! A Kaniko plugin step read as the executor call it makes: its
//! `settings:` turned into executor arguments by the table in
//! `rules/plugins.yaml`, so the flag table, the `BuildPlan` conversion and
//! the notes are the same as for a call written out.

use std::ops::Range;

use super::plugins::{KanikoPlugin, Role};
use crate::kaniko::call::Arg;
use crate::source::{Entry, Node, Tree, Value};

/// Where the plugin runs: the step's working directory, the workspace
/// (`/drone/src` on Drone; Woodpecker's differs, the paths relative to it
/// do not).
pub const WORKSPACE: &str = "/drone/src";

/// The executor call a plugin step makes.
#[derive(Debug, Default)]
pub struct Translation<'a> {
    pub args: Vec<Arg>,
    /// The login settings (`registry`, `username`, `password`), carried to
    /// the buildx plugin as written.
    pub login: Vec<&'a Entry>,
    /// Why the step cannot be translated, with where.
    pub manual: Vec<(Range<usize>, String)>,
}

/// A setting's values: a YAML list, or a string the plugin splits on
/// commas (`None`: neither, e.g. `from_secret:`); an alias is read as the
/// node it names.
fn values(tree: &Tree, node: &Node, split: bool) -> Option<Vec<String>> {
    match &node.value {
        Value::Alias(name) => {
            let target = tree.anchored(name, node.span.start)?;
            match target.value {
                Value::Alias(_) => None,
                _ => values(tree, target, split),
            }
        }
        Value::Seq(seq) => seq
            .items
            .iter()
            .map(|i| i.node.as_str().map(|s| s.trim().to_string()))
            .collect(),
        Value::Scalar(_) => {
            let text = node.as_str()?.trim();
            Some(match split {
                true => text
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(String::from)
                    .collect(),
                false => vec![text.to_string()],
            })
        }
        Value::Null => Some(Vec::new()),
        _ => None,
    }
}

/// How a setting's name reaches the plugin: Woodpecker turns `-` and `.`
/// into `_` (`build-args` is `PLUGIN_BUILD_ARGS`); Drone passes it as
/// written.
pub fn setting_name(name: &str, woodpecker: bool) -> String {
    match woodpecker {
        true => name.replace(['-', '.'], "_"),
        false => name.to_string(),
    }
}

/// The executor call the plugin step with `settings` makes (`step_span`
/// stands for the step where no setting is written) on Woodpecker or
/// Drone.
pub fn plugin_call<'a>(
    tree: &Tree,
    plugin: &KanikoPlugin,
    settings: Option<&'a Node>,
    step_span: &Range<usize>,
    woodpecker: bool,
) -> Translation<'a> {
    let mut out = Translation::default();
    let Some(known) = &plugin.settings else {
        out.manual.push((
            step_span.clone(),
            format!(
                "{}: {}",
                plugin.name,
                plugin
                    .why
                    .as_deref()
                    .unwrap_or("kmigrate does not know its settings")
            ),
        ));
        return out;
    };
    let entries: Vec<&Entry> = match settings.map(|s| &s.value) {
        Some(Value::Map(map)) if !map.flow => map.entries.iter().collect(),
        None | Some(Value::Null) => Vec::new(),
        Some(_) => {
            out.manual.push((
                step_span.clone(),
                "`settings:` is not a block mapping".into(),
            ));
            return out;
        }
    };
    let arg = |text: String, span: &Range<usize>| Arg {
        text,
        span: Some(span.clone()),
        dynamic: false,
    };
    let mut repo: Option<(String, Range<usize>)> = None;
    let mut registry: Option<String> = None;
    let mut tags: Option<(Vec<String>, Range<usize>)> = None;
    let mut cache_repo: Option<(String, Range<usize>)> = None;
    let mut cache: Option<Range<usize>> = None;
    let mut no_push = false;
    for e in &entries {
        let Some(written) = e.key.as_str() else {
            continue;
        };
        let name = setting_name(written, woodpecker);
        let name = name.as_str();
        let Some(setting) = known.get(name) else {
            out.manual.push((
                e.key.span.clone(),
                format!(
                    "the setting `{name}` is not one kmigrate knows for {} (rules/plugins.yaml)",
                    plugin.name
                ),
            ));
            continue;
        };
        let span = e.value.span.clone();
        if matches!(setting.role, Some(Role::Username | Role::Password)) {
            out.login.push(e);
            continue;
        }
        if setting.role == Some(Role::Ignore) {
            continue;
        }
        let split = setting.list || setting.role == Some(Role::Tags);
        let Some(items) = values(tree, &e.value, split) else {
            out.manual.push((
                span,
                format!(
                    "the setting `{name}` is not a plain value or list (a `from_secret:` is only known at run time)"
                ),
            ));
            continue;
        };
        let one = items.join(",");
        let yes = one.eq_ignore_ascii_case("true");
        match (&setting.flag, setting.role) {
            (Some(flag), _) if setting.list => {
                for v in &items {
                    out.args.push(arg(format!("--{flag}={v}"), &span));
                }
            }
            (Some(flag), _) if !one.is_empty() => {
                out.args.push(arg(format!("--{flag}={one}"), &span))
            }
            (_, Some(Role::Manual)) if !one.is_empty() && one != "false" => out.manual.push((
                e.key.span.clone(),
                format!(
                    "the setting `{name}` cannot be translated: {}",
                    setting.why.as_deref().unwrap_or("")
                ),
            )),
            (_, Some(Role::Repo)) => repo = Some((one, span)),
            (_, Some(Role::Registry)) => {
                registry = Some(one);
                out.login.push(e);
            }
            (_, Some(Role::Tags)) => tags = Some((items, span)),
            (_, Some(Role::Context)) => {
                let dir = one.trim_start_matches("./").trim_end_matches('/');
                let dir = match dir {
                    "" | "." => WORKSPACE.to_string(),
                    d if d.starts_with('/') => d.to_string(),
                    d => format!("{WORKSPACE}/{d}"),
                };
                out.args.push(arg(format!("--context={dir}"), &span));
            }
            (_, Some(Role::Dockerfile)) => {
                let file = one.trim_start_matches("./");
                let file = match file.starts_with('/') {
                    true => file.to_string(),
                    false => format!("{WORKSPACE}/{file}"),
                };
                out.args.push(arg(format!("--dockerfile={file}"), &span));
            }
            (_, Some(Role::Cache)) => cache = yes.then(|| span.clone()),
            (_, Some(Role::CacheRepo)) => cache_repo = Some((one, span)),
            (_, Some(Role::NoPush)) if yes => {
                no_push = true;
                out.args.push(arg("--no-push".into(), &span))
            }
            _ => {}
        }
    }
    // The plugins' own defaults: the context is the workspace, the
    // Dockerfile `Dockerfile` in it (not in the context).
    if !out.args.iter().any(|a| a.text.starts_with("--context=")) {
        out.args
            .push(arg(format!("--context={WORKSPACE}"), step_span));
    }
    if !out.args.iter().any(|a| a.text.starts_with("--dockerfile=")) {
        out.args.push(arg(
            format!("--dockerfile={WORKSPACE}/Dockerfile"),
            step_span,
        ));
    }
    let prefix = |name: &str, setting: &str| -> Result<String, String> {
        if !plugin.registry_prefixes_repo {
            return Ok(name.to_string());
        }
        match &registry {
            Some(r) if !r.contains("://") => Ok(format!("{}/{name}", r.trim_end_matches('/'))),
            _ => Err(format!(
                "{} writes `registry` before `{setting}`, and without a registry host (`registry: r.example`) it writes Docker Hub's login URL there",
                plugin.name
            )),
        }
    };
    if no_push && plugin.dry_run_drops_push {
        return out;
    }
    match repo {
        Some((name, span)) => match prefix(&name, "repo") {
            Ok(full) => {
                let (tags, tags_span) = tags.unwrap_or((vec!["latest".into()], span.clone()));
                for t in tags {
                    out.args
                        .push(arg(format!("--destination={full}:{t}"), &tags_span));
                }
            }
            Err(why) => out.manual.push((span, why)),
        },
        None => out.manual.push((
            step_span.clone(),
            "without `repo:` the plugin builds without pushing or derives the name at run time; set `repo:` and run kmigrate again".into(),
        )),
    }
    if let Some(span) = cache {
        out.args.push(arg("--cache=true".into(), &span));
        if let Some((name, span)) = cache_repo {
            match prefix(&name, "cache_repo") {
                Ok(full) => out.args.push(arg(format!("--cache-repo={full}"), &span)),
                Err(why) => out.manual.push((span, why)),
            }
        }
    }
    out
}
