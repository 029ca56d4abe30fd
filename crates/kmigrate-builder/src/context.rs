//! The build context: source resolution for COPY/ADD (globs, `.dockerignore`,
//! refusal of paths and symlinks that leave the context) and the content
//! digest of sources that enters the cache key.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::digest;
use super::glob;
use super::ignore::IgnoreRules;

/// One resolved source: its host path and the name it is known by.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    /// Path relative to the context (or stage root), `/`-separated.
    pub rel: String,
}

/// A local build context.
#[derive(Debug, Clone)]
pub struct Context {
    pub root: PathBuf,
    pub ignore: IgnoreRules,
}

impl Context {
    pub fn new(root: &Path, ignore: IgnoreRules) -> std::io::Result<Self> {
        Ok(Self {
            root: std::fs::canonicalize(root)?,
            ignore,
        })
    }

    /// Resolves one COPY/ADD source pattern to existing paths.
    pub fn resolve(&self, pattern: &str) -> Result<Vec<Source>, String> {
        if pattern.starts_with('/') {
            return Err(format!(
                "source {pattern:?} is an absolute path; COPY/ADD sources are paths inside the build context"
            ));
        }
        let mut parts: Vec<&str> = Vec::new();
        for seg in pattern.split('/') {
            match seg {
                "" | "." => {}
                ".." => {
                    if parts.pop().is_none() {
                        return Err(format!("source {pattern:?} is outside the build context"));
                    }
                }
                s => parts.push(s),
            }
        }
        let clean = parts.join("/");
        let mut out = Vec::new();
        if glob::has_meta(&clean) {
            for e in walkdir::WalkDir::new(&self.root)
                .min_depth(1)
                .sort_by_file_name()
            {
                let e = e.map_err(|e| e.to_string())?;
                let rel = rel_of(&self.root, e.path());
                if glob::matches(&clean, &rel) && !self.ignore.excluded(&rel) {
                    out.push(self.checked(&rel)?);
                }
            }
            if out.is_empty() {
                return Err(format!(
                    "no source files were specified: {pattern:?} matches nothing in the context"
                ));
            }
        } else {
            if clean.is_empty() {
                return Ok(vec![Source {
                    path: self.root.clone(),
                    rel: String::new(),
                }]);
            }
            if self.ignore.excluded(&clean) {
                return Err(format!("{pattern:?} not found: excluded by .dockerignore"));
            }
            out.push(self.checked(&clean)?);
        }
        Ok(out)
    }

    /// The source after following symlinks, refused when it leaves the context.
    fn checked(&self, rel: &str) -> Result<Source, String> {
        let p = self.root.join(rel);
        let real = std::fs::canonicalize(&p)
            .map_err(|_| format!("{rel:?} not found in the build context"))?;
        if !real.starts_with(&self.root) {
            return Err(format!(
                "{rel:?} resolves to {} which is outside the build context",
                real.display()
            ));
        }
        Ok(Source {
            path: real,
            rel: rel.to_string(),
        })
    }

    /// Entries under a source directory that are not ignored.
    pub fn walk(&self, src: &Source) -> Result<Vec<(PathBuf, String)>, String> {
        walk_tree_with(
            &src.path,
            |rel| {
                let full = if src.rel.is_empty() {
                    rel.to_string()
                } else {
                    format!("{}/{rel}", src.rel)
                };
                self.ignore.excluded(&full)
            },
            self.ignore.has_exceptions(),
        )
    }
}

fn rel_of(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .unwrap_or(p)
        .to_string_lossy()
        .to_string()
}

/// Lists a directory tree (sorted, without following symlinks), skipping
/// entries for which `skip(rel)` is true (and their children).
pub fn walk_tree(
    root: &Path,
    skip: impl Fn(&str) -> bool,
) -> Result<Vec<(PathBuf, String)>, String> {
    walk_tree_with(root, skip, false)
}

/// [`walk_tree`]; with `descend_skipped`, skipped directories are still
/// searched (an ignore exception may re-include something below them).
pub fn walk_tree_with(
    root: &Path,
    skip: impl Fn(&str) -> bool,
    descend_skipped: bool,
) -> Result<Vec<(PathBuf, String)>, String> {
    let mut out = Vec::new();
    let mut it = walkdir::WalkDir::new(root)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter();
    while let Some(e) = it.next() {
        let e = e.map_err(|e| e.to_string())?;
        let rel = rel_of(root, e.path());
        if skip(&rel) {
            if e.file_type().is_dir() && !descend_skipped {
                it.skip_current_dir();
            }
            continue;
        }
        out.push((e.path().to_path_buf(), rel));
    }
    Ok(out)
}

