//! Kaniko plugin steps rewritten to the maintained buildx plugin: the
//! settings are read as the executor call the plugin makes, converted to a
//! `BuildPlan`, written as the buildx plugin's settings, and read back and
//! compared before the fix is offered. The buildx plugin runs Docker in
//! Docker, so the step becomes `privileged: true` (KM004 says what the
//! server must allow).

use std::ops::Range;

use super::Step;
use super::buildx_plugin;
use super::plugins::{self, KanikoPlugin};
use super::settings::{self, WORKSPACE};
use crate::buildx::equivalence::{self, Explained};
use crate::buildx::from_kaniko::{self, Conversion, ConvertOptions, NoteKind};
use crate::buildx::notes::note_findings;
use crate::kaniko::call;
use crate::options::Options;
use crate::readback::equivalence::{Mismatch, REPORT_HELP};
use crate::rules::{Applicability, Edit, Finding, Fix, Rule};
use crate::source::{SourceFile, Value};

/// The CI system a pipeline file is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    Drone,
    Woodpecker,
}

impl System {
    /// Woodpecker by its paths or plugin, Drone by `kind: pipeline`.
    pub fn of(source: &SourceFile, plugin: &KanikoPlugin) -> System {
        match plugin.id.starts_with("woodpecker") {
            true => System::Woodpecker,
            false => System::of_file(source),
        }
    }

    /// Woodpecker by its paths, Drone by `kind: pipeline`.
    pub fn of_file(source: &SourceFile) -> System {
        let woodpecker_path = source
            .path
            .components()
            .any(|c| c.as_os_str().to_string_lossy().starts_with(".woodpecker"));
        let drone_kind = source
            .tree
            .documents
            .iter()
            .any(|d| d.get("kind").and_then(|k| k.as_str()) == Some("pipeline"));
        if woodpecker_path || !drone_kind {
            System::Woodpecker
        } else {
            System::Drone
        }
    }

    /// The buildx plugin image the rewrite writes.
    pub fn target(self) -> &'static str {
        match self {
            System::Drone => &plugins::targets().drone,
            System::Woodpecker => &plugins::targets().woodpecker,
        }
    }

    /// What the server must allow for a privileged plugin step.
    fn privileged_help(self) -> String {
        match self {
            System::Drone => "Drone runs privileged steps only in repositories an administrator marked Trusted (repository settings), and only on runners that allow privileged containers".into(),
            System::Woodpecker => format!(
                "Woodpecker runs a plugin privileged only when the server lists its image, with the same tag, in WOODPECKER_PLUGINS_PRIVILEGED (e.g. `WOODPECKER_PLUGINS_PRIVILEGED={}`); `privileged: true` alone is refused in Woodpecker 3",
                self.target()
            ),
        }
    }
}

/// How the executor sees paths in a plugin step (the workspace).
pub fn convert_options(opts: &Options) -> ConvertOptions<'_> {
    ConvertOptions {
        cache_tag: &opts.cache_tag,
        workdir: WORKSPACE,
        default_context: WORKSPACE,
        local_workdir: None,
    }
}

/// A plugin step read as its executor call, converted (`None` when
/// kmigrate cannot read its settings).
pub struct PluginBuild<'a> {
    pub translation: settings::Translation<'a>,
    pub conversion: Option<Conversion>,
}

/// Translates and converts a plugin step.
pub fn plugin_build<'a>(
    source: &SourceFile,
    step: &Step<'a>,
    plugin: &KanikoPlugin,
    opts: &Options,
) -> PluginBuild<'a> {
    let woodpecker = System::of(source, plugin) == System::Woodpecker;
    let translation = settings::plugin_call(
        &source.tree,
        plugin,
        step.node.get("settings"),
        &step.span,
        woodpecker,
    );
    if plugin.settings.is_none() {
        return PluginBuild {
            translation,
            conversion: None,
        };
    }
    let call = call::parse(translation.args.clone());
    let conversion = from_kaniko::convert(&call, &convert_options(opts));
    PluginBuild {
        translation,
        conversion: Some(conversion),
    }
}

/// What to do with a plugin step kmigrate leaves alone.
pub const BY_HAND: &str = "replace the step with the maintained buildx plugin by hand (`woodpeckerci/plugin-docker-buildx` on Woodpecker, `thegeeklab/drone-docker-buildx` on Drone): `repo` takes the full image name, `tags`, `dockerfile` (relative to the workspace), `context`, `build_args` and `target` keep their meaning, and a Kaniko cache repository R becomes `cache_from: R:buildcache` and `cache_to: type=registry,ref=R:buildcache,mode=max`. The buildx plugin runs Docker in Docker: the step needs `privileged: true`, and on Woodpecker the administrator must list the image in WOODPECKER_PLUGINS_PRIVILEGED";

