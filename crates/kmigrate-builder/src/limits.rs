//! Size limits on what the builder and `verify` read from outside: registry
//! responses, image metadata, and files named by the user or a config.
//!
//! A registry, a base image, a cache and a CI config may all be hostile: a
//! manifest that never ends, a blob longer than its descriptor says, a
//! Dockerfile that is `/dev/zero` or a FIFO. Nothing from them is buffered
//! or written to disk without a bound; blobs are bounded by the size their
//! descriptor declares (see `registry::Client::get_blob`).

use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// Manifests and indexes, from a registry or an OCI layout (containerd's
/// `MaxManifestSize`).
pub const MANIFEST_MAX: u64 = 4 * MIB;
/// Image config blobs (containerd reads them under the same 4 MiB bound).
pub const IMAGE_CONFIG_MAX: u64 = 4 * MIB;
/// A kmigrate cache config blob (every cache record of one export).
pub const CACHE_CONFIG_MAX: u64 = 16 * MIB;
/// A token server's answer to an auth challenge.
pub const TOKEN_RESPONSE_MAX: u64 = MIB;
/// The part of a registry's error body quoted in a message.
pub const ERROR_EXCERPT_MAX: u64 = 2 * KIB;
/// A Dockerfile (`-f`, `<context>/Dockerfile`).
pub const DOCKERFILE_MAX: u64 = 4 * MIB;
/// A `.dockerignore` or `<Dockerfile>.dockerignore`.
pub const IGNORE_FILE_MAX: u64 = 4 * MIB;
/// An image's `/etc/passwd` or `/etc/group`, read for `USER` and `--chown`.
pub const ACCOUNTS_FILE_MAX: u64 = 4 * MIB;
/// The Docker `config.json` with registry credentials.
pub const DOCKER_CONFIG_MAX: u64 = 4 * MIB;

/// Memory the xz decoder may use (its dictionary): `xz -9` needs 65 MiB.
pub const XZ_MEMORY_MAX: u64 = 256 * MIB;

/// `4 MiB`, `2 KiB`, `100 bytes`: a limit as messages show it.
pub fn show(n: u64) -> String {
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else if n >= KIB && n.is_multiple_of(KIB) {
        format!("{} KiB", n / KIB)
    } else {
        format!("{n} bytes")
    }
}

/// `512m`, `10GiB`, `4096`: bytes, with an optional k, m, g or t suffix
/// (binary units, as Docker's `--keep-storage` reads them; `b`, `ib` and
/// case are free).
pub fn parse_byte_size(s: &str) -> Result<u64, String> {
    let lower = s.trim().to_ascii_lowercase();
    let t = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower);
    let (num, shift) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 10),
        Some('m') => (&t[..t.len() - 1], 20),
        Some('g') => (&t[..t.len() - 1], 30),
        Some('t') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| {
            format!("invalid size {s:?}: use bytes with an optional k, m, g or t suffix (e.g. 10g)")
        })
}

/// Reads `r` to its end, refusing more than `limit` bytes. The error names
/// `what` and the limit; reading stops one byte past the limit, so an
/// endless stream costs at most `limit` bytes of memory.
pub fn read_limited(r: impl Read, limit: u64, what: &str) -> Result<Vec<u8>, LimitError> {
    let mut bytes = Vec::new();
    r.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| LimitError::Read {
            what: what.to_string(),
            source,
        })?;
    if bytes.len() as u64 > limit {
        return Err(LimitError::TooLarge {
            what: what.to_string(),
            limit,
        });
    }
    Ok(bytes)
}

/// Why [`read_limited`] returned no bytes.
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error("reading {what}: {source}")]
    Read {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("{what} is larger than the {} limit; refusing to read more", show(*limit))]
    TooLarge { what: String, limit: u64 },
}

/// Reads a regular file of at most `limit` bytes ([`open_regular`]: FIFOs,
/// devices, sockets and directories are refused). `what` names the file's
/// role in the messages ("Dockerfile", ".dockerignore"); callers add the
/// path.
pub fn read_regular_file(path: &Path, limit: u64, what: &str) -> io::Result<Vec<u8>> {
    let (file, meta) = open_regular(path)?;
    let too_large = || {
        io::Error::other(format!(
            "larger than the {} limit for a {what}",
            show(limit)
        ))
    };
    if meta.len() > limit {
        return Err(too_large());
    }
    // `take` also stops a file that grows while it is read.
    let mut bytes = Vec::with_capacity(meta.len() as usize + 1);
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Opens a regular file for reading, following symlinks; anything else is
/// refused. The open is non-blocking, so a FIFO does not wait for a writer
/// (reads of a regular file are unaffected).
pub fn open_regular(path: &Path) -> io::Result<(std::fs::File, std::fs::Metadata)> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other(
            "not a regular file (a directory, FIFO, socket or device)",
        ));
    }
    Ok((file, meta))
}

/// [`read_regular_file`] as UTF-8 text.
pub fn read_regular_text(path: &Path, limit: u64, what: &str) -> io::Result<String> {
    let bytes = read_regular_file(path, limit, what)?;
    String::from_utf8(bytes)
        .map_err(|_| io::Error::other(format!("not valid UTF-8: a {what} is text")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_take_binary_suffixes() {
        for (s, n) in [
            ("4096", 4096),
            ("0", 0),
            ("512k", 512 << 10),
            ("512KB", 512 << 10),
            ("10g", 10 << 30),
            ("10GiB", 10 << 30),
            (" 2T ", 2 << 40),
            ("1m", 1 << 20),
        ] {
            assert_eq!(parse_byte_size(s), Ok(n), "{s}");
        }
        for s in ["", "g", "-1", "1.5g", "10x", "99999999999999t"] {
            let e = parse_byte_size(s).unwrap_err();
            assert!(
                e.contains("use bytes with an optional k, m, g or t suffix"),
                "{s}: {e}"
            );
        }
    }

    #[test]
    fn endless_streams_stop_at_the_limit() {
        let e = read_limited(io::repeat(b'x'), 1024, "manifest").unwrap_err();
        assert!(matches!(e, LimitError::TooLarge { limit: 1024, .. }), "{e}");
        let e = e.to_string();
        assert!(e.contains("larger than the 1 KiB limit"), "{e}");
        assert_eq!(read_limited(&b"abc"[..], 3, "m").unwrap(), b"abc");
    }

    #[test]
    fn only_regular_files_within_the_limit() {
        let d = tempfile::tempdir().unwrap();
        let e = read_regular_file(Path::new("/dev/zero"), 10, "Dockerfile").unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let e = read_regular_file(d.path(), 10, "Dockerfile").unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let fifo = d.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let e = read_regular_file(&fifo, 10, "Dockerfile").unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let big = d.path().join("big");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(11 * MIB)
            .unwrap();
        let e = read_regular_file(&big, 4 * MIB, "Dockerfile").unwrap_err();
        assert!(e.to_string().contains("larger than the 4 MiB limit"), "{e}");
        let ok = d.path().join("ok");
        std::fs::write(&ok, "FROM x\n").unwrap();
        assert_eq!(
            read_regular_text(&ok, 10, "Dockerfile").unwrap(),
            "FROM x\n"
        );
        assert_eq!(show(100), "100 bytes");
    }
}
