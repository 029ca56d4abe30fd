//! A Kaniko action step read as the executor call it makes: its `with:`
//! inputs turned into executor arguments by the table in
//! `rules/actions.yaml`, so the flag table, the `BuildPlan` conversion and
//! the notes are the same as for a call written out.

use std::collections::BTreeMap;
use std::ops::Range;

use super::actions::{Input, KanikoAction, Role};
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
    let Some(values) = read_inputs(step, action, known, &mut out) else {
        return out;
    };
    let with_span = step.with.map_or(uses_span.clone(), |w| w.span.clone());
    let mut t = ActionCall {
        action,
        known,
        values,
        uses_span,
        with_span,
        out,
    };
    t.context_and_dockerfile();
    t.destinations_and_login();
    t.flag_inputs();
    t.push();
    t.extra_args();
    t.out
}

/// The step's `with:` inputs by their name in the table, each checked
/// against it (`None`: `with:` is not a mapping, said in `out`).
fn read_inputs<'k>(
    step: &Step,
    action: &KanikoAction,
    known: &'k BTreeMap<String, Input>,
    out: &mut Translation,
) -> Option<BTreeMap<&'k str, Value>> {
    let mut values: BTreeMap<&str, Value> = BTreeMap::new();
    let Some(with) = step.with else {
        return Some(values);
    };
    let Some(map) = with.value.as_map() else {
        if !with.value.is_null() {
            out.manual
                .push((with.value.span.clone(), "`with:` is not a mapping".into()));
        }
        return None;
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
    Some(values)
}

/// An action step's translation while it is built, one part of the call
/// after another (the order of the arguments is the order of the parts).
struct ActionCall<'a> {
    action: &'a KanikoAction,
    /// The action's inputs, from `rules/actions.yaml`.
    known: &'a BTreeMap<String, Input>,
    /// The inputs the step writes.
    values: BTreeMap<&'a str, Value>,
    uses_span: Range<usize>,
    /// Where a default value points: the step's `with:`, else its `uses:`.
    with_span: Range<usize>,
    out: Translation,
}

