//! The edits that move one Kaniko job to the buildx or rootless BuildKit
//! target. Edits land where each value is written (a template shared by
//! several jobs is edited once: identical edits count once).

use std::ops::Range;

use super::Pipeline;
use super::analyze::{CallInfo, KanikoJob};
use super::job::{Job, ScriptLine, Section};
use super::registry::{Registry, registry_of};
use super::script_text::{replace_commands, replace_text};
use super::target::{Options, Target, buildctl_words, buildx_words};
use super::yaml_edit::{self, Indent, add_items, entry_of, insert_entries, insert_entries_before};
use crate::source::patch::Edit;
use crate::source::render::{Quote, scalar};
use crate::source::tree::{Entry, Map, Node, Value};
use crate::source::{SourceFile, Span};

/// One edit in one file of the pipeline.
pub type FileEdit = (usize, Edit);

/// The edits of one job's rewrite.
#[derive(Debug, Clone, Default)]
pub struct JobEdits {
    /// Everything but the calls themselves.
    pub edits: Vec<FileEdit>,
    /// One replacement per executor call, in call order.
    pub calls: Vec<FileEdit>,
    /// Setup lines (shell text) that must run before the calls but could
    /// not go into a `before_script` (the job inherits one from elsewhere).
    pub script_prefix: Vec<String>,
    /// The edit that puts `script_prefix` at the start of the job's script
    /// (left out when the job is split: each new job gets the lines).
    pub prefix_edit: Option<FileEdit>,
}

/// The BuildKit rootless image runs as this user.
const BUILDKIT_HOME: &str = "/home/user";

/// Where a job's fixes may edit the values it shares with other jobs
/// (an anchor, an `extends` template, a `!reference` target, `default:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// Edit each value where it is written: right when every job using it
    /// is migrated the same way.
    InPlace,
    /// Edit only the job's own mapping: a shared value the job needs changed
    /// gets a copy in the job (an `image:`, `before_script:`, `script:` or
    /// `after_script:` override) and the shared one stays as it is.
    Private,
}

/// Computes the edits, or says why the job must be migrated by hand.
pub fn rewrite_job(p: &Pipeline, k: &KanikoJob, opts: &Options) -> Result<JobEdits, String> {
    rewrite_job_as(p, k, opts, Sharing::InPlace)
}

/// Whether `line` is written outside the job's own mapping.
fn foreign(job: &Job, line: &ScriptLine) -> bool {
    line.origin.file != job.file || line.origin.owner.as_deref() != Some(job.name.as_str())
}

/// [`rewrite_job`] with a choice of where shared values are edited.
///
/// The steps run in a fixed order, which is part of the output (edits are
/// spliced by span; the new keys go in first): the calls, then step 1 the
/// image, step 2 the target's services and variables, step 3 registry
/// login and builder setup (and, with [`Sharing::Private`], the job's
/// copies of shared sections), step 4 Kaniko's Docker config path in the
/// lines left in place.
pub fn rewrite_job_as(
    p: &Pipeline,
    k: &KanikoJob,
    opts: &Options,
    sharing: Sharing,
) -> Result<JobEdits, String> {
    if k.calls.is_empty() {
        return Err("no executor call is visible in the job's script (it may run one from a script file); migrate it by hand".into());
    }
    if opts.target == Target::Fork {
        super::fork::check_image(k)?;
    }
    let calls = CallEdits::of(p, k, opts)?;
    let home = Home::find(p, k.job, sharing)?;
    let mut r = JobRewrite {
        p,
        k,
        job: k.job,
        opts,
        private: sharing == Sharing::Private,
        line_edits: calls.line_edits,
        home,
        out: JobEdits {
            edits: calls.var_edits,
            calls: calls.calls,
            ..JobEdits::default()
        },
        new_keys: Vec::new(),
    };
    r.edit_image()?;
    let mut setup = r.target_additions()?;
    let copies = r.section_copies(&mut setup);
    r.place_setup(setup);
    r.write_copies(&copies);
    r.insert_new_keys()?;
    r.place_script_prefix()?;
    r.edit_remaining_lines(&copies);
    Ok(r.out)
}

/// New text for a range of a script line's text.
type LineEdit<'a> = (&'a ScriptLine, Range<usize>, String);

