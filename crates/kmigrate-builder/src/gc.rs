//! The bound on the state directory: after a build, what earlier builds
//! left (blobs, cache records, `RUN --mount=type=cache` directories) is
//! removed least recently used first until the directory is within
//! [`BuildOptions::state_max_size`](super::BuildOptions::state_max_size).
//!
//! What the finishing build used is touched first, so it is the most
//! recently used and is never removed by its own collection. Removing
//! anything is safe for later builds: a cache record whose layer is gone is
//! a miss, a base image's blob is fetched again, a cache mount starts
//! empty (as BuildKit's garbage collector leaves them).
//!
//! Builds sharing a state directory each hold a shared lock on
//! `gc.lock` while they run; the collection needs the exclusive lock and is
//! skipped while another build runs (that build collects when it ends).

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::engine::Engine;
use super::progress::human;
use super::tmp_session::{flock, remove_tree};

/// A build's hold on its state directory: a shared `flock` on `gc.lock`,
/// released on drop.
#[derive(Debug)]
pub(crate) struct StateLock {
    _file: fs::File,
}

impl StateLock {
    /// Waits while a collection runs, then holds the directory shared.
    pub(crate) fn shared(state_dir: &Path) -> io::Result<Self> {
        let file = open_lock(state_dir)?;
        flock(&file, nix::libc::LOCK_SH)?;
        Ok(Self { _file: file })
    }
}

fn open_lock(state_dir: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(state_dir.join("gc.lock"))
}

/// What one build used, by the names the state directory files them under.
#[derive(Debug, Default)]
pub struct Used {
    /// Blob digests (`sha256:…`).
    pub blobs: HashSet<String>,
    /// Cache record keys.
    pub records: HashSet<String>,
}

/// What a collection did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Collected {
    /// Whether it ran (`false`: another build held the directory).
    pub ran: bool,
    /// Bytes in the directory before and after.
    pub before: u64,
    pub after: u64,
    /// Entries removed (blobs, records, cache mounts).
    pub removed: usize,
}

#[derive(Debug)]
struct Entry {
    /// The file or directory to remove.
    path: PathBuf,
    /// A cache mount's lock and size files, removed after the directory.
    beside: Vec<PathBuf>,
    size: u64,
    used: SystemTime,
}

/// Collects `state_dir` down to `max` bytes, keeping everything in `used`
/// (touched first, so the next collection sees it as recently used) and
/// everything used since `since` (the build's start: its cache mounts).
/// The caller must not hold a [`StateLock`] on it.
pub fn collect(
    state_dir: &Path,
    max: u64,
    used: &Used,
    since: SystemTime,
) -> io::Result<Collected> {
    let lock = open_lock(state_dir)?;
    if flock(&lock, nix::libc::LOCK_EX | nix::libc::LOCK_NB).is_err() {
        return Ok(Collected::default());
    }
    let kept = touch_used(state_dir, used);
    let mut entries = entries(state_dir, since)?;
    let before: u64 = entries.iter().map(|e| e.size).sum();
    let mut out = Collected {
        ran: true,
        before,
        after: before,
        removed: 0,
    };
    if before <= max {
        return Ok(out);
    }
    entries.sort_by_key(|e| e.used);
    for e in entries {
        if out.after <= max {
            break;
        }
        if kept.contains(&e.path) || e.used >= since {
            continue;
        }
        if remove_tree(&e.path).is_ok() {
            for b in &e.beside {
                let _ = fs::remove_file(b);
            }
            out.after -= e.size;
            out.removed += 1;
        }
    }
    Ok(out)
}

/// Sets the modification time of what the build used to now, through a
/// read-only descriptor (no content is written); returns their paths.
fn touch_used(state_dir: &Path, used: &Used) -> HashSet<PathBuf> {
    let now = SystemTime::now();
    let mut kept = HashSet::new();
    let mut touch = |p: PathBuf| {
        if let Ok(f) = fs::File::open(&p) {
            let _ = f.set_modified(now);
        }
        kept.insert(p);
    };
    for d in &used.blobs {
        if let Some(hex) = d.strip_prefix("sha256:").filter(|h| is_hex64(h)) {
            touch(state_dir.join("blobs/sha256").join(hex));
        }
    }
    for k in &used.records {
        if is_hex64(k) {
            touch(state_dir.join("cache").join(format!("{k}.json")));
        }
    }
    kept
}

