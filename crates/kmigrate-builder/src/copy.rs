//! COPY and ADD: planning (sources, destination, cache-key extras) and
//! execution into a stage root with Docker's directory semantics.

use std::fs;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::api::BuildError;
use super::cache::LayerRef;
use super::chmod::Chmod;
use super::commands::{CopyCmd, ExpandedCopy};
use super::context;
use super::engine::{Engine, R, StageState, Step, io_err};
use super::fsutil;
use super::glob;
use super::ignore::IgnoreRules;
use super::overlay::{LowerError, Overlays};
use super::remote;

/// Where sources come from.
#[derive(Debug, Clone)]
pub enum From {
    Context,
    Stage(usize),
    Image(String),
}

/// A planned COPY/ADD.
#[derive(Debug, Clone)]
pub struct CopyPlan {
    pub key_extras: String,
    pub from: From,
    pub patterns: Vec<String>,
    pub dest: String,
    pub chown: Option<String>,
    pub chmod: Option<Chmod>,
    pub is_add: bool,
    /// Here-document sources (`COPY <<EOF /dest`): file name and content.
    pub inline: Vec<(String, String)>,
    /// `--exclude` patterns, as `.dockerignore` lines relative to each source.
    pub exclude: Option<IgnoreRules>,
    /// `--parents`: sources keep their paths under the destination.
    pub parents: bool,
    /// ADD `--unpack`, when given.
    pub unpack: Option<bool>,
    /// `ADD <URL>` sources.
    pub urls: Vec<UrlSource>,
}

/// An `ADD <URL>` source: downloaded while planning unless `--checksum`
/// already gives the key (then only when the step runs).
#[derive(Debug, Clone)]
pub struct UrlSource {
    pub url: String,
    /// The file's name under a directory destination.
    pub name: String,
    /// The hex sha256 `--checksum` asks for.
    pub checksum: Option<String>,
    /// The downloaded file, once there.
    pub file: Option<PathBuf>,
}