/// The edits of the executor calls themselves.
struct CallEdits<'a> {
    /// One replacement per call, in call order.
    calls: Vec<FileEdit>,
    /// The definitions of the variables the calls take flags from.
    var_edits: Vec<FileEdit>,
    /// Each call's new command in its line's text; for the fork, which
    /// keeps each call, only the spellings it changed.
    line_edits: Vec<LineEdit<'a>>,
}

impl<'a> CallEdits<'a> {
    fn of(p: &Pipeline, k: &KanikoJob<'a>, opts: &Options) -> Result<Self, String> {
        let job = k.job;
        let mut edits = CallEdits {
            calls: Vec::new(),
            var_edits: Vec::new(),
            line_edits: Vec::new(),
        };
        for c in &k.calls {
            if opts.target == Target::Fork {
                // The fork's spellings are edited in the line's text.
                let line = c.exec.script_line(job);
                for (range, text) in super::fork::call_edits(c, &line.text) {
                    edits.line_edits.push((line, range, text));
                }
                continue;
            }
            if let Some(why) = c.blocker() {
                return Err(why);
            }
            let commands = target_commands(c, opts)?;
            let line = c.exec.script_line(job);
            let one_line: Vec<String> = commands.iter().map(|w| w.join(" ")).collect();
            edits
                .line_edits
                .push((line, c.exec.command.span.clone(), one_line.join(" && ")));
            let edit = replace_commands(&p.files[c.file], line, c.exec.command.span.clone(), &commands).ok_or_else(|| {
                "the call is written as a plain YAML scalar that cannot hold the new command; quote the script line first".to_string()
            })?;
            edits.calls.push((c.file, edit));
            for e in &c.var_edits {
                if !edits.var_edits.contains(e) {
                    edits.var_edits.push(e.clone());
                }
            }
        }
        Ok(edits)
    }
}

/// The commands that replace call `c` on the target, one word list each
/// (Buildah builds and pushes in two).
fn target_commands(c: &CallInfo, opts: &Options) -> Result<Vec<Vec<String>>, String> {
    match opts.target {
        Target::Buildkit => Ok(vec![buildctl_words(&c.conversion.plan)?]),
        Target::Buildah => {
            if c.exec.command.in_list {
                return Err("the call is part of a pipeline or an `&&`/`||` list, and Buildah builds and pushes in two commands; put the call on a line of its own (Buildah target)".into());
            }
            super::buildah::commands(&c.conversion, &c.call)
        }
        _ => Ok(vec![buildx_words(&c.conversion.plan)]),
    }
}

/// The block mapping new keys go into (see [`home_of`]).
struct Home<'a> {
    file: usize,
    source: &'a SourceFile,
    node: &'a Node,
    map: &'a Map,
    indent: Indent,
}

impl<'a> Home<'a> {
    fn find(p: &'a Pipeline, job: &Job, sharing: Sharing) -> Result<Self, String> {
        let home = if sharing == Sharing::Private {
            top_level(&p.files[job.file], &job.name).map(|n| (job.file, n))
        } else {
            home_of(p, job)
        };
        let (file, node) = home.ok_or("the job's mapping was not found in the source")?;
        let indent = p.indent(file);
        let Value::Map(map) = &node.value else {
            return Err("the job is not a block or flow mapping".into());
        };
        if map.flow {
            return Err(
                "the job is written as a flow mapping (`{…}`); write it in block style first"
                    .into(),
            );
        }
        Ok(Home {
            file,
            source: &p.files[file],
            node,
            map,
            indent,
        })
    }

    fn entry(&self, key: &str) -> Option<&'a Entry> {
        self.map
            .entries
            .iter()
            .find(|e| e.key.as_str() == Some(key))
    }
}

/// One job's rewrite while its edits are computed.
struct JobRewrite<'a> {
    p: &'a Pipeline,
    k: &'a KanikoJob<'a>,
    job: &'a Job,
    opts: &'a Options,
    /// [`Sharing::Private`]: a shared value the job needs changed gets a
    /// copy in the job.
    private: bool,
    /// See [`CallEdits::line_edits`].
    line_edits: Vec<LineEdit<'a>>,
    home: Home<'a>,
    out: JobEdits,
    /// Keys the job's mapping gets, as `key: value` text, inserted
    /// together by [`JobRewrite::insert_new_keys`].
    new_keys: Vec<String>,
}

