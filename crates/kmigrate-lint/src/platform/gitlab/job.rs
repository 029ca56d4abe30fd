//! The resolved view of one job: its image, services, variables and script
//! lines, each with the place it is written.

use std::sync::OnceLock;

use super::detect::ParsedSection;
use super::value::{Origin, REntry, RNode, RValue};
use crate::source::{Scalar, SourceError, SourceFile, Span};

/// GitLab flattens nested script lists up to 10 levels.
pub const MAX_SCRIPT_NESTING: usize = 10;

/// A resolved string and where it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub value: String,
    pub origin: Origin,
}

/// `image:` or one `services:` item: a string, or `{name, entrypoint, …}`.
#[derive(Debug, Clone)]
pub struct Image {
    pub name: Located,
    /// `entrypoint:` of the mapping form.
    pub entrypoint: Option<Vec<Located>>,
    /// `alias:` of a service.
    pub alias: Option<Located>,
    /// The whole node (a scalar or a mapping) as written.
    pub origin: Origin,
    /// The value comes from `default:` (or a legacy top-level keyword).
    pub from_default: bool,
}

/// One variable visible to the job.
#[derive(Debug, Clone)]
pub struct Variable {
    pub name: String,
    /// `None` for a `{description: …}`-only entry.
    pub value: Option<Located>,
    /// Where the `NAME: value` pair is written.
    pub entry_span: Span,
    pub file: usize,
    /// From the top-level `variables:` rather than the job's own.
    pub global: bool,
}

/// Which script list a line belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Section {
    BeforeScript,
    Script,
    AfterScript,
}

impl Section {
    pub fn key(self) -> &'static str {
        match self {
            Section::BeforeScript => "before_script",
            Section::Script => "script",
            Section::AfterScript => "after_script",
        }
    }
}

/// One resolved script line (nested lists flattened).
#[derive(Debug, Clone)]
pub struct ScriptLine {
    pub section: Section,
    /// The line's text as the shell receives it (YAML folding applied).
    pub text: String,
    pub origin: Origin,
    /// The value comes from `default:` (or a legacy top-level keyword).
    pub from_default: bool,
    scalar: Scalar,
}

impl ScriptLine {
    /// The source span (in `origin.file`) of `range` of [`ScriptLine::text`].
    pub fn source_range(&self, range: std::ops::Range<usize>) -> Span {
        self.scalar.source_range(&self.origin.span, range)
    }

    /// The YAML scalar the line is written as.
    pub fn scalar(&self) -> &Scalar {
        &self.scalar
    }
}

/// A resolved job (or hidden template).
#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    /// A hidden job (`.name`): a template, never run itself.
    pub hidden: bool,
    /// Where the job's key is written (its last definition when an included
    /// job is overridden).
    pub file: usize,
    pub key_span: Span,
    /// The whole `name: {…}` pair.
    pub entry_span: Span,
    /// The names in the job's own `extends:`.
    pub extends: Vec<Located>,
    /// Every template merged in through `extends`, nearest first.
    pub ancestors: Vec<String>,
    /// `extends` targets defined outside the files read (only in a partial
    /// pipeline: includes not followed, or a fragment given on its own).
    /// What they add to the job is unknown.
    pub unresolved_extends: Vec<Located>,
    /// `!reference`s in the job whose target is not defined in the files
    /// read, as `[.template, key]`: left in place, their value unknown.
    pub unresolved_references: Vec<Located>,
    /// The job's mapping after `extends` and `!reference` (no defaults).
    pub config: RNode,
    pub stage: Option<Located>,
    pub image: Option<Image>,
    pub services: Vec<Image>,
    pub variables: Vec<Variable>,
    pub before_script: Vec<ScriptLine>,
    pub script: Vec<ScriptLine>,
    pub after_script: Vec<ScriptLine>,
    /// Job names in `needs:` and `dependencies:`.
    pub needs: Vec<Located>,
    pub dependencies: Vec<Located>,
    /// Each script section parsed as shell, on first use: finding the
    /// executor calls and the docker builds both read them.
    parsed: [OnceLock<ParsedSection>; 3],
}

impl Job {
    /// Every script line in run order: before_script, script, after_script.
    pub fn lines(&self) -> impl Iterator<Item = &ScriptLine> {
        self.before_script
            .iter()
            .chain(&self.script)
            .chain(&self.after_script)
    }

    /// The lines of one section.
    pub fn section(&self, s: Section) -> &[ScriptLine] {
        match s {
            Section::BeforeScript => &self.before_script,
            Section::Script => &self.script,
            Section::AfterScript => &self.after_script,
        }
    }

    /// The lines of section `s` parsed as one shell script.
    pub fn parsed(&self, s: Section) -> &ParsedSection {
        self.parsed[s as usize].get_or_init(|| ParsedSection::parse(self.section(s)))
    }

    /// The value of a variable visible to the job (job's own first).
    pub fn variable(&self, name: &str) -> Option<&str> {
        self.variables
            .iter()
            .find(|v| v.name == name)
            .and_then(|v| v.value.as_ref())
            .map(|v| v.value.as_str())
    }
}

