//! Runs a RUN step daemonless: new mount, pid, uts and ipc namespaces (plus a
//! user namespace when not root), the stage root bind-mounted and made `/`
//! with `pivot_root`, `/proc` and a minimal `/dev` mounted, then the image's
//! user, working directory and environment.
//!
//! Capabilities outside Docker's default set are dropped from the bounding
//! set, so even a root RUN cannot mount or use raw devices; `no_new_privs`
//! is set; `/proc` is masked as runc does ([`proc_masks`]); the stage root
//! and `/dev` are `nodev`, so a device node a RUN makes cannot be opened.
//!
//! Nothing of the caller's terminal or process reaches the RUN: it leads a
//! new session with no controlling terminal (so `/dev/tty` does not open and
//! `TIOCSTI` cannot type into the user's shell), stdin is `/dev/null`,
//! stdout and stderr are one pipe read by kmigrate, and every inherited
//! descriptor above 2 is closed at `exec`.
//!
//! The RUN's processes are bounded ([`pids`]) and never outlive kmigrate:
//! the waiting intermediate and the namespace's PID 1 both get
//! `PR_SET_PDEATHSIG(SIGKILL)`, and when PID 1 dies the kernel kills every
//! process of the namespace.
//!
//! The setup runs in the forked child before `exec` (only syscalls, no
//! allocation), with one more fork so the command is PID 1 of its namespace.

mod pids;
mod proc_masks;

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::fcntl::{OFlag, open};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};
use nix::sys::stat::Mode;
use nix::unistd::{ForkResult, Gid, Uid, chdir, fork, pivot_root, setgid, setgroups, setuid};

/// Device nodes bound from the host into the sandbox's `/dev`.
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// Capabilities a RUN keeps (Docker's default set); all others are dropped
/// from the bounding set before `exec`, so a RUN cannot mount, load modules,
/// or reach the host through raw devices even as root.
const KEEP_CAPS: &[i32] = &[
    0,  // CHOWN
    1,  // DAC_OVERRIDE
    3,  // FOWNER
    4,  // FSETID
    5,  // KILL
    6,  // SETGID
    7,  // SETUID
    8,  // SETPCAP
    10, // NET_BIND_SERVICE
    13, // NET_RAW
    18, // SYS_CHROOT
    27, // MKNOD
    29, // AUDIT_WRITE
    31, // SETFCAP
];

/// What to run.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub rootfs: PathBuf,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    /// Files bind-mounted over paths inside the root (host file, target);
    /// see [`EtcFiles`].
    pub binds: Vec<(PathBuf, PathBuf)>,
    /// Most processes the RUN may have at once (`None`: unbounded); see
    /// [`pids`] for how it is enforced.
    pub pids_limit: Option<u32>,
    /// The RUN's `--mount`s, mounted in this order after `/dev`.
    pub mounts: Vec<Mount>,
    /// `RUN --network=none`: a network namespace of the RUN's own, where
    /// only loopback is (up, as Docker gives it). Otherwise the RUN shares
    /// the host's network.
    pub no_network: bool,
}

/// A `RUN --mount` as the sandbox mounts it. `target` is a host path inside
/// the root (or inside an earlier mount's source) that the caller resolved
/// with every symlink kept in the root and created: a directory, or a file
/// for a single-file bind. Every mount is `nosuid,nodev`.
#[derive(Debug, Clone)]
pub struct Mount {
    pub target: PathBuf,
    pub source: MountSource,
}

/// What a [`Mount`] puts at its target.
#[derive(Debug, Clone)]
pub enum MountSource {
    /// A host directory or file, read-only unless `readonly` is false.
    Bind { path: PathBuf, readonly: bool },
    /// A fresh tmpfs of at most `size` bytes (the kernel's default: half
    /// the memory).
    Tmpfs { size: Option<u64> },
}

/// `/etc/resolv.conf`, `/etc/hosts` and `/etc/hostname` for a RUN, as Docker
/// provides them: private copies bind-mounted over the image's files (or
/// over placeholders created for the run and removed after it), so a RUN
/// can resolve names and nothing it writes there reaches a layer or the host.
#[derive(Debug, Default)]
pub struct EtcFiles {
    pub binds: Vec<(PathBuf, PathBuf)>,
    placeholders: Vec<PathBuf>,
    /// The root, and `/etc` with its mtime before placeholders were made
    /// in it: put back after, so a RUN that changes nothing makes no layer.
    etc_mtime: Option<(PathBuf, PathBuf, std::time::SystemTime)>,
}

