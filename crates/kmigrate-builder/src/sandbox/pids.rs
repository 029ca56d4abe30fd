//! A bound on the number of processes of one RUN, so a fork bomb in a
//! Dockerfile cannot exhaust the host's process table.
//!
//! Preferred: a pids cgroup of its own (cgroup v2, or the v1 `pids`
//! hierarchy) under kmigrate's cgroup, with `pids.max`; the RUN's first
//! process joins it before creating the pid namespace, so every process of
//! the RUN is counted and `pids.events` tells whether the limit was hit.
//!
//! Fallback: `RLIMIT_NPROC`. It counts every process of the RUN's real user
//! on the host, not only the RUN's (a RUN as uid 1000 shares the budget with
//! the host's uid 1000), and the kernel does not enforce it for host root:
//! a root build without a pids cgroup has no process bound.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// Name prefix of the per-RUN cgroups, so stale ones can be found.
const PREFIX: &str = "kmigrate-run-";

/// The process bound of one RUN; removes its cgroup on drop.
#[derive(Debug)]
pub(super) struct PidsLimit {
    max: u32,
    cgroup: Option<Cgroup>,
}

#[derive(Debug)]
struct Cgroup {
    dir: PathBuf,
    /// `cgroup.procs`, opened here so the child only writes to it.
    procs: fs::File,
}

impl PidsLimit {
    /// A bound of `max` processes: a pids cgroup when this host offers one
    /// kmigrate may write, otherwise the `RLIMIT_NPROC` fallback.
    pub(super) fn new(max: u32) -> Self {
        let cgroup = own_pids_cgroup().and_then(|parent| Cgroup::create(&parent, max).ok());
        Self { max, cgroup }
    }

    pub(super) fn max(&self) -> u32 {
        self.max
    }

    /// The `cgroup.procs` descriptor the child writes `0` to (joining the
    /// cgroup), or `None` when the fallback applies.
    pub(super) fn join_fd(&self) -> Option<RawFd> {
        self.cgroup.as_ref().map(|c| c.procs.as_raw_fd())
    }

    /// Whether a fork of the RUN failed because of the limit. Only a cgroup
    /// can tell; the fallback answers `false`.
    pub(super) fn reached(&self) -> bool {
        let Some(c) = &self.cgroup else { return false };
        fs::read_to_string(c.dir.join("pids.events")).is_ok_and(|ev| {
            ev.lines().any(|l| {
                l.strip_prefix("max ")
                    .and_then(|n| n.trim().parse::<u64>().ok())
                    .is_some_and(|n| n > 0)
            })
        })
    }
}