/// Every finding of a plugin step, with the fix when kmigrate can write it.
pub fn plugin_findings(
    source: &SourceFile,
    step: &Step,
    plugin: &KanikoPlugin,
    opts: &Options,
) -> Vec<Finding> {
    let label = format!("step `{}`", step.name);
    let image = step.image.expect("a plugin step has `image:`");
    let reference = image.as_str().unwrap_or("");
    let span = image.span.clone();
    let mut km001 = Finding::new(
        Rule::Km001,
        span.clone(),
        format!(
            "{label} runs `{reference}`, {}, which runs the Kaniko executor (archived in June 2025)",
            plugin.name
        ),
    );
    let build = plugin_build(source, step, plugin, opts);
    let mut out = Vec::new();
    let mut manual: Vec<String> = Vec::new();
    for (at, why) in &build.translation.manual {
        out.push(Finding::new(Rule::Km012, at.clone(), why.clone()).with_help(BY_HAND));
        manual.push(why.clone());
    }
    let Some(conversion) = &build.conversion else {
        out.insert(
            0,
            km001.with_help(format!(
                "not rewritten automatically: {}; {BY_HAND}",
                manual.join("; ")
            )),
        );
        return out;
    };
    let system = System::of(source, plugin);
    let edits = if manual.is_empty() && !conversion.is_blocked() {
        match edits(source, step, &build, conversion, system, opts) {
            Ok(e) => Some(e),
            Err(why) => {
                out.push(Finding::new(Rule::Km012, span.clone(), why.clone()).with_help(BY_HAND));
                manual.push(why);
                None
            }
        }
    } else {
        None
    };
    let changed = conversion.notes.iter().any(|n| n.kind == NoteKind::Changed);
    let fix = edits.map(|edits| {
        Fix::new(format!("rewrite {label} to {}", system.target()), edits)
            .with_applicability(Applicability::changing_behaviour_if(changed))
    });
    out.extend(note_findings(
        &build.translation.args,
        conversion,
        &span,
        fix.as_ref(),
    ));
    km001 = match &fix {
        Some(fix) => {
            out.push(
                Finding::new(
                    Rule::Km004,
                    span.clone(),
                    format!(
                        "{label} rewritten to `{}` runs Docker in Docker and needs `privileged: true`, which the Kaniko plugin did not",
                        system.target()
                    ),
                )
                .with_help(system.privileged_help()),
            );
            km001
                .with_help(format!(
                    "`kmigrate rewrite` turns it into `{}` with a registry cache",
                    system.target()
                ))
                .with_fix(fix.clone())
        }
        None if !manual.is_empty() => km001.with_help(format!(
            "not rewritten automatically: {}; {BY_HAND}",
            manual.join("; ")
        )),
        None => km001.with_help(format!(
            "not rewritten automatically: a setting cannot be translated (see the KM012 finding); {BY_HAND}"
        )),
    };
    out.insert(0, km001);
    out
}

/// The column `offset` is at, when only spaces precede it on its line.
fn column(text: &str, offset: usize) -> Option<usize> {
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let before = &text[line_start..offset];
    before.bytes().all(|b| b == b' ').then_some(before.len())
}

/// The edits that rewrite a plugin step, after checking that the buildx
/// plugin settings read back as the same build.
fn edits(
    source: &SourceFile,
    step: &Step,
    build: &PluginBuild,
    conversion: &Conversion,
    system: System,
    opts: &Options,
) -> Result<Vec<Edit>, String> {
    let text = &source.text;
    let layout = "kmigrate rewrites block-style steps only; this one is written in flow style";
    let map = step.node.as_map().ok_or(layout)?;
    if map.flow {
        return Err(layout.into());
    }
    let image_entry = step.node.entry("image").ok_or(layout)?;
    let key_col = column(text, image_entry.span.start).ok_or(layout)?;
    let wanted = buildx_plugin::settings(&conversion.plan)?;

    let mut edits = vec![Edit::replace(
        step.image.expect("a plugin step has `image:`").span.clone(),
        system.target(),
    )];
    let pad = " ".repeat(key_col);
    match step.node.entry("privileged") {
        Some(p) if p.value.as_str() == Some("true") => {}
        Some(p) => edits.push(Edit::replace(p.value.span.clone(), "true")),
        None => edits.push(Edit::insert(
            image_entry.span.end,
            format!("\n{pad}privileged: true"),
        )),
    }
    match step.node.entry("settings") {
        Some(s) => edits.extend(settings_edits(
            &source.tree,
            text,
            s,
            &build.translation,
            &wanted,
            key_col,
            system == System::Woodpecker,
        )?),
        None => edits.push(Edit::insert(
            image_entry.span.end,
            format!(
                "\n{pad}{}",
                buildx_plugin::render(&wanted, &[], key_col + 2)
            ),
        )),
    }

    // The safety net: read the rewritten step back and compare the builds.
    let after_text = crate::source::patch::apply(text, &edits)
        .map_err(|_| "the edits of the step overlap".to_string())?;
    let after_source = SourceFile::from_text(&source.path, after_text)
        .map_err(|e| format!("the rewritten step does not parse ({})", e.message))?;
    let after_step = super::steps(&after_source)
        .into_iter()
        .find(|s| s.span.start == step.span.start)
        .ok_or("the rewritten step cannot be found again")?;
    let mut after = buildx_plugin::read_plan(
        &after_source.tree,
        after_step.node.get("settings"),
        system == System::Woodpecker,
    );
    after.pull = conversion.plan.pull;
    let explained = Explained::from_notes(
        conversion.notes.iter().map(|n| n.message.as_str()),
        &opts.cache_tag,
    );
    let fields = equivalence::differences(&conversion.plan, &after, &explained);
    if !fields.is_empty() {
        let label = format!("step `{}`", step.name);
        let m = Mismatch {
            unit: label.clone(),
            original: true,
            fields,
        };
        return Err(format!("{} ({REPORT_HELP})", m.message(&label)));
    }
    Ok(edits)
}