impl EtcFiles {
    /// Prepares the files under `scratch` for the root `root`. A target that
    /// is a symlink or a directory in the image is left alone.
    pub fn prepare(root: &Path, scratch: &Path) -> io::Result<Self> {
        let mut me = Self::default();
        let etc = super::fsutil::secure_join(root, "/etc", true)?;
        if !etc.starts_with(root) || !fs::symlink_metadata(&etc).is_ok_and(|m| m.is_dir()) {
            return Ok(me);
        }
        let resolv = fs::read("/etc/resolv.conf").unwrap_or_default();
        let files: [(&str, Vec<u8>); 3] = [
            ("resolv.conf", resolv),
            ("hosts", b"127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n".to_vec()),
            ("hostname", b"buildkitsandbox\n".to_vec()),
        ];
        for (name, content) in files {
            let target = etc.join(name);
            match fs::symlink_metadata(&target) {
                Ok(m) if m.is_file() => {}
                Ok(_) => continue,
                Err(_) => {
                    if me.etc_mtime.is_none() {
                        let mtime = fs::symlink_metadata(&etc)?.modified()?;
                        me.etc_mtime = Some((root.to_path_buf(), etc.clone(), mtime));
                    }
                    fs::File::create(&target)?;
                    me.placeholders.push(target.clone());
                }
            }
            let src = scratch.join(name);
            fs::write(&src, content)?;
            me.binds.push((src, target));
        }
        Ok(me)
    }

    /// Removes the placeholders created by [`EtcFiles::prepare`].
    pub fn cleanup(&self) {
        for p in &self.placeholders {
            let _ = fs::remove_file(p);
        }
        if let Some((root, etc, mtime)) = &self.etc_mtime {
            let _ = super::fsutil::restore_dir_mtime(root, etc, *mtime);
        }
    }
}

/// Outcome of a run: exit code (128+signal when killed) and combined output.
#[derive(Debug)]
pub struct RunOutput {
    pub code: i32,
    /// The end of the output (stdout and stderr interleaved), at most
    /// [`KEPT_OUTPUT`] bytes; the log file has all of it.
    pub output: Vec<u8>,
    /// `Some(limit)` when a fork of the RUN failed on its process limit.
    pub pids_limit_reached: Option<u32>,
}

/// How much of a RUN's output is kept in memory for the error message.
pub const KEPT_OUTPUT: usize = 1 << 20;

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_encoded_bytes()).map_err(io::Error::other)
}

/// Checks that the stage root can take the sandbox's mount points: `/proc`
/// and `/dev` must be real directories (a symlink there would make the mount
/// land on the host).
fn prepare_mount_points(root: &Path) -> io::Result<()> {
    for d in ["proc", "dev"] {
        let p = root.join(d);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(io::Error::other(format!(
                    "the image's /{d} is not a directory; refusing to mount over it"
                )));
            }
            Err(_) => fs::create_dir(&p)?,
        }
    }
    Ok(())
}

/// Runs the command; output (stdout and stderr) is written to a file at
/// `log` and its end returned.
pub fn run(spec: &RunSpec, log: &Path) -> io::Result<RunOutput> {
    run_streaming(spec, log, &|_| {})
}

