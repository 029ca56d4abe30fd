//! Layer tars: deterministic writing (sorted entries, numeric owners, empty
//! user/group names, mtimes clamped to `SOURCE_DATE_EPOCH`, `.wh.` whiteouts,
//! gzip) and safe extraction (no `..`, absolute paths rooted, symlinks
//! resolved inside the root, whiteouts applied).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::digest::HashingWriter;
use super::fsutil;
use super::layer_gzip::LayerGz;
use super::snapshot::Diff;

/// OCI media type of the layers kmigrate writes.
pub const GZIP_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// The OCI media type for a layer descriptor's type (Docker's names mapped).
pub fn oci_media_type(t: &str) -> String {
    match t {
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
        | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => GZIP_LAYER.into(),
        "application/vnd.docker.image.rootfs.diff.tar" => {
            "application/vnd.oci.image.layer.v1.tar".into()
        }
        "" => GZIP_LAYER.into(),
        other => other.into(),
    }
}

/// A layer written to disk.
#[derive(Debug, Clone)]
pub struct WrittenLayer {
    /// sha256 of the gzip bytes.
    pub digest: String,
    /// sha256 of the uncompressed tar.
    pub diff_id: String,
    /// Size of the gzip bytes.
    pub size: u64,
}

/// Options for writing a layer.
#[derive(Debug, Clone, Copy, Default)]
pub struct TarOptions {
    /// Clamp mtimes to this epoch (`SOURCE_DATE_EPOCH`).
    pub epoch: Option<u64>,
    /// Rootless builds: the host uid/gid that stands for root inside the
    /// user namespace; entries owned by them are written as 0:0.
    pub map_to_root: Option<(u32, u32)>,
}

/// Writes the paths of `diff` (relative to `root`) as a gzip layer at `out`.
pub fn write_diff(
    root: &Path,
    diff: &Diff,
    out: &Path,
    opts: TarOptions,
) -> io::Result<WrittenLayer> {
    let mut items: Vec<(String, bool)> = diff.changed.iter().map(|p| (p.clone(), false)).collect();
    for d in &diff.deleted {
        let (parent, name) = match d.rfind('/') {
            Some(i) => (&d[..i + 1], &d[i + 1..]),
            None => ("", d.as_str()),
        };
        items.push((format!("{parent}.wh.{name}"), true));
    }
    items.sort();
    write_entries(root, &items, out, opts)
}

/// Writes every path under `root` as a layer (used for base images).
pub fn write_tree(root: &Path, out: &Path, opts: TarOptions) -> io::Result<WrittenLayer> {
    let mut items = Vec::new();
    for e in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let e = e.map_err(io::Error::other)?;
        let rel = e
            .path()
            .strip_prefix(root)
            .expect("under root")
            .to_string_lossy()
            .to_string();
        items.push((rel, false));
    }
    items.sort();
    write_entries(root, &items, out, opts)
}

