//! Gets a RUN's `--mount`s ready on the host: the mount points in the stage
//! root, a private copy of each bind source, the cache directories and
//! their locks, the secret files; and takes it all away after the RUN, so
//! that no mount point, cache content or secret reaches the layer.
//!
//! The stage root is hostile (earlier RUNs wrote it), but nothing runs in it
//! while this code does: every target is resolved with symlinks kept inside
//! the root ([`fsutil::secure_join`]), missing components are created one by
//! one (never through a symlink), and only what was created here is removed
//! afterwards, after checking again that no symlink leads to it.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::api::BuildError;
use super::context::{self, Context};
use super::engine::{Engine, R, StageState, Step, io_err};
use super::fsutil;
use super::run_mount::{MountKind, RunMount, Sharing};
use super::sandbox::{Mount, MountSource};

/// Most entries a bind source may have (it is copied for each RUN).
const BIND_ENTRIES_MAX: usize = 1_000_000;
/// Most bytes of files a bind source may have (a stage's root may hold a
/// sparse file of any apparent size).
const BIND_BYTES_MAX: u64 = 32 << 30;

/// A RUN's mounts, ready: what the sandbox mounts, the environment secrets
/// add, the secret values to hide from the log, and what to undo after.
#[derive(Default)]
pub(crate) struct Prepared {
    pub mounts: Vec<Mount>,
    pub env: Vec<(String, String)>,
    pub secret_values: Vec<String>,
    /// Mount points created in the stage root.
    stubs: Stubs,
    root: PathBuf,
    /// Copies of bind sources, secret files, throw-away cache directories.
    temps: Vec<PathBuf>,
    /// Held `flock`s of the cache directories in use.
    locks: Vec<fs::File>,
}

impl Prepared {
    /// Removes the mount points created in the root (deepest first) and the
    /// temporary copies, and releases the cache locks.
    pub fn cleanup(&mut self) -> io::Result<()> {
        let mut first_err = None;
        for stub in self.stubs.created.drain(..).rev() {
            if let Err(e) = remove_stub(&self.root, &stub) {
                first_err.get_or_insert(e);
            }
        }
        // The directories they were made in get their mtime back, so a RUN
        // that only writes to its mounts changes nothing in the layer.
        for (dir, mtime) in self.stubs.touched.drain(..).rev() {
            if let Err(e) = fsutil::restore_dir_mtime(&self.root, &dir, mtime) {
                first_err.get_or_insert(e);
            }
        }
        for t in self.temps.drain(..) {
            let _ = fs::remove_dir_all(&t);
        }
        self.locks.clear();
        first_err.map_or(Ok(()), Err)
    }
}

/// What [`create_path`] made: the paths, in creation order, and the
/// existing directories it made them in, with their mtime before.
#[derive(Debug, Default)]
struct Stubs {
    created: Vec<PathBuf>,
    touched: Vec<(PathBuf, std::time::SystemTime)>,
}

/// Where a mount's files are on the host, for a later mount inside it.
struct Placed {
    /// The mount point's host path.
    at: PathBuf,
    /// The private copy a bind mounts (a later target inside it is created
    /// there); `None` for cache, tmpfs and secret mounts.
    private_copy: Option<PathBuf>,
    what: &'static str,
}