/// [`run`], calling `on_line` with each output line while the command runs.
pub fn run_streaming(
    spec: &RunSpec,
    log: &Path,
    on_line: &(dyn Fn(&str) + Sync),
) -> io::Result<RunOutput> {
    if spec.argv.is_empty() {
        return Err(io::Error::other("empty command"));
    }
    let root = fs::canonicalize(&spec.rootfs)?;
    prepare_mount_points(&root)?;
    let limit = spec.pids_limit.map(pids::PidsLimit::new);
    let setup = ChildSetup::prepare(spec, &root, limit.as_ref())?;

    let (out_read, out_write) = output_pipe()?;
    let mut cmd = Command::new(&spec.argv[0]);
    cmd.args(&spec.argv[1..])
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(out_write.try_clone()?))
        .stderr(Stdio::from(out_write));
    // SAFETY: `pre_exec` runs the closure in the forked child, where only
    // async-signal-safe calls are sound: `ChildSetup::run` makes syscalls
    // through nix and libc on values prepared above (C strings, maps, ids),
    // allocates nothing and takes no lock.
    unsafe {
        cmd.pre_exec(move || setup.run());
    }
    let mut log_file = fs::File::create(log)?;
    let (status, output) = std::thread::scope(|scope| {
        let reader = scope.spawn(move || pump(out_read, &mut log_file, on_line));
        // `spawn` returns once the RUN's command started (or failed to);
        // `wait` returns once the waiting process, and with it the RUN, has
        // ended; dropping `cmd` then closes kmigrate's copies of the pipe's
        // write end, so the reader sees its end.
        let status = spawn_retrying(&mut cmd).and_then(|mut c| c.wait());
        drop(cmd);
        let output = reader
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("output reader panicked")));
        (status, output)
    });
    let status = match status {
        Ok(status) => status,
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!(
                    "starting {:?} in the sandbox failed: {e} (RUN needs mount/pid/uts/ipc namespaces: run as root, or enable unprivileged user namespaces with `sysctl kernel.unprivileged_userns_clone=1`; inside a container it needs CAP_SYS_ADMIN)",
                    spec.argv[0]
                ),
            ));
        }
    };
    let output = output?;
    let code = status.code().unwrap_or(128);
    let pids_limit_reached = limit.as_ref().filter(|l| l.reached()).map(|l| l.max());
    Ok(RunOutput {
        code,
        output,
        pids_limit_reached,
    })
}

/// Everything the child spawned for a RUN needs, prepared before the fork:
/// after it, nothing is allocated.
struct ChildSetup {
    /// kmigrate's pid: a child whose parent is another is an orphan.
    caller: nix::unistd::Pid,
    /// The pids cgroup's `cgroup.procs` to join, else the RLIMIT_NPROC to set.
    cgroup_procs: Option<std::os::fd::RawFd>,
    nproc: Option<nix::libc::rlim_t>,
    /// Not root: a user namespace maps the caller to root.
    rootless: bool,
    /// A network namespace of its own, loopback only.
    no_network: bool,
    uid_map: String,
    gid_map: String,
    c_root: CString,
    c_proc: CString,
    c_dev: CString,
    c_slash: CString,
    c_dot: CString,
    c_proc_fs: CString,
    c_tmpfs: CString,
    c_devopts: CString,
    c_cwd: CString,
    masks: proc_masks::ProcMasks,
    /// The flags of the root's mount that the `nodev` remount keeps.
    root_flags: MsFlags,
    /// Host device and its mount point under the root's `/dev`.
    devs: Vec<(CString, CString)>,
    /// Symlink target and its path under the root's `/dev`.
    dev_links: Vec<(CString, CString)>,
    /// Host file and the path it is bound over.
    binds: Vec<(CString, CString)>,
    /// The RUN's `--mount`s.
    run_mounts: Vec<ChildMount>,
    groups: Vec<Gid>,
    uid: Uid,
    gid: Gid,
}