fn write_entries(
    root: &Path,
    items: &[(String, bool)],
    out: &Path,
    opts: TarOptions,
) -> io::Result<WrittenLayer> {
    let file = BufWriter::new(File::create(out)?);
    let compressed = HashingWriter::new(file);
    let gz = LayerGz::new(compressed);
    let uncompressed = HashingWriter::new(gz);
    let mut b = tar::Builder::new(uncompressed);
    let mut inodes: HashMap<(u64, u64), String> = HashMap::new();
    for (rel, whiteout) in items {
        let mut h = tar::Header::new_gnu();
        if *whiteout {
            // Mode 0, as Buildah and BuildKit (containerd's differ) write
            // them: a marker is never a file anyone reads. Owner 0:0
            // written out, not left as empty fields that strict readers
            // refuse as "not a number".
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0);
            h.set_uid(0);
            h.set_gid(0);
            h.set_size(0);
            h.set_mtime(opts.epoch.unwrap_or(0));
            b.append_data(&mut h, rel, io::empty())?;
            continue;
        }
        let path = root.join(rel);
        let m = fs::symlink_metadata(&path)?;
        h.set_mode(m.mode() & 0o7777);
        let (uid, gid) = match opts.map_to_root {
            Some((hu, hg)) => (
                if m.uid() == hu { 0 } else { m.uid() },
                if m.gid() == hg { 0 } else { m.gid() },
            ),
            None => (m.uid(), m.gid()),
        };
        h.set_uid(uid as u64);
        h.set_gid(gid as u64);
        let mtime = m.mtime().max(0) as u64;
        h.set_mtime(opts.epoch.map_or(mtime, |e| mtime.min(e)));
        let ft = m.file_type();
        if ft.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            b.append_data(&mut h, format!("{rel}/"), io::empty())?;
        } else if ft.is_symlink() {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            let target = fs::read_link(&path)?;
            b.append_link(&mut h, rel, target)?;
        } else if ft.is_file() {
            if m.nlink() > 1 {
                if let Some(first) = inodes.get(&(m.dev(), m.ino())) {
                    h.set_entry_type(tar::EntryType::Link);
                    h.set_size(0);
                    b.append_link(&mut h, rel, first)?;
                    continue;
                }
                inodes.insert((m.dev(), m.ino()), rel.clone());
            }
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(m.len());
            b.append_data(&mut h, rel, File::open(&path)?)?;
        } else {
            // Sockets, fifos and device nodes are not carried into layers.
            continue;
        }
    }
    let uncompressed = b.into_inner()?;
    let (gz, diff_id, _) = uncompressed.finish();
    let compressed = gz.finish()?;
    let (mut file, digest, size) = compressed.finish();
    file.flush()?;
    Ok(WrittenLayer {
        digest,
        diff_id,
        size,
    })
}

/// Errors from a malicious or broken layer.
fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Extracts a layer tar (plain, or compressed as [`super::decompress`]
/// reads) onto `root`, applying whiteouts.
/// Entries are confined to `root`: `..` that would leave it is refused,
/// absolute paths are taken relative to it, and symlinks met on the way
/// (including ones the same layer created) resolve inside it.
pub fn extract(layer: &Path, root: &Path) -> io::Result<()> {
    let mut ar = tar::Archive::new(super::decompress::open(layer)?);
    let mut dir_times: Vec<(std::path::PathBuf, u64)> = Vec::new();
    for entry in ar.entries()? {
        let mut entry = entry?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).to_string();
        let comps = normalize(&raw)?;
        let Some((name, parents)) = comps.split_last() else {
            continue; // the root itself
        };
        let parent_rel = parents.join("/");
        let parent = fsutil::secure_join(root, &parent_rel, true)?;
        if !fsutil::is_within(root, &parent) {
            return Err(bad(format!("layer entry {raw:?} escapes the root")));
        }
        let whiteout = whiteout(name).map_err(|why| bad(format!("layer entry {raw:?} {why}")))?;
        fs::create_dir_all(&parent)?;
        match whiteout {
            Some(Whiteout::Opaque) => {
                for e in fs::read_dir(&parent)? {
                    remove_inside(root, &parent, &e?.file_name().to_string_lossy())?;
                }
                continue;
            }
            Some(Whiteout::Remove(victim)) => {
                remove_inside(root, &parent, victim)?;
                continue;
            }
            Some(Whiteout::AufsMeta) => continue,
            None => {}
        }
        let target = parent.join(name);
        let h = entry.header().clone();
        let kind = h.entry_type();
        if let Ok(existing) = fs::symlink_metadata(&target)
            && !(existing.is_dir() && kind.is_dir())
        {
            remove_any(&target)?;
        }
        let mode = h.mode().unwrap_or(0o644) & 0o7777;
        match kind {
            tar::EntryType::Directory => {
                if !target.exists() {
                    fs::create_dir(&target)?;
                }
                fs::set_permissions(&target, fs::Permissions::from_mode(mode))?;
                dir_times.push((target.clone(), h.mtime().unwrap_or(0)));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut out = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&target)?;
                io::copy(&mut entry, &mut out)?;
                out.set_permissions(fs::Permissions::from_mode(mode))?;
                let t =
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(h.mtime().unwrap_or(0));
                out.set_times(fs::FileTimes::new().set_modified(t).set_accessed(t))?;
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name()?
                    .ok_or_else(|| bad(format!("symlink {raw:?} without target")))?;
                std::os::unix::fs::symlink(link, &target)?;
            }
            tar::EntryType::Link => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| bad(format!("hard link {raw:?} without target")))?;
                let link = String::from_utf8_lossy(&link).to_string();
                let lc = normalize(&link)?;
                let src = fsutil::secure_join(root, &lc.join("/"), false)?;
                if !fsutil::is_within(root, &src)
                    || !src.symlink_metadata().is_ok_and(|m| m.is_file())
                {
                    return Err(bad(format!(
                        "hard link {raw:?} -> {link:?} does not point to a file in the image"
                    )));
                }
                fs::hard_link(&src, &target)?;
                continue;
            }
            _ => continue, // devices, fifos: not materialised
        }
        let uid = h.uid().unwrap_or(0) as u32;
        let gid = h.gid().unwrap_or(0) as u32;
        let _ = std::os::unix::fs::lchown(&target, Some(uid), Some(gid));
        if kind.is_symlink() {
            continue;
        }
        if (mode & 0o7000) != 0 {
            // chown clears setuid/setgid bits; set the mode again.
            fs::set_permissions(&target, fs::Permissions::from_mode(mode))?;
        }
    }
    for (d, t) in dir_times.into_iter().rev() {
        if let Ok(f) = File::open(&d) {
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t);
            let _ = f.set_times(fs::FileTimes::new().set_modified(t).set_accessed(t));
        }
    }
    Ok(())
}