impl<'a> JobRewrite<'a> {
    fn fork(&self) -> bool {
        self.opts.target == Target::Fork
    }

    /// The home directory of the new image's user (where the Docker
    /// config goes).
    fn home_dir(&self) -> &'static str {
        match self.opts.target {
            Target::Buildkit => BUILDKIT_HOME,
            _ => "/root",
        }
    }

    /// A line's new text, for a copy in the job (`None`: the line goes).
    fn copied(&self, line: &ScriptLine) -> Option<String> {
        let fork = self.fork();
        if !fork && KANIKO_WORKAROUNDS.contains(&line.text.trim()) {
            return None;
        }
        // The fork keeps Kaniko's config directory.
        let config_paths = if fork {
            Vec::new()
        } else {
            config_path_text(&line.text, self.home_dir())
        };
        let mut edits: Vec<Edit> = config_paths
            .into_iter()
            .map(|(r, w)| Edit::replace(r, w))
            .collect();
        for (l, range, words) in &self.line_edits {
            if std::ptr::eq(*l, line) {
                edits.push(Edit::replace(range.clone(), words.clone()));
            }
        }
        Some(crate::source::patch::apply(&line.text, &edits).unwrap_or_else(|_| line.text.clone()))
    }

    fn edited(&self, line: &ScriptLine) -> bool {
        self.copied(line).as_deref() != Some(line.text.as_str())
    }

    /// Whether the job gets its own copy of section `s`: with
    /// [`Sharing::Private`], when a line written elsewhere has an edit.
    fn copies_section(&self, s: Section) -> bool {
        self.private
            && self
                .job
                .section(s)
                .iter()
                .any(|l| foreign(self.job, l) && self.edited(l))
    }

    /// Step 1, the image: edited where it is written, or a new `image:` in the
    /// job.
    fn edit_image(&mut self) -> Result<(), String> {
        let (p, job, opts) = (self.p, self.job, self.opts);
        let home = &self.home;
        let original_image = job
            .image
            .as_ref()
            .map(|i| super::detect::expand_variables(job, &i.name.value))
            .unwrap_or_default();
        match (&job.image, home.entry("image")) {
            // Written in the home mapping, or the job names a shared image
            // itself (`image: *kaniko`): its entry gets the new image.
            (Some(img), Some(e))
                if (img.origin.file == home.file && e.value.span == img.origin.span)
                    || self.private =>
            {
                self.out.edits.extend(
                    image_edits(home.source, e, opts, &home.indent, &original_image)
                        .into_iter()
                        .map(|x| (home.file, x)),
                );
            }
            // From `default:` (shared by every job), or shared with jobs that
            // stay: the job gets its own image.
            (Some(img), _) if img.from_default || self.private => self
                .new_keys
                .push(new_image_block(opts, &home.indent, &original_image)),
            (Some(img), _) => {
                // Written elsewhere (an anchor, another template): edit it there.
                let file = &p.files[img.origin.file];
                let Some((_, e)) = entry_of(file, &img.origin.span) else {
                    return Err("the job's image is written in a form kmigrate cannot edit".into());
                };
                let ind = p.indent(img.origin.file);
                self.out.edits.extend(
                    image_edits(file, e, opts, &ind, &original_image)
                        .into_iter()
                        .map(|x| (img.origin.file, x)),
                );
            }
            (None, _) => self
                .new_keys
                .push(new_image_block(opts, &home.indent, &original_image)),
        }
        Ok(())
    }

    /// Steps 2 and 3, what the target adds beyond its image: its services and
    /// variables (edited here), and the setup lines (registry login,
    /// builder) that must run before the calls (returned).
    fn target_additions(&mut self) -> Result<Vec<String>, String> {
        match self.opts.target {
            // The fork runs where Kaniko ran, with Kaniko's own credential
            // helpers: nothing to add.
            Target::Fork => Ok(Vec::new()),
            Target::Buildx => self.buildx_additions(),
            Target::Buildkit => self.buildkit_additions(),
            Target::Buildah => self.buildah_additions(),
            Target::Split => unreachable!("the split target keeps Kaniko"),
        }
    }

    fn buildx_additions(&mut self) -> Result<Vec<String>, String> {
        self.add_dind_service()?;
        self.add_variables(&[("DOCKER_TLS_CERTDIR", "\"/certs\"")])?;
        let mut setup: Vec<String> = Vec::new();
        if self.uses_ci_registry() && !self.writes_kaniko_config() {
            setup.push(r#"echo "$CI_REGISTRY_PASSWORD" | docker login "$CI_REGISTRY" -u "$CI_REGISTRY_USER" --password-stdin"#.into());
        }
        setup.push(format!(
            "docker buildx create --use --driver docker-container --name {}",
            self.opts.builder
        ));
        Ok(setup)
    }

    fn buildkit_additions(&mut self) -> Result<Vec<String>, String> {
        self.add_variables(&[("BUILDKITD_FLAGS", "--oci-worker-no-process-sandbox")])?;
        let mut setup: Vec<String> = Vec::new();
        if self.uses_ci_registry() && !self.writes_kaniko_config() {
            setup.push(format!("mkdir -p {BUILDKIT_HOME}/.docker"));
            setup.push(format!(
                r#"echo "{{\"auths\":{{\"$CI_REGISTRY\":{{\"auth\":\"$(printf '%s:%s' "$CI_REGISTRY_USER" "$CI_REGISTRY_PASSWORD" | base64 | tr -d '\n')\"}}}}}}" > {BUILDKIT_HOME}/.docker/config.json"#
            ));
        }
        Ok(setup)
    }

    fn buildah_additions(&mut self) -> Result<Vec<String>, String> {
        self.add_variables(&super::buildah::VARIABLES)?;
        let mut setup: Vec<String> = Vec::new();
        if self.writes_kaniko_config() {
            // The job writes a Docker config (moved to `$HOME/.docker`
            // below): Buildah reads it from REGISTRY_AUTH_FILE.
            setup.push(r#"export REGISTRY_AUTH_FILE="$HOME/.docker/config.json""#.into());
        } else if self.uses_ci_registry() {
            setup.push(r#"echo "$CI_REGISTRY_PASSWORD" | buildah login -u "$CI_REGISTRY_USER" --password-stdin "$CI_REGISTRY""#.into());
        }
        Ok(setup)
    }

    /// Whether the job writes Kaniko's Docker config (its registry
    /// credentials) itself.
    fn writes_kaniko_config(&self) -> bool {
        self.job
            .lines()
            .any(|l| l.text.contains("/kaniko/.docker/config.json"))
    }

    /// Whether a call pushes to, or caches in, the project's GitLab
    /// registry.
    fn uses_ci_registry(&self) -> bool {
        self.k.calls.iter().any(|c| {
            c.conversion
                .plan
                .tags
                .iter()
                .chain(&c.var_tags)
                .chain(c.conversion.cache_ref.iter())
                .any(|r| registry_of(self.job, r) == Registry::Gitlab)
        })
    }

    /// A docker-in-docker service for the Docker CLI, unless the job has
    /// one already.
    fn add_dind_service(&mut self) -> Result<(), String> {
        let dind = self.opts.dind_image();
        match self.home.entry("services") {
            Some(s) if matches!(s.value.value, Value::Seq(_)) => {
                // Any docker-in-docker service already there is kept.
                let present = s.value.as_seq().is_some_and(|q| {
                    q.items.iter().any(|i| {
                        let name = i
                            .node
                            .as_str()
                            .or_else(|| i.node.get("name").and_then(|n| n.as_str()));
                        name.is_some_and(|n| n.starts_with("docker:") && n.contains("dind"))
                    })
                });
                if !present
                    && let Some(e) = add_items(
                        self.home.source,
                        &s.value,
                        std::slice::from_ref(&dind),
                        false,
                    )
                {
                    self.out.edits.push((self.home.file, e));
                }
            }
            Some(_) => return Err("the job's `services:` is not a list".into()),
            None => self.new_keys.push(format!(
                "services:\n{}- {dind}",
                " ".repeat(self.home.indent.seq)
            )),
        }
        Ok(())
    }

    /// Sets the job variables `wanted` (name, value as written) where the
    /// job does not set them already.
    fn add_variables(&mut self, wanted: &[(&str, &str)]) -> Result<(), String> {
        let job = self.job;
        let (f, hfile, indent) = (self.home.source, self.home.file, self.home.indent);
        let missing: Vec<&(&str, &str)> = wanted
            .iter()
            .filter(|(name, value)| {
                job.variable(name)
                    .is_none_or(|v| v != value.trim_matches('"'))
            })
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let pad = |col: usize| " ".repeat(col);
        match self.home.entry("variables") {
            Some(e) if matches!(e.value.value, Value::Map(_)) => {
                // The job chose a value (e.g. TLS off with its own
                // DOCKER_HOST): keep it.
                let lines: Vec<String> = missing
                    .iter()
                    .filter(|(name, _)| e.value.get(name).is_none())
                    .map(|(name, value)| format!("{name}: {value}"))
                    .collect();
                if lines.is_empty() {
                    return Ok(());
                }
                // Flow entries go on one line, comma-separated.
                let flow = matches!(&e.value.value, Value::Map(m) if m.flow);
                let x = insert_entries(
                    f,
                    &e.value,
                    None,
                    &lines.join(if flow { ", " } else { "\n" }),
                )
                .ok_or("empty `variables:`")?;
                self.out.edits.push((hfile, x));
            }
            Some(e) if e.value.is_null() => {
                let p = pad(yaml_edit::column(&f.text, e.key.span.start) + indent.step);
                let mut text = String::from("variables:");
                for (name, value) in &missing {
                    text.push_str(&format!("\n{p}{name}: {value}"));
                }
                self.out
                    .edits
                    .push((hfile, Edit::replace(e.span.clone(), text)));
            }
            Some(_) => return Err("the job's `variables:` is not a mapping".into()),
            None => {
                let mut text = String::from("variables:");
                for (name, value) in &missing {
                    text.push_str(&format!("\n{}{name}: {value}", pad(indent.step)));
                }
                self.new_keys.push(text);
            }
        }
        Ok(())
    }

    /// Step 3, the sections the job gets its own copy of, as their new items;
    /// a copied `before_script` takes the setup lines with it.
    fn section_copies(&self, setup: &mut Vec<String>) -> Vec<(Section, Vec<String>)> {
        let job = self.job;
        let copy_before = self.private
            && job.before_script.iter().any(|l| foreign(job, l))
            && (!setup.is_empty() || job.before_script.iter().any(|l| self.edited(l)));
        let mut copies: Vec<(Section, Vec<String>)> = Vec::new();
        for s in [Section::BeforeScript, Section::Script, Section::AfterScript] {
            if !(self.copies_section(s) || (s == Section::BeforeScript && copy_before)) {
                continue;
            }
            let mut items: Vec<String> = job
                .section(s)
                .iter()
                .filter_map(|l| self.copied(l))
                .collect();
            if s == Section::BeforeScript {
                items.extend(std::mem::take(setup));
            }
            copies.push((s, items));
        }
        copies
    }

    /// Step 3, the setup lines go into the job's `before_script` where it is
    /// written, else a new one; or ahead of the calls in its `script`
    /// when a `before_script` of its own would replace one it inherits.
    fn place_setup(&mut self, setup: Vec<String>) {
        if setup.is_empty() {
            return;
        }
        let (p, job) = (self.p, self.job);
        // The job's `before_script` is edited where it is written, unless
        // it comes from `default:` (shared by every job).
        let before = job.config.get("before_script");
        let before_seq = before.and_then(|b| {
            let file = &p.files[b.origin.file];
            yaml_edit::node_at(file, &b.origin.span)
                .filter(|n| matches!(n.value, Value::Seq(_)))
                .map(|n| (b.origin.file, n))
        });
        match (before, before_seq) {
            (Some(_), Some((bfile, node))) => {
                let flow = node.as_seq().is_some_and(|s| s.flow);
                let items: Vec<String> = setup
                    .iter()
                    .map(|s| scalar(s, Quote::Plain, flow))
                    .collect();
                if let Some(x) = add_items(&p.files[bfile], node, &items, false) {
                    self.out.edits.push((bfile, x));
                }
            }
            (Some(_), None) => self.out.script_prefix = setup,
            // A `before_script` of the job's own would replace the one an
            // unknown template (or an unknown `default:` reference) may
            // give it.
            (None, _)
                if !job.before_script.is_empty()
                    || !job.unresolved_extends.is_empty()
                    || !p.global_references.is_empty() =>
            {
                self.out.script_prefix = setup
            }
            (None, _) => {
                let block = block_list("before_script", &setup, &self.home.indent);
                match self.home.entry("script") {
                    Some(script) => self.out.edits.push((
                        self.home.file,
                        insert_entries_before(self.home.source, script, &block),
                    )),
                    None => self.new_keys.push(block),
                }
            }
        }
    }

    /// Step 3, the copied sections, written into the job's mapping.
    fn write_copies(&mut self, copies: &[(Section, Vec<String>)]) {
        let (f, hfile) = (self.home.source, self.home.file);
        for (s, items) in copies {
            let block = block_list(s.key(), items, &self.home.indent);
            match (self.home.entry(s.key()), self.home.entry("script")) {
                // The job names the shared value itself (an alias, a
                // `!reference`): its entry is replaced.
                (Some(e), _) => self
                    .out
                    .edits
                    .push((hfile, yaml_edit::replace_entry(f, e, &block))),
                (None, Some(script)) if *s == Section::BeforeScript => self
                    .out
                    .edits
                    .push((hfile, insert_entries_before(f, script, &block))),
                _ => self.new_keys.push(block),
            }
        }
    }

    /// The new keys, together, as the first edit: after the job's
    /// `image:`, else after a leading `extends:`, else opening the mapping.
    fn insert_new_keys(&mut self) -> Result<(), String> {
        if self.new_keys.is_empty() {
            return Ok(());
        }
        let text = self.new_keys.join("\n");
        let (f, node) = (self.home.source, self.home.node);
        let e = match (self.home.entry("image"), self.home.map.entries.first()) {
            (Some(img), _) => insert_entries(f, node, Some(img), &text),
            // A leading `extends:` stays first (it says what the job is).
            (None, Some(first)) if first.key.as_str() == Some("extends") => {
                insert_entries(f, node, Some(first), &text)
            }
            // No image in the job: the new keys open its mapping, ahead of
            // a `before_script:` inserted at the same place.
            (None, Some(first)) => Some(insert_entries_before(f, first, &text)),
            _ => insert_entries(f, node, None, &text),
        }
        .ok_or("the job's mapping is empty")?;
        self.out.edits.insert(0, (self.home.file, e));
        Ok(())
    }

    /// Step 3, the edit that puts the setup lines left for the script at its
    /// start.
    fn place_script_prefix(&mut self) -> Result<(), String> {
        if self.out.script_prefix.is_empty() {
            return Ok(());
        }
        let Some(script) = self.job.config.get("script") else {
            return Err("the job has no `script:` to hold the builder setup".into());
        };
        let file = &self.p.files[script.origin.file];
        let node = yaml_edit::node_at(file, &script.origin.span)
            .filter(|n| matches!(n.value, Value::Seq(_)));
        let Some(node) = node else {
            return Err(
                "the job's `script:` is not a list, so the builder setup has no place".into(),
            );
        };
        let flow = node.as_seq().is_some_and(|s| s.flow);
        let items: Vec<String> = self
            .out
            .script_prefix
            .iter()
            .map(|s| scalar(s, Quote::Plain, flow))
            .collect();
        self.out.prefix_edit = add_items(file, node, &items, true).map(|x| (script.origin.file, x));
        Ok(())
    }

    /// Step 4, the lines left where they are written: Kaniko's Docker config
    /// path becomes the Docker CLI's, Kaniko-only workarounds go, and the
    /// fork's changed spellings are edited (copied sections have their
    /// edits already, the calls in them included).
    fn edit_remaining_lines(&mut self, copies: &[(Section, Vec<String>)]) {
        let (p, k, job) = (self.p, self.k, self.job);
        let copied_sections: Vec<Section> = copies.iter().map(|(s, _)| *s).collect();
        self.out.calls.retain(|(_, e)| {
            !k.calls.iter().any(|c| {
                copied_sections.contains(&c.exec.section)
                    && c.span.start <= e.range.start
                    && e.range.end <= c.span.end
            })
        });
        let (fork, home_dir) = (self.fork(), self.home_dir());
        for line in job.lines() {
            if copied_sections.contains(&line.section) {
                continue;
            }
            if fork {
                let file = &p.files[line.origin.file];
                for (_, range, text) in self
                    .line_edits
                    .iter()
                    .filter(|(l, _, _)| std::ptr::eq(*l, line))
                {
                    // A spelling the line's scalar does not hold as written
                    // (an escape, a fold) stays: the fork still accepts it.
                    if let Some(e) = super::fork::source_edit(file, line, range.clone(), text) {
                        self.out.edits.push((line.origin.file, e));
                    }
                }
                continue;
            }
            if let Some(e) = workaround_deletion(p, line) {
                self.out.edits.push(e);
                continue;
            }
            self.out.edits.extend(config_path_edits(p, line, home_dir));
        }
    }
}

/// `key:` and `items` as a block list (`key: []` when there are none).
fn block_list(key: &str, items: &[String], indent: &Indent) -> String {
    let pad = " ".repeat(indent.seq);
    let mut block = format!("{key}:");
    for item in items {
        block.push_str(&format!("\n{pad}- {}", scalar(item, Quote::Plain, false)));
    }
    if items.is_empty() {
        block.push_str(" []");
    }
    block
}

/// Script lines that only made Kaniko work and mean nothing (or harm) in
/// the new job.
const KANIKO_WORKAROUNDS: &[&str] = &["export container=docker", "mv /var /var-orig"];

/// Deletes a script item that is exactly a Kaniko-only workaround, when
/// it is a whole item of a block list.
fn workaround_deletion(p: &Pipeline, line: &ScriptLine) -> Option<FileEdit> {
    let text = line.text.trim();
    if !KANIKO_WORKAROUNDS.contains(&text) {
        return None;
    }
    let file = &p.files[line.origin.file];
    let (seq, idx) = yaml_edit::seq_of(file, &line.origin.span)?;
    let items = seq.as_seq()?;
    if items.flow || items.items.len() < 2 {
        return None;
    }
    Some((
        line.origin.file,
        yaml_edit::delete_lines(file, &items.items[idx].span),
    ))
}

/// The mapping new keys go into: the job or template that writes the
/// job's image, else the job itself.
fn home_of<'p>(p: &'p Pipeline, job: &Job) -> Option<(usize, &'p Node)> {
    if let Some(img) = &job.image
        && !img.from_default
        && img.origin.owner.as_deref().is_some_and(|o| o != "default")
    {
        let owner = img.origin.owner.as_deref()?;
        if let Some(n) = top_level(&p.files[img.origin.file], owner) {
            return Some((img.origin.file, n));
        }
    }
    Some((job.file, top_level(&p.files[job.file], &job.name)?))
}

fn top_level<'f>(file: &'f SourceFile, key: &str) -> Option<&'f Node> {
    file.root()?
        .get(key)
        .filter(|n| matches!(n.value, Value::Map(_)))
}

