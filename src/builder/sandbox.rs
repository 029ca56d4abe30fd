//! Runs a RUN step daemonless: new mount, pid, uts and ipc namespaces (plus a
//! user namespace when not root), the stage root bind-mounted and made `/`
//! with `pivot_root`, `/proc` and a minimal `/dev` mounted, then the image's
//! user, working directory and environment.
//!
//! Capabilities outside Docker's default set are dropped from the bounding
//! set, so even a root RUN cannot mount or use raw devices.
//!
//! The setup runs in the forked child before `exec` (only syscalls, no
//! allocation), with one more fork so the command is PID 1 of its namespace.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};
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
}

/// `/etc/resolv.conf`, `/etc/hosts` and `/etc/hostname` for a RUN, as Docker
/// provides them: private copies bind-mounted over the image's files (or
/// over placeholders created for the run and removed after it), so a RUN
/// can resolve names and nothing it writes there reaches a layer or the host.
#[derive(Debug, Default)]
pub struct EtcFiles {
    pub binds: Vec<(PathBuf, PathBuf)>,
    placeholders: Vec<PathBuf>,
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
    }
}

/// Outcome of a run: exit code (128+signal when killed) and combined output.
#[derive(Debug)]
pub struct RunOutput {
    pub code: i32,
    pub output: Vec<u8>,
}

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

