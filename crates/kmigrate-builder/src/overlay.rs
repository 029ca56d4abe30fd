//! Stage roots as overlay mounts on one shared extraction of their base.
//!
//! Without this, every stage extracts its whole base image into a root of
//! its own: the three stages of a typical multi-stage build extract the same
//! base three times, and creating those inodes is most of what the builder
//! itself costs on a cold build. As BuildKit's overlay snapshots do, the
//! layers of a base are extracted once per build into a read-only lower
//! directory, and each stage gets an overlay mount (its own upper and work
//! directories) on it. A stage's writes, deletions included, stay in its
//! upper directory; the other stages keep seeing the base as it was. What
//! the engine reads and writes is the merged directory, so snapshots, diffs
//! and layers work as on an extracted root.
//!
//! The mounts are made in a mount namespace of kmigrate's own
//! ([`isolate_mounts`], called by `kmigrate build` and `kmigrate verify`
//! before any thread starts), so they are invisible outside kmigrate and
//! vanish with its process, whatever ends it: a killed build leaves plain
//! directories that the next build removes (see `tmp_session`). Without
//! that namespace (not root, or a library caller that did not ask for it),
//! or when the kernel or file system refuses the mount, each root is
//! extracted as before.
//!
//! One difference from an extracted root, shared with Docker's overlay2
//! and BuildKit: a step that writes to a base file with several hard links
//! changes that path only (overlay copies the file up), not its other links.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

/// Set once this process has a mount namespace of its own.
static PRIVATE_MOUNTS: AtomicBool = AtomicBool::new(false);

/// Moves kmigrate into a mount namespace of its own (as root, with one
/// thread: a namespace entered later would hold only the calling thread).
/// Returns whether it did; overlay roots are used only then.
pub fn isolate_mounts() -> bool {
    if PRIVATE_MOUNTS.load(Ordering::Relaxed) {
        return true;
    }
    if !nix::unistd::Uid::effective().is_root() || thread_count() != Some(1) {
        return false;
    }
    let done = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).is_ok()
        && mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .is_ok();
    PRIVATE_MOUNTS.store(done, Ordering::Relaxed);
    done
}

/// The number of threads of this process (`/proc/self/status`).
fn thread_count() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Threads:"))?;
    line["Threads:".len()..].trim().parse().ok()
}

/// Why a lower directory could not be made, kept to give every stage that
/// waited for it the same error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LowerError {
    pub context: String,
    pub kind: io::ErrorKind,
    pub message: String,
}

impl LowerError {
    pub(crate) fn new(context: impl Into<String>, e: &io::Error) -> Self {
        Self {
            context: context.into(),
            kind: e.kind(),
            message: e.to_string(),
        }
    }

    /// The build error it stands for (the same text as the I/O error's).
    pub(crate) fn into_build_error(self) -> crate::api::BuildError {
        crate::api::BuildError::Io {
            context: self.context,
            source: io::Error::new(self.kind, self.message),
        }
    }
}

/// A lower directory, once the first stage that needs it made it.
type Lower = OnceLock<Result<PathBuf, LowerError>>;

/// The overlay roots of one build: the lower directory of each base
/// (keyed by its layers), shared by the stages, and the mounts made.
#[derive(Debug, Default)]
pub(crate) struct Overlays {
    lowers: Mutex<HashMap<String, Arc<Lower>>>,
    mounted: Mutex<Vec<PathBuf>>,
    /// Set when a mount was refused: later roots are extracted.
    refused: AtomicBool,
}

impl Overlays {
    /// The build's overlays, when this process isolated its mounts.
    pub(crate) fn for_build() -> Option<Arc<Self>> {
        PRIVATE_MOUNTS
            .load(Ordering::Relaxed)
            .then(|| Arc::new(Self::default()))
    }

    pub(crate) fn refused(&self) -> bool {
        self.refused.load(Ordering::Relaxed)
    }

    /// The lower directory for the layers named by `key`, made by `extract`
    /// into a directory `make_dir` gives by the first stage that asks;
    /// stages asking meanwhile wait for it.
    pub(crate) fn lower(
        &self,
        key: &str,
        make_dir: impl FnOnce() -> io::Result<PathBuf>,
        extract: impl FnOnce(&Path) -> Result<(), LowerError>,
    ) -> Result<PathBuf, LowerError> {
        let cell = {
            let mut lowers = self.lowers.lock().unwrap_or_else(|e| e.into_inner());
            lowers.entry(key.to_string()).or_default().clone()
        };
        cell.get_or_init(|| {
            let dir = make_dir().map_err(|e| LowerError::new("work dir", &e))?;
            extract(&dir)?;
            Ok(dir)
        })
        .clone()
    }

