//! Loading a pipeline's files: the entry file plus every `include:` of type
//! local (string or `local:` form, wildcards, relative to the repository
//! root, recursively). Includes of other kinds are recorded, not followed.

use std::path::{Path, PathBuf};

use super::glob;
use super::local_path::{self, Refused};
use super::value::{RNode, RValue, convert_file};
use crate::discover::{FileKey, file_key};
use crate::source::{SourceError, SourceFile, Span};

/// GitLab stops at 150 nested includes; so does kmigrate.
pub const MAX_INCLUDE_DEPTH: usize = 150;

/// The kind of an `include:` item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeKind {
    Local,
    Project,
    Remote,
    Template,
    Component,
}

impl IncludeKind {
    pub fn keyword(self) -> &'static str {
        match self {
            IncludeKind::Local => "local",
            IncludeKind::Project => "project",
            IncludeKind::Remote => "remote",
            IncludeKind::Template => "template",
            IncludeKind::Component => "component",
        }
    }
}

/// One `include:` item.
#[derive(Debug, Clone)]
pub struct Include {
    pub kind: IncludeKind,
    /// The path, URL, template or component as written (for `project:`,
    /// `group/project:file[@ref]`).
    pub location: String,
    /// The file the item is written in, and where.
    pub in_file: usize,
    pub span: Span,
    /// Files this item loaded (local includes).
    pub files: Vec<usize>,
    /// Why the item was not followed, when it was not.
    pub not_followed: Option<String>,
    /// The item names a local file that cannot be read: missing, outside
    /// the repository root, or not a GitLab CI file. An error where the
    /// item is written; the rest of the pipeline is still checked.
    pub unreadable: bool,
}

/// Every file of a pipeline, each converted, with its includes.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub root_dir: PathBuf,
    pub files: Vec<SourceFile>,
    /// `configs[i]` is file `i` resolved (aliases, merge keys), `include:` kept.
    pub configs: Vec<RNode>,
    pub includes: Vec<Include>,
}

/// The directory local includes of `entry` are relative to: the entry's
/// own directory for a `.gitlab-ci.yml` (GitLab reads it from the
/// repository root), else the nearest directory holding `.git`, else the
/// entry's directory.
pub fn repo_root(entry: &Path) -> PathBuf {
    let abs = std::path::absolute(entry).unwrap_or_else(|_| entry.to_path_buf());
    let start = abs.parent().map(Path::to_path_buf).unwrap_or_default();
    if is_pipeline_name(entry) {
        return start;
    }
    let mut dir = start.as_path();
    loop {
        if dir.join(".git").exists() {
            return dir.to_path_buf();
        }
        match dir.parent() {
            Some(p) => dir = p,
            None => return start,
        }
    }
}

/// `.gitlab-ci.yml` (or `.yaml`).
pub fn is_pipeline_name(path: &Path) -> bool {
    matches!(
        path.file_name().and_then(|n| n.to_str()),
        Some(".gitlab-ci.yml" | ".gitlab-ci.yaml")
    )
}

/// The `.gitlab-ci.yml` of the pipeline `file` may belong to: the nearest
/// one in the file's directory or above it, up to the repository root.
pub fn pipeline_entry_for(file: &Path) -> Option<PathBuf> {
    let abs = std::path::absolute(file).ok()?;
    let mut dir = abs.parent()?;
    loop {
        for name in [".gitlab-ci.yml", ".gitlab-ci.yaml"] {
            let candidate = dir.join(name);
            if candidate.is_file() && candidate != abs {
                return Some(candidate);
            }
        }
        if dir.join(".git").exists() {
            return None;
        }
        dir = dir.parent()?;
    }
}

/// The directory a GitLab file's jobs run in (`$CI_PROJECT_DIR`), as the
/// engine reads the file: the directory of the `.gitlab-ci.yml` whose
/// pipeline includes it, else its repository root. Everything that reads
/// the file's builds back must use the same directory: Kaniko looks for a
/// default `Dockerfile` there before it looks in the context.
pub fn project_root(file: &Path) -> PathBuf {
    if !is_pipeline_name(file)
        && let Some(entry) = pipeline_entry_for(file)
    {
        let root = repo_root(&entry);
        let me = std::fs::canonicalize(file).ok();
        let included = load(&root, &entry).is_ok_and(|loaded| {
            loaded
                .files
                .iter()
                .any(|f| me.is_some() && std::fs::canonicalize(&f.path).ok() == me)
        });
        if included {
            return root;
        }
    }
    repo_root(file)
}

