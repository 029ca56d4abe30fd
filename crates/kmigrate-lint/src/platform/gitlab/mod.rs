//! GitLab CI: what each job really runs, and where each piece is written.
//!
//! Loading goes left to right, one module per step:
//! [`include`] reads `.gitlab-ci.yml` and its local includes,
//! [`value`] resolves anchors, aliases and `<<:` merge keys per file,
//! [`resolve`] merges included files, applies `extends` and `!reference`,
//! [`job`] applies `default:` and builds each job's view, and [`detect`]
//! finds Kaniko jobs and executor calls.
//!
//! ```no_run
//! use kmigrate_lint::platform::gitlab::{Pipeline, detect};
//! let p = Pipeline::load(std::path::Path::new(".gitlab-ci.yml")).unwrap();
//! for (job, kaniko) in p.kaniko_jobs(detect::ImageMatcher::builtin()) {
//!     println!("{}: {} executor call(s)", job.name, kaniko.calls.len());
//! }
//! ```

pub mod analyze;
pub mod buildah;
pub mod cache;
pub mod detect;
pub mod docker_cache;
pub mod equivalence;
pub mod findings;
pub mod flag_vars;
pub mod fork;
pub mod fragment;
pub mod glob;
pub mod include;
pub mod job;
pub mod local_path;
pub mod plan;
pub mod registry;
pub mod resolve;
pub mod rewrite;
pub mod script_text;
pub mod split;
pub mod target;
pub mod value;
pub mod yaml_edit;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use detect::{ExecutorCall, ImageMatcher, KanikoUse};
pub use include::{Include, IncludeKind};
pub use job::{Image, Job, Located, ScriptLine, Section, Variable};
pub use value::{Origin, REntry, RNode, RValue};

use crate::source::{SourceError, SourceFile};

/// A loaded and resolved GitLab pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// The directory local includes are relative to.
    pub root_dir: PathBuf,
    /// The entry file first, then every included file in load order.
    /// [`Origin::file`] indexes this list.
    pub files: Vec<SourceFile>,
    /// Every `include:` item of every file, followed or not.
    pub includes: Vec<Include>,
    /// Every job and hidden template, in the order they are defined.
    pub jobs: Vec<Job>,
    /// `stages:` (GitLab's default list when the pipeline names none).
    pub stages: Vec<String>,
    /// `default:` and the legacy top-level keywords.
    pub defaults: job::Defaults,
    /// Every file of the pipeline was read: a template it names but does
    /// not define makes GitLab reject it (in a partial pipeline the
    /// template may be in a file kmigrate did not read).
    pub complete: bool,
    /// `!reference`s outside jobs (in `default:`, global keywords) whose
    /// target is not defined in the files read.
    pub global_references: Vec<Located>,
    /// Each file's indentation style, learned on first use (every job's
    /// rewrite needs its file's).
    indents: Vec<std::sync::OnceLock<yaml_edit::Indent>>,
}

impl Pipeline {
    /// Loads `entry`; local includes are relative to the repository root
    /// (the nearest directory with `.git`, else the entry's directory).
    pub fn load(entry: &Path) -> Result<Self, SourceError> {
        let root = include::repo_root(entry);
        Self::load_in(&root, entry)
    }

    /// Loads `entry` with local includes relative to `root`.
    pub fn load_in(root: &Path, entry: &Path) -> Result<Self, SourceError> {
        Self::resolve(include::load(root, entry)?)
    }

    /// Loads a pipeline whose entry text is given; includes come from `root`.
    pub fn from_text(root: &Path, entry: &Path, text: String) -> Result<Self, SourceError> {
        Self::resolve(include::load_text(root, entry, text)?)
    }

    /// Loads a pipeline whose entry is already parsed; includes come from
    /// `root`.
    pub fn from_source(root: &Path, entry: SourceFile) -> Result<Self, SourceError> {
        Self::resolve(include::load_source(root, entry)?)
    }