impl Engine<'_> {
    /// The key part of a RUN's mounts: each spec, and for a bind what it
    /// shows (the content of context files, the source stage's or image's
    /// key). A cache's content and a secret's value are never in it.
    pub(crate) fn mount_key_extras(
        &mut self,
        step: &Step,
        mounts: &[RunMount],
        done: &[Option<StageState>],
    ) -> R<String> {
        let mut parts = Vec::new();
        for m in mounts {
            let mut part = m.key_text();
            match &m.kind {
                MountKind::Bind { from, source, .. } => {
                    part.push('|');
                    part.push_str(&self.source_identity(step, done, from.as_deref(), source)?);
                }
                MountKind::Cache {
                    seed: Some(seed), ..
                } => {
                    part.push('|');
                    part.push_str(&self.source_identity(
                        step,
                        done,
                        Some(&seed.from),
                        &seed.source,
                    )?);
                }
                _ => {}
            }
            parts.push(part);
        }
        Ok(parts.join("\n"))
    }

    /// What a bind (or a cache's seed) shows, for keys: the content of a
    /// context source, or the key of the stage or image it is from.
    fn source_identity(
        &mut self,
        step: &Step,
        done: &[Option<StageState>],
        from: Option<&str>,
        source: &str,
    ) -> R<String> {
        Ok(match self.bind_from(step, from)? {
            BindFrom::Context => {
                let (_, entries) =
                    context_source(step.scope.ctx, source).map_err(|e| step.err(e))?;
                context::content_digest(&entries).map_err(|e| step.err(e))?
            }
            BindFrom::Stage(j) => {
                let k = done[j].as_ref().map(|s| s.key.clone()).unwrap_or_default();
                format!("stage:{k}")
            }
            BindFrom::Image(r) => {
                let img = self.pull(&r).map_err(|e| step.err(e.to_string()))?;
                format!("image:{}", img.key)
            }
        })
    }

    /// Prepares `mounts` for a RUN on the stage root `root`.
    pub(crate) fn prepare_mounts(
        &mut self,
        step: &Step,
        done: &mut [Option<StageState>],
        root: &Path,
        mounts: &[RunMount],
    ) -> R<Prepared> {
        let mut p = Prepared {
            root: root.to_path_buf(),
            ..Default::default()
        };
        match self.place_mounts(step, done, root, mounts, &mut p) {
            Ok(()) => Ok(p),
            Err(e) => {
                let _ = p.cleanup();
                Err(e)
            }
        }
    }

    fn place_mounts(
        &mut self,
        step: &Step,
        done: &mut [Option<StageState>],
        root: &Path,
        mounts: &[RunMount],
        p: &mut Prepared,
    ) -> R<()> {
        // Outer mounts first, so an inner target is created in what the
        // outer one shows.
        let mut order: Vec<&RunMount> = mounts.iter().collect();
        order.sort_by_key(|m| {
            m.target
                .as_deref()
                .map_or(0, |t| fsutil::clean_components(t).len())
        });
        let mut placed: Vec<Placed> = Vec::new();
        for m in order {
            let (source, what) = match &m.kind {
                MountKind::Bind { from, source, rw } => {
                    let copy = self.bind_copy(step, done, from.as_deref(), source, p)?;
                    (
                        MountSource::Bind {
                            path: copy,
                            readonly: !rw,
                        },
                        "bind",
                    )
                }
                MountKind::Cache {
                    id,
                    seed,
                    sharing,
                    readonly,
                    uid,
                    gid,
                    mode,
                } => {
                    // A seeded cache is another cache than the same id
                    // without, or with another seed (as BuildKit keys it).
                    let (name, seed_copy) = match seed {
                        None => (id.clone(), None),
                        Some(s) => {
                            let identity =
                                self.source_identity(step, done, Some(&s.from), &s.source)?;
                            let name = format!("{id}\0{}\0{identity}", s.source);
                            // The copy is made only for a cache not there yet.
                            if self.cache_dir_path(&name).is_dir() {
                                (name, None)
                            } else {
                                let c = self.bind_copy(step, done, Some(&s.from), &s.source, p)?;
                                if !c.is_dir() {
                                    return Err(step.err(format!(
                                        "cache mount {id:?}: source={} in {} is not a directory",
                                        s.source, s.from
                                    )));
                                }
                                (name, Some(c))
                            }
                        }
                    };
                    let dir = self
                        .cache_mount_dir(&name, *sharing, (*uid, *gid, *mode), p, seed_copy)
                        .map_err(|e| step.err(format!("cache mount {id:?}: {e}")))?;
                    (
                        MountSource::Bind {
                            path: dir,
                            readonly: *readonly,
                        },
                        "cache",
                    )
                }
                MountKind::Tmpfs { size } => (MountSource::Tmpfs { size: *size }, "tmpfs"),
                MountKind::Secret {
                    id,
                    env,
                    required,
                    uid,
                    gid,
                    mode,
                } => {
                    let Some(value) = self.secrets.value(id).map_err(|e| step.err(e))? else {
                        if *required {
                            return Err(step.err(format!(
                                "secret {id:?} is required but the build has no --secret id={id}"
                            )));
                        }
                        continue;
                    };
                    p.secret_values
                        .push(String::from_utf8_lossy(&value).trim().to_string());
                    if let Some(var) = env {
                        p.env
                            .push((var.clone(), String::from_utf8_lossy(&value).to_string()));
                    }
                    if m.target.is_none() {
                        continue;
                    }
                    let file = self
                        .secret_file(&value, (*uid, *gid, *mode), p)
                        .map_err(|e| step.err(format!("secret {id:?}: {e}")))?;
                    (
                        MountSource::Bind {
                            path: file,
                            readonly: true,
                        },
                        "secret",
                    )
                }
            };
            let Some(target) = &m.target else { continue };
            let is_dir = match &source {
                MountSource::Bind { path, .. } => {
                    fs::symlink_metadata(path).is_ok_and(|md| md.is_dir())
                }
                MountSource::Tmpfs { .. } => true,
            };
            let at = mount_point(root, target, is_dir, &placed, &mut p.stubs)
                .map_err(|e| step.err(format!("--mount target={target}: {e}")))?;
            placed.push(Placed {
                at: at.clone(),
                private_copy: match (&source, what) {
                    (MountSource::Bind { path, .. }, "bind") if is_dir => Some(path.clone()),
                    _ => None,
                },
                what,
            });
            p.mounts.push(Mount { target: at, source });
        }
        Ok(())
    }

    fn bind_from(&mut self, step: &Step, from: Option<&str>) -> R<BindFrom> {
        let Some(f) = from else {
            return Ok(BindFrom::Context);
        };
        let (names, si) = (step.scope.names, step.si);
        let lower = f.to_ascii_lowercase();
        match super::engine::find_stage(names, f, si) {
            Some(j) => Ok(BindFrom::Stage(j)),
            None if names.iter().any(|n| n.as_deref() == Some(lower.as_str())) => {
                Err(step.err(format!("--mount from={f} refers to a later stage")))
            }
            None => Ok(BindFrom::Image(f.to_string())),
        }
    }

    /// A private copy of a bind's source (the RUN may write to it when
    /// `rw`; the copy is thrown away after).
    fn bind_copy(
        &mut self,
        step: &Step,
        done: &mut [Option<StageState>],
        from: Option<&str>,
        source: &str,
        p: &mut Prepared,
    ) -> R<PathBuf> {
        let err = |e: String| -> BuildError { step.err(format!("--mount source={source}: {e}")) };
        let (top, entries) = match self.bind_from(step, from)? {
            BindFrom::Context => context_source(step.scope.ctx, source).map_err(err)?,
            from => {
                let src_root = match from {
                    BindFrom::Stage(j) => {
                        let mut s = done[j]
                            .take()
                            .ok_or_else(|| err("source stage not built".into()))?;
                        let r = self.ensure_rootfs_pub(&mut s);
                        done[j] = Some(s);
                        r?
                    }
                    BindFrom::Image(r) => {
                        let mut s = self.pull(&r)?;
                        let rr = self.ensure_rootfs_pub(&mut s)?;
                        self.images.insert(r.clone(), s);
                        rr
                    }
                    BindFrom::Context => unreachable!("handled above"),
                };
                let top =
                    fsutil::secure_join(&src_root, source, true).map_err(|e| err(e.to_string()))?;
                let m = fs::symlink_metadata(&top)
                    .map_err(|_| err("not found in the source stage/image".into()))?;
                let entries = if m.is_dir() {
                    context::walk_tree(&top, |_| false).map_err(err)?
                } else {
                    vec![]
                };
                (top, entries)
            }
        };
        if entries.len() > BIND_ENTRIES_MAX {
            return Err(err(format!("more than {BIND_ENTRIES_MAX} files to mount")));
        }
        let bytes: u64 = std::iter::once(top.as_path())
            .chain(entries.iter().map(|(p, _)| p.as_path()))
            .filter_map(|p| fs::symlink_metadata(p).ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum();
        if bytes > BIND_BYTES_MAX {
            return Err(err(format!(
                "more than {} of files to mount",
                super::limits::show(BIND_BYTES_MAX)
            )));
        }
        let dir = self.store.temp_dir("bind").map_err(io_err("work dir"))?;
        p.temps.push(dir.clone());
        let copy = dir.join("src");
        copy_entry(&top, &copy).map_err(io_err(top.display()))?;
        for (path, rel) in &entries {
            let dest = fsutil::secure_join(&copy, rel, false).map_err(io_err(rel))?;
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent).map_err(io_err(rel))?;
            }
            copy_entry(path, &dest).map_err(io_err(path.display()))?;
        }
        Ok(copy)
    }

    /// The directory of cache mount `id` in the state directory, created
    /// with `owner` (uid, gid, mode) the first time, and locked as
    /// `sharing` says for the RUN's duration.
    fn cache_mount_dir(
        &mut self,
        id: &str,
        sharing: Sharing,
        owner: (u32, u32, u32),
        p: &mut Prepared,
        seed: Option<PathBuf>,
    ) -> io::Result<PathBuf> {
        let dir = self.cache_dir_path(id);
        let base = dir.parent().unwrap_or(&dir).to_path_buf();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&base)?;
        let mut lock_path = dir.clone().into_os_string();
        lock_path.push(".lock");
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(lock_path)?;
        // The lock's time is when the cache was last used: the state
        // directory's collection removes the least recently used first.
        lock.set_modified(std::time::SystemTime::now())?;
        let dir = match sharing {
            Sharing::Shared => {
                super::tmp_session::flock(&lock, nix::libc::LOCK_SH)?;
                dir
            }
            Sharing::Locked => {
                super::tmp_session::flock(&lock, nix::libc::LOCK_EX)?;
                dir
            }
            Sharing::Private => {
                if super::tmp_session::flock(&lock, nix::libc::LOCK_EX | nix::libc::LOCK_NB).is_ok()
                {
                    dir
                } else {
                    // In use: a fresh directory for this RUN alone (the
                    // seed's copy, which is this RUN's own).
                    p.locks.push(lock);
                    if let Some(copy) = seed {
                        return Ok(copy);
                    }
                    let t = self.store.temp_dir("cache-private")?;
                    p.temps.push(t.clone());
                    let d = t.join("c");
                    new_owned_dir(&d, owner)?;
                    return Ok(d);
                }
            }
        };
        p.locks.push(lock);
        match fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(io::Error::other("the cache's path is not a directory")),
            Err(_) => make_cache_dir(&self.store, &dir, owner, seed)?,
        }
        Ok(dir)
    }

    /// Where the cache named `id` lives: `run-cache/<sha256 of id>`, with
    /// its lock beside it (`<…>.lock`).
    fn cache_dir_path(&self, id: &str) -> PathBuf {
        self.store
            .root()
            .join("run-cache")
            .join(super::digest::sha256_hex(id.as_bytes()))
    }

    /// A file holding a secret's value, in a private work directory.
    fn secret_file(
        &mut self,
        value: &[u8],
        owner: (u32, u32, u32),
        p: &mut Prepared,
    ) -> io::Result<PathBuf> {
        use std::io::Write;
        let dir = self.store.temp_dir("secret")?;
        p.temps.push(dir.clone());
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
        let path = dir.join("secret");
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        f.write_all(value)?;
        set_owner_mode(&path, owner)?;
        Ok(path)
    }
}