/// Normal components of a tar path; `..` that climbs above the root is refused.
fn normalize(raw: &str) -> io::Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for seg in raw.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if out.pop().is_none() {
                    return Err(bad(format!(
                        "layer entry {raw:?} escapes the root with '..'"
                    )));
                }
            }
            s => out.push(s.to_string()),
        }
    }
    Ok(out)
}

/// What a whiteout entry (last path component `.wh.…`) asks for.
#[derive(Debug, PartialEq, Eq)]
enum Whiteout<'a> {
    /// `.wh..wh..opq`: empty the directory (lower layers' content).
    Opaque,
    /// `.wh.<name>`: delete `<name>` in the same directory.
    Remove(&'a str),
    /// Other `.wh..wh.` names are AUFS bookkeeping (e.g. `.wh..wh.plnk`),
    /// skipped as Docker does.
    AufsMeta,
}

/// Classifies a layer entry's last component. A whiteout must name exactly
/// one entry of its own directory: `.wh.`, `.wh..` and `.wh...` (nothing,
/// the directory itself, its parent) are malformed and refused, never
/// applied, so no whiteout can delete the root or anything above it.
fn whiteout(name: &str) -> Result<Option<Whiteout<'_>>, String> {
    const OPAQUE: &str = ".wh..wh..opq";
    let Some(victim) = name.strip_prefix(".wh.") else {
        return Ok(None);
    };
    if name == OPAQUE {
        return Ok(Some(Whiteout::Opaque));
    }
    if victim.starts_with(".wh.") {
        return Ok(Some(Whiteout::AufsMeta));
    }
    if matches!(victim, "" | "." | "..") || victim.contains('/') {
        return Err(format!(
            "is not a valid whiteout: `.wh.<name>` must name one file in its directory, \
             not {victim:?}; the image is malformed or hostile"
        ));
    }
    Ok(Some(Whiteout::Remove(victim)))
}