impl Engine<'_> {
    /// Plans a COPY/ADD whose values `e` are expanded: where its sources
    /// come from, its destination under the working directory, the
    /// downloads, and the key extras that cover what it copies.
    pub(crate) fn plan_copy(
        &mut self,
        step: &Step,
        cmd: &CopyCmd,
        e: ExpandedCopy,
        st: &StageState,
        done: &mut [Option<StageState>],
    ) -> R<CopyPlan> {
        let (ctx, names, si) = (step.scope.ctx, step.scope.names, step.si);
        let err = |m: String| -> BuildError { step.err(m) };
        let ExpandedCopy {
            from: from_flag,
            sources: items,
            urls,
            inline,
            dest: dest_raw,
            checksum,
            chown,
            chmod,
            exclude,
        } = e;
        let wd = st
            .config
            .config
            .working_dir
            .clone()
            .unwrap_or_else(|| "/".into());
        let mut dest = if dest_raw.starts_with('/') {
            dest_raw.clone()
        } else {
            format!("{}/{dest_raw}", wd.trim_end_matches('/'))
        };
        if (dest_raw.ends_with('/') || dest_raw == "." || dest_raw.ends_with("/."))
            && !dest.ends_with('/')
        {
            dest.push('/');
        }
        let from = match from_flag.as_deref() {
            None => From::Context,
            Some(f) => {
                let lower = f.to_ascii_lowercase();
                match names[..si]
                    .iter()
                    .position(|n| n.as_deref() == Some(lower.as_str()))
                    .or_else(|| f.parse::<usize>().ok().filter(|i| *i < si))
                {
                    Some(j) => From::Stage(j),
                    None if names.iter().any(|n| n.as_deref() == Some(lower.as_str())) => {
                        return Err(err(format!("--from={f} refers to a later stage")));
                    }
                    None => From::Image(f.to_string()),
                }
            }
        };
        let exclude = (!exclude.is_empty()).then(|| IgnoreRules::parse(&exclude.join("\n")));
        let excluded = |rel: &str| exclude.as_ref().is_some_and(|r| r.excluded(rel));
        let mut extras = match &from {
            From::Context => {
                let mut parts = Vec::new();
                for p in &items {
                    let srcs = ctx.resolve(p).map_err(err)?;
                    for s in srcs {
                        if excluded(s.rel.rsplit('/').next().unwrap_or_default()) {
                            continue;
                        }
                        let mut entries = vec![(s.path.clone(), s.rel.clone())];
                        if s.path.is_dir() {
                            entries.extend(
                                ctx.walk(&s)
                                    .map_err(err)?
                                    .into_iter()
                                    .filter(|(_, r)| !excluded(r))
                                    .map(|(p, r)| (p, format!("{}/{r}", s.rel))),
                            );
                        }
                        parts.push(format!(
                            "{p}\0{}",
                            context::content_digest(&entries).map_err(err)?
                        ));
                    }
                }
                format!("context|{}", parts.join("|"))
            }
            From::Stage(j) => {
                let k = done[*j].as_ref().map(|s| s.key.clone()).unwrap_or_default();
                format!("stage:{k}|{}", items.join("|"))
            }
            From::Image(r) => {
                let img = self.pull(r).map_err(|e| err(e.to_string()))?;
                format!("image:{}|{}", img.key, items.join("|"))
            }
        };
        // A URL's content: the checksum it must have, else its download's.
        let mut url_sources = Vec::new();
        for url in urls {
            let (file, hex) = match &checksum {
                Some(c) => (None, c.clone()),
                None => {
                    let (f, h) = self.download_url(step, &url, None)?;
                    (Some(f), h)
                }
            };
            extras.push_str(&format!("|url:{url}\0sha256:{hex}"));
            url_sources.push(UrlSource {
                name: remote::file_name(&url),
                url,
                checksum: checksum.clone(),
                file,
            });
        }
        // Heredoc contents after expansion (the text has them as written).
        for (name, content) in &inline {
            extras.push_str(&format!(
                "|heredoc:{name}\0{}",
                super::digest::sha256_hex(content.as_bytes())
            ));
        }
        // The values a variable gave the flags belong in the key; a flag
        // written without variables is in the step text already, so keys of
        // such steps stay as they were.
        for (name, value, written) in [
            ("chown", &chown, &cmd.chown),
            ("chmod", &chmod.as_ref().map(Chmod::key_text), &cmd.chmod),
        ] {
            if let (Some(v), Some(raw)) = (value, written)
                && raw.contains('$')
            {
                extras.push_str(&format!("|{name}={v}"));
            }
        }
        Ok(CopyPlan {
            key_extras: extras,
            from,
            patterns: items,
            dest,
            chown,
            chmod,
            is_add: cmd.add,
            inline,
            exclude,
            parents: cmd.parents,
            unpack: cmd.unpack,
            urls: url_sources,
        })
    }

    /// Downloads `url` into a work directory, at most
    /// [`remote::ADD_URL_MAX`] bytes; returns the file and its hex sha256.
    fn download_url(
        &mut self,
        step: &Step,
        url: &str,
        checksum: Option<&str>,
    ) -> R<(PathBuf, String)> {
        let dir = self.store.temp_dir("add-url").map_err(io_err("work dir"))?;
        self.work_dirs.push(dir.clone());
        let path = dir.join("download");
        let hex =
            remote::download(url, &path, remote::ADD_URL_MAX, checksum).map_err(|e| step.err(e))?;
        Ok((path, hex))
    }

    pub(crate) fn do_copy(
        &mut self,
        step: &Step,
        done: &mut [Option<StageState>],
        plan: &CopyPlan,
        root: &Path,
    ) -> R<()> {
        let ctx = step.scope.ctx;
        let err = |m: String| -> BuildError { step.err(m) };
        // Sources: host path, the name a file keeps under a directory
        // destination (the name as written, even when it is a symlink; with
        // `--parents`, its path), and for a directory its walk entries.
        let mut sources: Vec<CopySource> = Vec::new();
        let kept = |p: &str, rel: &str| -> String {
            if plan.parents {
                kept_path(p, rel)
            } else {
                rel.rsplit('/').next().unwrap_or_default().to_string()
            }
        };
        match &plan.from {
            From::Context => {
                for p in &plan.patterns {
                    for s in ctx.resolve(p).map_err(err)? {
                        let entries = if s.path.is_dir() {
                            ctx.walk(&s).map_err(err)?
                        } else {
                            vec![]
                        };
                        let name = kept(p, &s.rel);
                        sources.push((s.path, name, entries));
                    }
                }
            }
            From::Stage(_) | From::Image(_) => {
                let src_root = match &plan.from {
                    From::Stage(j) => {
                        let mut s = done[*j]
                            .take()
                            .ok_or_else(|| err("source stage not built".into()))?;
                        let r = self.ensure_rootfs_pub(&mut s);
                        done[*j] = Some(s);
                        r?
                    }
                    From::Image(r) => {
                        let mut s = self.pull(r)?;
                        let rr = self.ensure_rootfs_pub(&mut s)?;
                        self.images.insert(r.clone(), s);
                        rr
                    }
                    From::Context => unreachable!("handled above"),
                };
                for p in &plan.patterns {
                    for (path, rel) in stage_sources(&src_root, p).map_err(err)? {
                        let is_dir = fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
                        let entries = if is_dir {
                            context::walk_tree(&path, |_| false).map_err(err)?
                        } else {
                            vec![]
                        };
                        sources.push((path, kept(p, &rel), entries));
                    }
                }
            }
        }
        if let Some(rules) = &plan.exclude {
            apply_exclude(rules, &mut sources);
        }
        // Downloads are copied as they are, never unpacked (as Docker does).
        let mut downloads: Vec<PathBuf> = Vec::new();
        for u in &plan.urls {
            let path = match &u.file {
                Some(f) => f.clone(),
                None => self.download_url(step, &u.url, u.checksum.as_deref())?.0,
            };
            downloads.push(path.clone());
            sources.push((path, u.name.clone(), vec![]));
        }
        if !plan.inline.is_empty() {
            let dir = self.store.temp_dir("heredoc").map_err(io_err("work dir"))?;
            self.work_dirs.push(dir.clone());
            for (i, (name, content)) in plan.inline.iter().enumerate() {
                // One directory per heredoc: two may share a name.
                let path = dir.join(i.to_string()).join("f");
                fs::create_dir_all(dir.join(i.to_string())).map_err(io_err(dir.display()))?;
                fs::write(&path, content).map_err(io_err(path.display()))?;
                fs::set_permissions(&path, fs::Permissions::from_mode(0o644))
                    .map_err(io_err(path.display()))?;
                sources.push((path, name.clone(), vec![]));
            }
        }
        let (uid, gid) = match &plan.chown {
            Some(c) => super::user::resolve_chown(root, c).map_err(err)?,
            None => (0, 0),
        };
        let owner = host_owner(uid, gid, super::engine::rootless_ids()).map_err(err)?;
        let dest_existing_dir = fsutil::secure_join(root, &plan.dest, true)
            .map(|p| p.is_dir())
            .unwrap_or(false);
        // With `--parents` the destination is always a directory.
        let dest_dir = plan.parents || plan.dest.ends_with('/') || dest_existing_dir;
        if sources.len() > 1 && !dest_dir {
            return Err(err(format!(
                "when copying more than one source the destination must be a directory and end with a /: {}",
                plan.dest
            )));
        }
        let opts = Put {
            owner,
            chmod: plan.chmod.clone(),
        };
        let dest = plan.dest.trim_end_matches('/');
        // ADD unpacks local archives, and downloads only with `--unpack`.
        let unpack = |p: &PathBuf| plan.is_add && plan.unpack.unwrap_or(!downloads.contains(p));
        for (path, name, entries) in &sources {
            let meta = fs::metadata(path).map_err(io_err(path.display()))?;
            if plan.parents {
                kept_parents(root, dest, name, path, &opts)?;
            }
            if meta.is_dir() {
                let d = if plan.parents && !name.is_empty() {
                    format!("{dest}/{name}")
                } else {
                    dest.to_string()
                };
                ensure_dir(root, &d, &opts, Some(&meta))?;
                for (p, rel) in entries {
                    put(root, p, &format!("{d}/{rel}"), &opts)?;
                }
            } else if unpack(path) && is_archive(path) {
                // With `--parents`, into the directory the archive is in.
                let d = match name.rsplit_once('/') {
                    Some((dir, _)) if plan.parents => format!("{dest}/{dir}"),
                    _ => dest.to_string(),
                };
                let d = d.as_str();
                ensure_dir(root, d, &opts, None)?;
                let target = fsutil::secure_join(root, d, true).map_err(io_err(d))?;
                super::layer::extract(path, &target)
                    .map_err(|e| err(format!("extracting {}: {e}", path.display())))?;
            } else {
                let target = if dest_dir {
                    format!("{dest}/{name}")
                } else {
                    plan.dest.clone()
                };
                let parent = fsutil::clean_components(&target);
                if parent.len() > 1 {
                    let p = format!("/{}", parent[..parent.len() - 1].join("/"));
                    let hp = fsutil::secure_join(root, &p, true).map_err(io_err(&p))?;
                    fs::create_dir_all(&hp).map_err(io_err(&p))?;
                }
                put(root, path, &target, &opts)?;
            }
        }
        Ok(())
    }

    /// The stage's root filesystem, made on first use: an overlay on the
    /// build's one extraction of its layers, or an extraction of its own
    /// (see [`super::overlay`]).
    pub(crate) fn ensure_rootfs_pub(&mut self, st: &mut StageState) -> R<PathBuf> {
        if let Some(r) = &st.rootfs {
            return Ok(r.clone());
        }
        let overlays = self.overlays.clone().filter(|o| !o.refused());
        let root = match overlays {
            Some(o) if !st.layers.is_empty() => match self.overlay_root(&o, &st.layers)? {
                Some(root) => root,
                None => self.extracted_root(&st.layers)?,
            },
            _ => self.extracted_root(&st.layers)?,
        };
        st.rootfs = Some(root.clone());
        Ok(root)
    }

    /// A work directory with `layers` extracted in it.
    fn extracted_root(&mut self, layers: &[LayerRef]) -> R<PathBuf> {
        let blobs = self.layer_blobs(layers)?;
        let dir = self.store.temp_dir("rootfs").map_err(io_err("work dir"))?;
        self.work_dirs.push(dir.clone());
        extract_layers(&blobs, &dir).map_err(LowerError::into_build_error)?;
        Ok(dir)
    }

    /// The stored blob of each of `layers`, fetched where missing.
    fn layer_blobs(&mut self, layers: &[LayerRef]) -> R<Vec<(String, PathBuf)>> {
        layers
            .iter()
            .map(|l| Ok((l.digest.clone(), self.ensure_blob(&l.digest)?)))
            .collect()
    }

    /// An overlay root on the shared extraction of `layers`; `None` when
    /// the kernel refused the mount (the caller extracts instead).
    fn overlay_root(&mut self, o: &Overlays, layers: &[LayerRef]) -> R<Option<PathBuf>> {
        let blobs = self.layer_blobs(layers)?;
        let key: Vec<&str> = layers.iter().map(|l| l.digest.as_str()).collect();
        let store = self.store.clone();
        let lower = o
            .lower(
                &key.join(","),
                || store.temp_dir("lower"),
                |dir| extract_layers(&blobs, dir),
            )
            .map_err(LowerError::into_build_error)?;
        self.work_dirs.push(lower.clone());
        let dir = self.store.temp_dir("rootfs").map_err(io_err("work dir"))?;
        self.work_dirs.push(dir.clone());
        match o.mount(&lower, &dir) {
            Ok(root) => Ok(Some(root)),
            Err(e) => {
                self.log(&format!(
                    "note: overlay roots are not available here ({e}); each stage's root is extracted"
                ));
                Ok(None)
            }
        }
    }
}