enum BindFrom {
    Context,
    Stage(usize),
    Image(String),
}

/// A bind source in the context: its host path and the entries under it
/// that `.dockerignore` keeps (none for a file).
fn context_source(
    ctx: &Context,
    source: &str,
) -> Result<(PathBuf, Vec<(PathBuf, String)>), String> {
    let rel = fsutil::clean_components(source).join("/");
    let mut found = ctx.resolve(&rel)?;
    if found.len() != 1 {
        return Err(format!("matches {} paths; name one", found.len()));
    }
    let s = found.remove(0);
    let entries = if s.path.is_dir() {
        ctx.walk(&s)?
    } else {
        vec![]
    };
    Ok((s.path, entries))
}

/// Copies one entry (a directory without its content, a file, a symlink as
/// a symlink) to `dest`, keeping its mode and, as root, its owner.
fn copy_entry(src: &Path, dest: &Path) -> io::Result<()> {
    let m = fs::symlink_metadata(src)?;
    let ft = m.file_type();
    if ft.is_symlink() {
        std::os::unix::fs::symlink(fs::read_link(src)?, dest)?;
    } else if ft.is_dir() {
        fs::create_dir(dest)?;
        fs::set_permissions(dest, fs::Permissions::from_mode(m.mode() & 0o7777))?;
    } else if ft.is_file() {
        let mut from = fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(src)?;
        let mut to = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dest)?;
        io::copy(&mut from, &mut to)?;
        fs::set_permissions(dest, fs::Permissions::from_mode(m.mode() & 0o7777))?;
    } else {
        // Devices, fifos and sockets are not mounted.
        return Ok(());
    }
    if nix::unistd::Uid::effective().is_root() {
        std::os::unix::fs::lchown(dest, Some(m.uid()), Some(m.gid()))?;
    }
    Ok(())
}