/// Loads `entry` and its local includes; `root` is the directory local
/// include paths are relative to.
pub fn load(root: &Path, entry: &Path) -> Result<Loaded, SourceError> {
    load_source(root, SourceFile::load(entry)?)
}

/// Loads a pipeline whose entry text is given (stdin, tests); includes are
/// still read from `root`.
pub fn load_text(root: &Path, entry: &Path, text: String) -> Result<Loaded, SourceError> {
    load_source(root, SourceFile::from_text(entry, text)?)
}

/// Loads a pipeline whose entry is already parsed; includes are still read
/// from `root`.
pub fn load_source(root: &Path, entry: SourceFile) -> Result<Loaded, SourceError> {
    let mut l = Loader {
        root: root.to_path_buf(),
        out: Loaded {
            root_dir: root.to_path_buf(),
            files: Vec::new(),
            configs: Vec::new(),
            includes: Vec::new(),
        },
        keys: Vec::new(),
        stack: Vec::new(),
    };
    // The entry's identity is looked up when it includes a local file
    // (see `Loader::include`): most pipelines include none.
    l.add(entry, None)?;
    Ok(l.out)
}

struct Loader {
    root: PathBuf,
    out: Loaded,
    /// Identity (device and inode) of each loaded file; the entry's is
    /// missing until a local include needs it.
    keys: Vec<FileKey>,
    /// Files being loaded (for cycle detection).
    stack: Vec<usize>,
}

impl Loader {
    fn add(&mut self, file: SourceFile, key: Option<FileKey>) -> Result<usize, SourceError> {
        let config = self.convert(&file)?;
        self.push(file, config, key)
    }

    /// `file` resolved, as the next file of the pipeline.
    fn convert(&self, file: &SourceFile) -> Result<RNode, SourceError> {
        let config = convert_file(file, self.out.files.len())?;
        if !matches!(config.value, RValue::Map(_) | RValue::Null) {
            return Err(file
                .error_at(config.origin.span.start, format!("the top level is a {}, not a mapping of jobs", config.kind_name()))
                .with_help("a GitLab CI file maps job names and keywords (`stages`, `include`, …) to their settings"));
        }
        Ok(config)
    }

    /// Adds a converted file and follows its includes.
    fn push(
        &mut self,
        file: SourceFile,
        config: RNode,
        key: Option<FileKey>,
    ) -> Result<usize, SourceError> {
        let index = self.out.files.len();
        self.out.files.push(file);
        let include = config.get("include").cloned();
        self.out.configs.push(config);
        self.keys.extend(key);
        self.stack.push(index);
        if self.stack.len() > MAX_INCLUDE_DEPTH {
            return Err(SourceError::new(
                &self.out.files[index].path,
                format!("includes nest deeper than {MAX_INCLUDE_DEPTH} files"),
            ));
        }
        if let Some(inc) = &include {
            let items: Vec<&RNode> = match &inc.value {
                RValue::Seq(items) => items.iter().collect(),
                RValue::Null => Vec::new(),
                _ => vec![inc],
            };
            for item in items {
                self.include(index, item)?;
            }
        }
        self.stack.pop();
        Ok(index)
    }

    /// Marks `inc` as naming a file that cannot be read, and why.
    fn unreadable(&self, inc: &mut Include, why: String) {
        inc.unreadable = true;
        inc.not_followed = Some(match inc.not_followed.take() {
            Some(before) => format!("{before}; {why}"),
            None => why,
        });
    }