    fn resolve(loaded: include::Loaded) -> Result<Self, SourceError> {
        let files = &loaded.files;
        let top = resolve::assemble(&loaded);
        // A pipeline read in part (includes not followed, or a fragment
        // given on its own) may extend templates kmigrate cannot see.
        let partial = loaded.includes.iter().any(|i| i.not_followed.is_some())
            || files[0].path.file_name().and_then(|n| n.to_str()) != Some(".gitlab-ci.yml");
        // A template that is not defined is a finding (an error when the
        // whole pipeline was read: GitLab rejects it), never the end of the
        // check: the jobs are judged from what they say themselves.
        let extended = resolve::apply_extends(files, &top, true)?;
        // Reserved keywords may hold references too (`default: before_script`).
        let mut resolved_top = Vec::with_capacity(top.len());
        let mut missing_references = Vec::with_capacity(top.len());
        for e in &top {
            let base = extended.get(&e.key).map(|x| &x.value).unwrap_or(&e.value);
            let mut missing = Vec::new();
            let value = resolve::resolve_references(files, &top, &extended, base, &mut missing)?;
            missing_references.push(missing);
            resolved_top.push(REntry {
                key: e.key.clone(),
                key_origin: e.key_origin.clone(),
                entry_span: e.entry_span.clone(),
                value,
            });
        }
        let default = resolved_top
            .iter()
            .find(|e| e.key == "default")
            .map(|e| &e.value);
        if let Some(d) = default
            && !d.is_null()
            && d.as_map().is_none()
        {
            return Err(files[d.origin.file]
                .error_at(d.origin.span.start, "`default:` must be a mapping")
                .with_help("write `default:` followed by `image:`, `before_script:`, …"));
        }
        let defaults = job::Defaults::read(default, &resolved_top);
        let stages = match resolved_top
            .iter()
            .find(|e| e.key == "stages" || e.key == "types")
        {
            Some(s) => s
                .value
                .as_seq()
                .unwrap_or_default()
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect(),
            None => ["build", "test", "deploy"].map(String::from).to_vec(),
        };
        let mut jobs = Vec::new();
        let mut global_references = Vec::new();
        // Each job takes its resolved entry: nothing else reads them now.
        for (e, missing_refs) in resolved_top.into_iter().zip(missing_references) {
            if resolve::RESERVED.contains(&e.key.as_str()) {
                // `default:` and the global keywords: their unknown
                // references reach every job, named once here.
                if !missing_refs.is_empty() {
                    global_references.extend(located_references(missing_refs));
                }
                continue;
            }
            if e.value.as_map().is_none() {
                if e.key.starts_with('.') {
                    // A hidden key holding a list or string for anchors.
                    continue;
                }
                return Err(files[e.key_origin.file]
                    .error_at(
                        e.key_origin.span.start,
                        // The key is not quoted: a file named by an include
                        // may be any file of the checkout, not a CI file.
                        format!("a job must be a mapping; this top-level key holds a {}", e.value.kind_name()),
                    )
                    .with_help("give the job a `script:`; prefix the name with `.` for a hidden helper value"));
            }
            let (ancestors, missing) = extended
                .get(&e.key)
                .map(|x| (x.ancestors.clone(), x.missing.clone()))
                .unwrap_or_default();
            let mut job = job::build(job::JobInput {
                files,
                entry: e,
                ancestors,
                defaults: &defaults,
            })?;
            job.unresolved_extends = missing
                .into_iter()
                .map(|(value, origin)| Located { value, origin })
                .collect();
            job.unresolved_references = located_references(missing_refs);
            jobs.push(job);
        }
        Ok(Pipeline {
            indents: loaded.files.iter().map(|_| Default::default()).collect(),
            root_dir: loaded.root_dir,
            files: loaded.files,
            includes: loaded.includes,
            jobs,
            stages,
            defaults,
            complete: !partial,
            global_references,
        })
    }

    /// How file `i` indents.
    pub fn indent(&self, i: usize) -> yaml_edit::Indent {
        *self.indents[i].get_or_init(|| yaml_edit::Indent::of(&self.files[i]))
    }

