//! Atomic file replacement: a temporary file in the same directory, synced,
//! given the original's permissions, then renamed over it. A reader (or a
//! crash) sees the old file or the new one, never a mix.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Replaces the file at `path` (following symlinks, so a link keeps
/// pointing at the updated target) with `text`.
pub fn replace_file(path: &Path, text: &str) -> std::io::Result<PathBuf> {
    let target = fs::canonicalize(path)?;
    let meta = fs::metadata(&target)?;
    if meta.permissions().readonly() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "the file is read-only",
        ));
    }
    let dir = target.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".kmigrate-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().set_permissions(meta.permissions())?;
    tmp.as_file().sync_all()?;
    tmp.persist(&target).map_err(|e| e.error)?;
    Ok(target)
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
}