    /// `root` in words, for messages: where it is and why it is the root.
    fn root_in_words(&self) -> String {
        let entry = &self.out.files[0].path;
        let why = if is_pipeline_name(entry) {
            "the directory of `.gitlab-ci.yml`"
        } else if self.root.join(".git").exists() {
            "the git repository of the pipeline file"
        } else {
            "the directory of the pipeline file"
        };
        format!("`{}` ({why})", self.root.display())
    }

    /// Why a local include path is not read.
    fn refusal(&self, location: &str, why: Refused) -> String {
        format!(
            "local include `{location}` is not read: it {}; local includes stay inside the repository root {}",
            why.reason(),
            self.root_in_words()
        )
    }

    /// Why an included file that does not load is not read. Nothing of
    /// its text is shown (not even the parser's words, which may quote
    /// it): the file was named by the pipeline, not by the user, and may
    /// be any file of the checkout.
    fn not_a_ci_file(&self, path: &Path, e: &SourceError) -> String {
        let rel = path.strip_prefix(&self.root).unwrap_or(path).display();
        match e.position {
            Some((line, column)) => format!(
                "included file `{rel}` is not read: it is not a valid GitLab CI file (the problem is at line {line}, column {column}; its text is not shown, run `kmigrate check {rel}` to see it)"
            ),
            None => format!("included file `{rel}` is not read: it {}", e.message),
        }
    }

    fn err(&self, file: usize, at: usize, msg: String, help: &str) -> SourceError {
        self.out.files[file].error_at(at, msg).with_help(help)
    }

    fn include(&mut self, file: usize, item: &RNode) -> Result<(), SourceError> {
        let at = item.origin.span.start;
        let (kind, location) = self.include_target(file, item)?;
        let mut inc = Include {
            kind,
            location: location.clone(),
            in_file: file,
            span: item.origin.span.clone(),
            files: Vec::new(),
            not_followed: None,
            unreadable: false,
        };
        if kind != IncludeKind::Local {
            inc.not_followed = Some("kmigrate reads local files only".into());
            self.out.includes.push(inc);
            return Ok(());
        }
        if location.contains('$') {
            inc.not_followed =
                Some("the path uses a variable, known only when the pipeline runs".into());
            self.out.includes.push(inc);
            return Ok(());
        }
        let paths = self.local_paths(file, at, &location, &mut inc)?;
        if self.keys.is_empty() {
            // The entry (file 0) is the only file added without its key,
            // and its includes are the first to be followed.
            self.keys.push(file_key(&self.out.files[0].path));
        }
        for resolved in paths {
            self.follow(file, at, resolved, &mut inc)?;
        }
        self.out.includes.push(inc);
        Ok(())
    }

    /// What an `include:` item names: its kind and location as written.
    fn include_target(
        &self,
        file: usize,
        item: &RNode,
    ) -> Result<(IncludeKind, String), SourceError> {
        let at = item.origin.span.start;
        match &item.value {
            RValue::Scalar(s) => {
                let t = s.text.trim();
                if t.starts_with("https://") || t.starts_with("http://") {
                    Ok((IncludeKind::Remote, t.to_string()))
                } else {
                    Ok((IncludeKind::Local, t.to_string()))
                }
            }
            RValue::Map(_) => {
                let pick = |k: &str| item.get(k).and_then(|v| v.as_str()).map(str::to_string);
                if let Some(p) = pick("local") {
                    Ok((IncludeKind::Local, p))
                } else if let Some(p) = item.get("project").and_then(|v| v.as_str()) {
                    let files = match item.get("file") {
                        Some(f) => match f.as_seq() {
                            Some(s) => s
                                .iter()
                                .filter_map(|x| x.as_str())
                                .collect::<Vec<_>>()
                                .join(", "),
                            None => f.as_str().unwrap_or("").to_string(),
                        },
                        None => String::new(),
                    };
                    let r = pick("ref").map(|r| format!("@{r}")).unwrap_or_default();
                    Ok((IncludeKind::Project, format!("{p}:{files}{r}")))
                } else if let Some(p) = pick("remote") {
                    Ok((IncludeKind::Remote, p))
                } else if let Some(p) = pick("template") {
                    Ok((IncludeKind::Template, p))
                } else if let Some(p) = pick("component") {
                    Ok((IncludeKind::Component, p))
                } else {
                    Err(self.err(
                        file,
                        at,
                        "this `include:` item names no `local`, `project`, `remote`, `template` or `component`".into(),
                        "write e.g. `- local: ci/build.yml`",
                    ))
                }
            }
            _ => Err(self.err(
                file,
                at,
                format!(
                    "an `include:` item must be a string or a mapping, this is a {}",
                    item.kind_name()
                ),
                "write e.g. `- local: ci/build.yml` or `- ci/build.yml`",
            )),
        }
    }