    /// The same pipeline with the files `texts` names (by index) replaced:
    /// what a rewrite would leave, read without writing anything. The
    /// includes are the ones already followed (a rewrite never edits them).
    pub fn with_texts(&self, texts: &[(usize, String)]) -> Result<Self, SourceError> {
        let mut files = self.files.clone();
        for (i, text) in texts {
            if let Some(f) = files.get_mut(*i) {
                *f = SourceFile::from_text(&f.path, text.clone())?;
            }
        }
        let configs = files
            .iter()
            .enumerate()
            .map(|(i, f)| value::convert_file(f, i))
            .collect::<Result<Vec<_>, _>>()?;
        Self::resolve(include::Loaded {
            root_dir: self.root_dir.clone(),
            files,
            configs,
            includes: self.includes.clone(),
        })
    }

    /// The job or template called `name`.
    pub fn job(&self, name: &str) -> Option<&Job> {
        self.jobs.iter().find(|j| j.name == name)
    }

    /// Jobs and templates that run Kaniko, with the evidence.
    pub fn kaniko_jobs<'p>(&'p self, images: &ImageMatcher) -> Vec<(&'p Job, KanikoUse)> {
        self.jobs
            .iter()
            .filter_map(|j| detect::kaniko_use(j, images).map(|k| (j, k)))
            .collect()
    }

    /// Includes that were not followed (project, remote, template,
    /// component, or a path with a variable), for an info finding.
    pub fn unfollowed_includes(&self) -> impl Iterator<Item = &Include> {
        self.includes.iter().filter(|i| i.not_followed.is_some())
    }

    /// The visible jobs that inherit from template `name` (directly or
    /// through other templates).
    pub fn users_of<'p>(&'p self, name: &'p str) -> impl Iterator<Item = &'p Job> + 'p {
        self.jobs
            .iter()
            .filter(move |j| j.ancestors.iter().any(|a| a == name))
    }
}

/// Unknown `!reference` paths as the user writes them: `[.other, script]`.
fn located_references(missing: Vec<(Vec<String>, Origin)>) -> Vec<Located> {
    missing
        .into_iter()
        .map(|(path, origin)| Located {
            value: format!("[{}]", path.join(", ")),
            origin,
        })
        .collect()
}

#[cfg(test)]
mod tests;

/// The GitLab options of an engine [`crate::options::Options`].
pub fn options_from(o: &crate::options::Options) -> target::Options {
    target::Options {
        target: o.gitlab_target,
        split: o.split || o.gitlab_target == target::Target::Split,
        docker_version: o.docker_version.clone(),
        builder: o.builder.clone(),
        cache_tag: o.cache_tag.clone(),
        fork_image: o.fork_image.clone(),
        fork_version: o.fork_version.clone(),
        buildkit_image: crate::platform::container::BUILDKIT_ROOTLESS.into(),
        buildah_image: buildah::DEFAULT_IMAGE.into(),
    }
}

/// What the KM014 note on an include whose file holds part of a fix says;
/// `rewrite` leaves it out when it rewrites that file as well.
pub const SHARED_FIX_NOTE: &str = "holds part of this pipeline's Kaniko migration";