/// Makes a cache mount's directory with its owner and mode, whole or not
/// at all: made aside and renamed into place without replacing, so RUNs
/// that share the cache and start together (parallel stages, or two
/// builds) all find it complete, and the first one's stays.
fn make_cache_dir(
    store: &super::store::Store,
    dir: &Path,
    owner: (u32, u32, u32),
    seed: Option<PathBuf>,
) -> io::Result<()> {
    use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
    // A seed is a private copy already: it becomes the cache as it is.
    let aside = match seed {
        Some(copy) => copy,
        None => {
            let aside = store.temp_file_path("cache-new");
            new_owned_dir(&aside, owner)?;
            aside
        }
    };
    let placed = renameat2(
        AT_FDCWD,
        &aside,
        AT_FDCWD,
        dir,
        RenameFlags::RENAME_NOREPLACE,
    );
    if placed.is_ok() {
        return Ok(());
    }
    let _ = fs::remove_dir(&aside);
    match placed {
        Err(nix::errno::Errno::EEXIST) if fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) => {
            Ok(())
        }
        Err(e) => Err(e.into()),
        Ok(()) => Ok(()),
    }
}

fn new_owned_dir(dir: &Path, owner: (u32, u32, u32)) -> io::Result<()> {
    fs::create_dir(dir)?;
    set_owner_mode(dir, owner)
}

