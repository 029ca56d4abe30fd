//! A Kaniko action step read as the executor call it makes: its `with:`
//! inputs turned into executor arguments by the table in
//! `rules/actions.yaml`, so the flag table, the `BuildPlan` conversion and
//! the notes are the same as for a call written out.

use std::collections::BTreeMap;
use std::ops::Range;

use super::actions::{KanikoAction, Role};
use super::workflow::Step;
use crate::kaniko::call::Arg;
use crate::shell;

/// Where Kaniko actions run: the workspace is mounted here (docker actions
/// run in `/github/workspace`; int128's mounts the context at `/workspace`,
/// which comes to the same paths relative to the workspace).
pub const WORKSPACE: &str = "/github/workspace";

/// Registry credentials the step handed to Kaniko.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// `None` for Docker Hub.
    pub registry: Option<String>,
    pub username: String,
    pub password: String,
}

/// The executor call an action step makes.
#[derive(Debug, Clone, Default)]
pub struct Translation {
    pub args: Vec<Arg>,
    pub login: Option<Login>,
    /// Why the step cannot be translated, with where.
    pub manual: Vec<(Range<usize>, String)>,
}

/// One input as written: its text and where its value is.
struct Value {
    text: String,
    span: Range<usize>,
}

/// The executor call `step` (which `uses:` `action`) makes.
pub fn action_call(step: &Step, action: &KanikoAction) -> Translation {
    let mut out = Translation::default();
    let uses_span = step
        .uses
        .map_or(step.item.span.clone(), |u| u.value.span.clone());
    let Some(known) = &action.inputs else {
        out.manual.push((
            uses_span,
            format!(
                "kmigrate does not know the inputs of {}; replace the step with docker/setup-buildx-action and docker/build-push-action by hand",
                action.name
            ),
        ));
        return out;
    };
    let mut values: BTreeMap<&str, Value> = BTreeMap::new();
    if let Some(with) = step.with {
        let Some(map) = with.value.as_map() else {
            if !with.value.is_null() {
                out.manual
                    .push((with.value.span.clone(), "`with:` is not a mapping".into()));
            }
            return out;
        };
        for e in &map.entries {
            let Some(name) = e.key.as_str() else { continue };
            let Some((input_name, input)) = known.get_key_value(name) else {
                out.manual.push((
                    e.key.span.clone(),
                    format!(
                        "the input `{name}` is not one kmigrate knows for {} (rules/actions.yaml)",
                        action.name
                    ),
                ));
                continue;
            };
            let text = match e.value.as_str() {
                Some(t) => t.to_string(),
                None if e.value.is_null() => String::new(),
                None => {
                    out.manual.push((
                        e.value.span.clone(),
                        format!("the input `{name}` is not a single value"),
                    ));
                    continue;
                }
            };
            if input.role == Some(Role::Manual) && !text.trim().is_empty() {
                out.manual.push((
                    e.key.span.clone(),
                    format!(
                        "the input `{name}` cannot be translated: {}",
                        input.why.as_deref().unwrap_or("")
                    ),
                ));
            }
            values.insert(
                input_name.as_str(),
                Value {
                    text,
                    span: e.value.span.clone(),
                },
            );
        }
    }
    let with_span = step.with.map_or(uses_span.clone(), |w| w.span.clone());
    // The value of the input with `role`, else its default.
    let by_role = |role: Role| -> Option<(String, Range<usize>)> {
        let (name, input) = known.iter().find(|(_, i)| i.role == Some(role))?;
        match values.get(name.as_str()) {
            Some(v) if !v.text.trim().is_empty() => {
                Some((v.text.trim().to_string(), v.span.clone()))
            }
            _ => input.default.clone().map(|d| (d, with_span.clone())),
        }
    };
    // Whether the step gives the input with `role` a value.
    let written = |role: Role| {
        known.iter().any(|(name, i)| {
            i.role == Some(role)
                && values
                    .get(name.as_str())
                    .is_some_and(|v| !v.text.trim().is_empty())
        })
    };
    let arg = |text: String, span: &Range<usize>| Arg {
        text,
        span: Some(span.clone()),
        dynamic: false,
    };

    // Context and Dockerfile, as absolute paths under the workspace.
    let (context, context_span) = by_role(Role::Context).unwrap_or((".".into(), with_span.clone()));
    let context = context.trim_start_matches("./").trim_end_matches('/');
    let context_dir = if context.is_empty() || context == "." {
        WORKSPACE.to_string()
    } else if context.starts_with('/') {
        out.manual.push((
            context_span.clone(),
            format!("the context `{context}` is an absolute path inside the action's container"),
        ));
        context.to_string()
    } else {
        format!("{WORKSPACE}/{context}")
    };
    // Only what the step wrote becomes a flag (the report counts flags);
    // the executor's defaults are the action's.
    if written(Role::Context) {
        out.args
            .push(arg(format!("--context={context_dir}"), &context_span));
    }
    if let Some((file, span)) = by_role(Role::FileInContext)
        && written(Role::FileInContext)
    {
        let file = file.trim_start_matches("./");
        out.args
            .push(arg(format!("--dockerfile={context_dir}/{file}"), &span));
    }
    if let Some((file, span)) = by_role(Role::File)
        && written(Role::File)
    {
        let file = file.trim_start_matches("./");
        out.args
            .push(arg(format!("--dockerfile={WORKSPACE}/{file}"), &span));
    }

    // Destinations composed of registry, image and tag.
    if let Some((image, image_span)) = by_role(Role::Image) {
        let (registry, _) =
            by_role(Role::Registry).unwrap_or(("docker.io".into(), with_span.clone()));
        if registry.contains("${{") {
            out.manual.push((
                image_span.clone(),
                format!("the registry `{registry}` is only known at run time, and the action spells the image differently for docker.io and ghcr.io"),
            ));
        } else if registry == "ghcr.io" {
            out.manual.push((
                image_span.clone(),
                "for ghcr.io the action prefixes the image with the lower-cased repository name, which a workflow expression cannot spell".into(),
            ));
        }
        match by_role(Role::Tag) {
            None => out.manual.push((
                image_span.clone(),
                "without `tag:` the action derives the tag from the branch at run time; set `tag:` and run kmigrate again".into(),
            )),
            Some((tag, _)) => {
                let prefix = if registry == "docker.io" {
                    String::new()
                } else {
                    format!("{registry}/")
                };
                out.args
                    .push(arg(format!("--destination={prefix}{image}:{tag}"), &image_span));
                if by_role(Role::TagWithLatest).is_some_and(|(v, _)| v == "true") {
                    out.args
                        .push(arg(format!("--destination={prefix}{image}:latest"), &image_span));
                }
            }
        }
        let username = by_role(Role::Username).map(|(u, _)| u);
        match by_role(Role::Password) {
            Some((password, _)) => {
                out.login = Some(Login {
                    registry: (registry != "docker.io").then(|| registry.clone()),
                    username: username.unwrap_or_else(|| "${{ github.actor }}".into()),
                    password,
                })
            }
            None => out.manual.push((
                uses_span.clone(),
                "without `password:` the action logs in with a `GITHUB_TOKEN` variable; add `password:` and run kmigrate again".into(),
            )),
        }
    }

    // Inputs passed to a flag, in the table's order.
    let cache_on = |values: &BTreeMap<&str, Value>| {
        known.iter().any(|(name, i)| {
            i.flag.as_deref() == Some("cache")
                && values
                    .get(name.as_str())
                    .is_some_and(|v| v.text.trim().eq_ignore_ascii_case("true"))
        })
    };
    for (name, input) in known {
        let Some(v) = values.get(name.as_str()) else {
            continue;
        };
        let text = v.text.trim();
        if text.is_empty() {
            continue;
        }
        match (&input.flag, input.role) {
            (Some(flag), _) if input.list => {
                for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                    out.args.push(arg(format!("--{flag}={line}"), &v.span));
                }
            }
            (Some(flag), _) => out.args.push(arg(format!("--{flag}={text}"), &v.span)),
            (None, Some(Role::CacheIfSet)) => out.args.push(arg("--cache=true".into(), &v.span)),
            (None, Some(Role::CacheRepoIfCache)) if cache_on(&values) => {
                out.args.push(arg(format!("--cache-repo={text}"), &v.span))
            }
            _ => {}
        }
    }

    // Push.
    let push = match known.iter().find(|(_, i)| i.role == Some(Role::Push)) {
        Some((name, _)) => {
            match values.get(name.as_str()).map(|v| v.text.trim()) {
                None | Some("") => action.push_default,
                Some(t) if t.eq_ignore_ascii_case("true") => true,
                Some(t) if t.eq_ignore_ascii_case("false") => false,
                Some(t) => {
                    out.manual.push((
                    values[name.as_str()].span.clone(),
                    format!("`push: {t}` is decided at run time; kmigrate translates `true` or `false`"),
                ));
                    action.push_default
                }
            }
        }
        None => action.push_default,
    };
    if !push {
        out.args.push(arg("--no-push".into(), &uses_span));
    }
    for a in &action.always {
        out.args.push(arg(a.clone(), &uses_span));
    }

    // Extra executor arguments.
    for (name, input) in known {
        let Some(v) = values.get(name.as_str()) else {
            continue;
        };
        match input.role {
            Some(Role::ExtraArgsLines) => {
                for line in v.text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                    out.args.push(arg(line.to_string(), &v.span));
                }
            }
            Some(Role::ExtraArgsWords) => {
                let script = shell::parse(&v.text);
                if !script.problems.is_empty() || script.commands.len() > 1 {
                    out.manual.push((
                        v.span.clone(),
                        format!("the input `{name}` is not a plain list of arguments"),
                    ));
                    continue;
                }
                for w in script.commands.iter().flat_map(|c| &c.words) {
                    out.args.push(Arg {
                        text: w.literal().unwrap_or_else(|| w.dq.clone()),
                        span: Some(v.span.clone()),
                        dynamic: w.is_bare_expansion(),
                    });
                }
            }
            _ => {}
        }
    }
    out
}