/// Every collectable entry: blobs, cache records, and cache mounts (when
/// last used: their lock's time, which each use sets). A cache mount's size
/// only changes when a RUN uses it, so it is measured then (used since
/// `since`, or never measured) and kept in `<id>.size`: a build does not
/// walk every cache mount of the directory.
fn entries(state_dir: &Path, since: SystemTime) -> io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    for dir in ["blobs/sha256", "cache"] {
        let Ok(rd) = fs::read_dir(state_dir.join(dir)) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_file() {
                out.push(Entry {
                    path: e.path(),
                    beside: Vec::new(),
                    size: m.len(),
                    used: m.modified()?,
                });
            }
        }
    }
    let run_cache = state_dir.join("run-cache");
    if let Ok(rd) = fs::read_dir(&run_cache) {
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(name) = name.to_str().filter(|n| is_hex64(n)) else {
                continue;
            };
            let lock = run_cache.join(format!("{name}.lock"));
            let size_file = run_cache.join(format!("{name}.size"));
            let Ok(m) = fs::symlink_metadata(&lock).or_else(|_| e.metadata()) else {
                continue;
            };
            let used = m.modified()?;
            let recorded = fs::read_to_string(&size_file)
                .ok()
                .and_then(|s| s.trim().parse().ok());
            let size = match recorded {
                Some(n) if used < since => n,
                _ => {
                    let n = tree_size(&e.path());
                    let _ = fs::write(&size_file, n.to_string());
                    n
                }
            };
            out.push(Entry {
                path: e.path(),
                size,
                beside: vec![lock, size_file],
                used,
            });
        }
    }
    Ok(out)
}

