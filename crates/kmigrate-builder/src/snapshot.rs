//! Filesystem snapshots by metadata walk, and the diff between two of them
//! (what a RUN or COPY changed): changed paths plus deletions.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Top-level directories that are mount points in the sandbox; their content
/// never enters a layer.
pub const EXCLUDED_TOP: &[&str] = &["proc", "dev", "sys"];

#[derive(Debug, Clone, PartialEq, Eq)]
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    ino: u64,
}

/// Metadata of every path under a root, keyed by relative path.
#[derive(Debug, Default)]
pub struct Snapshot {
    entries: BTreeMap<String, Meta>,
}

/// What changed between two snapshots.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// Added or modified paths plus their parent directories, sorted.
    pub changed: Vec<String>,
    /// Deleted paths whose parent still exists, sorted.
    pub deleted: Vec<String>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.deleted.is_empty()
    }
}

/// Walks `root` without following symlinks.
pub fn take(root: &Path) -> std::io::Result<Snapshot> {
    let mut entries = BTreeMap::new();
    let mut it = walkdir::WalkDir::new(root)
        .follow_links(false)
        .min_depth(1)
        .into_iter();
    while let Some(e) = it.next() {
        let e = e.map_err(std::io::Error::other)?;
        let rel = e
            .path()
            .strip_prefix(root)
            .expect("walk stays under root")
            .to_string_lossy()
            .to_string();
        if e.depth() == 1 && EXCLUDED_TOP.contains(&rel.as_str()) {
            if e.file_type().is_dir() {
                it.skip_current_dir();
            }
            continue;
        }
        let m = e.metadata().map_err(std::io::Error::other)?;
        entries.insert(
            rel,
            Meta {
                mode: m.mode(),
                uid: m.uid(),
                gid: m.gid(),
                size: if m.is_dir() { 0 } else { m.size() },
                mtime: (m.mtime(), m.mtime_nsec()),
                // A directory's ctime changes whenever an entry is made or
                // removed in it, even when it ends up as it was (RUN mount
                // points, `/etc` placeholders, with the mtime put back); its
                // own changes show in mode, owner and mtime, its entries'
                // in theirs.
                ctime: if m.is_dir() {
                    (0, 0)
                } else {
                    (m.ctime(), m.ctime_nsec())
                },
                ino: m.ino(),
            },
        );
    }
    Ok(Snapshot { entries })
}

/// Compares two snapshots of the same root.
pub fn diff(before: &Snapshot, after: &Snapshot) -> Diff {
    let mut changed: BTreeSet<String> = BTreeSet::new();
    for (p, m) in &after.entries {
        if before.entries.get(p) != Some(m) {
            changed.insert(p.clone());
            let mut cur = p.as_str();
            while let Some(i) = cur.rfind('/') {
                cur = &cur[..i];
                changed.insert(cur.to_string());
            }
        }
    }
    let gone: BTreeSet<&String> = before
        .entries
        .keys()
        .filter(|p| !after.entries.contains_key(*p))
        .collect();
    let deleted = gone
        .iter()
        .filter(|p| {
            let mut cur = p.as_str();
            while let Some(i) = cur.rfind('/') {
                cur = &cur[..i];
                if gone.contains(&cur.to_string()) {
                    return false;
                }
            }
            true
        })
        .map(|p| p.to_string())
        .collect();
    Diff {
        changed: changed.into_iter().collect(),
        deleted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn diff_reports_changes_parents_and_top_deletions() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("a/b")).unwrap();
        fs::write(r.join("a/b/f"), "1").unwrap();
        fs::create_dir_all(r.join("gone/sub")).unwrap();
        fs::write(r.join("gone/sub/x"), "1").unwrap();
        fs::write(r.join("keep"), "1").unwrap();
        fs::create_dir_all(r.join("proc/1")).unwrap();
        let before = take(r).unwrap();
        fs::write(r.join("a/b/f"), "22").unwrap();
        fs::remove_dir_all(r.join("gone")).unwrap();
        fs::write(r.join("proc/1/x"), "").unwrap();
        let after = take(r).unwrap();
        let df = diff(&before, &after);
        assert!(df.changed.contains(&"a/b/f".to_string()));
        assert!(df.changed.contains(&"a".to_string()));
        assert!(!df.changed.iter().any(|p| p.starts_with("proc")));
        assert!(!df.changed.contains(&"keep".to_string()));
        assert_eq!(df.deleted, ["gone"]);
    }

    #[test]
    fn a_directory_put_back_as_it_was_is_unchanged() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("etc")).unwrap();
        let mtime = fs::metadata(r.join("etc")).unwrap().modified().unwrap();
        let before = take(r).unwrap();
        fs::write(r.join("etc/hosts"), "").unwrap();
        fs::remove_file(r.join("etc/hosts")).unwrap();
        fs::File::open(r.join("etc"))
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        assert!(diff(&before, &take(r).unwrap()).is_empty());
        // Without the mtime put back, it changed.
        fs::write(r.join("etc/x"), "").unwrap();
        fs::remove_file(r.join("etc/x")).unwrap();
        assert_eq!(diff(&before, &take(r).unwrap()).changed, ["etc"]);
    }
}