impl ChildSetup {
    fn prepare(
        spec: &RunSpec,
        root: &Path,
        limit: Option<&pids::PidsLimit>,
    ) -> io::Result<ChildSetup> {
        let host_uid = Uid::effective().as_raw();
        let host_gid = Gid::effective().as_raw();
        // The root is remounted `nodev`; the flags it has are kept, as a user
        // namespace refuses to clear them.
        let root_flags =
            MsFlags::from_bits_truncate(nix::sys::statvfs::statvfs(root)?.flags().bits() as _)
                & (MsFlags::MS_RDONLY
                    | MsFlags::MS_NOSUID
                    | MsFlags::MS_NODEV
                    | MsFlags::MS_NOEXEC);
        let devs: Vec<(CString, CString)> = DEVICES
            .iter()
            .filter(|d| Path::new("/dev").join(d).exists())
            .map(|d| {
                Ok((
                    cpath(&Path::new("/dev").join(d))?,
                    cpath(&root.join("dev").join(d))?,
                ))
            })
            .collect::<io::Result<_>>()?;
        let dev_links: Vec<(CString, CString)> = [
            ("/proc/self/fd", "fd"),
            ("/proc/self/fd/0", "stdin"),
            ("/proc/self/fd/1", "stdout"),
            ("/proc/self/fd/2", "stderr"),
        ]
        .iter()
        .map(|(t, n)| {
            Ok((
                CString::new(*t).expect("static"),
                cpath(&root.join("dev").join(n))?,
            ))
        })
        .collect::<io::Result<_>>()?;
        let binds: Vec<(CString, CString)> = spec
            .binds
            .iter()
            .map(|(a, b)| Ok((cpath(a)?, cpath(b)?)))
            .collect::<io::Result<_>>()?;
        let run_mounts = spec
            .mounts
            .iter()
            .map(ChildMount::prepare)
            .collect::<io::Result<_>>()?;
        let cgroup_procs = limit.and_then(|l| l.join_fd());
        Ok(ChildSetup {
            caller: nix::unistd::getpid(),
            cgroup_procs,
            nproc: match limit {
                Some(l) if cgroup_procs.is_none() => Some(l.max() as nix::libc::rlim_t),
                _ => None,
            },
            rootless: !Uid::effective().is_root(),
            no_network: spec.no_network,
            uid_map: format!("0 {host_uid} 1\n"),
            gid_map: format!("0 {host_gid} 1\n"),
            c_root: cpath(root)?,
            c_proc: cpath(&root.join("proc"))?,
            c_dev: cpath(&root.join("dev"))?,
            c_slash: CString::new("/").expect("static"),
            c_dot: CString::new(".").expect("static"),
            c_proc_fs: CString::new("proc").expect("static"),
            c_tmpfs: CString::new("tmpfs").expect("static"),
            c_devopts: CString::new("mode=755,size=65536k").expect("static"),
            c_cwd: CString::new(spec.cwd.clone()).map_err(io::Error::other)?,
            masks: proc_masks::ProcMasks::new(&root.join("proc"))?,
            root_flags,
            devs,
            dev_links,
            binds,
            run_mounts,
            groups: spec.groups.iter().map(|g| Gid::from_raw(*g)).collect(),
            uid: Uid::from_raw(spec.uid),
            gid: Gid::from_raw(spec.gid),
        })
    }

    /// The setup, in the child `spawn` forked, before `exec`.
    fn run(&self) -> io::Result<()> {
        self.isolate()?;
        let alive = self.fork_pid1()?;
        // A session of its own: no controlling terminal, so neither
        // `/dev/tty` nor TIOCSTI reaches the user's terminal.
        nix::unistd::setsid()?;
        self.mount_root()?;
        self.mount_dev()?;
        for m in &self.run_mounts {
            m.mount()?;
        }
        self.enter_root()?;
        self.drop_privileges()?;
        // Last, as changing credentials clears it: when the waiting process
        // dies (with kmigrate), PID 1 dies and the kernel kills the rest.
        die_with_parent()?;
        if parent_gone(&alive) {
            exit_now(127);
        }
        drop(alive);
        Ok(())
    }