fn new_image_block(opts: &Options, indent: &Indent, original: &str) -> String {
    match opts.target {
        // The fork's shell variant, run with the shell as Kaniko's was.
        Target::Fork => format!(
            "image:\n{pad}name: {}\n{pad}entrypoint: [\"\"]",
            opts.fork_job_image(original),
            pad = " ".repeat(indent.step)
        ),
        Target::Buildkit => format!(
            "image:\n{pad}name: {}\n{pad}entrypoint: [\"\"]",
            opts.buildkit_image,
            pad = " ".repeat(indent.step)
        ),
        _ => format!("image: {}", target_image(opts)),
    }
}

/// The image a migrated job runs in, for the targets that name it in one
/// scalar (the BuildKit target also clears the entrypoint).
fn target_image(opts: &Options) -> String {
    match opts.target {
        Target::Buildah => opts.buildah_image.clone(),
        _ => opts.cli_image(),
    }
}

/// Replaces the `image:` entry `e` for the target.
fn image_edits(
    f: &SourceFile,
    e: &Entry,
    opts: &Options,
    indent: &Indent,
    original: &str,
) -> Vec<Edit> {
    let src = &f.text;
    let key_text = &src[e.key.span.clone()];
    let col = yaml_edit::column(src, e.key.span.start);
    match (&e.value.value, opts.target) {
        // Only the image's name changes: its entrypoint and the rest stay.
        (Value::Map(m), Target::Fork) => m
            .entries
            .iter()
            .find(|x| x.key.as_str() == Some("name"))
            .map(|name| Edit::replace(name.value.full_span.clone(), opts.fork_job_image(original)))
            .into_iter()
            .collect(),
        (Value::Scalar(_), Target::Fork) => vec![Edit::replace(
            e.value.full_span.clone(),
            opts.fork_job_image(original),
        )],
        (Value::Map(m), Target::Buildkit) => {
            let mut out = Vec::new();
            if let Some(name) = m.entries.iter().find(|x| x.key.as_str() == Some("name")) {
                out.push(Edit::replace(
                    name.value.full_span.clone(),
                    opts.buildkit_image.clone(),
                ));
            }
            match m
                .entries
                .iter()
                .find(|x| x.key.as_str() == Some("entrypoint"))
            {
                Some(ep) => {
                    let empty = ep.value.as_seq().is_some_and(|s| {
                        s.items.len() == 1 && s.items[0].node.as_str() == Some("")
                    });
                    if !empty {
                        out.push(Edit::replace(ep.value.full_span.clone(), "[\"\"]"));
                    }
                }
                None => {
                    if let Some(x) = insert_entries(f, &e.value, None, "entrypoint: [\"\"]") {
                        out.push(x);
                    }
                }
            }
            out
        }
        (_, Target::Buildkit) => {
            let pad = " ".repeat(col + indent.step);
            let nl = f.line_ending.as_str();
            vec![Edit::replace(
                e.key.span.start..e.value.full_span.end,
                format!(
                    "{key_text}:{nl}{pad}name: {}{nl}{pad}entrypoint: [\"\"]",
                    opts.buildkit_image
                ),
            )]
        }
        (Value::Scalar(_), _) => vec![Edit::replace(e.value.full_span.clone(), target_image(opts))],
        (_, Target::Fork) => vec![Edit::replace(
            e.key.span.start..e.value.full_span.end.max(e.key.span.end),
            format!("{key_text}: {}", opts.fork_job_image(original)),
        )],
        _ => vec![Edit::replace(
            e.key.span.start..e.value.full_span.end.max(e.key.span.end),
            format!("{key_text}: {}", target_image(opts)),
        )],
    }
}