/// Runs the command; output (stdout and stderr) is captured to a file at
/// `log` and returned.
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
    let rootless = !Uid::effective().is_root();
    let host_uid = Uid::effective().as_raw();
    let host_gid = Gid::effective().as_raw();

    // Everything the child needs is prepared here: no allocation after fork.
    let c_root = cpath(&root)?;
    let c_proc = cpath(&root.join("proc"))?;
    let c_dev = cpath(&root.join("dev"))?;
    let c_slash = CString::new("/").expect("static");
    let c_dot = CString::new(".").expect("static");
    let c_proc_fs = CString::new("proc").expect("static");
    let c_tmpfs = CString::new("tmpfs").expect("static");
    let c_devopts = CString::new("mode=755,size=65536k").expect("static");
    let c_cwd = CString::new(spec.cwd.clone()).map_err(io::Error::other)?;
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
    let uid_map = format!("0 {host_uid} 1\n");
    let gid_map = format!("0 {host_gid} 1\n");
    let groups: Vec<Gid> = spec.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    let (uid, gid) = (Uid::from_raw(spec.uid), Gid::from_raw(spec.gid));

    let out = fs::File::create(log)?;
    let err = out.try_clone()?;
    let mut cmd = Command::new(&spec.argv[0]);
    cmd.args(&spec.argv[1..])
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    let setup = move || -> io::Result<()> {
        let mut flags = CloneFlags::CLONE_NEWNS
            | CloneFlags::CLONE_NEWPID
            | CloneFlags::CLONE_NEWUTS
            | CloneFlags::CLONE_NEWIPC;
        if rootless {
            flags |= CloneFlags::CLONE_NEWUSER;
        }
        unshare(flags)?;
        if rootless {
            write_file(c"/proc/self/setgroups", b"deny\n")?;
            write_file(c"/proc/self/uid_map", uid_map.as_bytes())?;
            write_file(c"/proc/self/gid_map", gid_map.as_bytes())?;
        }
        // The next process is PID 1 of the new pid namespace; this one waits.
        match unsafe { fork() }? {
            ForkResult::Parent { child } => {
                let code = loop {
                    match nix::sys::wait::waitpid(child, None) {
                        Ok(nix::sys::wait::WaitStatus::Exited(_, c)) => break c,
                        Ok(nix::sys::wait::WaitStatus::Signaled(_, s, _)) => break 128 + s as i32,
                        Ok(_) => continue,
                        Err(nix::errno::Errno::EINTR) => continue,
                        Err(_) => break 127,
                    }
                };
                unsafe { nix::libc::_exit(code) }
            }
            ForkResult::Child => {}
        }
        mount(
            None::<&std::ffi::CStr>,
            c_slash.as_c_str(),
            None::<&std::ffi::CStr>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&std::ffi::CStr>,
        )?;
        mount(
            Some(c_root.as_c_str()),
            c_root.as_c_str(),
            None::<&std::ffi::CStr>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&std::ffi::CStr>,
        )?;
        mount(
            Some(c_proc_fs.as_c_str()),
            c_proc.as_c_str(),
            Some(c_proc_fs.as_c_str()),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None::<&std::ffi::CStr>,
        )?;
        mount(
            Some(c_tmpfs.as_c_str()),
            c_dev.as_c_str(),
            Some(c_tmpfs.as_c_str()),
            MsFlags::MS_NOSUID,
            Some(c_devopts.as_c_str()),
        )?;
        for (src, dst) in &devs {
            let fd = unsafe {
                nix::libc::open(
                    dst.as_ptr(),
                    nix::libc::O_CREAT | nix::libc::O_WRONLY | nix::libc::O_CLOEXEC,
                    0o666,
                )
            };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            unsafe { nix::libc::close(fd) };
            bind_mount(src, dst)?;
        }
        for (src, dst) in &binds {
            bind_mount(src, dst)?;
        }
        for (target, link) in &dev_links {
            unsafe { nix::libc::symlink(target.as_ptr(), link.as_ptr()) };
        }
        chdir(c_root.as_c_str())?;
        pivot_root(c_dot.as_c_str(), c_dot.as_c_str())?;
        umount2(c_dot.as_c_str(), MntFlags::MNT_DETACH)?;
        chdir(c_slash.as_c_str())?;
        let _ = nix::unistd::sethostname("buildkitsandbox");
        chdir(c_cwd.as_c_str())?;
        for cap in 0..64 {
            if !KEEP_CAPS.contains(&cap) {
                // EINVAL past the kernel's last capability is expected.
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
        if !rootless {
            setgroups(&groups)?;
        }
        setgid(gid)?;
        setuid(uid)?;
        Ok(())
    };
    unsafe {
        cmd.pre_exec(setup);
    }
    let done = std::sync::atomic::AtomicBool::new(false);
    let spawned = std::thread::scope(|scope| {
        let t = scope.spawn(|| tail(log, &done, on_line));
        let r = cmd.spawn().and_then(|mut c| c.wait());
        done.store(true, std::sync::atomic::Ordering::Release);
        t.thread().unpark();
        r
    });
    let status = match spawned {
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
    let output = fs::read(log)?;
    let code = status.code().unwrap_or(128);
    Ok(RunOutput { code, output })
}

/// Follows a growing log file, passing complete lines to `on_line`, until
/// `done` is set and the file is drained.
fn tail(path: &Path, done: &std::sync::atomic::AtomicBool, on_line: &(dyn Fn(&str) + Sync)) {
    use std::io::{Read, Seek, SeekFrom};
    let mut pos = 0u64;
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let finished = done.load(std::sync::atomic::Ordering::Acquire);
        if let Ok(mut f) = fs::File::open(path)
            && f.seek(SeekFrom::Start(pos)).is_ok()
        {
            let mut buf = Vec::new();
            if let Ok(n) = f.read_to_end(&mut buf) {
                pos += n as u64;
                pending.extend_from_slice(&buf);
            }
        }
        while let Some(i) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=i).collect();
            on_line(String::from_utf8_lossy(&line[..line.len() - 1]).as_ref());
        }
        if finished {
            if !pending.is_empty() {
                on_line(String::from_utf8_lossy(&pending).as_ref());
            }
            return;
        }
        std::thread::park_timeout(std::time::Duration::from_millis(100));
    }
}

fn write_file(path: &std::ffi::CStr, data: &[u8]) -> io::Result<()> {
    let fd = unsafe { nix::libc::open(path.as_ptr(), nix::libc::O_WRONLY | nix::libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = unsafe { nix::libc::write(fd, data.as_ptr().cast(), data.len()) };
    unsafe { nix::libc::close(fd) };
    if n < 0 {
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
