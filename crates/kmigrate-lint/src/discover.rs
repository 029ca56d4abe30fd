//! Finds the CI files to check under the paths a user names.
//!
//! Directories are walked honouring `.gitignore` (also outside a git
//! repository), `.ignore` and the configuration's `paths.exclude`; `.git`,
//! `node_modules` and `target` are never entered. A walked file is a CI file
//! when it is named `cloudbuild*.yaml|yml|json` or `.gitlab-ci.yml`. A file
//! named on the command line is checked whatever its name. Every file is
//! reported once, even when it is reached twice (named and walked, through
//! two paths or a symlink).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::config::Loaded;
use crate::platform::Platform;
use crate::source::SourceError;

/// Directories never entered.
pub const SKIPPED_DIRS: &[&str] = &[".git", "node_modules", "target"];

/// A file to check.
#[derive(Debug)]
pub struct Target {
    /// The path as it will be shown (as named, or as walked from a named
    /// directory).
    pub path: PathBuf,
    /// The kind its name says (`None`: detect from content).
    pub kind: Option<Platform>,
    /// Named on the command line rather than found by a walk.
    pub explicit: bool,
    /// The file's bytes, when discovery has read them already (a pipeline
    /// read for its includes), so the check does not read it again.
    pub bytes: Preread,
}

/// At most this many bytes of pipelines read for their includes are kept
/// for their checks; the rest are read again, so memory stays bounded in a
/// repository of many pipelines.
pub const PREREAD_BUDGET: usize = 8 << 20;

/// Bytes read ahead for one check: taken once, so they are freed as soon
/// as the file is checked rather than held for the whole run.
#[derive(Debug, Default)]
pub struct Preread(std::sync::Mutex<Option<Vec<u8>>>);

impl Preread {
    pub fn new(bytes: Vec<u8>) -> Self {
        Preread(std::sync::Mutex::new(Some(bytes)))
    }

    /// The bytes, the first time only.
    pub fn take(&self) -> Option<Vec<u8>> {
        self.0.lock().map_or(None, |mut b| b.take())
    }

    /// Whether the bytes are still there to take.
    pub fn is_some(&self) -> bool {
        self.0.lock().is_ok_and(|b| b.is_some())
    }
}

/// What [`add_included`] learns from reading one pipeline.
#[derive(Debug, Default)]
pub struct Includes {
    /// The pipeline's bytes, as read (`None` when it could not be read).
    pub bytes: Option<Vec<u8>>,
    /// The files it includes locally.
    pub files: Vec<PathBuf>,
}

/// What a walk found: the files, and the paths it could not read.
#[derive(Debug, Default)]
pub struct Discovered {
    pub targets: Vec<Target>,
    pub errors: Vec<SourceError>,
}

/// Finds the files to check under `paths`. `config` supplies the excludes
/// for walked files.
pub fn discover(paths: &[PathBuf], config: &Loaded) -> Discovered {
    let mut out = Discovered::default();
    let mut seen = HashSet::new();
    let mut dirs = Vec::new();
    // Named files first: a file also reached by walking a directory (by
    // its own name or through a symlink) is reported under the name the
    // user gave.
    for path in paths {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) => {
                out.errors
                    .push(SourceError::new(path, describe_io(&e)).with_help(
                        if e.kind() == std::io::ErrorKind::NotFound {
                            "check the path"
                        } else {
                            "check the permissions"
                        },
                    ));
                continue;
            }
        };
        if meta.is_dir() {
            dirs.push(path);
        } else {
            push(
                &mut out,
                &mut seen,
                Target {
                    path: path.clone(),
                    kind: Platform::from_path(path),
                    explicit: true,
                    bytes: Preread::default(),
                },
            );
        }
    }
    for dir in dirs {
        walk(dir, config, &mut seen, &mut out);
    }
    out.targets.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Adds the files the GitLab pipelines among the targets include locally
