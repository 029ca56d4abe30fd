//! `ADD <URL>` end to end: downloads from a loopback HTTP server started by
//! the test, `--checksum` verified, tarballs kept whole, clear errors naming
//! the line for unreachable, oversized and mismatching downloads, and git
//! sources refused before anything runs.

use crate::support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::bmount_run::{build_oci, unpack};
use support::*;

const CONTENT: &str = "downloaded content\n";

/// A tiny HTTP/1.1 server on 127.0.0.1 that answers each path with a fixed
/// response until the test ends; returns its base URL and a count of the
/// requests it got.
fn serve() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let n = conn.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
            let body: Vec<u8> = match path.as_str() {
                "/file.txt" => CONTENT.into(),
                "/tool.tar.gz" => tarball(),
                "/huge" => {
                    let _ = conn.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 10000000000\r\nConnection: close\r\n\r\nxx",
                    );
                    continue;
                }
                _ => {
                    let _ = conn.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    continue;
                }
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(&body);
        }
    });
    (base, hits)
}

/// A tar of one file, `inside.txt` holding `abc`.
fn plain_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "inside.txt", &b"abc"[..]).unwrap();
    b.into_inner().unwrap()
}

/// [`plain_tar`], gzipped.
fn tarball() -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&plain_tar()).unwrap();
    e.finish().unwrap()
}

fn sha256(s: &[u8]) -> String {
    kmigrate::builder::digest::sha256_hex(s)
}

#[test]
fn add_url_downloads_verifies_and_keeps_tarballs_whole() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let (web, _) = serve();
    let state = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!(
                "FROM {base}\nARG WEB={web}\n\
                 ADD $WEB/file.txt /opt/\n\
                 ADD --checksum=sha256:{} {web}/file.txt /checked.txt\n\
                 ADD {web}/tool.tar.gz /t/\n",
                sha256(CONTENT.as_bytes())
            ),
        )],
    );
    let out = tempfile::tempdir().unwrap();
    let first = build_oci(state.path(), ctx.path(), out.path(), &[]);
    let root = unpack(out.path());
    let r = root.path();
    assert_eq!(
        std::fs::read_to_string(r.join("opt/file.txt")).unwrap(),
        CONTENT
    );
    assert_eq!(
        std::fs::read_to_string(r.join("checked.txt")).unwrap(),
        CONTENT
    );
    let mode = std::fs::metadata(r.join("opt/file.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "a download gets 0600, as with Docker");
    assert_eq!(std::fs::read(r.join("t/tool.tar.gz")).unwrap(), tarball());
    assert!(
        !r.join("t/inside.txt").exists(),
        "a downloaded tarball was unpacked"
    );
    // Same content again: every step hits.
    let again = build_oci(state.path(), ctx.path(), out.path(), &[]);
    assert_eq!(counts(&again), (0, 3), "{again}");
    assert_eq!(image_digest(&first), image_digest(&again));
}

#[test]
fn add_unpack_says_which_archives_are_unpacked() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let (web, _) = serve();
    let state = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    // `--unpack=true` unpacks a download, `--unpack=false` keeps a local
    // archive whole, even of a kind the builder cannot unpack.
    write_files(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!(
                "FROM {base}\n\
                 ADD --unpack=true {web}/tool.tar.gz /down/\n\
                 ADD --unpack=false local.tar.gz /kept/\n\
                 ADD --unpack=false data.tar.xz /xz/\n\
                 ADD local.tar.gz /default/\n"
            ),
        )],
    );
    std::fs::write(ctx.path().join("local.tar.gz"), tarball()).unwrap();
    std::fs::write(ctx.path().join("data.tar.xz"), b"\xfd7zXZ\x00 not really").unwrap();
    let out = tempfile::tempdir().unwrap();
    build_oci(state.path(), ctx.path(), out.path(), &[]);
    let root = unpack(out.path());
    let r = root.path();
    assert_eq!(std::fs::read(r.join("down/inside.txt")).unwrap(), b"abc");
    assert!(!r.join("down/tool.tar.gz").exists());
    assert_eq!(
        std::fs::read(r.join("kept/local.tar.gz")).unwrap(),
        tarball()
    );
    assert!(!r.join("kept/inside.txt").exists());
    assert!(r.join("xz/data.tar.xz").is_file());
    assert_eq!(std::fs::read(r.join("default/inside.txt")).unwrap(), b"abc");
    // COPY has no --unpack, and the value is a boolean.
    let ctx2 = tempfile::tempdir().unwrap();
    write_files(
        ctx2.path(),
        &[(
            "Dockerfile",
            &format!("FROM {base}\nCOPY --unpack a /a\nADD --unpack=maybe a /a\n"),
        )],
    );
    let text = output_text(&kmigrate_build(
        state.path(),
        &[ctx2.path().to_str().unwrap()],
    ));
    assert!(text.contains("unknown flag for COPY: --unpack"), "{text}");
    assert!(
        text.contains("ADD --unpack=maybe: expected true or false"),
        "{text}"
    );
}