impl ActionCall<'_> {
    /// The value of the input with `role`, else its default.
    fn by_role(&self, role: Role) -> Option<(String, Range<usize>)> {
        let (name, input) = self.known.iter().find(|(_, i)| i.role == Some(role))?;
        match self.values.get(name.as_str()) {
            Some(v) if !v.text.trim().is_empty() => {
                Some((v.text.trim().to_string(), v.span.clone()))
            }
            _ => input.default.clone().map(|d| (d, self.with_span.clone())),
        }
    }

    /// Whether the step gives the input with `role` a value.
    fn written(&self, role: Role) -> bool {
        self.known.iter().any(|(name, i)| {
            i.role == Some(role)
                && self
                    .values
                    .get(name.as_str())
                    .is_some_and(|v| !v.text.trim().is_empty())
        })
    }

    fn arg(&mut self, text: String, span: &Range<usize>) {
        self.out.args.push(Arg {
            text,
            span: Some(span.clone()),
            dynamic: false,
        });
    }

    /// Context and Dockerfile, as absolute paths under the workspace.
    fn context_and_dockerfile(&mut self) {
        let (context, context_span) = self
            .by_role(Role::Context)
            .unwrap_or((".".into(), self.with_span.clone()));
        let context = context.trim_start_matches("./").trim_end_matches('/');
        let context_dir = if context.is_empty() || context == "." {
            WORKSPACE.to_string()
        } else if context.starts_with('/') {
            self.out.manual.push((
                context_span.clone(),
                format!(
                    "the context `{context}` is an absolute path inside the action's container"
                ),
            ));
            context.to_string()
        } else {
            format!("{WORKSPACE}/{context}")
        };
        // Only what the step wrote becomes a flag (the report counts flags);
        // the executor's defaults are the action's.
        if self.written(Role::Context) {
            self.arg(format!("--context={context_dir}"), &context_span);
        }
        if let Some((file, span)) = self.by_role(Role::FileInContext)
            && self.written(Role::FileInContext)
        {
            let file = file.trim_start_matches("./");
            self.arg(format!("--dockerfile={context_dir}/{file}"), &span);
        }
        if let Some((file, span)) = self.by_role(Role::File)
            && self.written(Role::File)
        {
            let file = file.trim_start_matches("./");
            self.arg(format!("--dockerfile={WORKSPACE}/{file}"), &span);
        }
    }

    /// Destinations composed of registry, image and tag, and the login.
    fn destinations_and_login(&mut self) {
        let Some((image, image_span)) = self.by_role(Role::Image) else {
            return;
        };
        let (registry, _) = self
            .by_role(Role::Registry)
            .unwrap_or(("docker.io".into(), self.with_span.clone()));
        if registry.contains("${{") {
            self.out.manual.push((
                image_span.clone(),
                format!("the registry `{registry}` is only known at run time, and the action spells the image differently for docker.io and ghcr.io"),
            ));
        } else if registry == "ghcr.io" {
            self.out.manual.push((
                image_span.clone(),
                "for ghcr.io the action prefixes the image with the lower-cased repository name, which a workflow expression cannot spell".into(),
            ));
        }
        match self.by_role(Role::Tag) {
            None => self.out.manual.push((
                image_span.clone(),
                "without `tag:` the action derives the tag from the branch at run time; set `tag:` and run kmigrate again".into(),
            )),
            Some((tag, _)) => {
                let prefix = if registry == "docker.io" {
                    String::new()
                } else {
                    format!("{registry}/")
                };
                self.arg(format!("--destination={prefix}{image}:{tag}"), &image_span);
                if self
                    .by_role(Role::TagWithLatest)
                    .is_some_and(|(v, _)| v == "true")
                {
                    self.arg(format!("--destination={prefix}{image}:latest"), &image_span);
                }
            }
        }
        let username = self.by_role(Role::Username).map(|(u, _)| u);
        match self.by_role(Role::Password) {
            Some((password, _)) => {
                self.out.login = Some(Login {
                    registry: (registry != "docker.io").then(|| registry.clone()),
                    username: username.unwrap_or_else(|| "${{ github.actor }}".into()),
                    password,
                })
            }
            None => self.out.manual.push((
                self.uses_span.clone(),
                "without `password:` the action logs in with a `GITHUB_TOKEN` variable; add `password:` and run kmigrate again".into(),
            )),
        }
    }

    /// Inputs passed to a flag, in the table's order.
    fn flag_inputs(&mut self) {
        let cache_on = self.known.iter().any(|(name, i)| {
            i.flag.as_deref() == Some("cache")
                && self
                    .values
                    .get(name.as_str())
                    .is_some_and(|v| v.text.trim().eq_ignore_ascii_case("true"))
        });
        let known = self.known;
        for (name, input) in known {
            let Some(v) = self.values.get(name.as_str()) else {
                continue;
            };
            let (text, span) = (v.text.trim().to_string(), v.span.clone());
            if text.is_empty() {
                continue;
            }
            match (&input.flag, input.role) {
                (Some(flag), _) if input.list => {
                    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                        self.arg(format!("--{flag}={line}"), &span);
                    }
                }
                (Some(flag), _) => self.arg(format!("--{flag}={text}"), &span),
                (None, Some(Role::CacheIfSet)) => self.arg("--cache=true".into(), &span),
                (None, Some(Role::CacheRepoIfCache)) if cache_on => {
                    self.arg(format!("--cache-repo={text}"), &span)
                }
                _ => {}
            }
        }
    }

    /// Whether the step pushes, and the arguments the action always adds.
    fn push(&mut self) {
        let action = self.action;
        let push = match self.known.iter().find(|(_, i)| i.role == Some(Role::Push)) {
            Some((name, _)) => match self.values.get(name.as_str()).map(|v| v.text.trim()) {
                None | Some("") => action.push_default,
                Some(t) if t.eq_ignore_ascii_case("true") => true,
                Some(t) if t.eq_ignore_ascii_case("false") => false,
                Some(t) => {
                    self.out.manual.push((
                        self.values[name.as_str()].span.clone(),
                        format!("`push: {t}` is decided at run time; kmigrate translates `true` or `false`"),
                    ));
                    action.push_default
                }
            },
            None => action.push_default,
        };
        let uses_span = self.uses_span.clone();
        if !push {
            self.arg("--no-push".into(), &uses_span);
        }
        for a in &action.always {
            self.arg(a.clone(), &uses_span);
        }
    }

    /// Extra executor arguments.
    fn extra_args(&mut self) {
        let known = self.known;
        for (name, input) in known {
            let Some(v) = self.values.get(name.as_str()) else {
                continue;
            };
            match input.role {
                Some(Role::ExtraArgsLines) => {
                    for line in v.text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                        self.out.args.push(Arg {
                            text: line.to_string(),
                            span: Some(v.span.clone()),
                            dynamic: false,
                        });
                    }
                }
                Some(Role::ExtraArgsWords) => {
                    let script = shell::parse(&v.text);
                    if !script.problems.is_empty() || script.commands.len() > 1 {
                        self.out.manual.push((
                            v.span.clone(),
                            format!("the input `{name}` is not a plain list of arguments"),
                        ));
                        continue;
                    }
                    for w in script.commands.iter().flat_map(|c| &c.words) {
                        self.out.args.push(Arg::from_word(w, v.span.clone()));
                    }
                }
                _ => {}
            }
        }
    }
}