/// Extracts layer blobs onto `dir` in order; an error names the layer.
fn extract_layers(blobs: &[(String, PathBuf)], dir: &Path) -> Result<(), LowerError> {
    for (digest, p) in blobs {
        super::layer::extract(p, dir)
            .map_err(|e| LowerError::new(format!("extracting layer {digest}"), &e))?;
    }
    Ok(())
}

/// Resolves a `COPY --from` source pattern inside a stage's (or image's)
/// root, as if chrooted there: every symlink on the way, the matched entry
/// itself included, is followed with the root as `/` (see
/// [`fsutil::secure_join`]), so no source can name a host path. Any
/// component may be a wildcard (`**`: any number of directories). Returns
/// the host paths with the paths the pattern matched, relative to the root.
fn stage_sources(src_root: &Path, pattern: &str) -> Result<Vec<(PathBuf, String)>, String> {
    let comps = fsutil::clean_components(pattern);
    if comps.is_empty() {
        return Ok(vec![(src_root.to_path_buf(), String::new())]);
    }
    let is_glob = comps.iter().any(|c| glob::has_meta(c));
    let rels = if is_glob {
        let mut found = Vec::new();
        let mut budget = STAGE_GLOB_ENTRIES_MAX;
        glob_in_root(src_root, "", &comps, &mut found, &mut budget)
            .map_err(|e| format!("{pattern:?}: {e}"))?;
        found.sort();
        found.dedup();
        found
    } else {
        vec![comps.join("/")]
    };
    let mut found = Vec::new();
    for rel in rels {
        let image_path = format!("/{rel}");
        let path = fsutil::secure_join(src_root, &image_path, true)
            .map_err(|e| format!("{pattern:?}: {e}"))?;
        match fs::symlink_metadata(&path) {
            Ok(m) if !m.file_type().is_symlink() => found.push((path, rel)),
            // A missing literal source is reported as not found below.
            _ if !is_glob => {}
            _ => {
                return Err(format!(
                    "{pattern:?} matches {image_path}, a symbolic link whose target does not exist in the source stage/image"
                ));
            }
        }
    }
    if found.is_empty() {
        return Err(format!("{pattern:?} not found in the source stage/image"));
    }
    Ok(found)
}

