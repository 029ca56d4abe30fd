//! `ADD <URL>`: which remote sources the embedded builder fetches (http and
//! https URLs), which it refuses (git repositories, other schemes), and the
//! bounded, checksum-verified download.
//!
//! As with Docker, a downloaded file is not unpacked (even a tarball) and
//! gets mode 0600 unless `--chmod` says otherwise.

use std::io;
use std::path::Path;

use super::digest::HashingWriter;
use super::registry::redact;

/// The largest file `ADD <URL>` downloads.
pub const ADD_URL_MAX: u64 = 4 << 30;
/// Seconds a download may take in all.
const DOWNLOAD_TIMEOUT_SECS: u64 = 30 * 60;

/// What a COPY/ADD source that is not a context path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// An http(s) URL, fetched by ADD.
    Url,
    /// A git repository (`git@host:repo`, `git://`, `ssh://`, an http(s)
    /// URL ending in `.git`), refused.
    Git,
    /// Another scheme (`ftp://`, `s3://`), refused.
    Other,
}

/// Classifies `source`; `None` for a path in the context.
pub fn classify(source: &str) -> Option<Remote> {
    if source.starts_with("git@") {
        return Some(Remote::Git);
    }
    let (scheme, rest) = source.split_once("://")?;
    let path = rest.split(['#', '?']).next().unwrap_or_default();
    Some(match scheme.to_ascii_lowercase().as_str() {
        "git" | "ssh" | "git+ssh" | "git+https" => Remote::Git,
        "http" | "https" if path.ends_with(".git") || source.contains(".git#") => Remote::Git,
        "http" | "https" => Remote::Url,
        _ => Remote::Other,
    })
}

/// The hex digest of a `--checksum=sha256:<64 hex>`.
pub fn parse_checksum(s: &str) -> Result<String, String> {
    match s.strip_prefix("sha256:") {
        Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(h.to_ascii_lowercase())
        }
        _ => Err(format!(
            "invalid --checksum {s:?}: use sha256:<64 hex digits>"
        )),
    }
}

/// The name a downloaded file gets under a directory destination: the last
/// segment of the URL's path (`download` when there is none).
pub fn file_name(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.split(['#', '?']).next().unwrap_or_default();
    match path.split_once('/') {
        Some((_, p)) => p
            .rsplit('/')
            .find(|s| !s.is_empty() && *s != "." && *s != "..")
            .unwrap_or("download")
            .to_string(),
        None => "download".to_string(),
    }
}

/// Downloads `url` to `dest` (created with mode 0600), at most `max` bytes;
/// returns the content's hex sha256, checked against `checksum` if given.
/// Errors name the URL without its credentials or query.
pub fn download(
    url: &str,
    dest: &Path,
    max: u64,
    checksum: Option<&str>,
) -> Result<String, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let shown = redact(url);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(std::time::Duration::from_secs(10)))
        .timeout_global(Some(std::time::Duration::from_secs(DOWNLOAD_TIMEOUT_SECS)))
        .build()
        .into();
    let mut resp = agent.get(url).call().map_err(|e| {
        format!(
            "cannot download {shown}: {e} (ADD <URL> needs the URL reachable from this machine; \
                 offline, download the file into the build context and COPY it)"
        )
    })?;
    let status = resp.status().as_u16();
    if status != 200 {
        return Err(format!("cannot download {shown}: HTTP {status}"));
    }
    let declared = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let over = || {
        format!(
            "{shown} is over the {} limit for ADD <URL>",
            super::limits::show(max)
        )
    };
    if declared.is_some_and(|n| n > max) {
        return Err(over());
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dest)
        .map_err(|e| format!("{}: {e}", dest.display()))?;
    let mut w = HashingWriter::new(io::BufWriter::new(file));
    let body = resp.body_mut().as_reader();
    io::copy(&mut io::Read::take(body, max + 1), &mut w)
        .map_err(|e| format!("downloading {shown}: {e}"))?;
    let (f, digest, n) = w.finish();
    drop(
        f.into_inner()
            .map_err(|e| format!("{}: {}", dest.display(), e.error()))?,
    );
    if n > max {
        return Err(over());
    }
    let hex = digest.trim_start_matches("sha256:").to_string();
    if let Some(want) = checksum
        && want != hex
    {
        return Err(format!(
            "{shown}: checksum mismatch: --checksum says sha256:{want}, the download is sha256:{hex}"
        ));
    }
    Ok(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_classified_as_buildkit_does() {
        assert_eq!(classify("src/a.txt"), None);
        assert_eq!(classify("https://example.com/a.tgz"), Some(Remote::Url));
        assert_eq!(classify("HTTP://example.com/"), Some(Remote::Url));
        for git in [
            "git@github.com:o/r.git",
            "https://github.com/o/r.git",
            "https://github.com/o/r.git#v1:dir",
            "git://example.com/r",
            "ssh://git@example.com/r",
        ] {
            assert_eq!(classify(git), Some(Remote::Git), "{git}");
        }
        assert_eq!(classify("ftp://example.com/a"), Some(Remote::Other));
    }

    #[test]
    fn checksums_and_file_names() {
        let h = "a".repeat(64);
        assert_eq!(parse_checksum(&format!("sha256:{h}")).unwrap(), h);
        assert!(parse_checksum("sha256:abc").is_err());
        assert!(parse_checksum(&format!("sha512:{h}")).is_err());
        assert_eq!(file_name("https://h/dl/tool.tar.gz?x=1#f"), "tool.tar.gz");
        assert_eq!(file_name("https://h/dir/"), "dir");
        assert_eq!(file_name("https://h"), "download");
        assert_eq!(file_name("https://h/.."), "download");
    }
}