/// Sets `mode` and, as root, `uid`/`gid` (a rootless build maps only root,
/// which the caller's own ids already are).
fn set_owner_mode(p: &Path, (uid, gid, mode): (u32, u32, u32)) -> io::Result<()> {
    if nix::unistd::Uid::effective().is_root() {
        std::os::unix::fs::lchown(p, Some(uid), Some(gid))?;
    }
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
}

/// The host path to mount `target` on, created if missing (a directory, or
/// an empty file when `dir` is false) with every created path recorded in
/// `stubs`. A target inside an earlier bind is created in that bind's
/// private copy; inside a cache, tmpfs or secret it is refused.
fn mount_point(
    root: &Path,
    target: &str,
    dir: bool,
    placed: &[Placed],
    stubs: &mut Stubs,
) -> Result<PathBuf, String> {
    let resolved = fsutil::secure_join(root, target, true).map_err(|e| e.to_string())?;
    if let Some(outer) = placed.iter().rev().find(|o| resolved.starts_with(&o.at)) {
        if outer.at == resolved {
            return Err("another --mount of this RUN has the same target".into());
        }
        let Some(copy) = &outer.private_copy else {
            return Err(format!(
                "it is inside a type={} mount of the same RUN, which the embedded builder does not support",
                outer.what
            ));
        };
        let rest = resolved
            .strip_prefix(&outer.at)
            .map_err(|e| e.to_string())?;
        let inner =
            fsutil::secure_join(copy, &rest.to_string_lossy(), true).map_err(|e| e.to_string())?;
        // The copy is thrown away after the RUN: nothing to record.
        create_path(copy, &inner, dir, &mut Stubs::default()).map_err(|e| e.to_string())?;
        let rel = inner.strip_prefix(copy).map_err(|e| e.to_string())?;
        return Ok(outer.at.join(rel));
    }
    create_path(root, &resolved, dir, stubs).map_err(|e| e.to_string())?;
    Ok(resolved)
}