    /// Ties this process to kmigrate, bounds the RUN's processes, and
    /// enters new namespaces (with the id maps of a user namespace).
    fn isolate(&self) -> io::Result<()> {
        // This process only waits for the RUN; it dies with kmigrate (and
        // the RUN with it, below). A kmigrate already gone: stop here.
        die_with_parent()?;
        if nix::unistd::getppid() != self.caller {
            exit_now(127);
        }
        close_inherited_fds();
        if let Some(fd) = self.cgroup_procs {
            // Joining before the fork puts every process of the RUN in it.
            // SAFETY: `fd` is the open `cgroup.procs` file that the caller's
            // `PidsLimit` owns until after `spawn` returns, and the buffer
            // is 1 valid byte.
            if unsafe { nix::libc::write(fd, b"0".as_ptr().cast(), 1) } != 1 {
                return Err(io::Error::last_os_error());
            }
        }
        if let Some(n) = self.nproc {
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NPROC, n, n)?;
        }
        let mut flags = CloneFlags::CLONE_NEWNS
            | CloneFlags::CLONE_NEWPID
            | CloneFlags::CLONE_NEWUTS
            | CloneFlags::CLONE_NEWIPC;
        if self.rootless {
            flags |= CloneFlags::CLONE_NEWUSER;
        }
        if self.no_network {
            flags |= CloneFlags::CLONE_NEWNET;
        }
        unshare(flags)?;
        if self.rootless {
            write_file(c"/proc/self/setgroups", b"deny\n")?;
            write_file(c"/proc/self/uid_map", self.uid_map.as_bytes())?;
            write_file(c"/proc/self/gid_map", self.gid_map.as_bytes())?;
        }
        if self.no_network {
            // After the id maps: in a user namespace, only its root may
            // configure the network namespace it owns.
            loopback_up()?;
        }
        Ok(())
    }

    /// Forks the process that is PID 1 of the new pid namespace and runs
    /// the RUN; this one waits for it and exits with its status. Returns,
    /// in PID 1, the read end of a pipe only the waiting process holds open:
    /// the RUN sees it hang up if that process died before the RUN armed
    /// its own death signal.
    fn fork_pid1(&self) -> io::Result<OwnedFd> {
        let (alive_read, alive_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        // SAFETY: this process was forked by `spawn` and runs only
        // `ChildSetup::run`; the fork's child, like its parent, makes only
        // syscalls (no allocation, no locks) until it calls `exec` or `_exit`.
        match unsafe { fork() }? {
            ForkResult::Parent { child } => {
                drop(alive_read);
                // Waiting is all this process does: it keeps nothing of
                // kmigrate's open (a file another thread is writing would
                // stay "busy" for exec for the whole RUN), only its end of
                // the pipe that tells PID 1 it is alive.
                close_fds_except(alive_write.as_raw_fd());
                let code = loop {
                    match nix::sys::wait::waitpid(child, None) {
                        Ok(nix::sys::wait::WaitStatus::Exited(_, c)) => break c,
                        Ok(nix::sys::wait::WaitStatus::Signaled(_, s, _)) => break 128 + s as i32,
                        Ok(_) => continue,
                        Err(nix::errno::Errno::EINTR) => continue,
                        Err(_) => break 127,
                    }
                };
                exit_now(code);
            }
            ForkResult::Child => {}
        }
        drop(alive_write);
        Ok(alive_read)
    }

    /// Makes the mounts private, binds the stage root `nodev` and mounts a
    /// masked `/proc` in it.
    fn mount_root(&self) -> io::Result<()> {
        mount(
            None::<&std::ffi::CStr>,
            self.c_slash.as_c_str(),
            None::<&std::ffi::CStr>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&std::ffi::CStr>,
        )?;
        mount(
            Some(self.c_root.as_c_str()),
            self.c_root.as_c_str(),
            None::<&std::ffi::CStr>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&std::ffi::CStr>,
        )?;
        // No device cgroup guards the RUN, so device nodes it makes (CAP_MKNOD
        // is in Docker's set) must not open: `nodev` on every writable mount.
        mount(
            None::<&std::ffi::CStr>,
            self.c_root.as_c_str(),
            None::<&std::ffi::CStr>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_NODEV | self.root_flags,
            None::<&std::ffi::CStr>,
        )?;
        mount(
            Some(self.c_proc_fs.as_c_str()),
            self.c_proc.as_c_str(),
            Some(self.c_proc_fs.as_c_str()),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None::<&std::ffi::CStr>,
        )?;
        self.masks.apply()?;
        Ok(())
    }

    /// A minimal `/dev` (a tmpfs with the host's null, zero, ... bound in
    /// and the fd links), then the files bound over `/etc` ones.
    fn mount_dev(&self) -> io::Result<()> {
        // The devices bound below keep the flags of the host's /dev mount.
        mount(
            Some(self.c_tmpfs.as_c_str()),
            self.c_dev.as_c_str(),
            Some(self.c_tmpfs.as_c_str()),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(self.c_devopts.as_c_str()),
        )?;
        for (src, dst) in &self.devs {
            // The mount point of the device: an empty file, closed at once.
            drop(open(
                dst.as_c_str(),
                OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o666),
            )?);
            bind_mount(src, dst)?;
        }
        for (src, dst) in &self.binds {
            bind_mount(src, dst)?;
        }
        for (target, link) in &self.dev_links {
            nix::unistd::symlinkat(target.as_c_str(), nix::fcntl::AT_FDCWD, link.as_c_str())?;
        }
        Ok(())
    }

    /// Makes the stage root `/` (`pivot_root`, the old root detached) and
    /// goes to the working directory.
    fn enter_root(&self) -> io::Result<()> {
        chdir(self.c_root.as_c_str())?;
        pivot_root(self.c_dot.as_c_str(), self.c_dot.as_c_str())?;
        umount2(self.c_dot.as_c_str(), MntFlags::MNT_DETACH)?;
        chdir(self.c_slash.as_c_str())?;
        let _ = nix::unistd::sethostname("buildkitsandbox");
        chdir(self.c_cwd.as_c_str())?;
        Ok(())
    }

    /// Drops the capabilities outside Docker's set from the bounding set,
    /// becomes the image's user and sets `no_new_privs`.
    fn drop_privileges(&self) -> io::Result<()> {
        for cap in 0..64 {
            if !KEEP_CAPS.contains(&cap) {
                // EINVAL past the kernel's last capability is expected.
                // nix has no wrapper for PR_CAPBSET_DROP.
                // SAFETY: PR_CAPBSET_DROP takes a capability number and no
                // pointers; it only changes this process's bounding set.
                unsafe {
                    nix::libc::prctl(
                        nix::libc::PR_CAPBSET_DROP,
                        cap as nix::libc::c_ulong,
                        0,
                        0,
                        0,
                    )
                };
            }
        }
        if !self.rootless {
            setgroups(&self.groups)?;
        }
        setgid(self.gid)?;
        setuid(self.uid)?;
        // setuid/setgid binaries in the image grant nothing more.
        nix::sys::prctl::set_no_new_privs()?;
        Ok(())
    }
}