    /// Mounts an overlay of `lower` in the fresh directory `dir`
    /// (`upper/`, `work/` and the merged `root/`) and returns the merged
    /// root. On a refusal the caller extracts instead, and so do the later
    /// stages of the build.
    pub(crate) fn mount(&self, lower: &Path, dir: &Path) -> io::Result<PathBuf> {
        let (upper, work, merged) = (dir.join("upper"), dir.join("work"), dir.join("root"));
        for d in [&upper, &work, &merged] {
            std::fs::create_dir(d)?;
        }
        // The merged root has the upper directory's mode and owner: those
        // the base's layers gave its root.
        let base = std::fs::metadata(lower)?;
        std::fs::set_permissions(&upper, base.permissions())?;
        std::os::unix::fs::chown(&upper, Some(base.uid()), Some(base.gid()))?;
        let res = (|| {
            // Absolute: a state directory given as a relative path would
            // otherwise show as one in the mount table.
            let data = mount_data(
                &std::path::absolute(lower)?,
                &std::path::absolute(&upper)?,
                &std::path::absolute(&work)?,
            )?;
            mount(
                Some("overlay"),
                &merged,
                Some("overlay"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some(data.as_str()),
            )
            .map_err(io::Error::from)
        })();
        if let Err(e) = res {
            self.refused.store(true, Ordering::Relaxed);
            return Err(e);
        }
        if let Ok(mut m) = self.mounted.lock() {
            m.push(merged.clone());
        }
        Ok(merged)
    }

    /// Detaches every mount made (before their directories are removed).
    pub(crate) fn unmount_all(&self) {
        let mounted = self
            .mounted
            .lock()
            .map(|mut m| std::mem::take(&mut *m))
            .unwrap_or_default();
        for m in mounted.iter().rev() {
            let _ = umount2(m, MntFlags::MNT_DETACH);
        }
    }
}

impl Drop for Overlays {
    fn drop(&mut self) {
        self.unmount_all();
    }
}

/// The overlay mount options; an error for a path the option syntax cannot
/// carry (`,` and `:` separate options and lower directories).
fn mount_data(lower: &Path, upper: &Path, work: &Path) -> io::Result<String> {
    let mut parts = Vec::new();
    for (name, p) in [("lowerdir", lower), ("upperdir", upper), ("workdir", work)] {
        let s = p
            .to_str()
            .filter(|s| !s.contains([',', ':', '\\']))
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} cannot be an overlay option", p.display()),
                )
            })?;
        parts.push(format!("{name}={s}"));
    }
    Ok(parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lower_is_made_once_and_shared() {
        let o = Overlays::default();
        let d = tempfile::tempdir().unwrap();
        let made = std::sync::atomic::AtomicUsize::new(0);
        let get = || {
            o.lower(
                "k",
                || {
                    made.fetch_add(1, Ordering::SeqCst);
                    let p = d.path().join("lower");
                    std::fs::create_dir(&p)?;
                    Ok(p)
                },
                |_| Ok(()),
            )
        };
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(get);
            let b = s.spawn(get);
            (a.join().unwrap(), b.join().unwrap())
        });
        assert_eq!(a, b);
        assert_eq!(made.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_failed_extraction_is_reported_to_every_stage() {
        let o = Overlays::default();
        let d = tempfile::tempdir().unwrap();
        for _ in 0..2 {
            let r = o.lower(
                "k",
                || Ok(d.path().to_path_buf()),
                |_| {
                    Err(LowerError::new(
                        "extracting",
                        &io::Error::other("bad layer"),
                    ))
                },
            );
            let e = r.unwrap_err();
            assert_eq!(
                (e.context.as_str(), e.message.as_str()),
                ("extracting", "bad layer")
            );
        }
    }

    #[test]
    fn paths_the_option_syntax_cannot_carry_are_refused() {
        let ok = mount_data(Path::new("/s/l"), Path::new("/s/u"), Path::new("/s/w")).unwrap();
        assert_eq!(ok, "lowerdir=/s/l,upperdir=/s/u,workdir=/s/w");
        for bad in ["/s/a,b", "/s/a:b", "/s/a\\b"] {
            assert!(mount_data(Path::new(bad), Path::new("/u"), Path::new("/w")).is_err());
        }
    }

    #[test]
    fn the_thread_count_is_read() {
        assert!(thread_count().is_some_and(|n| n >= 1));
    }
}