/// (`includes_of` reads one `.gitlab-ci.yml` and lists them), so a Kaniko
/// job defined in `ci/build.yml` is checked even though its name says
/// nothing. A file already found (named, walked, or included twice) is kept
/// once; `paths.exclude` applies to included files as to walked ones. Each
/// pipeline keeps the bytes read, for its own check.
pub fn add_included(
    out: &mut Discovered,
    config: &Loaded,
    includes_of: &(dyn Fn(&Path) -> Includes + Sync),
) {
    use rayon::prelude::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    // Bytes are dropped as soon as they are read once the budget is spent,
    // so the pass never holds more. Which pipelines keep theirs depends on
    // scheduling; only how often a file is read does.
    let kept = AtomicUsize::new(0);
    // Loading a pipeline's includes parses it: one pipeline per core.
    let read: Vec<(usize, Includes)> = out
        .targets
        .par_iter()
        .enumerate()
        .filter(|(_, t)| {
            t.kind == Some(Platform::GitLab)
                && t.path
                    .file_name()
                    .is_some_and(|n| n == ".gitlab-ci.yml" || n == ".gitlab-ci.yaml")
        })
        .map(|(i, t)| {
            let mut found = includes_of(&t.path);
            let len = found.bytes.as_ref().map_or(0, Vec::len);
            if kept.fetch_add(len, Ordering::Relaxed) + len > PREREAD_BUDGET {
                found.bytes = None;
            }
            (i, found)
        })
        .collect();
    let mut included = Vec::new();
    for (i, found) in read {
        if let Some(bytes) = found.bytes {
            out.targets[i].bytes = Preread::new(bytes);
        }
        included.extend(found.files.into_iter().filter(|p| !config.is_excluded(p)));
    }
    if included.is_empty() {
        return;
    }
    let mut seen: HashSet<FileKey> = out.targets.iter().map(|t| file_key(&t.path)).collect();
    for included in included {
        let path = relative_to_cwd(&included);
        push(
            out,
            &mut seen,
            Target {
                path,
                kind: Some(Platform::GitLab),
                explicit: false,
                bytes: Preread::default(),
            },
        );
    }
    out.targets.sort_by(|a, b| a.path.cmp(&b.path));
}

/// The files a GitLab pipeline includes locally (its own file excluded), as
/// the GitLab platform loads them, with the pipeline's bytes; no files when
/// the pipeline does not load (the entry's own check reports why). A
/// pipeline whose text has no `include` is not parsed.
pub fn gitlab_local_includes(entry: &Path) -> Includes {
    use crate::platform::gitlab::include;
    let Ok(bytes) = crate::source::SourceFile::read(entry) else {
        return Includes::default();
    };
    let files = match std::str::from_utf8(&bytes) {
        Ok(text) if crate::prefilter::may_include(text.as_bytes()) => {
            match include::load_text(&include::repo_root(entry), entry, text.to_string()) {
                Ok(loaded) => loaded
                    .files
                    .iter()
                    .skip(1)
                    .map(|f| f.path.clone())
                    .collect(),
                Err(_) => Vec::new(),
            }
        }
        _ => Vec::new(),
    };
    Includes {
        bytes: Some(bytes),
        files,
    }
}

/// The paths that are CI files by name, directories, and files the GitLab
/// pipeline above them includes locally (`ci/build.yml`); the others are
/// left out. For pre-commit, which passes every YAML file of a commit: a
/// commit that touches only an included file is still checked, and a
/// Kubernetes manifest is not an error. Each pipeline is read once.
pub fn ci_files_only<P: AsRef<Path>>(paths: Vec<P>) -> Vec<P> {
    use crate::platform::gitlab::include::pipeline_entry_for;
    let mut included: std::collections::HashMap<PathBuf, HashSet<FileKey>> =
        std::collections::HashMap::new();
    paths
        .into_iter()
        .filter(|p| {
            let p = p.as_ref();
            if Platform::from_path(p).is_some() || p.is_dir() {
                return true;
            }
            let Some(entry) = pipeline_entry_for(p) else {
                return false;
            };
            let files = included.entry(entry).or_insert_with_key(|entry| {
                gitlab_local_includes(entry)
                    .files
                    .iter()
                    .map(|f| file_key(f))
                    .collect()
            });
            files.contains(&file_key(p))
        })
        .collect()
}

