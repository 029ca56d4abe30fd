//! Path resolution scoped to a root directory: symlinks are followed as if
//! the root were `/`, so nothing resolved here can point outside it.

use std::io;
use std::path::{Component, Path, PathBuf};

/// Splits a path into normal components, resolving `.` and `..` lexically
/// and clamping at the root (`/../etc` is `/etc`), like a chroot would.
pub fn clean_components(p: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s.to_string()),
        }
    }
    out
}

/// Resolves `path` (interpreted relative to `root`, absolute or not) to a host
/// path inside `root`, following symlinks within the root. When
/// `follow_last` is false the final component is not followed (it may be a
/// symlink, which the caller replaces or reads). Missing components are kept
/// as they are written.
pub fn secure_join(root: &Path, path: &str, follow_last: bool) -> io::Result<PathBuf> {
    let mut pending: Vec<String> = clean_components(path);
    pending.reverse();
    let mut resolved: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(seg) = pending.pop() {
        if seg == ".." {
            resolved.pop();
            continue;
        }
        if seg == "." {
            continue;
        }
        let is_last = pending.is_empty();
        let mut cand = root.to_path_buf();
        for r in &resolved {
            cand.push(r);
        }
        cand.push(&seg);
        match std::fs::symlink_metadata(&cand) {
            Ok(m) if m.file_type().is_symlink() && (follow_last || !is_last) => {
                links += 1;
                if links > 40 {
                    return Err(io::Error::other(format!(
                        "too many levels of symbolic links resolving {path}"
                    )));
                }
                let target = std::fs::read_link(&cand)?;
                let t = target.to_string_lossy().to_string();
                if t.starts_with('/') {
                    resolved.clear();
                }
                for s in t.split('/').rev() {
                    if !s.is_empty() {
                        pending.push(s.to_string());
                    }
                }
            }
            _ => resolved.push(seg),
        }
    }
    let mut out = root.to_path_buf();
    for r in resolved {
        out.push(r);
    }
    Ok(out)
}

/// Whether `path` is `root` or below it with no symlink on the way (a RUN
/// may have moved things around a path resolved before it ran).
pub fn reached_directly(root: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(root) else {
        return false;
    };
    let mut cur = root.to_path_buf();
    rel.components().all(|c| {
        cur.push(c);
        std::fs::symlink_metadata(&cur).is_ok_and(|m| !m.file_type().is_symlink())
    })
}

/// Sets the mtime of the directory `dir` under `root` back to `mtime`
/// (nothing when a symlink now leads to it).
pub fn restore_dir_mtime(root: &Path, dir: &Path, mtime: std::time::SystemTime) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if !reached_directly(root, dir) {
        return Ok(());
    }
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_NOFOLLOW)
        .open(dir)?
        .set_modified(mtime)
}

/// True when `p` lies under `root` lexically (both absolute and clean).
pub fn is_within(root: &Path, p: &Path) -> bool {
    p.starts_with(root)
        && !p
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_stay_in_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("real")).unwrap();
        symlink("/etc", root.join("abs")).unwrap();
        symlink("../../../../real", root.join("rel")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        assert_eq!(
            secure_join(root, "/abs/passwd", true).unwrap(),
            root.join("etc/passwd")
        );
        assert_eq!(
            secure_join(root, "rel/x", true).unwrap(),
            root.join("real/x")
        );
        assert_eq!(secure_join(root, "../../x", true).unwrap(), root.join("x"));
        assert_eq!(secure_join(root, "abs", false).unwrap(), root.join("abs"));
        assert!(secure_join(root, "loop/x", true).is_err());
    }
}
