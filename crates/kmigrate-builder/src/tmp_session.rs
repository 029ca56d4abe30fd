//! Each build's private work directory under `state/tmp`, and the removal of
//! what killed builds left there.
//!
//! A build owns `tmp/<id>/` (rootfs copies, logs, partial blobs) while it
//! holds an exclusive `flock` on `tmp/<id>.lock`. The lock dies with the
//! process however it ends, so at start every entry of `tmp/` whose lock no
//! one holds is stale and removed; an entry of a live build never is. The
//! id is unique (pid and time), so a build never reuses a stale directory
//! even when a container gives it the same pid every run.

use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The work directory of one build; removed on drop.
#[derive(Debug)]
pub(crate) struct TmpSession {
    dir: PathBuf,
    lock_path: PathBuf,
    /// Holds the `flock` (a RUN's processes close their copies, so the
    /// lock ends with kmigrate).
    _lock: fs::File,
}

impl TmpSession {
    /// Removes stale entries from `tmp`, then claims a fresh work directory.
    pub(crate) fn start(tmp: &Path) -> io::Result<Self> {
        remove_stale(tmp);
        for attempt in 0u32..100 {
            let id = format!(
                "build-{}-{:x}-{attempt}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0)
            );
            let lock_path = tmp.join(format!("{id}.lock"));
            let lock = match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&lock_path)
            {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            };
            flock(&lock, nix::libc::LOCK_EX)?;
            // Another build's cleanup may have taken the new, not yet
            // locked file for stale and removed it: then start over.
            if !same_file(&lock, &lock_path) {
                continue;
            }
            let dir = tmp.join(&id);
            fs::create_dir(&dir)?;
            return Ok(Self {
                dir,
                lock_path,
                _lock: lock,
            });
        }
        Err(io::Error::other("could not claim a work directory"))
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for TmpSession {
    fn drop(&mut self) {
        let _ = remove_tree(&self.dir);
        let _ = fs::remove_file(&self.lock_path);
    }
}

pub(crate) fn flock(f: &fs::File, op: nix::libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: flock takes no pointers; `f` keeps the descriptor open.
        if unsafe { nix::libc::flock(f.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn same_file(f: &fs::File, p: &Path) -> bool {
    match (f.metadata(), fs::symlink_metadata(p)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Removes every entry of `tmp` no live build owns: sessions whose lock is
/// free (the lock last, so a half-removed session is still found), work
/// directories without a lock, and the flat `<what>-<pid>-<n>` entries of
/// earlier versions whose process is gone.
fn remove_stale(tmp: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    let names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    for name in &names {
        if let Some(id) = name.strip_suffix(".lock") {
            let lock_path = tmp.join(name);
            let Ok(f) = fs::OpenOptions::new().write(true).open(&lock_path) else {
                continue;
            };
            if flock(&f, nix::libc::LOCK_EX | nix::libc::LOCK_NB).is_ok()
                && same_file(&f, &lock_path)
            {
                let _ = remove_tree(&tmp.join(id));
                let _ = fs::remove_file(&lock_path);
            }
        } else if name.starts_with("build-") {
            // A session directory: its lock is created before it and removed
            // after it, so one without a lock is stale.
            if !names.contains(&format!("{name}.lock"))
                && !tmp.join(format!("{name}.lock")).exists()
            {
                let _ = remove_tree(&tmp.join(name));
            }
        } else if legacy_owner(name).is_some_and(|pid| !Path::new("/proc").join(pid).exists()) {
            let _ = remove_tree(&tmp.join(name));
        }
    }
}

/// The pid in an earlier version's `<what>-<pid>-<n>` entry name.
fn legacy_owner(name: &str) -> Option<String> {
    let mut parts = name.rsplitn(3, '-');
    let (_n, pid) = (parts.next()?, parts.next()?);
    parts.next()?;
    pid.parse::<u32>().ok().map(|p| p.to_string())
}

/// Removes a file or a whole tree, first making directories writable (an
/// image may ship read-only directories, which a rootless build cannot
/// empty otherwise).
pub(crate) fn remove_tree(p: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::symlink_metadata(p)?;
    if !meta.is_dir() {
        return fs::remove_file(p);
    }
    if fs::remove_dir_all(p).is_ok() {
        return Ok(());
    }
    for e in walkdir::WalkDir::new(p).into_iter().flatten() {
        if e.file_type().is_dir() {
            let _ = fs::set_permissions(e.path(), fs::Permissions::from_mode(0o700));
        }
    }
    fs::remove_dir_all(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_session_is_kept_and_a_dead_one_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let live = TmpSession::start(tmp.path()).unwrap();
        fs::write(live.dir().join("rootfs-0"), "work").unwrap();
        // A session whose process died: lock file present, nobody holds it.
        fs::create_dir_all(tmp.path().join("build-1-dead-0/rootfs-0/bin")).unwrap();
        fs::write(tmp.path().join("build-1-dead-0.lock"), "").unwrap();
        // A directory without a lock, and an earlier version's entries.
        fs::create_dir(tmp.path().join("build-2-nolock-0")).unwrap();
        fs::create_dir(tmp.path().join("rootfs-999999999-0")).unwrap();
        let me = format!("rootfs-{}-0", std::process::id());
        fs::create_dir(tmp.path().join(&me)).unwrap();

        let other = TmpSession::start(tmp.path()).unwrap();
        let mut left: Vec<String> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut want = vec![
            live.dir()
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .to_string(),
            other
                .dir()
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .to_string(),
            me.clone(),
        ];
        want.extend(
            want[..2]
                .iter()
                .map(|d| format!("{d}.lock"))
                .collect::<Vec<_>>(),
        );
        want.sort();
        assert_eq!(left, want);
        assert!(live.dir().join("rootfs-0").exists());
        drop(other);
        drop(live);
        let left: Vec<_> = fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "a session leaves nothing behind but {me}");
    }

    #[test]
    fn legacy_names_give_their_pid() {
        assert_eq!(legacy_owner("rootfs-123-0").as_deref(), Some("123"));
        assert_eq!(legacy_owner("run-log-123-4").as_deref(), Some("123"));
        assert_eq!(legacy_owner("build-1-ab-0"), None);
        assert_eq!(legacy_owner("x-0"), None);
    }
}