/// Digest over sorted entries (relative path, type, mode, uid, gid, size and
/// content or link target). mtime is left out; names are in.
pub fn content_digest(items: &[(PathBuf, String)]) -> Result<String, String> {
    let mut buf = String::new();
    for (path, rel) in items {
        let m = std::fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let ft = m.file_type();
        let (kind, body) = if ft.is_symlink() {
            (
                "l",
                std::fs::read_link(path)
                    .map_err(|e| e.to_string())?
                    .to_string_lossy()
                    .to_string(),
            )
        } else if ft.is_dir() {
            ("d", String::new())
        } else if ft.is_file() {
            ("f", digest::sha256_file(path).map_err(|e| e.to_string())?.0)
        } else {
            ("o", String::new())
        };
        buf.push_str(&format!(
            "{rel}\0{kind}\0{:o}\0{}\0{}\0{}\0{body}\n",
            m.mode() & 0o7777,
            m.uid(),
            m.gid(),
            if ft.is_file() { m.len() } else { 0 }
        ));
    }
    Ok(digest::sha256_digest(buf.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn ctx(ignore: &str) -> (tempfile::TempDir, Context) {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("src/sub")).unwrap();
        fs::write(d.path().join("src/a.txt"), "a").unwrap();
        fs::write(d.path().join("src/sub/b.txt"), "b").unwrap();
        fs::write(d.path().join("x.log"), "l").unwrap();
        let c = Context::new(d.path(), IgnoreRules::parse(ignore)).unwrap();
        (d, c)
    }

    #[test]
    fn refuses_escapes() {
        let (d, c) = ctx("");
        assert!(c.resolve("../etc/passwd").unwrap_err().contains("outside"));
        assert!(c.resolve("/etc/passwd").unwrap_err().contains("absolute"));
        std::os::unix::fs::symlink("/etc", d.path().join("out")).unwrap();
        assert!(c.resolve("out/passwd").unwrap_err().contains("outside"));
        std::os::unix::fs::symlink("src/a.txt", d.path().join("in")).unwrap();
        assert!(c.resolve("in").is_ok());
    }

    #[test]
    fn globs_and_ignore() {
        let (_d, c) = ctx("*.log\nsrc/sub\n");
        assert!(c.resolve("x.log").is_err());
        assert_eq!(c.resolve("src/*.txt").unwrap().len(), 1);
        let src = &c.resolve("src").unwrap()[0];
        let items = c.walk(src).unwrap();
        assert_eq!(
            items.iter().map(|i| i.1.as_str()).collect::<Vec<_>>(),
            ["a.txt"]
        );
    }

    #[test]
    fn exceptions_reach_into_excluded_directories() {
        let (_d, c) = ctx("src\n!src/sub/b.txt\n");
        let root = &c.resolve(".").unwrap()[0];
        let items = c.walk(root).unwrap();
        let names: Vec<_> = items.iter().map(|i| i.1.as_str()).collect();
        assert!(names.contains(&"src/sub/b.txt"), "{names:?}");
        assert!(!names.contains(&"src/a.txt"));
    }

    #[test]
    fn digest_sees_rename_and_content_not_mtime() {
        let (d, c) = ctx("");
        let digest_of = |c: &Context| {
            let src = &c.resolve("src").unwrap()[0];
            content_digest(&c.walk(src).unwrap()).unwrap()
        };
        let base = digest_of(&c);
        let f = fs::File::options()
            .write(true)
            .open(d.path().join("src/a.txt"))
            .unwrap();
        f.set_modified(std::time::UNIX_EPOCH).unwrap();
        assert_eq!(digest_of(&c), base);
        fs::rename(d.path().join("src/a.txt"), d.path().join("src/c.txt")).unwrap();
        let renamed = digest_of(&c);
        assert_ne!(renamed, base);
        fs::write(d.path().join("src/c.txt"), "changed").unwrap();
        assert_ne!(digest_of(&c), renamed);
    }
}