/// One [`Mount`] as C strings and flags, prepared before the fork.
struct ChildMount {
    /// The bind source; `None` for a tmpfs.
    source: Option<CString>,
    target: CString,
    /// `tmpfs` and its options, for a tmpfs.
    tmpfs: Option<(CString, CString)>,
    /// The flags of the bind's remount: `nosuid,nodev`, read-only if asked,
    /// and the flags the source's mount has (a user namespace refuses to
    /// clear them).
    remount: MsFlags,
}

impl ChildMount {
    fn prepare(m: &Mount) -> io::Result<ChildMount> {
        let target = cpath(&m.target)?;
        Ok(match &m.source {
            MountSource::Bind { path, readonly } => {
                let locked = MsFlags::from_bits_truncate(
                    nix::sys::statvfs::statvfs(path)?.flags().bits() as _,
                ) & (MsFlags::MS_RDONLY
                    | MsFlags::MS_NOSUID
                    | MsFlags::MS_NODEV
                    | MsFlags::MS_NOEXEC);
                let mut remount = MsFlags::MS_BIND
                    | MsFlags::MS_REMOUNT
                    | MsFlags::MS_NOSUID
                    | MsFlags::MS_NODEV
                    | locked;
                if *readonly {
                    remount |= MsFlags::MS_RDONLY;
                }
                ChildMount {
                    source: Some(cpath(path)?),
                    target,
                    tmpfs: None,
                    remount,
                }
            }
            MountSource::Tmpfs { size } => {
                let opts = match size {
                    Some(n) => format!("mode=1777,size={n}"),
                    None => "mode=1777".to_string(),
                };
                ChildMount {
                    source: None,
                    target,
                    tmpfs: Some((
                        CString::new("tmpfs").expect("static"),
                        CString::new(opts).map_err(io::Error::other)?,
                    )),
                    remount: MsFlags::empty(),
                }
            }
        })
    }

    /// Mounts it (in the child, before `pivot_root`).
    fn mount(&self) -> io::Result<()> {
        match (&self.source, &self.tmpfs) {
            (_, Some((fs, opts))) => mount(
                Some(fs.as_c_str()),
                self.target.as_c_str(),
                Some(fs.as_c_str()),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some(opts.as_c_str()),
            )?,
            (Some(src), None) => {
                bind_mount(src, &self.target)?;
                mount(
                    None::<&std::ffi::CStr>,
                    self.target.as_c_str(),
                    None::<&std::ffi::CStr>,
                    self.remount,
                    None::<&std::ffi::CStr>,
                )?;
            }
            (None, None) => {}
        }
        Ok(())
    }
}