/// Most directory entries one `COPY --from` wildcard may look at: an image
/// can hold millions.
const STAGE_GLOB_ENTRIES_MAX: usize = 1_000_000;
/// How deep `**` descends (each level is a recursion).
const STAGE_GLOB_DEPTH_MAX: usize = 256;

/// Adds to `found` the paths under `dir` (relative to `root`, `""` for the
/// root) that `comps` match, one component at a time. Directories are
/// listed where they resolve inside the root; `**` descends into real
/// directories only (never through a symlink, so no loop).
fn glob_in_root(
    root: &Path,
    dir: &str,
    comps: &[String],
    found: &mut Vec<String>,
    budget: &mut usize,
) -> Result<(), String> {
    let Some((first, rest)) = comps.split_first() else {
        // Kept when the entry is there, a dangling link included (which the
        // caller then names); a literal component after a wildcard may not be.
        let (parent, name) = dir.rsplit_once('/').unwrap_or(("", dir));
        let present = fsutil::secure_join(root, &format!("/{parent}"), true)
            .is_ok_and(|p| fs::symlink_metadata(p.join(name)).is_ok());
        if present {
            found.push(dir.to_string());
        }
        return Ok(());
    };
    let join = |name: &str| match dir {
        "" => name.to_string(),
        d => format!("{d}/{name}"),
    };
    if !glob::has_meta(first) {
        return glob_in_root(root, &join(first), rest, found, budget);
    }
    let host = fsutil::secure_join(root, &format!("/{dir}"), true).map_err(|e| e.to_string())?;
    let Ok(entries) = fs::read_dir(&host) else {
        return Ok(());
    };
    let mut names = Vec::new();
    for e in entries.flatten() {
        *budget = budget.checked_sub(1).ok_or_else(|| {
            format!("more than {STAGE_GLOB_ENTRIES_MAX} entries to match; name the directory")
        })?;
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        names.push((e.file_name().to_string_lossy().to_string(), is_dir));
    }
    names.sort();
    if first == "**" {
        if dir.split('/').count() > STAGE_GLOB_DEPTH_MAX {
            return Err(format!(
                "** reaches more than {STAGE_GLOB_DEPTH_MAX} directories deep"
            ));
        }
        // Zero directories here, then one more for each real directory.
        glob_in_root(root, dir, rest, found, budget)?;
        for (name, is_dir) in &names {
            if *is_dir {
                glob_in_root(root, &join(name), comps, found, budget)?;
            }
        }
        return Ok(());
    }
    for (name, _) in names.iter().filter(|(n, _)| glob::matches(first, n)) {
        glob_in_root(root, &join(name), rest, found, budget)?;
    }
    Ok(())
}