/// `default:` and the legacy top-level keywords, as inherited by jobs.
#[derive(Debug, Clone, Default)]
pub struct Defaults {
    pub image: Option<RNode>,
    pub services: Option<RNode>,
    pub before_script: Option<RNode>,
    pub after_script: Option<RNode>,
    /// Top-level `variables:`.
    pub variables: Option<RNode>,
}

impl Defaults {
    /// Reads `default:` (which wins over the deprecated top-level
    /// `image`/`services`/`before_script`/`after_script`) and the top-level
    /// `variables:`.
    pub fn read(default: Option<&RNode>, top: &[REntry]) -> Self {
        let root = |k: &str| top.iter().find(|e| e.key == k).map(|e| e.value.clone());
        let pick = |k: &str| default.and_then(|d| d.get(k)).cloned().or_else(|| root(k));
        Defaults {
            image: pick("image"),
            services: pick("services"),
            before_script: pick("before_script"),
            after_script: pick("after_script"),
            variables: root("variables"),
        }
    }
}

/// What `inherit:` lets a job take from the defaults.
struct Inherit {
    default: Filter,
    variables: Filter,
}

enum Filter {
    All,
    None,
    Only(Vec<String>),
}

impl Filter {
    fn parse(n: Option<&RNode>) -> Filter {
        match n {
            None => Filter::All,
            Some(n) => match (n.as_bool(), n.as_seq()) {
                (Some(true), _) => Filter::All,
                (Some(false), _) => Filter::None,
                (_, Some(items)) => Filter::Only(
                    items
                        .iter()
                        .filter_map(|i| i.as_str().map(str::to_string))
                        .collect(),
                ),
                _ => Filter::All,
            },
        }
    }

    fn allows(&self, key: &str) -> bool {
        match self {
            Filter::All => true,
            Filter::None => false,
            Filter::Only(keys) => keys.iter().any(|k| k == key),
        }
    }
}

pub(super) struct JobInput<'a> {
    pub files: &'a [SourceFile],
    /// The job's top-level entry, `extends` and `!reference` resolved; its
    /// value becomes the job's `config`.
    pub entry: REntry,
    pub ancestors: Vec<String>,
    pub defaults: &'a Defaults,
}

pub(super) fn build(input: JobInput<'_>) -> Result<Job, SourceError> {
    let JobInput {
        files,
        entry,
        ancestors,
        defaults,
    } = input;
    let REntry {
        key: name,
        key_origin,
        entry_span,
        value: config,
    } = entry;
    let hidden = name.starts_with('.');
    let inherit = Inherit {
        default: Filter::parse(config.get("inherit").and_then(|i| i.get("default"))),
        variables: Filter::parse(config.get("inherit").and_then(|i| i.get("variables"))),
    };
    let pick = |key: &str, default: &Option<RNode>| -> (Option<RNode>, bool) {
        match config.get(key) {
            Some(v) => (Some(v.clone()), false),
            // A hidden job never runs: `default:` reaches the jobs that
            // extend it, not the template itself.
            None if !hidden && inherit.default.allows(key) => (default.clone(), default.is_some()),
            None => (None, false),
        }
    };
    let cx = Cx {
        files,
        strict: !hidden,
    };

    let (image_node, image_default) = pick("image", &defaults.image);
    let image = match image_node {
        // A `!reference` into a template kmigrate did not read: unknown.
        Some(n) if n.is_null() || unresolved(&n) => None,
        Some(n) => Some(cx.image(&n, image_default, "image")?),
        _ => None,
    };
    let (services_node, services_default) = pick("services", &defaults.services);
    let mut services = Vec::new();
    if let Some(n) = services_node {
        for item in n.as_seq().unwrap_or_default() {
            if unresolved(item) {
                continue;
            }
            services.push(cx.image(item, services_default, "services")?);
        }
    }

    let mut variables = Vec::new();
    if let Some(vs) = config.get("variables") {
        cx.variables(vs, false, &mut variables)?;
    }
    if let Some(global) = &defaults.variables {
        let mut g = Vec::new();
        cx.variables(global, true, &mut g)?;
        for v in g {
            if inherit.variables.allows(&v.name) && !variables.iter().any(|x| x.name == v.name) {
                variables.push(v);
            }
        }
    }

    let mut sections = Vec::new();
    for (section, default) in [
        (Section::BeforeScript, &defaults.before_script),
        (Section::Script, &None),
        (Section::AfterScript, &defaults.after_script),
    ] {
        let (node, from_default) = pick(section.key(), default);
        let mut lines = Vec::new();
        if let Some(n) = node {
            cx.script(&n, section, from_default, 0, &mut lines)?;
        }
        sections.push(lines);
    }
    let after_script = sections.pop().unwrap_or_default();
    let script = sections.pop().unwrap_or_default();
    let before_script = sections.pop().unwrap_or_default();

    let names = |key: &str| -> Vec<Located> {
        config
            .get(key)
            .and_then(|n| n.as_seq())
            .unwrap_or_default()
            .iter()
            .filter_map(|i| {
                let n = i.get("job").unwrap_or(i);
                Some(Located {
                    value: n.as_str()?.to_string(),
                    origin: n.origin.clone(),
                })
            })
            .collect()
    };
    let extends = match config.get("extends") {
        Some(e) => match &e.value {
            RValue::Seq(items) => items.iter().filter_map(located).collect(),
            _ => located(e).into_iter().collect(),
        },
        None => Vec::new(),
    };
    Ok(Job {
        name,
        hidden,
        file: key_origin.file,
        key_span: key_origin.span,
        entry_span,
        extends,
        ancestors,
        unresolved_extends: Vec::new(),
        unresolved_references: Vec::new(),
        stage: config.get("stage").and_then(located),
        image,
        services,
        variables,
        before_script,
        script,
        after_script,
        needs: names("needs"),
        dependencies: names("dependencies"),
        config,
        parsed: Default::default(),
    })
}