/// A pipe for the RUN's stdout and stderr (close-on-exec on kmigrate's
/// side; the child's copies become fds 1 and 2).
fn output_pipe() -> io::Result<(fs::File, OwnedFd)> {
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    Ok((fs::File::from(read), write))
}

/// Ends the calling (forked) process at once: no atexit handlers, no
/// flushing of the parent's buffers, which the child shares.
fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` takes no pointers and is async-signal-safe.
    unsafe { nix::libc::_exit(code) }
}

/// Reads the RUN's output until every writer is gone: each chunk goes to
/// the log, each complete line to `on_line`, and the last [`KEPT_OUTPUT`]
/// bytes are returned.
fn pump(
    mut from: fs::File,
    log: &mut fs::File,
    on_line: &(dyn Fn(&str) + Sync),
) -> io::Result<Vec<u8>> {
    use std::io::{Read, Write};
    let mut kept: Vec<u8> = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let chunk = &buf[..n];
        log.write_all(chunk)?;
        kept.extend_from_slice(chunk);
        if kept.len() > KEPT_OUTPUT {
            kept.drain(..kept.len() - KEPT_OUTPUT);
        }
        pending.extend_from_slice(chunk);
        let mut start = 0;
        while let Some(i) = pending[start..].iter().position(|b| *b == b'\n') {
            on_line(String::from_utf8_lossy(&pending[start..start + i]).as_ref());
            start += i + 1;
        }
        pending.drain(..start);
        // A line longer than what is kept is shown in pieces.
        if pending.len() > KEPT_OUTPUT {
            on_line(String::from_utf8_lossy(&pending).as_ref());
            pending.clear();
        }
    }
    if !pending.is_empty() {
        on_line(String::from_utf8_lossy(&pending).as_ref());
    }
    Ok(kept)
}

/// `PR_SET_PDEATHSIG(SIGKILL)` for the calling process.
fn die_with_parent() -> io::Result<()> {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
    Ok(())
}

/// Whether the write end of the pipe whose read end is `fd` is closed
/// everywhere (its only holder exited).
fn parent_gone(fd: &OwnedFd) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut p = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    let ready = poll(&mut p, PollTimeout::ZERO);
    ready == Ok(1)
        && p[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLHUP))
}

/// Starts `cmd`, again when the exec failed with ETXTBSY: a file of the
/// stage root may be open for writing for an instant in a process another
/// thread forked (another stage's RUN) before that process closed it.
fn spawn_retrying(cmd: &mut Command) -> io::Result<std::process::Child> {
    let mut delay = std::time::Duration::from_millis(20);
    for _ in 0..6 {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(nix::libc::ETXTBSY) => {
                std::thread::sleep(delay);
                delay *= 2;
            }
            other => return other,
        }
    }
    cmd.spawn()
}

/// Closes every descriptor above 2 but `keep` (in a forked process that
/// does not exec). `close_range` (Linux 5.9) or, before it, one `close` per
/// fd.
fn close_fds_except(keep: std::os::fd::RawFd) {
    let keep = keep as nix::libc::c_uint;
    let close_range = |lo: nix::libc::c_uint, hi: nix::libc::c_uint| {
        if lo > hi {
            return 0;
        }
        // SAFETY: close_range takes no pointers and only closes this
        // process's descriptors; none of them is used after this.
        unsafe { nix::libc::syscall(nix::libc::SYS_close_range, lo, hi, 0) }
    };
    if keep >= 3
        && close_range(3, keep - 1) == 0
        && close_range(keep + 1, nix::libc::c_uint::MAX) == 0
    {
        return;
    }
    let max = match nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
        Ok((soft, _)) => soft.min(1 << 20) as nix::libc::c_int,
        Err(_) => 1 << 16,
    };
    for fd in 3..max {
        if fd as nix::libc::c_uint != keep {
            // SAFETY: close takes no pointers; on a closed number it fails
            // with EBADF and changes nothing.
            unsafe { nix::libc::close(fd) };
        }
    }
}

/// Marks every descriptor above 2 close-on-exec, so nothing the caller
/// opened (a shell's `exec 7<file`, a CI runner's sockets) reaches the RUN.
/// Marked rather than closed: std reports a failed `exec` through one of
/// them. `close_range` (Linux 5.11) or, before it, one `fcntl` per fd.
fn close_inherited_fds() {
    // nix has no `close_range`.
    // SAFETY: close_range takes no pointers; with CLOSE_RANGE_CLOEXEC it only
    // sets a flag on this process's descriptors.
    let r = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_close_range,
            3 as nix::libc::c_uint,
            nix::libc::c_uint::MAX,
            nix::libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r == 0 {
        return;
    }
    let max = match nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
        Ok((soft, _)) => soft.min(1 << 20) as nix::libc::c_int,
        Err(_) => 1 << 16,
    };
    for fd in 3..max {
        // By number, open or not: nix's `fcntl` wants a borrowed (open) fd.
        // SAFETY: F_SETFD takes no pointers; on a closed number it fails
        // with EBADF and changes nothing.
        unsafe { nix::libc::fcntl(fd, nix::libc::F_SETFD, nix::libc::FD_CLOEXEC) };
    }
}

fn write_file(path: &std::ffi::CStr, data: &[u8]) -> io::Result<()> {
    let fd = open(path, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    nix::unistd::write(&fd, data)?;
    Ok(())
}

/// Sets `lo` up in this process's (new) network namespace, which the
/// kernel creates with it down. No allocation: it runs after the fork.
fn loopback_up() -> io::Result<()> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    use std::os::fd::AsRawFd;
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: `ifreq` is plain old data, for which all zero bytes are valid.
    let mut req: nix::libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as nix::libc::c_char;
    }
    // SAFETY: `sock` is an open socket, and SIOCGIFFLAGS reads the name and
    // writes the flags of the valid `ifreq` the pointer is to.
    if unsafe { nix::libc::ioctl(sock.as_raw_fd(), nix::libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the flags SIOCGIFFLAGS just wrote are the union's member.
    unsafe { req.ifr_ifru.ifru_flags |= nix::libc::IFF_UP as nix::libc::c_short };
    // SAFETY: as above; SIOCSIFFLAGS only reads the `ifreq`.
    if unsafe { nix::libc::ioctl(sock.as_raw_fd(), nix::libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Bind-mounts `src` onto `dst` (both already exist).
fn bind_mount(src: &std::ffi::CStr, dst: &std::ffi::CStr) -> nix::Result<()> {
    mount(
        Some(src),
        dst,
        None::<&std::ffi::CStr>,
        MsFlags::MS_BIND,
        None::<&std::ffi::CStr>,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_gone_sees_the_write_end_close() {
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        assert!(!parent_gone(&read));
        drop(write);
        assert!(parent_gone(&read));
    }

    #[test]
    fn write_file_writes_and_names_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        fs::write(&p, "").unwrap();
        write_file(&cpath(&p).unwrap(), b"deny\n").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"deny\n");
        let e = write_file(&cpath(&dir.path().join("none")).unwrap(), b"x").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn output_is_logged_whole_split_in_lines_and_kept_bounded() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let (read, write) = output_pipe().unwrap();
        let writer = std::thread::spawn(move || {
            let mut w = fs::File::from(write);
            w.write_all(b"first\n").unwrap();
            for _ in 0..3 * KEPT_OUTPUT / 8 {
                w.write_all(b"abcdefg\n").unwrap();
            }
            w.write_all(b"last, no newline").unwrap();
        });
        let lines = std::sync::Mutex::new(Vec::new());
        let mut log = fs::File::create(dir.path().join("log")).unwrap();
        let kept = pump(read, &mut log, &|l| {
            lines.lock().unwrap().push(l.to_string())
        })
        .unwrap();
        writer.join().unwrap();
        let lines = lines.into_inner().unwrap();
        assert_eq!(lines.len(), 2 + 3 * KEPT_OUTPUT / 8);
        assert_eq!(lines[0], "first");
        assert_eq!(lines.last().unwrap(), "last, no newline");
        assert_eq!(kept.len(), KEPT_OUTPUT);
        assert!(kept.ends_with(b"abcdefg\nlast, no newline"));
        let logged = fs::metadata(dir.path().join("log")).unwrap().len() as usize;
        assert_eq!(logged, 6 + 3 * KEPT_OUTPUT + 16);
    }
}