/// The path a `--parents` source keeps under the destination: its path
/// `rel` from the root (of the context, stage or image), less what comes
/// before a `/./` in the pattern `p` that matched it.
fn kept_path(p: &str, rel: &str) -> String {
    let comps = fsutil::clean_components(rel);
    let pivot = match p.split_once("/./") {
        Some((before, _)) => fsutil::clean_components(before),
        None => Vec::new(),
    };
    match comps.strip_prefix(pivot.as_slice()) {
        Some(rest) => rest.join("/"),
        None => comps.join("/"),
    }
}

/// Creates the directories a `--parents` source's kept path `name` has
/// under `dest`, each with the mode of the source's directory at the same
/// depth (`path`'s ancestors), as BuildKit copies a source's parents.
fn kept_parents(root: &Path, dest: &str, name: &str, path: &Path, o: &Put) -> R<()> {
    let comps: Vec<&str> = name.split('/').filter(|c| !c.is_empty()).collect();
    for depth in 1..comps.len() {
        let d = format!("{dest}/{}", comps[..depth].join("/"));
        let src = path
            .ancestors()
            .nth(comps.len() - depth)
            .and_then(|a| fs::metadata(a).ok())
            .filter(|m| m.is_dir());
        ensure_dir(root, &d, o, src.as_ref())?;
    }
    Ok(())
}

