//! runc's (and Docker's) default protection of `/proc` for a RUN: kernel
//! files that leak host state are masked, and the files that change the
//! host kernel (sysctls, sysrq, irq affinity) are mounted read-only. Without
//! this a root RUN writes host sysctls: `/proc/sys/kernel/core_pattern` is a
//! known route to host root.

use std::ffi::CString;
use std::io;
use std::path::Path;

use nix::libc;
use nix::mount::{MsFlags, mount};

/// Entries of `/proc` a RUN must not read (Docker's `MaskedPaths`): files
/// get `/dev/null` bound over them, directories an empty read-only tmpfs.
pub(super) const MASKED: &[&str] = &[
    "asound",
    "acpi",
    "interrupts",
    "kcore",
    "keys",
    "latency_stats",
    "timer_list",
    "timer_stats",
    "sched_debug",
    "scsi",
];

/// Entries of `/proc` a RUN may read but not write (Docker's
/// `ReadonlyPaths`).
pub(super) const READ_ONLY: &[&str] = &["bus", "fs", "irq", "sys", "sysrq-trigger"];

/// The paths under a sandbox's freshly mounted `/proc`, prepared before
/// `fork` so that [`ProcMasks::apply`] allocates nothing.
pub(super) struct ProcMasks {
    masked: Vec<CString>,
    read_only: Vec<CString>,
    null: CString,
    tmpfs: CString,
}

impl ProcMasks {
    /// Masks for the proc filesystem that will be mounted at `proc_dir`.
    pub(super) fn new(proc_dir: &Path) -> io::Result<Self> {
        let paths = |names: &[&str]| -> io::Result<Vec<CString>> {
            names
                .iter()
                .map(|n| super::cpath(&proc_dir.join(n)))
                .collect()
        };
        Ok(Self {
            masked: paths(MASKED)?,
            read_only: paths(READ_ONLY)?,
            null: CString::new("/dev/null").expect("static"),
            tmpfs: CString::new("tmpfs").expect("static"),
        })
    }

    /// Applies the masks, in the sandbox's child after `/proc` is mounted
    /// and before `pivot_root` (`/dev/null` is still the host's). Entries
    /// this kernel does not have are skipped. Only syscalls: safe between
    /// `fork` and `exec`.
    pub(super) fn apply(&self) -> io::Result<()> {
        let hardened = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        for p in &self.masked {
            match file_kind(p) {
                None => continue,
                Some(libc::S_IFDIR) => mount(
                    Some(self.tmpfs.as_c_str()),
                    p.as_c_str(),
                    Some(self.tmpfs.as_c_str()),
                    MsFlags::MS_RDONLY | hardened,
                    None::<&std::ffi::CStr>,
                )?,
                Some(_) => super::bind_mount(&self.null, p)?,
            }
        }
        for p in &self.read_only {
            if file_kind(p).is_none() {
                continue;
            }
            super::bind_mount(p, p)?;
            // A bind mount takes its flags from a remount; the proc mount's
            // own flags are repeated (a user namespace refuses to drop them).
            mount(
                None::<&std::ffi::CStr>,
                p.as_c_str(),
                None::<&std::ffi::CStr>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | hardened,
                None::<&std::ffi::CStr>,
            )?;
        }
        Ok(())
    }
}

/// `S_IFMT` bits of `p` without following a final symlink, or `None` when
/// it does not exist.
fn file_kind(p: &CString) -> Option<libc::mode_t> {
    let st = nix::sys::stat::lstat(p.as_c_str()).ok()?;
    Some(st.st_mode & libc::S_IFMT)
}
