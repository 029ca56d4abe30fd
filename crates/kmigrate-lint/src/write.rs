//! Atomic file replacement: a temporary file in the same directory, synced,
//! given the original's owner, group, permissions and extended attributes,
//! then renamed over it. A reader (or a crash) sees the old file or the new
//! one, never a mix.
//!
//! A file with several hard links is refused: a rename would leave the
//! other names pointing at the old text (and writing in place is not
//! atomic). SIGINT, SIGTERM and SIGHUP during a rewrite remove the
//! temporary files before the process dies (see [`cleanup`]).

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Set (to anything) by tests only: pause for a minute once the temporary
/// file is written, before the rename, so a test can signal the process at
/// that point deterministically.
pub const PAUSE_ENV: &str = "KMIGRATE_TEST_PAUSE_BEFORE_RENAME";

/// Replaces the file at `path` (following symlinks, so a link keeps
/// pointing at the updated target) with `text`.
pub fn replace_file(path: &Path, text: &str) -> std::io::Result<PathBuf> {
    check_writable(path)?;
    let target = fs::canonicalize(path)?;
    let meta = fs::metadata(&target)?;
    let dir = target.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".kmigrate-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    let registered = cleanup::register(tmp.path());
    tmp.write_all(text.as_bytes())?;
    // Owner first: `chown` clears set-id bits, which the mode then restores.
    keep_owner(tmp.as_file(), &meta)?;
    tmp.as_file().set_permissions(meta.permissions())?;
    copy_xattrs(&target, tmp.as_file())?;
    tmp.as_file().sync_all()?;
    if std::env::var_os(PAUSE_ENV).is_some() {
        eprintln!("kmigrate: paused before renaming {}", tmp.path().display());
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
    let persisted = tmp.persist(&target).map_err(|e| e.error);
    cleanup::unregister(registered);
    persisted?;
    Ok(target)
}

/// Whether `path` can be replaced: a regular file that is not read-only,
/// has one link, can be opened for writing (an immutable file cannot, even
/// by root) and whose directory takes a new file. Writes nothing.
pub fn check_writable(path: &Path) -> std::io::Result<()> {
    use std::io::{Error, ErrorKind};
    let target = fs::canonicalize(path)?;
    let meta = fs::metadata(&target)?;
    if meta.permissions().readonly() {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            "the file is read-only",
        ));
    }
    if meta.nlink() > 1 {
        return Err(Error::other(format!(
            "the file has {} hard links, and a rewrite (a new file renamed over it) would \
             leave the other names with the old text; break the link first \
             (`cp --remove-destination FILE.orig FILE`) or edit it by hand",
            meta.nlink()
        )));
    }
    // Opening for writing without truncating changes nothing, and fails
    // where the rename would (an immutable or append-only file, a
    // read-only mount) even as root.
    fs::OpenOptions::new().write(true).open(&target)?;
    let dir = target.parent().unwrap_or(Path::new("."));
    tempfile::Builder::new()
        .prefix(".kmigrate-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| Error::new(e.kind(), format!("cannot create a file next to it: {e}")))?;
    Ok(())
}

/// Gives `file` the owner and group of `meta` when it has other ones (as
/// root, the new file would otherwise belong to root); an owner that
/// cannot be kept is an error, not a silent change.
fn keep_owner(file: &fs::File, meta: &fs::Metadata) -> std::io::Result<()> {
    let mine = file.metadata()?;
    if (mine.uid(), mine.gid()) == (meta.uid(), meta.gid()) {
        return Ok(());
    }
    std::os::unix::fs::fchown(file, Some(meta.uid()), Some(meta.gid())).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot keep the owner {}:{}: {e}", meta.uid(), meta.gid()),
        )
    })
}

/// Copies every extended attribute of `from` onto `to`. One in the
/// `user.` namespace that cannot be copied is an error; the others
/// (`security.`, `trusted.`, `system.`) are kept where the kernel allows.
fn copy_xattrs(from: &Path, to: &fs::File) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    use xattr::FileExt as _;

    // `_deref`: the attributes of the file the path names, as `listxattr`
    // and `getxattr` read them.
    let names = match xattr::list_deref(from) {
        Ok(n) => n,
        // A file system without extended attributes has none to keep.
        Err(e) if e.raw_os_error() == Some(nix::libc::ENOTSUP) => return Ok(()),
        Err(e) => return Err(e),
    };
    for name in names {
        let set = xattr::get_deref(from, &name).and_then(|value| match value {
            Some(value) => to.set_xattr(&name, &value),
            // Removed between the listing and the read: nothing to keep.
            None => Ok(()),
        });
        if let Err(e) = set
            && name.as_bytes().starts_with(b"user.")
        {
            return Err(std::io::Error::new(
                e.kind(),
                format!(
                    "cannot keep the extended attribute {}: {e}",
                    name.to_string_lossy()
                ),
            ));
        }
    }
    Ok(())
}