/// Deletes `name` in `dir` (a directory already resolved inside `root`),
/// after checking that the victim is a child of `dir` strictly inside
/// `root`: the last guard against a whiteout deleting the root or above.
fn remove_inside(root: &Path, dir: &Path, name: &str) -> io::Result<()> {
    let victim = dir.join(name);
    if matches!(name, "" | "." | "..")
        || name.contains('/')
        || victim == root
        || !fsutil::is_within(root, dir)
        || !fsutil::is_within(root, &victim)
    {
        return Err(bad(format!(
            "refusing to delete {} for a whiteout: it is not inside the extraction root {}",
            victim.display(),
            root.display()
        )));
    }
    remove_any(&victim)
}

fn remove_any(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot;
    use flate2::read::GzDecoder;

    fn tree(root: &Path) {
        fs::create_dir_all(root.join("d/e")).unwrap();
        fs::write(root.join("d/e/f"), "content").unwrap();
        fs::write(root.join("z"), "zz").unwrap();
        std::os::unix::fs::symlink("d/e/f", root.join("link")).unwrap();
        fs::hard_link(root.join("z"), root.join("hard")).unwrap();
    }

    #[test]
    fn a_zstd_layer_extracts_as_its_gzip_twin_does() {
        // Images pushed with `--compression=zstd` have such layers.
        let src = tempfile::tempdir().unwrap();
        tree(src.path());
        let out = tempfile::tempdir().unwrap();
        let opts = TarOptions {
            epoch: Some(0),
            map_to_root: None,
        };
        let gz = out.path().join("gz");
        write_tree(src.path(), &gz, opts).unwrap();
        let mut tar = Vec::new();
        std::io::Read::read_to_end(&mut GzDecoder::new(File::open(&gz).unwrap()), &mut tar)
            .unwrap();
        let zst = out.path().join("zst");
        fs::write(
            &zst,
            ruzstd::encoding::compress_to_vec(
                tar.as_slice(),
                ruzstd::encoding::CompressionLevel::Fastest,
            ),
        )
        .unwrap();
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        extract(&gz, a.path()).unwrap();
        extract(&zst, b.path()).unwrap();
        // The same entries, each with the same content or link target.
        let listing = |root: &Path| -> Vec<(String, Vec<u8>)> {
            walkdir::WalkDir::new(root)
                .sort_by_file_name()
                .into_iter()
                .map(|e| {
                    let e = e.unwrap();
                    let rel = e.path().strip_prefix(root).unwrap().display().to_string();
                    let body = if e.path_is_symlink() {
                        fs::read_link(e.path())
                            .unwrap()
                            .display()
                            .to_string()
                            .into_bytes()
                    } else if e.file_type().is_file() {
                        fs::read(e.path()).unwrap()
                    } else {
                        Vec::new()
                    };
                    (rel, body)
                })
                .collect()
        };
        assert_eq!(listing(a.path()), listing(b.path()));
        assert_eq!(listing(b.path()).len(), 7);
        assert_eq!(fs::read(b.path().join("d/e/f")).unwrap(), b"content");
        assert_eq!(
            fs::read_link(b.path().join("link")).unwrap(),
            Path::new("d/e/f")
        );
    }

    #[test]
    fn same_tree_same_digest_and_epoch_clamps() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        tree(a.path());
        tree(b.path());
        let out = tempfile::tempdir().unwrap();
        let opts = TarOptions {
            epoch: Some(1000),
            map_to_root: None,
        };
        let la = write_tree(a.path(), &out.path().join("a"), opts).unwrap();
        let lb = write_tree(b.path(), &out.path().join("b"), opts).unwrap();
        assert_eq!(la.digest, lb.digest);
        assert_eq!(la.diff_id, lb.diff_id);
        // Without clamping the (different) mtimes may differ; with a changed file they must.
        fs::write(b.path().join("z"), "changed").unwrap();
        let lc = write_tree(b.path(), &out.path().join("c"), opts).unwrap();
        assert_ne!(la.diff_id, lc.diff_id);
        // Round trip.
        let x = tempfile::tempdir().unwrap();
        extract(&out.path().join("a"), x.path()).unwrap();
        assert_eq!(
            fs::read_to_string(x.path().join("d/e/f")).unwrap(),
            "content"
        );
        assert_eq!(
            fs::read_link(x.path().join("link")).unwrap(),
            Path::new("d/e/f")
        );
        assert_eq!(
            fs::metadata(x.path().join("hard")).unwrap().ino(),
            fs::metadata(x.path().join("z")).unwrap().ino()
        );
        assert_eq!(fs::metadata(x.path().join("z")).unwrap().mtime(), 1000);
    }

    #[test]
    fn diff_layer_whiteouts_apply() {
        let root = tempfile::tempdir().unwrap();
        tree(root.path());
        let before = snapshot::take(root.path()).unwrap();
        fs::remove_dir_all(root.path().join("d")).unwrap();
        fs::write(root.path().join("new"), "n").unwrap();
        let after = snapshot::take(root.path()).unwrap();
        let df = snapshot::diff(&before, &after);
        let out = tempfile::tempdir().unwrap();
        let l = write_diff(
            root.path(),
            &df,
            &out.path().join("l"),
            TarOptions::default(),
        )
        .unwrap();
        // Apply onto a copy of the original tree.
        let copy = tempfile::tempdir().unwrap();
        tree(copy.path());
        extract(&out.path().join("l"), copy.path()).unwrap();
        assert!(!copy.path().join("d").exists());
        assert_eq!(fs::read_to_string(copy.path().join("new")).unwrap(), "n");
        assert!(l.size > 0);
    }

    #[test]
    fn whiteout_markers_are_empty_root_owned_mode_0() {
        let root = tempfile::tempdir().unwrap();
        tree(root.path());
        let before = snapshot::take(root.path()).unwrap();
        fs::remove_file(root.path().join("z")).unwrap();
        let df = snapshot::diff(&before, &snapshot::take(root.path()).unwrap());
        let out = tempfile::tempdir().unwrap();
        let opts = TarOptions {
            epoch: Some(7),
            map_to_root: None,
        };
        write_diff(root.path(), &df, &out.path().join("l"), opts).unwrap();
        let gz = GzDecoder::new(File::open(out.path().join("l")).unwrap());
        let mut ar = tar::Archive::new(gz);
        let markers: Vec<(String, u32, u64, u64, u64, u64)> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    h.size().unwrap(),
                    h.mtime().unwrap(),
                )
            })
            .filter(|m| m.0.contains(".wh."))
            .collect();
        assert_eq!(markers, [(".wh.z".to_string(), 0, 0, 0, 0, 7)]);
    }

    fn crafted(entries: &[(&str, tar::EntryType, &str)]) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        let mut b = tar::Builder::new(File::create(f.path()).unwrap());
        for (path, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            // Write the raw name so `..` and absolute paths reach the tar.
            let name = h.as_old_mut().name.as_mut();
            name[..path.len()].copy_from_slice(path.as_bytes());
            if kind.is_symlink() {
                h.set_link_name(data).unwrap();
                h.set_size(0);
                h.set_cksum();
                b.append(&h, io::empty()).unwrap();
            } else {
                h.set_size(data.len() as u64);
                h.set_cksum();
                b.append(&h, data.as_bytes()).unwrap();
            }
        }
        b.finish().unwrap();
        f
    }

    /// A root inside a work directory that also holds a canary next to it,
    /// so a deletion or write that leaves the root shows up.
    fn root_with_canary() -> (tempfile::TempDir, std::path::PathBuf) {
        let work = tempfile::tempdir().unwrap();
        fs::write(work.path().join("canary"), "keep").unwrap();
        let root = work.path().join("root");
        fs::create_dir_all(root.join("sub/deeper")).unwrap();
        fs::write(root.join("sub/deeper/file"), "f").unwrap();
        fs::write(root.join("top"), "t").unwrap();
        (work, root)
    }

    #[test]
    fn whiteouts_naming_dot_dot_or_nothing_are_refused_and_delete_nothing() {
        for bad in [
            ".wh...",
            "sub/.wh...",
            "sub/deeper/.wh...",
            ".wh..",
            "sub/.wh..",
            ".wh.",
            "sub/.wh.",
            "./.wh...",
            "sub//.wh...",
        ] {
            let (work, root) = root_with_canary();
            let t = crafted(&[(bad, tar::EntryType::Regular, "")]);
            let e = extract(t.path(), &root).expect_err(bad).to_string();
            assert!(e.contains("whiteout"), "{bad}: {e}");
            assert_eq!(
                fs::read_to_string(work.path().join("canary")).unwrap(),
                "keep",
                "{bad}"
            );
            assert!(
                root.join("top").is_file(),
                "{bad} removed the root's content"
            );
            assert!(root.join("sub/deeper/file").is_file(), "{bad}");
        }
    }

    #[test]
    fn whiteouts_delete_only_inside_the_root_even_through_symlinks() {
        let (work, root) = root_with_canary();
        let outside = work.path().display().to_string();
        let t = crafted(&[
            // A symlink to the work directory itself: a whiteout under it
            // resolves inside the root, where no canary exists.
            ("esc", tar::EntryType::Symlink, outside.as_str()),
            ("esc/.wh.canary", tar::EntryType::Regular, ""),
            ("up", tar::EntryType::Symlink, "../../../../.."),
            ("up/.wh.canary", tar::EntryType::Regular, ""),
            ("up/.wh..wh..opq", tar::EntryType::Regular, ""),
        ]);
        extract(t.path(), &root).unwrap();
        assert_eq!(
            fs::read_to_string(work.path().join("canary")).unwrap(),
            "keep"
        );
        assert!(work.path().join("root").is_dir());
        // The opaque whiteout under `up` (the root) emptied the root only.
        assert!(!root.join("top").exists());
        // Regular whiteouts and opaque directories still work.
        let (work, root) = root_with_canary();
        let t = crafted(&[
            (".wh.top", tar::EntryType::Regular, ""),
            ("sub/deeper/.wh..wh..opq", tar::EntryType::Regular, ""),
            ("sub/deeper/new", tar::EntryType::Regular, "n"),
        ]);
        extract(t.path(), &root).unwrap();
        assert!(!root.join("top").exists());
        assert!(!root.join("sub/deeper/file").exists());
        assert!(root.join("sub/deeper/new").is_file());
        assert!(work.path().join("canary").is_file());
    }

    #[test]
    fn crafted_layers_cannot_escape() {
        let outside = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        // `..` escape is refused.
        let t = crafted(&[("../../../../../../tmp/x", tar::EntryType::Regular, "x")]);
        assert!(extract(t.path(), root.path()).is_err());
        // An absolute path lands inside the root.
        let abs = format!("{}", victim.display());
        let t = crafted(&[(abs.as_str(), tar::EntryType::Regular, "abs")]);
        extract(t.path(), root.path()).unwrap();
        assert!(!victim.exists());
        assert!(root.path().join(abs.trim_start_matches('/')).is_file());
        // Symlink then write through it: resolved inside the root.
        let dir = outside.path().display().to_string();
        let t = crafted(&[
            ("esc", tar::EntryType::Symlink, dir.as_str()),
            ("esc/victim", tar::EntryType::Regular, "through link"),
        ]);
        extract(t.path(), root.path()).unwrap();
        assert!(!victim.exists());
        assert!(
            root.path()
                .join(dir.trim_start_matches('/'))
                .join("victim")
                .is_file()
        );
        // Relative symlink climbing out, then write.
        let t = crafted(&[
            ("up", tar::EntryType::Symlink, "../../../../../../../../"),
            ("up/victim2", tar::EntryType::Regular, "x"),
        ]);
        extract(t.path(), root.path()).unwrap();
        assert!(root.path().join("victim2").is_file());
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
    }
}