/// `/kaniko/.docker` → the Docker CLI's config directory: the ranges of
/// `text` to replace, with their new text.
fn config_path_text(text: &str, home: &str) -> Vec<(std::ops::Range<usize>, String)> {
    text.match_indices("/kaniko/.docker")
        .map(|(at, m)| {
            let in_single = text[..at].matches('\'').count() % 2 == 1;
            let with = if in_single {
                format!("{home}/.docker")
            } else {
                "$HOME/.docker".to_string()
            };
            (at..at + m.len(), with)
        })
        .collect()
}

/// [`config_path_text`] as edits of the line where it is written.
fn config_path_edits(p: &Pipeline, line: &ScriptLine, home: &str) -> Vec<FileEdit> {
    let file = &p.files[line.origin.file];
    config_path_text(&line.text, home)
        .into_iter()
        .filter_map(|(r, with)| replace_text(file, line, r, &with))
        .map(|e| (line.origin.file, e))
        .collect()
}

/// Where section `s` of `job` is written as a block or flow sequence.
pub fn section_seq<'p>(p: &'p Pipeline, job: &Job, s: Section) -> Option<(usize, &'p Node)> {
    let n = job.config.get(s.key())?;
    let node = yaml_edit::node_at(&p.files[n.origin.file], &n.origin.span)?;
    matches!(node.value, Value::Seq(_)).then_some((n.origin.file, node))
}

/// The span of a job's script item that holds source offset `at`.
pub fn item_span_at(seq: &Node, at: usize) -> Option<Span> {
    seq.as_seq()?
        .items
        .iter()
        .find(|i| i.span.start <= at && at <= i.span.end)
        .map(|i| i.span.clone())
}