/// A COPY source: host path, the name it keeps under a directory
/// destination, and for a directory its walk entries (host path, relative).
type CopySource = (PathBuf, String, Vec<(PathBuf, String)>);

struct Put {
    /// Host ids to give copied entries; `None` keeps the caller's own.
    owner: Option<(u32, u32)>,
    chmod: Option<Chmod>,
}

impl Put {
    /// The mode an entry copied with mode `mode` gets.
    fn mode(&self, mode: u32, is_dir: bool) -> u32 {
        match &self.chmod {
            Some(c) => c.apply(mode, is_dir),
            None => mode & 0o7777,
        }
    }
}

/// Whether ADD unpacks `p`: a tar, plain or compressed as
/// [`super::decompress`] reads, as Docker tells it (the first header
/// reads); anything else, a gzipped text file included, is copied.
fn is_archive(p: &Path) -> bool {
    let Ok(reader) = super::decompress::open(p) else {
        return false;
    };
    tar::Archive::new(reader)
        .entries()
        .ok()
        .and_then(|mut e| e.next())
        .is_some_and(|first| first.is_ok())
}

fn ensure_dir(root: &Path, d: &str, o: &Put, src: Option<&fs::Metadata>) -> R<()> {
    let hp = fsutil::secure_join(root, d, true).map_err(io_err(d))?;
    if !hp.is_dir() {
        if fs::symlink_metadata(&hp).is_ok() {
            fs::remove_file(&hp).map_err(io_err(d))?;
        }
        fs::create_dir_all(&hp).map_err(io_err(d))?;
        let mode = o.mode(src.map(|m| m.mode()).unwrap_or(0o755), true);
        fs::set_permissions(&hp, fs::Permissions::from_mode(mode)).map_err(io_err(d))?;
        set_owner(&hp, o).map_err(io_err(d))?;
    }
    Ok(())
}

/// The host owner for copied files owned by `uid:gid` in the image.
/// As root the ids are used as they are. Rootless (`rootless` holds the
/// caller's ids), the sandbox maps only root in the image to the caller,
/// who already owns every file it creates, so nothing is changed (the layer
/// writer records the caller as 0:0); any other owner cannot be represented
/// and is refused instead of failing on `lchown`.
fn host_owner(
    uid: u32,
    gid: u32,
    rootless: Option<(u32, u32)>,
) -> Result<Option<(u32, u32)>, String> {
    match rootless {
        None => Ok(Some((uid, gid))),
        Some(_) if (uid, gid) == (0, 0) => Ok(None),
        Some(_) => Err(format!(
            "--chown to {uid}:{gid} needs root: a rootless build maps only root in the image \
             (to your user), so files cannot be owned by other ids; run kmigrate as root or drop --chown"
        )),
    }
}