/// `path` relative to the current directory when it lies below it, else
/// absolute; `.` and `..` resolved.
pub fn relative_to_cwd(path: &Path) -> PathBuf {
    let abs = crate::config::absolute(path);
    let cwd = crate::config::absolute(Path::new("."));
    match abs.strip_prefix(&cwd) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.to_path_buf(),
        _ => abs,
    }
}

/// What makes two paths the same file: its device and inode (one `stat`,
/// where resolving the real path read every component's link), or, for a
/// path that cannot be stat'ed, its absolute form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FileKey {
    Inode(u64, u64),
    Path(PathBuf),
}

pub fn file_key(path: &Path) -> FileKey {
    #[cfg(unix)]
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::MetadataExt;
        return FileKey::Inode(meta.dev(), meta.ino());
    }
    FileKey::Path(std::fs::canonicalize(path).unwrap_or_else(|_| crate::config::absolute(path)))
}

fn push(out: &mut Discovered, seen: &mut HashSet<FileKey>, target: Target) {
    push_keyed(out, seen, file_key(&target.path), target);
}

fn push_keyed(out: &mut Discovered, seen: &mut HashSet<FileKey>, key: FileKey, target: Target) {
    if seen.insert(key) {
        out.targets.push(target);
    }
}

fn walk(root: &Path, config: &Loaded, seen: &mut HashSet<FileKey>, out: &mut Discovered) {
    use std::sync::Mutex;

    // Walked on every core (reading directories and looking for ignore
    // files in each is most of a scan of a large, mostly clean repository),
    // then sorted, so the result does not depend on scheduling.
    let found: Mutex<Vec<(PathBuf, Platform, FileKey)>> = Mutex::new(Vec::new());
    let errors: Mutex<Vec<SourceError>> = Mutex::new(Vec::new());
    let visit = |entry: Result<ignore::DirEntry, ignore::Error>| {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                if let Some(err) = walk_error(root, &e) {
                    errors.lock().expect("no panics while held").push(err);
                }
                return ignore::WalkState::Continue;
            }
        };
        if entry.path_is_symlink() {
            match symlink_in_walk(root, entry.path()) {
                Linked::File => {}
                Linked::Skipped => return ignore::WalkState::Continue,
                Linked::Error(err) => {
                    errors.lock().expect("no panics while held").push(err);
                    return ignore::WalkState::Continue;
                }
            }
        } else if !entry.file_type().is_some_and(|t| t.is_file()) {
            return ignore::WalkState::Continue;
        }
        // Walking `.` yields `./x`; show `x`.
        let path = match entry.path().strip_prefix(".") {
            Ok(rel) if root == Path::new(".") => rel,
            _ => entry.path(),
        };
        if !config.is_excluded(path)
            && let Some(kind) = Platform::from_walked(path)
        {
            let key = file_key(path);
            found
                .lock()
                .expect("no panics while held")
                .push((path.to_path_buf(), kind, key));
        }
        ignore::WalkState::Continue
    };
    // A root named on the command line is entered even when it is a
    // symlink (the user's choice): with a trailing `/` the walker's `lstat`
    // of the root resolves the link, and entries still read `root/...`.
    let entered = if std::fs::symlink_metadata(root).is_ok_and(|m| m.is_symlink()) {
        let mut slash = root.as_os_str().to_owned();
        slash.push("/");
        PathBuf::from(slash)
    } else {
        root.to_path_buf()
    };
    ignore::WalkBuilder::new(&entered)
        .hidden(false)
        .git_ignore(true)
        .git_global(false)
        .git_exclude(true)
        .require_git(false)
        .ignore(true)
        .parents(true)
        // Symlinked directories are never entered (ripgrep's default): a
        // link to `/` or to another tree would walk the host and report
        // files outside what the user named. Symlinked files are judged
        // one by one in `symlink_in_walk`.
        .follow_links(false)
        .filter_entry(|e| {
            !(e.file_type().is_some_and(|t| t.is_dir())
                && e.file_name()
                    .to_str()
                    .is_some_and(|n| SKIPPED_DIRS.contains(&n)))
        })
        .build_parallel()
        .run(|| Box::new(&visit));
    let mut found = found.into_inner().expect("no panics while held");
    found.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, kind, key) in found {
        push_keyed(
            out,
            seen,
            key,
            Target {
                path,
                kind: Some(kind),
                explicit: false,
                bytes: Preread::default(),
            },
        );
    }
    let mut errors = errors.into_inner().expect("no panics while held");
    errors.sort_by(|a, b| a.path.cmp(&b.path));
    out.errors.extend(errors);
}

