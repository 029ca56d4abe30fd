//! sha256 digests in the OCI `sha256:<hex>` form, and writers that hash what
//! passes through them.

use std::io::{self, Write};

use sha2::{Digest as _, Sha256};

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// `sha256:<hex>` of a byte string.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

/// Plain 64-hex sha256 of a byte string.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Checks that `d` is `sha256:` followed by 64 lower-case hex digits, so a
/// digest read from a registry or a cache record can be used as a file name.
pub fn validate(d: &str) -> Result<&str, DigestError> {
    let hex = d
        .strip_prefix("sha256:")
        .ok_or_else(|| DigestError::Unsupported(d.to_string()))?;
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(DigestError::Malformed(d.to_string()));
    }
    Ok(hex)
}

/// A digest that cannot name a blob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("unsupported digest {0:?}: only sha256 is supported")]
    Unsupported(String),
    #[error("malformed digest {0:?}")]
    Malformed(String),
}

/// Why a blob was not written by [`write_verified`]; every message names
/// the blob or the file.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error(transparent)]
    Digest(#[from] DigestError),
    /// Creating, flushing or renaming the file at `path` failed.
    #[error("{}: {source}", path.display())]
    File {
        path: std::path::PathBuf,
        #[source]
        source: io::Error,
    },
    /// Reading the source failed.
    #[error("blob {digest}: {source}")]
    Read {
        digest: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "blob {digest} is longer than the {size} bytes its descriptor declares; stopped reading"
    )]
    TooLong { digest: String, size: u64 },
    #[error("blob {digest} is {got} bytes, shorter than the {size} bytes its descriptor declares")]
    TooShort { digest: String, got: u64, size: u64 },
    #[error("blob digest mismatch: asked {expected}, got {got}")]
    Mismatch { expected: String, got: String },
}

/// A writer that hashes and counts the bytes written through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Returns the inner writer, the `sha256:` digest and the byte count.
    pub fn finish(self) -> (W, String, u64) {
        let d = format!("sha256:{}", hex(&self.hasher.finalize()));
        (self.inner, d, self.count)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A temporary file removed on drop unless [`PartFile::persist`] renamed it
/// into place: a failed or interrupted download leaves nothing behind.
struct PartFile {
    path: std::path::PathBuf,
    done: bool,
}

impl PartFile {
    fn persist(mut self, dest: &std::path::Path) -> io::Result<()> {
        std::fs::rename(&self.path, dest)?;
        self.done = true;
        Ok(())
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Writes the blob `expected` of `size` bytes (its descriptor's digest and
/// size) from `src` to `dest`, through a temporary file next to `dest` that
/// is renamed only once complete and verified. Reads at most `size + 1`
/// bytes, so a source longer than declared costs one byte more, never a
/// full disk; longer, shorter or a digest mismatch is an error, and the
/// temporary file is removed on every error. Messages name the blob.
pub fn write_verified(
    src: impl io::Read,
    dest: &std::path::Path,
    expected: &str,
    size: u64,
) -> Result<(), BlobError> {
    validate(expected)?;
    let part = {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        PartFile {
            path: dest.with_extension(format!("part-{}-{n}", std::process::id())),
            done: false,
        }
    };
    let file_err = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| BlobError::File { path, source }
    };
    let f = std::fs::File::create(&part.path).map_err(file_err(&part.path))?;
    let mut w = HashingWriter::new(io::BufWriter::new(f));
    io::copy(&mut src.take(size + 1), &mut w).map_err(|source| BlobError::Read {
        digest: expected.to_string(),
        source,
    })?;
    let (f, got, n) = w.finish();
    let digest = expected.to_string();
    if n > size {
        return Err(BlobError::TooLong { digest, size });
    }
    if n < size {
        return Err(BlobError::TooShort {
            digest,
            got: n,
            size,
        });
    }
    if got != expected {
        return Err(BlobError::Mismatch {
            expected: digest,
            got,
        });
    }
    // Flushes the buffer; the file closes before the rename.
    drop(
        f.into_inner()
            .map_err(|e| e.into_error())
            .map_err(file_err(&part.path))?,
    );
    part.persist(dest).map_err(file_err(dest))
}

/// Hashes a file's content.
pub fn sha256_file(path: &std::path::Path) -> io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut w = HashingWriter::new(io::sink());
    io::copy(&mut f, &mut w)?;
    let (_, d, n) = w.finish();
    Ok((d, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hashing_writer_matches_one_shot() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        let (buf, d, n) = w.finish();
        assert_eq!(buf, b"hello world");
        assert_eq!(n, 11);
        assert_eq!(d, sha256_digest(b"hello world"));
    }

    #[test]
    fn verified_writes_stop_at_the_size_and_leave_no_part() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("blob");
        let good = sha256_digest(b"0123456789");
        let leftovers = || std::fs::read_dir(d.path()).unwrap().count();
        let e = write_verified(io::repeat(b'x'), &dest, &sha256_digest(b"xxxx"), 4 - 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("longer than the 3 bytes"), "{e}");
        let e = write_verified(&b"01234"[..], &dest, &good, 10)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is 5 bytes, shorter than the 10 bytes"), "{e}");
        let e = write_verified(&b"9876543210"[..], &dest, &good, 10).unwrap_err();
        assert!(matches!(e, BlobError::Mismatch { .. }), "{e}");
        assert!(e.to_string().contains("digest mismatch"), "{e}");
        assert_eq!(leftovers(), 0, "no partial file after an error");
        write_verified(&b"0123456789"[..], &dest, &good, 10).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"0123456789");
        assert_eq!(leftovers(), 1);
    }

    #[test]
    fn validate_refuses_traversal_and_other_algorithms() {
        assert!(validate("sha256:../../etc/passwd").is_err());
        assert!(validate("sha512:abcd").is_err());
        assert!(validate(&sha256_digest(b"x")).is_ok());
        assert!(validate(&sha256_digest(b"x").to_uppercase()).is_err());
    }
}