fn set_owner(p: &Path, o: &Put) -> std::io::Result<()> {
    match o.owner {
        Some((uid, gid)) => std::os::unix::fs::lchown(p, Some(uid), Some(gid)),
        None => Ok(()),
    }
}

/// Copies one entry to an image path, never following a symlink in the
/// image at the final component.
fn put(root: &Path, src: &Path, image_path: &str, o: &Put) -> R<()> {
    let comps = fsutil::clean_components(image_path);
    let Some((name, parents)) = comps.split_last() else {
        return Ok(());
    };
    let parent = fsutil::secure_join(root, &parents.join("/"), true).map_err(io_err(image_path))?;
    fs::create_dir_all(&parent).map_err(io_err(image_path))?;
    let target = parent.join(name);
    let m = fs::symlink_metadata(src).map_err(io_err(src.display()))?;
    if let Ok(existing) = fs::symlink_metadata(&target)
        && !(existing.is_dir() && m.is_dir())
    {
        if existing.is_dir() {
            fs::remove_dir_all(&target).map_err(io_err(image_path))?;
        } else {
            fs::remove_file(&target).map_err(io_err(image_path))?;
        }
    }
    let ft = m.file_type();
    let mode = o.mode(m.mode(), ft.is_dir());
    if ft.is_symlink() {
        let t = fs::read_link(src).map_err(io_err(src.display()))?;
        std::os::unix::fs::symlink(t, &target).map_err(io_err(image_path))?;
        set_owner(&target, o).map_err(io_err(image_path))?;
        return Ok(());
    }
    if ft.is_dir() {
        if !target.is_dir() {
            fs::create_dir(&target).map_err(io_err(image_path))?;
        }
    } else if ft.is_file() {
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&target)
            .map_err(io_err(image_path))?;
        // O_NOFOLLOW: a source swapped for a symlink after it was resolved
        // fails instead of being read through.
        let mut inp = fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(src)
            .map_err(io_err(src.display()))?;
        std::io::copy(&mut inp, &mut out).map_err(io_err(image_path))?;
    } else {
        return Ok(());
    }
    set_owner(&target, o).map_err(io_err(image_path))?;
    fs::set_permissions(&target, fs::Permissions::from_mode(mode)).map_err(io_err(image_path))?;
    if let Ok(f) = fs::File::open(&target)
        && let Ok(t) = m.modified()
    {
        let _ = f.set_times(fs::FileTimes::new().set_modified(t));
    }
    Ok(())
}