/// The whole lines `span` is written on, with the line break after them.
fn lines_of(text: &str, span: &Range<usize>) -> Range<usize> {
    let start = text[..span.start].rfind('\n').map_or(0, |i| i + 1);
    let end = text[span.end..]
        .find('\n')
        .map_or(text.len(), |i| span.end + i + 1);
    start..end
}

/// The edits that turn the Kaniko plugin's `settings:` into `wanted`,
/// keeping every entry that already says the same (and its comments),
/// rewriting the ones that differ in place, removing the ones the buildx
/// plugin does not read and adding the new ones at the end.
fn settings_edits(
    tree: &crate::source::Tree,
    text: &str,
    settings: &crate::source::Entry,
    translation: &settings::Translation,
    wanted: &[(&'static str, buildx_plugin::SettingValue)],
    key_col: usize,
    woodpecker: bool,
) -> Result<Vec<Edit>, String> {
    let name_of =
        |e: &crate::source::Entry| settings::setting_name(e.key.as_str().unwrap_or(""), woodpecker);
    use buildx_plugin::SettingValue;
    let layout = "kmigrate rewrites block-style settings only";
    let entries = match &settings.value.value {
        Value::Map(m) if !m.flow => m.entries.as_slice(),
        Value::Null => &[],
        _ => return Err(layout.into()),
    };
    let inner = match entries.first() {
        Some(e) => column(text, e.span.start).ok_or(layout)?,
        None => key_col + 2,
    };
    let single = |v: &SettingValue| buildx_plugin::render(&[("k", v.clone())], &[], 0);
    let line = |key: &str, v: &SettingValue| {
        let r = single(v);
        let body = r.trim_start_matches("settings:\n").trim_start_matches("k");
        body.replace('\n', &format!("\n{}", " ".repeat(inner)))
            .replacen(':', &format!("{key}:"), 1)
    };
    let written = |e: &crate::source::Entry| -> Option<SettingValue> {
        // An alias says what its anchor says.
        let value = match &e.value.value {
            Value::Alias(name) => tree.anchored(name, e.value.span.start)?,
            _ => &e.value,
        };
        match value.as_seq() {
            Some(seq) => seq
                .items
                .iter()
                .map(|i| i.node.as_str().map(|s| s.trim().to_string()))
                .collect::<Option<Vec<_>>>()
                .map(SettingValue::List),
            None => value
                .as_str()
                .map(|s| SettingValue::One(s.trim().to_string())),
        }
    };
    let is_login = |e: &crate::source::Entry| translation.login.iter().any(|l| l.span == e.span);
    let mut edits = Vec::new();
    // New settings go after the last entry that stays, else after
    // `settings:`.
    let colon = text[settings.key.span.end..]
        .find(':')
        .map_or(settings.key.span.end, |i| settings.key.span.end + i + 1);
    let mut last_end = colon;
    for e in entries {
        if is_login(e) {
            last_end = e.span.end;
            continue;
        }
        let key = name_of(e);
        match wanted.iter().find(|(k, _)| *k == key) {
            Some((_, v)) if written(e).as_ref() == Some(v) => last_end = e.span.end,
            // A list written as a comma-separated string says the same
            // (the plugins split it on commas).
            Some((_, SettingValue::List(items)))
                if matches!(written(e), Some(SettingValue::One(s))
                    if s.split(',').map(str::trim).eq(items.iter().map(String::as_str))
                        && !items.iter().any(|i| i.contains(','))) =>
            {
                last_end = e.span.end
            }
            Some((k, v)) => {
                edits.push(Edit::replace(e.span.clone(), line(k, v)));
                last_end = e.span.end;
            }
            None => edits.push(Edit::replace(lines_of(text, &e.span), "")),
        }
    }
    let pad = " ".repeat(inner);
    let mut added = String::new();
    for (k, v) in wanted {
        if entries.iter().any(|e| name_of(e) == *k) {
            continue;
        }
        added.push_str(&format!("\n{pad}{}", line(k, v)));
    }
    if !added.is_empty() {
        edits.push(Edit::insert(last_end, added));
    }
    Ok(edits)
}