/// What the walk does with a symbolic link it meets.
#[derive(Debug)]
enum Linked {
    /// A link to a regular file inside the walked root: checked.
    File,
    /// A link to a directory, to a file outside the root, or a dangling
    /// link without a CI file's name: not checked, nothing said.
    Skipped,
    /// A dangling link with a CI file's name, or a link to one of its own
    /// ancestors: reported, as a user would want to know.
    Error(SourceError),
}

/// Judges the symlink `link` met while walking `root`. A walk never leaves
/// the tree it was given: a link is only followed to a regular file whose
/// real path lies inside `root`'s real path (a file named on the command
/// line is always read: naming it is the user's choice).
fn symlink_in_walk(root: &Path, link: &Path) -> Linked {
    let shown = match link.strip_prefix(".") {
        Ok(rel) if root == Path::new(".") => rel,
        _ => link,
    };
    let error = |message: &str| {
        Linked::Error(
            SourceError::new(shown, message)
                .with_help("the rest of the directory was still checked"),
        )
    };
    let Ok(target) = std::fs::canonicalize(link) else {
        return match Platform::from_path(link) {
            Some(_) => error("is a broken symbolic link"),
            None => Linked::Skipped,
        };
    };
    let Ok(root) = std::fs::canonicalize(root) else {
        return Linked::Skipped;
    };
    if target.is_dir() {
        // Not entered either way; a link to its own ancestor within the
        // tree is a loop a following walk reported, and still is (a link
        // leading out of the tree, even to `/`, is just not followed).
        let parent = link.parent().and_then(|p| std::fs::canonicalize(p).ok());
        return match parent {
            Some(parent) if parent.starts_with(&target) && target.starts_with(&root) => {
                error("is a symbolic link loop; it was skipped")
            }
            _ => Linked::Skipped,
        };
    }
    if target.is_file() && target.starts_with(&root) {
        Linked::File
    } else {
        Linked::Skipped
    }
}

/// The error to report for a failed walk entry; `None` for a dangling
/// symlink whose name is not a CI file's (nothing would have been checked).
fn walk_error(root: &Path, e: &ignore::Error) -> Option<SourceError> {
    // Dig out the path and the underlying cause.
    let mut path = None;
    let mut cur = e;
    let message = loop {
        match cur {
            ignore::Error::WithPath { path: p, err } => {
                path.get_or_insert_with(|| p.clone());
                cur = err;
            }
            ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
                cur = err;
            }
            ignore::Error::Loop { child, .. } => {
                path.get_or_insert_with(|| child.clone());
                break "is a symbolic link loop; it was skipped".to_string();
            }
            ignore::Error::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
                let p = path.as_deref()?;
                Platform::from_path(p)?;
                break "is a broken symbolic link".to_string();
            }
            ignore::Error::Io(io) => break describe_io(io),
            other => break other.to_string(),
        }
    };
    let path = path.unwrap_or_else(|| root.to_path_buf());
    let shown = match path.strip_prefix(".") {
        Ok(rel) if root == Path::new(".") && !rel.as_os_str().is_empty() => rel,
        _ => &path,
    };
    Some(SourceError::new(shown, message).with_help("the rest of the directory was still checked"))
}

