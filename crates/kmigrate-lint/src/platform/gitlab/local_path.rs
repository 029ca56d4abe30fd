//! Where an `include: local:` path leads, kept inside the repository root.
//!
//! GitLab reads local includes from the project's own files, so no path
//! can leave the project. `check` runs on merge requests nobody reviewed
//! yet: a path with `..` above the root, a symbolic link to `/etc`, or a
//! file under `.git` (whose `config` may hold a CI token) must never be
//! read. The path is resolved one component at a time from the real
//! (canonical) root: `.` and `..` lexically (never above the root), and a
//! symbolic link only when what it leads to is inside the root. Every
//! refusal is decided before the file is opened, and a link that leads
//! outside is refused the same way whether its target exists or not, so
//! the answer says nothing about files outside.

use std::path::{Path, PathBuf};

/// A local include path that may be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The root joined with the normalised path, as shown to users.
    pub shown: PathBuf,
    /// The file to open: every link resolved, inside the real root.
    pub real: PathBuf,
}

/// Why a local include path is not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Missing,
    AboveRoot,
    LinkOut,
    GitDir,
    NotAFile,
}

impl Refused {
    /// Why, in words, after the path.
    pub fn reason(self) -> &'static str {
        match self {
            Refused::Missing => "does not exist",
            Refused::AboveRoot => "leads above the root",
            Refused::LinkOut => {
                "goes through a symbolic link that leads outside the root, or nowhere"
            }
            Refused::GitDir => "is inside `.git`, which is not part of the project's files",
            Refused::NotAFile => "is not a regular file",
        }
    }
}

/// Resolves `location` (as written after `local:`, a leading `/` meaning
/// the root) inside `root`.
pub fn resolve(root: &Path, location: &str) -> Result<Resolved, Refused> {
    let mut parts: Vec<&str> = Vec::new();
    for part in location.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(Refused::AboveRoot);
                }
            }
            name => parts.push(name),
        }
    }
    if parts.is_empty() {
        return Err(Refused::NotAFile);
    }
    if parts.contains(&".git") {
        return Err(Refused::GitDir);
    }
    let real_root = std::fs::canonicalize(root).map_err(|_| Refused::Missing)?;
    let mut real = real_root.clone();
    for part in &parts {
        let next = real.join(part);
        let meta = std::fs::symlink_metadata(&next).map_err(|_| Refused::Missing)?;
        real = if meta.file_type().is_symlink() {
            match std::fs::canonicalize(&next) {
                Ok(target) if target.starts_with(&real_root) => target,
                _ => return Err(Refused::LinkOut),
            }
        } else {
            next
        };
    }
    let inside = real.strip_prefix(&real_root).unwrap_or(&real);
    if inside.components().any(|c| c.as_os_str() == ".git") {
        return Err(Refused::GitDir);
    }
    if !std::fs::metadata(&real).is_ok_and(|m| m.is_file()) {
        return Err(Refused::NotAFile);
    }
    Ok(Resolved {
        shown: root.join(parts.join("/")),
        real,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("repo");
        for (p, t) in [
            ("repo/ci/build.yml", "a: {}\n"),
            ("repo/.git/config", "x\n"),
            ("secret.yml", "s: {}\n"),
        ] {
            let path = tmp.path().join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, t).unwrap();
        }
        symlink(tmp.path().join("secret.yml"), root.join("ci/out.yml")).unwrap();
        symlink(tmp.path(), root.join("ci/up")).unwrap();
        symlink(tmp.path().join("none.yml"), root.join("ci/dangling.yml")).unwrap();
        symlink("build.yml", root.join("ci/in.yml")).unwrap();
        symlink("../.git", root.join("ci/git")).unwrap();
        symlink("/proc/self/environ", root.join("ci/env.yml")).unwrap();
        (tmp, root)
    }

    #[test]
    fn paths_inside_the_root_resolve() {
        let (_tmp, root) = tree();
        let real = std::fs::canonicalize(root.join("ci/build.yml")).unwrap();
        for location in [
            "ci/build.yml",
            "/ci/build.yml",
            "//ci/./build.yml",
            "ci/x/../build.yml",
            "ci/in.yml",
        ] {
            let r = resolve(&root, location).unwrap_or_else(|e| panic!("{location}: {e:?}"));
            assert_eq!(r.real, real, "{location}");
        }
        assert_eq!(
            resolve(&root, "/ci/x/../build.yml").unwrap().shown,
            root.join("ci/build.yml")
        );
    }

    #[test]
    fn paths_leaving_the_root_are_refused() {
        let (tmp, root) = tree();
        let secret = tmp.path().join("secret.yml");
        for (location, why) in [
            ("../secret.yml".to_string(), Refused::AboveRoot),
            (
                format!("../../../../../../..{}", secret.display()),
                Refused::AboveRoot,
            ),
            (
                format!("//../../../../../..{}", secret.display()),
                Refused::AboveRoot,
            ),
            ("ci/a/../../../secret.yml".into(), Refused::AboveRoot),
            (
                "../../../../../../proc/self/environ".into(),
                Refused::AboveRoot,
            ),
            ("ci/out.yml".into(), Refused::LinkOut),
            ("ci/up/secret.yml".into(), Refused::LinkOut),
            ("ci/up/none.yml".into(), Refused::LinkOut),
            ("ci/dangling.yml".into(), Refused::LinkOut),
            ("ci/env.yml".into(), Refused::LinkOut),
            (".git/config".into(), Refused::GitDir),
            ("ci/git/config".into(), Refused::GitDir),
            ("ci/none.yml".into(), Refused::Missing),
            ("ci/build.yml/x".into(), Refused::Missing),
            ("ci".into(), Refused::NotAFile),
            ("/".into(), Refused::NotAFile),
        ] {
            assert_eq!(resolve(&root, &location), Err(why), "{location}");
        }
    }
}