/// Creates the missing components of `path` (inside `base`, symlinks
/// already resolved) one at a time, refusing a symlink on the way; the last
/// is a directory or, when `dir` is false, an empty file.
fn create_path(base: &Path, path: &Path, dir: bool, stubs: &mut Stubs) -> io::Result<()> {
    let rel = path
        .strip_prefix(base)
        .map_err(|_| io::Error::other("resolves outside the root"))?;
    let comps: Vec<_> = rel.components().collect();
    let mut cur = base.to_path_buf();
    for (i, c) in comps.iter().enumerate() {
        cur.push(c);
        let last = i + 1 == comps.len();
        let want_dir = !last || dir;
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(io::Error::other("a symbolic link is in the way"));
            }
            Ok(m) if want_dir && !m.is_dir() => {
                return Err(io::Error::other(format!(
                    "/{} exists and is not a directory",
                    rel_text(base, &cur)
                )));
            }
            Ok(m) if !want_dir && !m.is_file() => {
                return Err(io::Error::other(format!(
                    "/{} exists and is not a file",
                    rel_text(base, &cur)
                )));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if let Some(parent) = cur.parent()
                    && !stubs.created.iter().any(|c| c == parent)
                {
                    let mtime = fs::symlink_metadata(parent)?.modified()?;
                    stubs.touched.push((parent.to_path_buf(), mtime));
                }
                if want_dir {
                    fs::DirBuilder::new().mode(0o755).create(&cur)?;
                } else {
                    fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o644)
                        .custom_flags(nix::libc::O_NOFOLLOW)
                        .open(&cur)?;
                }
                stubs.created.push(cur.clone());
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn rel_text(base: &Path, p: &Path) -> String {
    p.strip_prefix(base)
        .unwrap_or(p)
        .to_string_lossy()
        .to_string()
}

/// Removes a mount point created by [`create_path`], if it is still what
/// was created (an empty directory or file) and no symlink leads to it.
fn remove_stub(root: &Path, stub: &Path) -> io::Result<()> {
    if !fsutil::reached_directly(root, stub) {
        return Ok(());
    }
    let m = fs::symlink_metadata(stub)?;
    if m.is_dir() {
        // Not empty: the RUN put something next to the mount; it stays.
        let _ = fs::remove_dir(stub);
    } else if m.is_file() && m.len() == 0 {
        fs::remove_file(stub)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn a_cache_directory_made_by_several_runs_at_once_is_made_once() {
        let d = tempfile::tempdir().unwrap();
        let store = super::super::store::Store::open(d.path()).unwrap();
        let dir = d.path().join("cache-dir");
        let results: Vec<io::Result<()>> = std::thread::scope(|s| {
            let runs: Vec<_> = (0..8)
                .map(|_| s.spawn(|| make_cache_dir(&store, &dir, (0, 0, 0o755), None)))
                .collect();
            runs.into_iter().map(|r| r.join().unwrap()).collect()
        });
        for r in results {
            r.unwrap();
        }
        let m = fs::metadata(&dir).unwrap();
        assert!(m.is_dir());
        assert_eq!(m.permissions().mode() & 0o7777, 0o755);
        // What was made aside and not placed is gone.
        let aside: Vec<_> = fs::read_dir(store.temp_dir("probe").unwrap().parent().unwrap())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("cache-new"))
            .collect();
        assert!(aside.is_empty(), "{aside:?}");
        // A file in the cache's place is an error, not replaced.
        let file = d.path().join("not-a-dir");
        fs::write(&file, "x").unwrap();
        assert!(make_cache_dir(&store, &file, (0, 0, 0o755), None).is_err());
        assert_eq!(fs::read_to_string(&file).unwrap(), "x");
        // A seed becomes the cache as it is; a second one finds it there.
        let seeded = d.path().join("seeded");
        for content in ["first", "second"] {
            let seed = store.temp_dir("seed").unwrap().join("src");
            fs::create_dir(&seed).unwrap();
            fs::write(seed.join("f"), content).unwrap();
            make_cache_dir(&store, &seeded, (0, 0, 0o755), Some(seed)).unwrap();
        }
        assert_eq!(fs::read_to_string(seeded.join("f")).unwrap(), "first");
    }

    #[test]
    fn mount_points_stay_in_the_root_and_go_away_after() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        let outside = d.path().join("outside");
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::create_dir(&outside).unwrap();
        // A symlink to a host path resolves inside the root.
        symlink(&outside, root.join("escape")).unwrap();
        symlink("../../..", root.join("up")).unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000);
        fs::File::open(&root).unwrap().set_modified(old).unwrap();
        let mut stubs = Stubs::default();
        let a = mount_point(&root, "/escape/cache", true, &[], &mut stubs).unwrap();
        assert!(a.starts_with(&root), "{a:?}");
        let b = mount_point(&root, "/up/run/secrets/tok", false, &[], &mut stubs).unwrap();
        assert_eq!(b, root.join("run/secrets/tok"));
        assert!(b.is_file());
        assert!(fs::read_dir(&outside).unwrap().next().is_none());
        let e = mount_point(&root, "/etc", false, &[], &mut stubs).unwrap_err();
        assert!(e.contains("not a file"), "{e}");
        let mut p = Prepared {
            root: root.clone(),
            stubs,
            ..Default::default()
        };
        p.cleanup().unwrap();
        assert!(!root.join("run").exists());
        assert_eq!(fs::metadata(&root).unwrap().modified().unwrap(), old);
        assert!(root.join("etc").is_dir());
        assert!(!root.join(outside.strip_prefix("/").unwrap()).exists());
    }

    #[test]
    fn cleanup_never_follows_a_symlink_the_run_left() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        let host = d.path().join("host");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(host.join("secrets")).unwrap();
        let mut stubs = Stubs::default();
        mount_point(&root, "/run/secrets", true, &[], &mut stubs).unwrap();
        // The RUN replaced /run by a link to a host directory.
        fs::rename(root.join("run"), root.join("run2")).unwrap();
        symlink(&host, root.join("run")).unwrap();
        let mut p = Prepared {
            root: root.clone(),
            stubs,
            ..Default::default()
        };
        p.cleanup().unwrap();
        assert!(host.join("secrets").is_dir());
    }

    #[test]
    fn targets_inside_a_bind_go_to_its_copy_and_others_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        let copy = d.path().join("copy");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&copy).unwrap();
        let mut stubs = Stubs::default();
        let outer = mount_point(&root, "/src", true, &[], &mut stubs).unwrap();
        let placed = vec![Placed {
            at: outer.clone(),
            private_copy: Some(copy.clone()),
            what: "bind",
        }];
        let inner = mount_point(&root, "/src/target", true, &placed, &mut stubs).unwrap();
        assert_eq!(inner, outer.join("target"));
        assert!(copy.join("target").is_dir());
        assert_eq!(stubs.created, [root.join("src")]);
        let cache = vec![Placed {
            at: outer.clone(),
            private_copy: None,
            what: "cache",
        }];
        let e = mount_point(&root, "/src/x", true, &cache, &mut stubs).unwrap_err();
        assert!(e.contains("inside a type=cache mount"), "{e}");
        let e = mount_point(&root, "/src", true, &cache, &mut stubs).unwrap_err();
        assert!(e.contains("same target"), "{e}");
    }
}