fn describe_io(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "does not exist".into(),
        std::io::ErrorKind::PermissionDenied => "cannot be read: permission denied".into(),
        _ => format!("cannot be read: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn rel(root: &Path, d: &Discovered) -> Vec<String> {
        d.targets
            .iter()
            .map(|t| {
                t.path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    }

    #[test]
    fn names_that_are_ci_files() {
        for (name, kind) in [
            ("cloudbuild.yaml", Some(Platform::CloudBuild)),
            ("cloudbuild-prod.yml", Some(Platform::CloudBuild)),
            ("cloudbuild.json", Some(Platform::CloudBuild)),
            ("CloudBuild.YAML", Some(Platform::CloudBuild)),
            (".gitlab-ci.yml", Some(Platform::GitLab)),
            ("cloudbuild.txt", None),
            ("build.yaml", None),
            ("gitlab-ci.yml", None),
        ] {
            assert_eq!(Platform::from_path(Path::new(name)), kind, "{name}");
        }
    }

    #[test]
    fn walks_honouring_gitignore_skips_and_excludes() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        write(root, "cloudbuild.yaml", "steps: []\n");
        write(root, ".gitlab-ci.yml", "a: {}\n");
        write(root, "deploy/cloudbuild-prod.json", "{}\n");
        write(root, "deploy/other.yaml", "steps: []\n");
        write(root, "node_modules/x/cloudbuild.yaml", "steps: []\n");
        write(root, "target/cloudbuild.yaml", "steps: []\n");
        write(root, ".git/cloudbuild.yaml", "steps: []\n");
        write(root, "generated/cloudbuild.yaml", "steps: []\n");
        write(root, ".gitignore", "generated/\n");
        write(root, "vendor/cloudbuild.yaml", "steps: []\n");
        write(root, "kmigrate.toml", "[paths]\nexclude = [\"vendor\"]\n");
        let config = Loaded::discover(root).unwrap();
        let d = discover(&[root.to_path_buf()], &config);
        assert!(d.errors.is_empty(), "{:?}", d.errors);
        assert_eq!(
            rel(root, &d),
            [
                ".gitlab-ci.yml",
                "cloudbuild.yaml",
                "deploy/cloudbuild-prod.json"
            ]
        );
        assert!(d.targets.iter().all(|t| !t.explicit && t.kind.is_some()));
    }

    #[test]
    fn named_files_are_kept_whatever_the_name_and_reported_once() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        write(root, "ci/build.yaml", "steps: []\n");
        write(root, "ci/cloudbuild.yaml", "steps: []\n");
        let config = Loaded::default();
        let named = root.join("ci/build.yaml");
        let d = discover(
            &[
                named.clone(),
                root.join("ci"),
                root.join("ci/cloudbuild.yaml"),
                root.join("ci/../ci/build.yaml"),
            ],
            &config,
        );
        assert_eq!(rel(root, &d), ["ci/build.yaml", "ci/cloudbuild.yaml"]);
        assert!(d.targets[0].explicit && d.targets[0].kind.is_none());
    }

    #[test]
    fn included_gitlab_files_are_added_once_and_excludes_apply() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        write(root, ".gitlab-ci.yml", "include: [ci/build.yml]\n");
        write(root, "ci/build.yml", "b: {script: [x]}\n");
        write(root, "ci/deploy.yml", "d: {script: [x]}\n");
        write(root, "ci/old.yml", "o: {script: [x]}\n");
        write(root, "cloudbuild.yaml", "steps: []\n");
        write(
            root,
            "kmigrate.toml",
            "[paths]\nexclude = [\"ci/old.yml\"]\n",
        );
        let config = Loaded::discover(root).unwrap();
        let mut d = discover(&[root.to_path_buf()], &config);
        let asked = std::sync::Mutex::new(Vec::new());
        let includes = |entry: &Path| {
            asked.lock().unwrap().push(entry.to_path_buf());
            Includes {
                bytes: Some(b"include: [ci/build.yml]\n".to_vec()),
                files: vec![
                    root.join("ci/build.yml"),
                    root.join("ci/./deploy.yml"),
                    root.join("ci/build.yml"),
                    root.join("ci/old.yml"),
                ],
            }
        };
        add_included(&mut d, &config, &includes);
        assert_eq!(
            *asked.lock().unwrap(),
            [root.join(".gitlab-ci.yml")],
            "only pipelines"
        );
        assert_eq!(
            rel(root, &d),
            [
                ".gitlab-ci.yml",
                "ci/build.yml",
                "ci/deploy.yml",
                "cloudbuild.yaml"
            ]
        );
        assert!(
            d.targets
                .iter()
                .filter(|t| t.path.starts_with(root.join("ci")))
                .all(|t| t.kind == Some(Platform::GitLab) && !t.explicit)
        );
        // The pipeline keeps the bytes read for it; nothing else was read.
        for t in &d.targets {
            let is_pipeline = t.path.ends_with(".gitlab-ci.yml");
            assert_eq!(t.bytes.is_some(), is_pipeline, "{}", t.path.display());
        }
    }

    #[test]
    fn bytes_kept_for_checks_stay_within_the_budget() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        for dir in ["a", "b", "c"] {
            write(root, &format!("{dir}/.gitlab-ci.yml"), "j: {script: [x]}\n");
        }
        let config = Loaded::discover(root).unwrap();
        let mut d = discover(&[root.to_path_buf()], &config);
        let includes = |_: &Path| Includes {
            bytes: Some(vec![b'x'; PREREAD_BUDGET / 2 - 1]),
            files: Vec::new(),
        };
        add_included(&mut d, &config, &includes);
        // Two fit in the budget; which two depends on scheduling.
        let kept: Vec<&Target> = d.targets.iter().filter(|t| t.bytes.is_some()).collect();
        assert_eq!(kept.len(), 2);
        // Taken once: the check that takes them frees them.
        assert!(kept[0].bytes.take().is_some());
        assert!(kept[0].bytes.take().is_none());
    }

    #[test]
    fn missing_paths_and_symlink_loops_are_errors_and_the_rest_continues() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        write(root, "a/cloudbuild.yaml", "steps: []\n");
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(root.join("a"), root.join("a/loop")).unwrap();
            std::os::unix::fs::symlink(root.join("gone"), root.join("a/cloudbuild-x.yaml"))
                .unwrap();
            std::os::unix::fs::symlink(root.join("gone"), root.join("a/notes.txt")).unwrap();
        }
        let d = discover(
            &[root.join("nope.yaml"), root.to_path_buf()],
            &Loaded::default(),
        );
        assert_eq!(rel(root, &d), ["a/cloudbuild.yaml"]);
        let msgs: Vec<String> = d.errors.iter().map(|e| e.to_string()).collect();
        assert!(msgs[0].contains("nope.yaml: does not exist"), "{msgs:?}");
        #[cfg(unix)]
        {
            assert!(
                msgs.iter().any(|m| m.contains("symbolic link loop")),
                "{msgs:?}"
            );
            assert!(
                msgs.iter()
                    .any(|m| m.contains("cloudbuild-x.yaml: is a broken symbolic link")),
                "{msgs:?}"
            );
            // A dangling link that is no CI file is nobody's business.
            assert!(!msgs.iter().any(|m| m.contains("notes.txt")), "{msgs:?}");
            assert_eq!(msgs.len(), 3, "{msgs:?}");
        }
    }
}