/// The bytes of the regular files under `p`, links not followed.
fn tree_size(p: &Path) -> u64 {
    walkdir::WalkDir::new(p)
        .follow_links(false)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Engine<'_> {
    /// After a successful build: collects the state directory down to
    /// `max`, keeping what this build used; logs what went.
    pub(crate) fn collect_state(&mut self, max: u64, since: SystemTime) {
        let mut used = Used::default();
        for r in &self.records {
            used.records.insert(r.key.clone());
            used.blobs.extend(r.layer.iter().map(|l| l.digest.clone()));
        }
        for st in self.images.values() {
            used.blobs
                .extend(st.layers.iter().map(|l| l.digest.clone()));
        }
        used.blobs.extend(self.blob_sources.keys().cloned());
        used.blobs.insert(self.report.manifest_digest.clone());
        used.blobs.insert(self.report.config_digest.clone());
        match collect(self.store.root(), max, &used, since) {
            Ok(c) if c.removed > 0 => self.log(&format!(
                "state directory over {}: removed {} least recently used entries ({} -> {})",
                human(max),
                c.removed,
                human(c.before),
                human(c.after)
            )),
            Ok(_) => {}
            Err(e) => self.warn(format!(
                "could not collect the state directory {}: {e}",
                self.store.root().display()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn aged(p: &Path, secs_ago: u64) {
        let t = SystemTime::now() - Duration::from_secs(secs_ago);
        fs::File::open(p).unwrap().set_modified(t).unwrap();
    }

    /// A build that started a second ago.
    fn start() -> SystemTime {
        SystemTime::now() - Duration::from_secs(1)
    }

    fn hex(c: char) -> String {
        std::iter::repeat_n(c, 64).collect()
    }

    /// A state directory with three 1000-byte blobs of different ages, a
    /// record, and a 2000-byte cache mount.
    /// Marks cache mount `c` used now, as a RUN using it does (its lock's
    /// time).
    fn use_cache_mount(state: &Path, c: char) {
        let lock = state.join("run-cache").join(format!("{}.lock", hex(c)));
        fs::File::open(lock)
            .unwrap()
            .set_modified(SystemTime::now())
            .unwrap();
    }

    fn state() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let s = d.path();
        fs::create_dir_all(s.join("blobs/sha256")).unwrap();
        fs::create_dir_all(s.join("cache")).unwrap();
        fs::create_dir_all(s.join("run-cache").join(hex('c')).join("sub")).unwrap();
        for (c, age) in [('a', 300), ('b', 200), ('e', 100)] {
            let p = s.join("blobs/sha256").join(hex(c));
            fs::write(&p, vec![0u8; 1000]).unwrap();
            aged(&p, age);
        }
        let rec = s.join("cache").join(format!("{}.json", hex('1')));
        fs::write(&rec, "{}").unwrap();
        aged(&rec, 50);
        fs::write(
            s.join("run-cache").join(hex('c')).join("sub/f"),
            vec![0u8; 2000],
        )
        .unwrap();
        let lock = s.join("run-cache").join(format!("{}.lock", hex('c')));
        fs::write(&lock, "").unwrap();
        aged(&lock, 250);
        d
    }

    /// The first six characters of every file's name.
    fn left(s: &Path) -> Vec<String> {
        let mut v: Vec<String> = walkdir::WalkDir::new(s)
            .into_iter()
            .flatten()
            .filter(|e| e.file_type().is_file())
            .map(|e| e.file_name().to_string_lossy().chars().take(6).collect())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn the_default_is_what_build_help_says() {
        assert_eq!(
            crate::limits::parse_byte_size("10g"),
            Ok(crate::api::DEFAULT_STATE_MAX_SIZE)
        );
    }

    #[test]
    fn under_the_bound_nothing_is_removed() {
        let d = state();
        let c = collect(d.path(), 10_000, &Used::default(), start()).unwrap();
        assert_eq!(
            c,
            Collected {
                ran: true,
                before: 5002,
                after: 5002,
                removed: 0
            }
        );
    }

    #[test]
    fn the_least_recently_used_go_first_until_within_the_bound() {
        let d = state();
        // 5002 bytes down to 2500: the oldest blob (a), then the cache
        // mount (c, last used 250 s ago); b, e and the record stay.
        let c = collect(d.path(), 2500, &Used::default(), start()).unwrap();
        assert_eq!((c.removed, c.after), (2, 2002));
        assert_eq!(
            left(d.path()),
            ["111111", "bbbbbb", "eeeeee", "gc.loc"].map(String::from)
        );
        assert!(!d.path().join("run-cache").join(hex('c')).exists());
        assert!(
            !d.path()
                .join("run-cache")
                .join(format!("{}.lock", hex('c')))
                .exists()
        );
    }

    #[test]
    fn what_the_build_used_is_kept_and_becomes_the_most_recent() {
        let d = state();
        let used = Used {
            blobs: [format!("sha256:{}", hex('a'))].into(),
            records: HashSet::new(),
        };
        let c = collect(d.path(), 1, &used, start()).unwrap();
        assert_eq!(c.after, 1000);
        assert_eq!(left(d.path()), ["aaaaaa", "gc.loc"].map(String::from));
    }

    #[test]
    fn a_cache_mount_used_by_the_build_is_kept() {
        let d = state();
        use_cache_mount(d.path(), 'c');
        let c = collect(d.path(), 0, &Used::default(), start()).unwrap();
        assert_eq!((c.removed, c.after), (4, 2000));
        assert!(
            d.path()
                .join("run-cache")
                .join(hex('c'))
                .join("sub/f")
                .exists()
        );
    }

    #[test]
    fn a_cache_mount_is_measured_when_used_and_its_size_kept_beside_it() {
        let d = state();
        let size_file = d
            .path()
            .join("run-cache")
            .join(format!("{}.size", hex('c')));
        let c = collect(d.path(), 100_000, &Used::default(), start()).unwrap();
        assert_eq!(c.before, 5002);
        assert_eq!(fs::read_to_string(&size_file).unwrap(), "2000");
        // Not used since: the kept size counts, the tree is not walked.
        fs::write(&size_file, "7000").unwrap();
        let c = collect(d.path(), 100_000, &Used::default(), start()).unwrap();
        assert_eq!(c.before, 10_002);
        // Used by this build: measured again.
        use_cache_mount(d.path(), 'c');
        let c = collect(d.path(), 100_000, &Used::default(), start()).unwrap();
        assert_eq!(c.before, 5002);
        assert_eq!(fs::read_to_string(&size_file).unwrap(), "2000");
    }

    #[test]
    fn a_running_build_defers_the_collection() {
        let d = state();
        let hold = StateLock::shared(d.path()).unwrap();
        let before = left(d.path());
        let c = collect(d.path(), 0, &Used::default(), start()).unwrap();
        assert!(!c.ran);
        assert_eq!(left(d.path()), before);
        drop(hold);
        let c = collect(d.path(), 0, &Used::default(), start()).unwrap();
        assert_eq!((c.ran, c.after, c.removed), (true, 0, 5));
        assert_eq!(left(d.path()), ["gc.loc"].map(String::from));
    }

    #[test]
    fn names_that_are_not_digests_are_not_touched_through() {
        let d = state();
        let used = Used {
            blobs: ["sha256:../../x".to_string()].into(),
            records: ["../x".to_string()].into(),
        };
        let before = left(d.path());
        touch_used(d.path(), &used);
        assert_eq!(left(d.path()), before);
    }
}