/// `--exclude`: drops the sources whose name matches, and the entries of a
/// directory source that match relative to it (a matching directory takes
/// what is below it along).
fn apply_exclude(rules: &IgnoreRules, sources: &mut Vec<CopySource>) {
    sources.retain(|(_, name, _)| !rules.excluded(name));
    for (_, _, entries) in sources.iter_mut() {
        entries.retain(|(_, rel)| !rules.excluded(rel));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn stage_sources_resolve_symlinks_inside_the_root() {
        let host = tempfile::tempdir().unwrap();
        fs::write(host.path().join("secret"), "host").unwrap();
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(root.join("etc/passwd"), "image").unwrap();
        symlink("/etc", root.join("leaketc")).unwrap();
        symlink("../../../../../../etc", root.join("relleak")).unwrap();
        symlink(host.path(), root.join("hostdir")).unwrap();
        symlink("/etc/passwd", root.join("pw")).unwrap();
        symlink("/loop2", root.join("loop1")).unwrap();
        symlink("loop1", root.join("loop2")).unwrap();
        for pat in ["/lea*", "/relleak", "/rel*"] {
            let got = stage_sources(root, pat).unwrap();
            assert_eq!(got.len(), 1, "{pat}");
            assert_eq!(got[0].0, root.join("etc"), "{pat}");
        }
        // The name as written is kept for a directory destination.
        assert_eq!(
            stage_sources(root, "/pw").unwrap(),
            vec![(root.join("etc/passwd"), "pw".to_string())]
        );
        // A link to a host path resolves inside the root, where it is missing.
        assert!(stage_sources(root, "/hostdir").is_err());
        assert!(
            stage_sources(root, "/hostd*")
                .unwrap_err()
                .contains("does not exist in the source stage")
        );
        for pat in ["/loop1", "/loop*", "/loop1/x"] {
            let e = stage_sources(root, pat).unwrap_err();
            assert!(e.contains("symbolic links"), "{pat}: {e}");
        }
    }

    #[test]
    fn stage_wildcards_in_any_component_stay_inside_the_root() {
        let host = tempfile::tempdir().unwrap();
        fs::create_dir_all(host.path().join("keys")).unwrap();
        fs::write(host.path().join("keys/host"), "host").unwrap();
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        for f in [
            "usr/share/a/keys/k1",
            "usr/lib/b/keys/k2",
            "usr/keys/k0",
            "opt/x/keys/k3",
        ] {
            fs::create_dir_all(root.join(f).parent().unwrap()).unwrap();
            fs::write(root.join(f), f).unwrap();
        }
        // A link to a host directory resolves inside the root, where it is
        // missing; `**` never descends through a link (no loop either).
        symlink(host.path(), root.join("usr/hostlink")).unwrap();
        symlink("/usr", root.join("usr/share/loop")).unwrap();
        let rels = |pat: &str| -> Vec<String> {
            stage_sources(root, pat)
                .unwrap()
                .into_iter()
                .map(|(p, r)| {
                    assert!(p.starts_with(root), "{pat}: {}", p.display());
                    r
                })
                .collect()
        };
        // `*` matches a link to a directory by its name; it then resolves
        // inside the root.
        assert_eq!(
            rels("/usr/*/*/keys"),
            ["usr/lib/b/keys", "usr/share/a/keys", "usr/share/loop/keys"]
        );
        assert_eq!(
            rels("/usr/**/keys"),
            ["usr/keys", "usr/lib/b/keys", "usr/share/a/keys"]
        );
        assert_eq!(
            rels("/**/k?"),
            [
                "opt/x/keys/k3",
                "usr/keys/k0",
                "usr/lib/b/keys/k2",
                "usr/share/a/keys/k1"
            ]
        );
        assert_eq!(rels("/usr/s*/a/keys/k1"), ["usr/share/a/keys/k1"]);
        assert!(
            stage_sources(root, "/usr/host*/keys")
                .unwrap_err()
                .contains("not found")
        );
        assert!(
            stage_sources(root, "/nope/*")
                .unwrap_err()
                .contains("not found")
        );
        // The walk is bounded, in entries and in depth.
        let deep = (0..300)
            .map(|i| format!("d{i}"))
            .collect::<Vec<_>>()
            .join("/");
        fs::create_dir_all(root.join("deep").join(&deep)).unwrap();
        assert!(
            stage_sources(root, "/deep/**/x")
                .unwrap_err()
                .contains("more than 256 directories deep")
        );
        let mut found = Vec::new();
        let mut budget = 3;
        let comps: Vec<String> = ["**", "k1"].iter().map(|s| s.to_string()).collect();
        assert!(
            glob_in_root(root, "", &comps, &mut found, &mut budget)
                .unwrap_err()
                .contains("entries to match")
        );
    }

    #[test]
    fn kept_paths_cut_at_a_dot_component() {
        assert_eq!(kept_path("x/a.txt", "x/a.txt"), "x/a.txt");
        assert_eq!(kept_path("./x/./y/*.txt", "x/y/b.txt"), "y/b.txt");
        assert_eq!(
            kept_path("/usr/share/./keys/a", "usr/share/keys/a"),
            "keys/a"
        );
        assert_eq!(kept_path("x/./", "x"), "");
        // A pivot the match does not start with keeps the whole path.
        assert_eq!(kept_path("a/./b", "c/b"), "c/b");
    }

    #[test]
    fn rootless_owners_map_only_root() {
        assert_eq!(host_owner(5, 6, None), Ok(Some((5, 6))));
        assert_eq!(host_owner(0, 0, Some((1000, 1000))), Ok(None));
        assert!(
            host_owner(1000, 1000, Some((1000, 1000)))
                .unwrap_err()
                .contains("needs root")
        );
    }
}