    /// The files a local include names (a wildcard expanded), each checked
    /// to stay inside the root; the refused ones are marked on `inc`.
    fn local_paths(
        &self,
        file: usize,
        at: usize,
        location: &str,
        inc: &mut Include,
    ) -> Result<Vec<local_path::Resolved>, SourceError> {
        let rel = location.trim_start_matches('/');
        let found = if glob::is_glob(rel) {
            let found = glob::expand(&self.root, rel)
                .map_err(|m| self.err(file, at, m, "fix the wildcard pattern"))?;
            if found.is_empty() {
                inc.not_followed = Some(format!(
                    "no file under {} matches the wildcard",
                    self.root.display()
                ));
            }
            // The wildcard matched files under the root; each still goes
            // through the same checks as a path written out.
            found
                .iter()
                .map(|p| {
                    let rel = p.strip_prefix(&self.root).unwrap_or(p);
                    local_path::resolve(&self.root, &rel.to_string_lossy())
                })
                .collect()
        } else {
            vec![local_path::resolve(&self.root, rel)]
        };
        let mut paths = Vec::new();
        for r in found {
            match r {
                Ok(r) => paths.push(r),
                Err(why) => self.unreadable(inc, self.refusal(location, why)),
            }
        }
        Ok(paths)
    }

    /// Reads one included file (once, however often it is included) and
    /// adds it to `inc`; an include cycle is an error.
    fn follow(
        &mut self,
        file: usize,
        at: usize,
        resolved: local_path::Resolved,
        inc: &mut Include,
    ) -> Result<(), SourceError> {
        let (p, key) = (resolved.shown, file_key(&resolved.real));
        if let Some(pos) = self.stack.iter().position(|i| self.keys[*i] == key) {
            let chain: Vec<String> = self.stack[pos..]
                .iter()
                .map(|i| self.out.files[*i].path.display().to_string())
                .chain(std::iter::once(p.display().to_string()))
                .collect();
            return Err(self.err(
                file,
                at,
                format!("include cycle: {}", chain.join(" → ")),
                "remove one of the includes so the files no longer include each other",
            ));
        }
        // A file included again (not in a cycle) is read once.
        if let Some(existing) = self.keys.iter().position(|k| *k == key) {
            inc.files.push(existing);
            return Ok(());
        }
        // Read from the resolved path, shown under the written one.
        let read = SourceFile::read(&resolved.real)
            .and_then(|bytes| SourceFile::from_bytes(&p, bytes))
            .and_then(|src| Ok((self.convert(&src)?, src)));
        match read {
            Ok((config, src)) => {
                let idx = self.push(src, config, Some(key))?;
                inc.files.push(idx);
            }
            Err(e) => {
                let why = self.not_a_ci_file(&p, &e);
                self.unreadable(inc, why);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (p, t) in files {
            let path = dir.path().join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, t).unwrap();
        }
        dir
    }

    #[test]
    fn a_file_runs_in_the_directory_of_the_pipeline_that_includes_it() {
        let r = repo(&[
            (".git/HEAD", ""),
            ("Dockerfile", "FROM scratch\n"),
            ("svc/.gitlab-ci.yml", "include:\n  - local: ci/build.yml\n"),
            ("svc/ci/build.yml", "build:\n  script: [make]\n"),
            ("svc/ci/other.yml", "other:\n  script: [make]\n"),
        ]);
        let root = |rel: &str| project_root(&r.path().join(rel));
        // Included by svc's pipeline: svc is $CI_PROJECT_DIR, as the engine reads it.
        assert_eq!(root("svc/ci/build.yml"), r.path().join("svc"));
        assert_eq!(root("svc/.gitlab-ci.yml"), r.path().join("svc"));
        // Included by nothing: read on its own from the repository root.
        assert_eq!(root("svc/ci/other.yml"), r.path());
    }

    #[test]
    fn follows_local_includes_recursively_in_every_form() {
        let d = repo(&[
            (
                ".gitlab-ci.yml",
                "include:\n  - ci/a.yml\n  - local: /ci/b.yml\n  - local: 'ci/more/*.yml'\n  - project: g/p\n    file: [x.yml, y.yml]\n    ref: main\n  - remote: https://e.com/c.yml\n  - template: Auto-DevOps.gitlab-ci.yml\n  - component: gitlab.com/g/c/kaniko@1.0\n",
            ),
            ("ci/a.yml", "include: ci/nested.yml\na: {script: [x]}\n"),
            ("ci/nested.yml", "n: {script: [x]}\n"),
            ("ci/b.yml", "b: {script: [x]}\n"),
            ("ci/more/m1.yml", "m1: {script: [x]}\n"),
            ("ci/more/m2.yml", "m2: {script: [x]}\n"),
        ]);
        let l = load(d.path(), &d.path().join(".gitlab-ci.yml")).unwrap();
        assert_eq!(l.files.len(), 6);
        let external: Vec<_> = l
            .includes
            .iter()
            .filter(|i| i.not_followed.is_some())
            .map(|i| (i.kind, i.location.as_str()))
            .collect();
        assert_eq!(
            external,
            [
                (IncludeKind::Project, "g/p:x.yml, y.yml@main"),
                (IncludeKind::Remote, "https://e.com/c.yml"),
                (IncludeKind::Template, "Auto-DevOps.gitlab-ci.yml"),
                (IncludeKind::Component, "gitlab.com/g/c/kaniko@1.0"),
            ]
        );
    }

    #[test]
    fn missing_includes_are_marked_and_cycles_are_located_errors() {
        let d = repo(&[(
            ".gitlab-ci.yml",
            "stages: [a]\ninclude:\n  - local: ci/none.yml\n",
        )]);
        // Missing: the item is marked, the pipeline still loads.
        let l = load(d.path(), &d.path().join(".gitlab-ci.yml")).unwrap();
        assert_eq!(l.files.len(), 1);
        let inc = &l.includes[0];
        assert!(inc.unreadable);
        let why = inc.not_followed.as_deref().unwrap();
        assert!(
            why.contains("ci/none.yml") && why.contains("does not exist"),
            "{why}"
        );
        assert_eq!(l.files[0].position(inc.span.start).0, 3);

        let d = repo(&[
            (".gitlab-ci.yml", "include: a.yml\n"),
            ("a.yml", "include: b.yml\n"),
            ("b.yml", "include:\n  - local: a.yml\n"),
        ]);
        let e = load(d.path(), &d.path().join(".gitlab-ci.yml")).unwrap_err();
        assert!(e.message.contains("include cycle"), "{e}");
        assert!(e.to_string().contains("b.yml:2:"), "{e}");
    }

    #[test]
    fn diamonds_load_once_and_variables_are_not_followed() {
        let d = repo(&[
            (
                ".gitlab-ci.yml",
                "include: [a.yml, b.yml, '$CI_DIR/x.yml']\n",
            ),
            ("a.yml", "include: c.yml\n"),
            ("b.yml", "include: c.yml\n"),
            ("c.yml", "c: {script: [x]}\n"),
        ]);
        let l = load(d.path(), &d.path().join(".gitlab-ci.yml")).unwrap();
        assert_eq!(l.files.len(), 4);
        assert!(
            l.includes
                .iter()
                .any(|i| i.location.contains("$CI_DIR") && i.not_followed.is_some())
        );
    }

    #[test]
    fn top_level_must_be_a_mapping() {
        let d = repo(&[(".gitlab-ci.yml", "- a\n- b\n")]);
        let e = load(d.path(), &d.path().join(".gitlab-ci.yml")).unwrap_err();
        assert!(e.message.contains("not a mapping"), "{e}");
    }
}