/// Temporary files removed when the process is interrupted.
///
/// The signal handler may only call async-signal-safe functions: it walks
/// a fixed table of C strings and `unlink`s each, then dies of the signal
/// with the default action. Paths are leaked (a few bytes per rewritten
/// file) so the handler never reads freed memory.
// The one place of this crate that needs `unsafe`: a signal handler has no
// safe form, and the temp file must go even when the user presses Ctrl-C.
#[allow(unsafe_code)]
pub mod cleanup {
    use std::ffi::{CString, c_char};
    use std::path::Path;
    use std::sync::Once;
    use std::sync::atomic::{AtomicPtr, Ordering};

    use nix::libc;

    const SLOTS: usize = 4096;
    static PATHS: [AtomicPtr<c_char>; SLOTS] =
        [const { AtomicPtr::new(std::ptr::null_mut()) }; SLOTS];
    static INSTALL: Once = Once::new();

    /// A registered path's slot (`None`: the table was full, the path is
    /// only removed on a normal exit).
    pub struct Registered(Option<usize>);

    /// Removes `path` if a signal ends the process before [`unregister`].
    pub fn register(path: &Path) -> Registered {
        use std::os::unix::ffi::OsStrExt;
        INSTALL.call_once(install);
        let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
            return Registered(None);
        };
        let raw = c.into_raw();
        for (i, slot) in PATHS.iter().enumerate() {
            if slot
                .compare_exchange(
                    std::ptr::null_mut(),
                    raw,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                )
                .is_ok()
            {
                return Registered(Some(i));
            }
        }
        Registered(None)
    }

    /// The path was renamed or removed: a signal no longer removes it.
    pub fn unregister(registered: Registered) {
        if let Some(i) = registered.0 {
            PATHS[i].store(std::ptr::null_mut(), Ordering::SeqCst);
        }
    }

    fn install() {
        use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
        let action = SigAction::new(
            SigHandler::Handler(on_signal),
            SaFlags::SA_RESETHAND,
            SigSet::empty(),
        );
        for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
            // SAFETY: the handler only calls async-signal-safe functions
            // (unlink, raise) and reads atomics; it allocates nothing.
            let _ = unsafe { sigaction(signal, &action) };
        }
    }

    extern "C" fn on_signal(signal: libc::c_int) {
        for slot in &PATHS {
            let path = slot.load(Ordering::SeqCst);
            if !path.is_null() {
                // SAFETY: registered paths are NUL-terminated C strings
                // that are never freed, and unlink is async-signal-safe.
                unsafe { libc::unlink(path) };
            }
        }
        // SA_RESETHAND restored the default action: die of the signal.
        // SAFETY: raise is async-signal-safe and takes any signal number.
        unsafe { libc::raise(signal) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn keeps_mode_and_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.yaml");
        fs::write(&real, "old").unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.path().join("cloudbuild.yaml");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        replace_file(&link, "new").unwrap();
        assert_eq!(fs::read_to_string(&real).unwrap(), "new");
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            fs::metadata(&real).unwrap().permissions().mode() & 0o777,
            0o640
        );
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 2, "no temporary file is left behind");
    }

    #[test]
    fn refuses_read_only_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.yaml");
        fs::write(&f, "old").unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o444)).unwrap();
        assert!(replace_file(&f, "new").is_err());
        assert_eq!(fs::read_to_string(&f).unwrap(), "old");
    }

    #[test]
    fn refuses_hard_linked_files_and_keeps_both_names() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.yaml");
        let other = dir.path().join("other.yaml");
        fs::write(&f, "old").unwrap();
        fs::hard_link(&f, &other).unwrap();
        let e = replace_file(&f, "new").unwrap_err();
        assert!(e.to_string().contains("2 hard links"), "{e}");
        assert_eq!(fs::read_to_string(&f).unwrap(), "old");
        assert_eq!(fs::metadata(&f).unwrap().nlink(), 2);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