#[test]
fn add_unpacks_tar_archives_in_every_compression_docker_reads() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let tar = plain_tar();
    let xz = {
        let mut out = Vec::new();
        liblzma::read::XzEncoder::new(tar.as_slice(), 1)
            .read_to_end(&mut out)
            .unwrap();
        out
    };
    let bz2 = {
        let mut out = Vec::new();
        bzip2::read::BzEncoder::new(tar.as_slice(), bzip2::Compression::fast())
            .read_to_end(&mut out)
            .unwrap();
        out
    };
    let zst = ruzstd::encoding::compress_to_vec(
        tar.as_slice(),
        ruzstd::encoding::CompressionLevel::Fastest,
    );
    let ctx = tempfile::tempdir().unwrap();
    // Told by content, not name: `data.bin` is a zstd tarball. A gzipped
    // text file is no archive and is copied as it is.
    let gz_text = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b"just text\n").unwrap();
        e.finish().unwrap()
    };
    for (name, bytes) in [
        ("a.tar.xz", &xz),
        ("a.tar.bz2", &bz2),
        ("data.bin", &zst),
        ("notes.txt.gz", &gz_text),
    ] {
        std::fs::write(ctx.path().join(name), bytes).unwrap();
    }
    write_files(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!(
                "FROM {base}\nADD a.tar.xz /xz/\nADD a.tar.bz2 /bz2/\nADD data.bin /zst/\n\
                 ADD notes.txt.gz /gz/\n"
            ),
        )],
    );
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    build_oci(state.path(), ctx.path(), out.path(), &[]);
    let root = unpack(out.path());
    for d in ["xz", "bz2", "zst"] {
        assert_eq!(
            std::fs::read(root.path().join(d).join("inside.txt")).unwrap(),
            b"abc",
            "{d}"
        );
    }
    assert_eq!(
        std::fs::read(root.path().join("gz/notes.txt.gz")).unwrap(),
        gz_text
    );
}

#[test]
fn add_url_with_a_checksum_hits_the_cache_without_downloading() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let (web, hits) = serve();
    let state = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!(
                "FROM {base}
ADD --checksum=sha256:{} {web}/file.txt /f
ADD {web}/file.txt /g
",
                sha256(CONTENT.as_bytes())
            ),
        )],
    );
    let out = tempfile::tempdir().unwrap();
    build_oci(state.path(), ctx.path(), out.path(), &[]);
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    let text = build_oci(state.path(), ctx.path(), out.path(), &[]);
    assert_eq!(counts(&text), (0, 2), "{text}");
    // The checksum is the key: no download. Without one the content must
    // be fetched to know the key.
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

#[test]
fn add_url_failures_name_the_line() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let (web, _) = serve();
    let closed = format!("http://127.0.0.1:{}", free_port());
    let wrong = "0".repeat(64);
    for (add, message) in [
        (
            format!("ADD {closed}/file.txt /f"),
            "cannot download http://127.0.0.1:",
        ),
        (format!("ADD {web}/missing /f"), "/missing: HTTP 404"),
        (
            format!("ADD {web}/huge /f"),
            "/huge is over the 4096 MiB limit for ADD <URL>",
        ),
        (
            format!("ADD --checksum=sha256:{wrong} {web}/file.txt /f"),
            "checksum mismatch: --checksum says sha256:000",
        ),
    ] {
        let state = tempfile::tempdir().unwrap();
        let ctx = tempfile::tempdir().unwrap();
        write_files(
            ctx.path(),
            &[("Dockerfile", &format!("FROM {base}\nENV A=1\n{add}\n"))],
        );
        let out = kmigrate_build(state.path(), &[ctx.path().to_str().unwrap()]);
        let text = output_text(&out);
        assert!(!out.status.success(), "{add}: {text}");
        assert!(text.contains("Dockerfile:3: "), "{add}: {text}");
        assert!(text.contains(message), "{add}: {text}");
    }
}

#[test]
fn add_of_a_git_repository_is_refused_before_anything_runs() {
    let Some((_reg, base)) = registry_with_busybox() else {
        return;
    };
    let state = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!(
                "FROM {base}\nRUN touch /ran\nADD https://github.com/o/r.git /src\n\
                 ADD --keep-git-dir git@github.com:o/r.git /src\n"
            ),
        )],
    );
    let out = kmigrate_build(state.path(), &[ctx.path().to_str().unwrap()]);
    let text = output_text(&out);
    assert!(!out.status.success());
    assert!(
        text.contains(
            "Dockerfile:3: ADD of the git repository \"https://github.com/o/r.git\" is not supported by the embedded builder"
        ),
        "{text}"
    );
    assert!(
        text.contains("Dockerfile:4: ADD --keep-git-dir is not supported"),
        "{text}"
    );
    assert!(!text.contains("DONE"), "a step ran:\n{text}");
}
