//! The local content store: blobs by digest plus the local cache records.
//!
//! Layout under the state directory: `blobs/sha256/<hex>`, `cache/<key>.json`
//! (one [`CacheRecord`](super::cache::CacheRecord) per cache key) and `tmp/`
//! for work directories, one per open store (see `tmp_session`). Wiping the
//! directory wipes all local state.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::digest;
use super::tmp_session::TmpSession;

/// A content-addressed blob store rooted at a state directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// This store's private work directory under `tmp/`, removed when the
    /// last clone is dropped.
    tmp: Arc<TmpSession>,
}

impl Store {
    /// Opens (creating) the store at `root`, removing the work directories
    /// killed builds left.
    ///
    /// Everything is private to the caller (0700): `tmp/` holds the
    /// extracted root filesystems of images, setuid binaries included, and
    /// a world-traversable path to them would let any local user run those.
    /// Directories kmigrate creates get 0700 from the start; its own
    /// subdirectories are tightened when an older version left them open.
    /// A state directory the user made is left as it is (its subdirectories
    /// already close the path).
    pub fn open(root: &Path) -> io::Result<Self> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let mut private = fs::DirBuilder::new();
        private.recursive(true).mode(0o700);
        for sub in ["blobs/sha256", "cache", "tmp"] {
            private.create(root.join(sub))?;
        }
        for sub in ["blobs", "cache", "tmp"] {
            fs::set_permissions(root.join(sub), fs::Permissions::from_mode(0o700))?;
        }
        Ok(Self {
            root: root.to_path_buf(),
            tmp: Arc::new(TmpSession::start(&root.join("tmp"))?),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path of a blob (it may not exist). Fails on a malformed digest.
    pub fn blob_path(&self, d: &str) -> io::Result<PathBuf> {
        let hex = digest::validate(d).map_err(io::Error::other)?;
        Ok(self.root.join("blobs/sha256").join(hex))
    }

    pub fn has(&self, d: &str) -> bool {
        self.blob_path(d).map(|p| p.is_file()).unwrap_or(false)
    }

    /// Stores bytes, returning their digest.
    pub fn put_bytes(&self, bytes: &[u8]) -> io::Result<String> {
        let d = digest::sha256_digest(bytes);
        let path = self.blob_path(&d)?;
        if !path.exists() {
            let tmp = self.temp_file_path("blob");
            fs::write(&tmp, bytes)?;
            fs::rename(&tmp, &path)?;
        }
        Ok(d)
    }

    /// Moves a finished file into the store under its (already computed) digest.
    pub fn adopt(&self, file: &Path, d: &str) -> io::Result<PathBuf> {
        let path = self.blob_path(d)?;
        fs::rename(file, &path)?;
        Ok(path)
    }

    pub fn read(&self, d: &str) -> io::Result<Vec<u8>> {
        fs::read(self.blob_path(d)?)
    }

    /// A fresh path in this store's work directory (not created).
    pub fn temp_file_path(&self, prefix: &str) -> PathBuf {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        self.tmp.dir().join(format!("{prefix}-{n}"))
    }

    /// A fresh, empty directory in this store's work directory.
    pub fn temp_dir(&self, prefix: &str) -> io::Result<PathBuf> {
        let p = self.temp_file_path(prefix);
        fs::create_dir_all(&p)?;
        Ok(p)
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let d = s.put_bytes(b"layer").unwrap();
        assert!(s.has(&d));
        assert_eq!(s.read(&d).unwrap(), b"layer");
        assert!(s.blob_path("sha256:../../x").is_err());
    }
}