fn located(n: &RNode) -> Option<Located> {
    Some(Located {
        value: n.as_str()?.to_string(),
        origin: n.origin.clone(),
    })
}

struct Cx<'a> {
    files: &'a [SourceFile],
    /// Visible jobs are validated like GitLab does; hidden templates are
    /// read leniently (GitLab does not validate them either).
    strict: bool,
}

impl Cx<'_> {
    fn err(&self, o: &Origin, msg: String, help: &str) -> SourceError {
        self.files[o.file]
            .error_at(o.span.start, msg)
            .with_help(help)
    }

    fn image(&self, n: &RNode, from_default: bool, key: &str) -> Result<Image, SourceError> {
        let help = "write `image: name:tag` or `image: {name: name:tag, entrypoint: [\"\"]}`";
        let (name, entrypoint, alias) = match &n.value {
            RValue::Scalar(_) => (located(n), None, None),
            RValue::Map(_) => {
                let entrypoint = n.get("entrypoint").map(|e| match e.as_seq() {
                    Some(items) => items
                        .iter()
                        .map(|i| Located {
                            value: i.as_str().unwrap_or("").to_string(),
                            origin: i.origin.clone(),
                        })
                        .collect(),
                    None => located(e).into_iter().collect(),
                });
                (
                    n.get("name").and_then(located),
                    entrypoint,
                    n.get("alias").and_then(located),
                )
            }
            _ => (None, None, None),
        };
        let Some(name) = name else {
            return Err(self.err(
                &n.origin,
                format!(
                    "`{key}` must be an image name or a mapping with `name:`, this is a {}",
                    n.kind_name()
                ),
                help,
            ));
        };
        Ok(Image {
            name,
            entrypoint,
            alias,
            origin: n.origin.clone(),
            from_default,
        })
    }

    fn variables(
        &self,
        n: &RNode,
        global: bool,
        out: &mut Vec<Variable>,
    ) -> Result<(), SourceError> {
        let Some(entries) = n.as_map() else {
            if n.is_null() || unresolved(n) || !self.strict {
                return Ok(());
            }
            return Err(self.err(
                &n.origin,
                format!(
                    "`variables` must be a mapping of names to values, this is a {}",
                    n.kind_name()
                ),
                "write `variables:` followed by `NAME: value` lines",
            ));
        };
        for e in entries {
            let value = match &e.value.value {
                RValue::Map(_) => e.value.get("value").and_then(located),
                _ => located(&e.value),
            };
            out.push(Variable {
                name: e.key.clone(),
                value,
                entry_span: e.entry_span.clone(),
                file: e.key_origin.file,
                global,
            });
        }
        Ok(())
    }

    fn script(
        &self,
        n: &RNode,
        section: Section,
        from_default: bool,
        depth: usize,
        out: &mut Vec<ScriptLine>,
    ) -> Result<(), SourceError> {
        match &n.value {
            RValue::Scalar(s) => out.push(ScriptLine {
                section,
                text: s.text.clone(),
                origin: n.origin.clone(),
                from_default,
                scalar: s.clone(),
            }),
            RValue::Seq(items) if depth < MAX_SCRIPT_NESTING => {
                for i in items {
                    self.script(i, section, from_default, depth + 1, out)?;
                }
            }
            // Lines from a template kmigrate did not read: unknown, and
            // kept where they are written (a finding names the template).
            RValue::Reference(_) => {}
            RValue::Null if depth > 0 || !self.strict => {}
            RValue::Null => {}
            _ if !self.strict => {}
            _ => {
                return Err(self.err(
                    &n.origin,
                    format!(
                        "`{}` lines must be strings or lists of strings (up to {MAX_SCRIPT_NESTING} levels), this is a {}",
                        section.key(),
                        n.kind_name()
                    ),
                    "quote a line that YAML reads as a mapping (a `: ` inside the command)",
                ));
            }
        }
        Ok(())
    }
}

/// A `!reference` left in place: it names a template kmigrate did not read.
fn unresolved(n: &RNode) -> bool {
    matches!(n.value, RValue::Reference(_))
}