/// Findings (with fixes) for one GitLab file, as the per-file engine asks.
///
/// The file is seen as part of its pipeline: when it is the repository's
/// `.gitlab-ci.yml`, or a file that pipeline includes, the whole pipeline
/// is resolved and this file's share of the findings returned (so a
/// template edited for a job in another file is edited the same way when
/// that file is checked on its own). Any other file is read as a pipeline
/// of its own.
pub fn file_findings(
    source: &SourceFile,
    opts: &crate::options::Options,
) -> Result<Vec<crate::rules::Finding>, SourceError> {
    let gopts = options_from(opts);
    let alone = || -> Result<(Arc<cache::Checked>, usize), SourceError> {
        let root = include::repo_root(&source.path);
        let pipeline = Pipeline::from_source(&root, source.clone())?;
        let findings = findings::check(&pipeline, &gopts);
        Ok((Arc::new(cache::Checked::new(pipeline, findings)), 0))
    };
    // A pipeline file is its own entry: no need to look for another.
    let entry = if include::is_pipeline_name(&source.path) {
        None
    } else {
        include::pipeline_entry_for(&source.path)
    };
    let me = entry
        .as_ref()
        .and_then(|_| std::fs::canonicalize(&source.path).ok());
    let (checked, index) = match (entry, me) {
        (Some(entry), Some(me)) => {
            let key = format!("{}\n{gopts:?}", entry.display());
            let load = || {
                let root = include::repo_root(&entry);
                let pipeline = Pipeline::load_in(&root, &entry).ok()?;
                let findings = findings::check(&pipeline, &gopts);
                Some(cache::Checked::new(pipeline, findings))
            };
            match cache::checked(key, load) {
                Some(c) => match c.file(&me, &source.text) {
                    Some(i) => (c, i),
                    None => alone()?,
                },
                // The whole pipeline does not load: judge this file alone.
                None => alone()?,
            }
        }
        _ => alone()?,
    };
    let (pipeline, all) = (&checked.pipeline, &checked.findings);
    let mut mine: Vec<crate::rules::Finding> = all
        .iter()
        .find(|f| f.file == index)
        .map(|f| f.findings.clone())
        .unwrap_or_default();
    // Fixes that land in a file this one includes are written only when
    // that file is rewritten too: say so where it is included.
    for other in all.iter().filter(|f| f.file != index) {
        if !other.findings.iter().any(|f| f.fix.is_some()) {
            continue;
        }
        let Some(inc) = pipeline
            .includes
            .iter()
            .find(|i| i.in_file == index && i.files.contains(&other.file))
        else {
            continue;
        };
        let path = pipeline.files[other.file]
            .path
            .strip_prefix(&pipeline.root_dir)
            .unwrap_or(&pipeline.files[other.file].path)
            .display()
            .to_string();
        mine.push(
            crate::rules::Finding::new(
                crate::rules::Rule::Km014,
                inc.span.clone(),
                format!("`{path}` (included here) {SHARED_FIX_NOTE}"),
            )
            .with_help(format!(
                "`kmigrate rewrite` of the pipeline's `.gitlab-ci.yml` rewrites it too; when rewriting this file alone, pass `{path}` as well, so its share of the fix is written"
            )),
        );
    }
    Ok(mine)
}

/// GitLab CI behind the platform interface.
pub struct Support;

impl crate::platform::PlatformSupport for Support {
    fn cli_name(&self) -> &'static str {
        "gitlab"
    }

    fn display_name(&self) -> &'static str {
        "GitLab CI"
    }

    fn unit(&self) -> &'static str {
        "job"
    }

    fn matches_path(&self, path: &std::path::Path) -> bool {
        path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
            let n = n.to_ascii_lowercase();
            n == ".gitlab-ci.yml" || n == ".gitlab-ci.yaml"
        })
    }

    /// Anything with job-like mappings or a GitLab top-level keyword.
    fn matches_content(&self, root: &crate::source::Node) -> bool {
        let Some(map) = root.as_map() else {
            return false;
        };
        let gitlab_keys = ["stages", "include", "variables", "default", "workflow"];
        map.entries.iter().any(|e| {
            e.value.get("script").is_some()
                || e.value.get("extends").is_some()
                || e.value.get("image").is_some()
                || gitlab_keys.contains(&e.key.as_str().unwrap_or(""))
        })
    }

    /// Only pipeline entries: a GitLab file that another pipeline includes
    /// may inherit Kaniko from it.
    fn self_contained(&self, path: &std::path::Path, _text: &[u8]) -> bool {
        path.file_name().is_some_and(|n| {
            n.eq_ignore_ascii_case(".gitlab-ci.yml") || n.eq_ignore_ascii_case(".gitlab-ci.yaml")
        })
    }

    fn findings(
        &self,
        source: &SourceFile,
        opts: &crate::options::Options,
    ) -> Result<Vec<crate::rules::Finding>, SourceError> {
        file_findings(source, opts)
    }

    /// None: `report` reads the resolved pipeline instead (a job's
    /// template may live in another file).
    fn unit_spans(&self, _source: &SourceFile) -> Vec<std::ops::Range<usize>> {
        Vec::new()
    }

    fn kaniko_flags(&self, _source: &SourceFile) -> Vec<&'static crate::kaniko::FlagSpec> {
        Vec::new()
    }

    fn extract(
        &self,
        path: &std::path::Path,
        text: &str,
        inputs: &crate::readback::extract::Inputs,
    ) -> Result<Vec<crate::readback::extract::Extracted>, String> {
        crate::readback::extract::gitlab(path, text, inputs)
    }
}