impl Drop for PidsLimit {
    fn drop(&mut self) {
        if let Some(c) = &self.cgroup {
            // The pid namespace is gone when the run returns, but the kernel
            // empties the cgroup asynchronously: retry for a moment.
            for _ in 0..50 {
                if fs::remove_dir(&c.dir).is_ok() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Cgroup {
    fn create(parent: &Path, max: u32) -> io::Result<Self> {
        remove_stale(parent);
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = parent.join(format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&dir)?;
        let made = (|| {
            fs::write(dir.join("pids.max"), max.to_string())?;
            fs::OpenOptions::new()
                .write(true)
                .open(dir.join("cgroup.procs"))
        })();
        match made {
            Ok(procs) => Ok(Self { dir, procs }),
            Err(e) => {
                let _ = fs::remove_dir(&dir);
                Err(e)
            }
        }
    }
}

/// The directory of kmigrate's own cgroup in a hierarchy with the pids
/// controller, ready for a child with `pids.max`: cgroup v2 (enabling
/// `pids` for children when needed), else the v1 `pids` hierarchy.
fn own_pids_cgroup() -> Option<PathBuf> {
    let membership = fs::read_to_string("/proc/self/cgroup").ok()?;
    let mounts = fs::read_to_string("/proc/self/mountinfo").ok()?;
    if let Some(dir) = cgroup_dir(&membership, &mounts, Hierarchy::V2) {
        let enabled = |d: &Path| {
            fs::read_to_string(d.join("cgroup.subtree_control"))
                .is_ok_and(|c| c.split_whitespace().any(|w| w == "pids"))
        };
        // pids is a threaded controller: enabling it is allowed even while
        // kmigrate itself is a member of the cgroup.
        if enabled(&dir) || fs::write(dir.join("cgroup.subtree_control"), "+pids").is_ok() {
            return Some(dir);
        }
    }
    cgroup_dir(&membership, &mounts, Hierarchy::V1Pids)
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Hierarchy {
    V2,
    V1Pids,
}

/// Joins the cgroup path of `/proc/self/cgroup` with the mount point of its
/// hierarchy from `/proc/self/mountinfo`.
fn cgroup_dir(membership: &str, mountinfo: &str, h: Hierarchy) -> Option<PathBuf> {
    let path = membership.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_id, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        let wanted = match h {
            Hierarchy::V2 => ctrls.is_empty(),
            Hierarchy::V1Pids => ctrls.split(',').any(|c| c == "pids"),
        };
        wanted.then_some(path)
    })?;
    mountinfo.lines().find_map(|l| {
        // id parent major:minor root mount-point options [optional...] - fstype source super-options
        let (left, right) = l.split_once(" - ")?;
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        let (root, point) = (*left.get(3)?, *left.get(4)?);
        let is_it = match h {
            Hierarchy::V2 => right.first() == Some(&"cgroup2"),
            Hierarchy::V1Pids => {
                right.first() == Some(&"cgroup")
                    && right
                        .get(2)
                        .is_some_and(|o| o.split(',').any(|c| c == "pids"))
            }
        };
        if !is_it {
            return None;
        }
        let rel = path
            .strip_prefix(root)
            .unwrap_or(path)
            .trim_start_matches('/');
        let dir = Path::new(point).join(rel);
        dir.is_dir().then_some(dir)
    })
}

/// Removes cgroups left by a kmigrate that was killed: those of a process
/// that no longer exists, once a minute old (a fresh one may be a live
/// build's that its RUN has not joined yet). `rmdir` never removes a cgroup
/// that still has processes.
fn remove_stale(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age > Duration::from_secs(60));
        if old && !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = fs::remove_dir(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/0a50\n0::/\n";

    #[test]
    fn finds_the_v1_pids_hierarchy_relative_to_the_mount_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("pids/job")).unwrap();
        std::fs::create_dir_all(dir.path().join("unified")).unwrap();
        let mi = format!(
            "30 25 0:26 / {0}/unified rw,relatime - cgroup2 cgroup2 rw\n\
             37 25 0:33 /build {0}/pids rw,relatime - cgroup cgroup rw,pids\n",
            dir.path().display()
        );
        let membership = "8:pids:/build/job\n0::/\n";
        assert_eq!(
            cgroup_dir(membership, &mi, Hierarchy::V1Pids),
            Some(dir.path().join("pids/job"))
        );
        assert_eq!(
            cgroup_dir(HYBRID, &mi, Hierarchy::V2),
            Some(dir.path().join("unified"))
        );
        assert_eq!(cgroup_dir("0::/\n", &mi, Hierarchy::V1Pids), None);
    }

    #[test]
    fn the_limit_is_reached_only_when_pids_events_counts_it() {
        let dir = tempfile::tempdir().unwrap();
        let procs = fs::File::create(dir.path().join("cgroup.procs")).unwrap();
        let l = PidsLimit {
            max: 5,
            cgroup: Some(Cgroup {
                dir: dir.path().to_path_buf(),
                procs,
            }),
        };
        fs::write(dir.path().join("pids.events"), "max 0\n").unwrap();
        assert!(!l.reached());
        fs::write(dir.path().join("pids.events"), "max 3\n").unwrap();
        assert!(l.reached());
        assert!(
            !PidsLimit {
                max: 5,
                cgroup: None
            }
            .reached()
        );
        std::mem::forget(l);
    }
}
