//! Test helpers: a real `docker-registry` on 127.0.0.1, a busybox base image
//! written by kmigrate's own image writer, a private `dockerd`, and a runner
//! for the `kmigrate` binary. Servers are killed on Drop.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use kmigrate::builder::digest;
use kmigrate::builder::image::{self, Descriptor, ImageConfig, Manifest, RootFs, RunConfig};
use kmigrate::builder::layer::{self, TarOptions};
use kmigrate::builder::registry::{Client, Reference, RegistryConfig};

/// Returns true when the component exists. Missing: under `CI=true` the
/// test fails; otherwise it prints why and the caller skips.
pub fn have(what: &str) -> bool {
    let ok = match what {
        "docker-registry" => which("docker-registry"),
        "busybox" => Path::new("/bin/busybox").exists(),
        "dockerd" => which("dockerd") && which("docker"),
        "root" => nix_is_root(),
        "buildah" => which("buildah"),
        _ => false,
    };
    if !ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "{what} is required under CI=true (scripts/test.sh installs docker-registry, busybox-static, docker.io, buildah and podman as root)"
            );
        }
        eprintln!("SKIP: {what} not available");
    }
    ok
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

fn which(cmd: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
        .unwrap_or(false)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `docker-registry serve` process on 127.0.0.1.
pub struct Registry {
    child: Child,
    pub addr: String,
    dir: tempfile::TempDir,
}

impl Registry {
    /// The registry's storage (`docker/registry/v2/...` below it).
    pub fn storage(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    /// The requests served so far, one line each (`"GET /v2/… HTTP/1.1" 200 …`).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    pub fn start() -> Self {
        Self::start_with("")
    }

    /// A registry that requires `user`/`password` (htpasswd, Basic auth).
    pub fn start_with_auth(user: &str, password: &str) -> Self {
        let hash = bcrypt::hash(password, 4).unwrap();
        Self::start_with_files(
            "auth:\n  htpasswd:\n    realm: test\n    path: {dir}/htpasswd\n",
            &[("htpasswd", format!("{user}:{hash}\n"))],
        )
    }

    fn start_with(extra: &str) -> Self {
        Self::start_with_files(extra, &[])
    }

    /// Starts with extra config (`{dir}` stands for the registry's temp dir)
    /// and extra files written into that dir.
    fn start_with_files(extra: &str, files: &[(&str, String)]) -> Self {
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let port = free_port();
            let cfg = dir.path().join("config.yml");
            for (name, content) in files {
                std::fs::write(dir.path().join(name), content).unwrap();
            }
            let extra = extra.replace("{dir}", &dir.path().display().to_string());
            std::fs::write(
                &cfg,
                format!(
                    "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{extra}",
                    dir.path().join("data").display()
                ),
            )
            .unwrap();
            // The access log (one line a request) goes to stdout.
            let access_log = std::fs::File::create(dir.path().join("access.log")).unwrap();
            let child = Command::new("docker-registry")
                .arg("serve")
                .arg(&cfg)
                .stdout(access_log)
                .stderr(Stdio::null())
                .spawn()
                .expect("start docker-registry");
            let mut reg = Registry {
                child,
                addr: format!("127.0.0.1:{port}"),
                dir,
            };
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(10) {
                // 200, or 401 when auth is configured: the server is up.
                match ureq::get(&format!("http://{}/v2/", reg.addr)).call() {
                    Ok(_) | Err(ureq::Error::StatusCode(401)) => return reg,
                    Err(_) => {}
                }
                if let Ok(Some(_)) = reg.child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = reg.child.kill();
        }
        panic!("docker-registry did not start");
    }

    pub fn client(&self) -> Client {
        Client::new(RegistryConfig::default())
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds a busybox rootfs (static binary, applet symlinks, passwd/group).
pub fn busybox_rootfs(dir: &Path) {
    for d in ["bin", "etc", "root", "tmp", "usr/bin", "usr/sbin", "sbin"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
    let list = Command::new("/bin/busybox")
        .arg("--list-full")
        .output()
        .unwrap();
    for l in String::from_utf8_lossy(&list.stdout).lines() {
        let p = dir.join(l);
        if l == "bin/busybox" || p.exists() {
            continue;
        }
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink("/bin/busybox", &p).unwrap();
    }
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
}

/// Writes a one-layer image from `rootfs` and pushes it as `reference`.
/// Returns the manifest digest.
pub fn push_image_from_dir(rootfs: &Path, reference: &str) -> String {
    push_image_from_dir_with(rootfs, reference, RegistryConfig::default())
}

/// [`push_image_from_dir`] with registry settings (e.g. a Docker config).
pub fn push_image_from_dir_with(rootfs: &Path, reference: &str, reg_cfg: RegistryConfig) -> String {
    push_image_from_dir_full(rootfs, reference, reg_cfg, false)
}

/// Pushes the busybox base image with a history entry for its layer, as
/// real base images have (Docker's classic builder matches `--cache-from`
/// images by history), to `reg` as `base/busybox:history`.
pub fn push_busybox_with_history(reg: &Registry) -> String {
    let d = tempfile::tempdir().unwrap();
    busybox_rootfs(d.path());
    let r = format!("{}/base/busybox:history", reg.addr);
    push_image_from_dir_full(d.path(), &r, RegistryConfig::default(), true);
    r
}

fn push_image_from_dir_full(
    rootfs: &Path,
    reference: &str,
    reg_cfg: RegistryConfig,
    with_history: bool,
) -> String {
    let work = tempfile::tempdir().unwrap();
    let lpath = work.path().join("layer");
    let l = layer::write_tree(
        rootfs,
        &lpath,
        TarOptions {
            epoch: Some(0),
            map_to_root: None,
        },
    )
    .unwrap();
    let cfg = ImageConfig {
        created: Some(image::rfc3339(0)),
        architecture: image::host_platform().architecture,
        os: "linux".into(),
        config: RunConfig {
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            cmd: Some(vec!["sh".into()]),
            ..Default::default()
        },
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: vec![l.diff_id.clone()],
        },
        history: if with_history {
            vec![image::History {
                created: Some(image::rfc3339(0)),
                created_by: Some("kmigrate test: busybox rootfs".into()),
                comment: None,
                empty_layer: false,
            }]
        } else {
            vec![]
        },
    };
    let cfg_bytes = serde_json::to_vec(&cfg).unwrap();
    let m = Manifest {
        schema_version: 2,
        media_type: Some(image::MANIFEST.into()),
        artifact_type: None,
        config: Descriptor::new(
            image::CONFIG,
            &digest::sha256_digest(&cfg_bytes),
            cfg_bytes.len() as u64,
        ),
        layers: vec![Descriptor::new(layer::GZIP_LAYER, &l.digest, l.size)],
        annotations: Default::default(),
    };
    let mb = serde_json::to_vec(&m).unwrap();
    let r = Reference::parse(reference).unwrap();
    let mut c = Client::new(reg_cfg);
    c.push_blob(&r.registry, &r.repository, &l.digest, &lpath)
        .unwrap();
    c.push_blob_bytes(&r.registry, &r.repository, &m.config.digest, &cfg_bytes)
        .unwrap();
    c.put_manifest(&r, r.tag.as_deref().unwrap(), image::MANIFEST, &mb)
        .unwrap();
    digest::sha256_digest(&mb)
}

/// Pushes the busybox base image to `reg` as `base/busybox:test`.
pub fn push_busybox(reg: &Registry) -> String {
    let d = tempfile::tempdir().unwrap();
    busybox_rootfs(d.path());
    let r = format!("{}/base/busybox:test", reg.addr);
    push_image_from_dir(d.path(), &r);
    r
}

/// Runs `kmigrate build ARGS` and returns its output.
pub fn kmigrate_build(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kmigrate"))
        .arg("build")
        .arg("--progress=plain")
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap()
}

/// A registry with the busybox base image pushed to it, or `None` where
/// the test must skip (see [`have`]).
pub fn registry_with_busybox() -> Option<(Registry, String)> {
    if !(have("docker-registry") && have("busybox") && have("root")) {
        return None;
    }
    let reg = Registry::start();
    let base = push_busybox(&reg);
    Some((reg, base))
}

/// Runs the `kmigrate` binary in `cwd` without colour and with no stdin.
pub fn kmigrate(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kmigrate"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("FORCE_COLOR")
        .stdin(Stdio::null())
        .output()
        .expect("kmigrate runs")
}

/// Runs `kmigrate args` in `dir`: stdout, stderr (UTF-8) and exit code.
pub fn run_in(dir: &Path, args: &[&str]) -> (String, String, i32) {
    let o = kmigrate(dir, args);
    (
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8(o.stderr).unwrap(),
        o.status.code().unwrap(),
    )
}

/// `file:line` of every finding of `rule` in `--format concise` output.
pub fn concise_lines(out: &str, rule: &str) -> Vec<String> {
    out.lines()
        .filter(|l| l.contains(&format!(" {rule} ")))
        .map(|l| {
            let mut parts = l.split(':');
            format!("{}:{}", parts.next().unwrap(), parts.next().unwrap())
        })
        .collect()
}

/// A process's stdout then stderr, as text.
pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts success and returns stdout then stderr, as text.
pub fn ok(out: &Output) -> String {
    let s = output_text(out);
    assert!(out.status.success(), "kmigrate build failed:\n{s}");
    s
}

/// Count of `#N CACHED` lines and `#N DONE` after a RUN/COPY in plain output.
pub fn counts(text: &str) -> (usize, usize) {
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with("kmigrate build:"))
        .expect("summary line");
    let num = |word: &str| -> usize {
        let i = line.find(word).unwrap();
        line[..i]
            .trim_end()
            .rsplit(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    (num(" executed"), num(" cached"))
}

/// The `image sha256:…` from the summary line.
pub fn image_digest(text: &str) -> String {
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with("kmigrate build:"))
        .expect("summary line");
    line.rsplit(' ').next().unwrap().to_string()
}

/// Writes files into a directory.
pub fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (p, c) in files {
        let path = dir.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, c).unwrap();
    }
}

/// A private dockerd on a unix socket.
pub struct Dockerd {
    child: Child,
    pub sock: String,
    pub dir: tempfile::TempDir,
}

impl Dockerd {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("docker.sock");
        let d = dir.path();
        let child = Command::new("dockerd")
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .arg("--pidfile")
            .arg(d.join("docker.pid"))
            .arg("--bridge=none")
            .arg("--iptables=false")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("dockerd.log")).unwrap())
            .spawn()
            .expect("start dockerd");
        let s = Dockerd {
            child,
            sock: format!("unix://{}", sock.display()),
            dir,
        };
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(60) {
            if s.docker(&["version"]).status.success() {
                return s;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let log = std::fs::read_to_string(s.dir.path().join("dockerd.log")).unwrap_or_default();
        panic!("dockerd did not start:\n{log}");
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .arg("-H")
            .arg(&self.sock)
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Like [`kmigrate_build`] with extra environment variables.
pub fn kmigrate_build_env(state: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kmigrate"))
        .arg("build")
        .arg("--progress=plain")
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .envs(env.iter().copied())
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap()
}

/// Pushes an image whose layers are the busybox tree plus raw (uncompressed)
/// tar files given as bytes, as they are: for crafted, hostile layers.
pub fn push_busybox_plus_raw_layers(reference: &str, raw_layers: &[Vec<u8>]) {
    let work = tempfile::tempdir().unwrap();
    let rootfs = work.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let lpath = work.path().join("base");
    let base = layer::write_tree(
        &rootfs,
        &lpath,
        TarOptions {
            epoch: Some(0),
            map_to_root: None,
        },
    )
    .unwrap();
    let mut layers = vec![(lpath, base.digest.clone(), base.diff_id.clone(), base.size)];
    for (i, raw) in raw_layers.iter().enumerate() {
        let p = work.path().join(format!("raw{i}"));
        std::fs::write(&p, raw).unwrap();
        let d = digest::sha256_digest(raw);
        layers.push((p, d.clone(), d, raw.len() as u64));
    }
    let cfg = ImageConfig {
        created: Some(image::rfc3339(0)),
        architecture: image::host_platform().architecture,
        os: "linux".into(),
        config: RunConfig {
            env: vec!["PATH=/bin:/usr/bin:/sbin:/usr/sbin".into()],
            ..Default::default()
        },
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: layers.iter().map(|l| l.2.clone()).collect(),
        },
        history: vec![],
    };
    let cfg_bytes = serde_json::to_vec(&cfg).unwrap();
    let m = Manifest {
        schema_version: 2,
        media_type: Some(image::MANIFEST.into()),
        artifact_type: None,
        config: Descriptor::new(
            image::CONFIG,
            &digest::sha256_digest(&cfg_bytes),
            cfg_bytes.len() as u64,
        ),
        layers: layers
            .iter()
            .map(|l| Descriptor::new("application/vnd.oci.image.layer.v1.tar", &l.1, l.3))
            .collect(),
        annotations: Default::default(),
    };
    let r = Reference::parse(reference).unwrap();
    let mut c = Client::new(RegistryConfig::default());
    for l in &layers {
        c.push_blob(&r.registry, &r.repository, &l.1, &l.0).unwrap();
    }
    c.push_blob_bytes(&r.registry, &r.repository, &m.config.digest, &cfg_bytes)
        .unwrap();
    c.put_manifest(
        &r,
        r.tag.as_deref().unwrap(),
        image::MANIFEST,
        &serde_json::to_vec(&m).unwrap(),
    )
    .unwrap();
}

/// A raw tar whose entry names are written byte for byte (no sanitising).
pub fn raw_tar(entries: &[(&str, char, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, kind, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        let name = &mut h.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        match kind {
            'l' => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_link_name(data).unwrap();
                h.set_size(0);
                h.set_cksum();
                b.append(&h, std::io::empty()).unwrap();
            }
            'h' => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_link_name(data).unwrap();
                h.set_size(0);
                h.set_cksum();
                b.append(&h, std::io::empty()).unwrap();
            }
            _ => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(data.len() as u64);
                h.set_cksum();
                b.append(&h, data.as_bytes()).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// Compares `$value` with `snapshots/<$name>.snap` (insta; every snapshot
/// of the suite lives in the top-level `snapshots/`).
macro_rules! snapshot {
    ($name:expr, $value:expr) => {
        insta::with_settings!({snapshot_path => "../../snapshots", prepend_module_to_snapshot => false}, {
            insta::assert_snapshot!($name, $value);
        })
    };
}

/// A build as an unprivileged user (uid 65534, through `setpriv`): a work
/// directory everyone may use, holding a copy of the binary.
pub struct Rootless {
    pub work: tempfile::TempDir,
    bin: std::path::PathBuf,
    opened: std::cell::Cell<bool>,
}

impl Rootless {
    /// `None` where the test must skip (see [`have`]), or when the kernel
    /// has no unprivileged user namespaces (a setting, not a package: the
    /// reason is printed).
    pub fn new() -> Option<Rootless> {
        if !(have("docker-registry") && have("busybox") && have("root")) {
            return None;
        }
        let probe = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .args(["unshare", "--user", "--map-root-user", "true"])
            .output();
        if !probe.is_ok_and(|o| o.status.success()) {
            eprintln!("SKIP: setpriv or unprivileged user namespaces not available");
            return None;
        }
        let work = tempfile::tempdir().unwrap();
        let bin = work.path().join("kmigrate");
        std::fs::copy(env!("CARGO_BIN_EXE_kmigrate"), &bin).unwrap();
        Some(Rootless {
            work,
            bin,
            opened: std::cell::Cell::new(false),
        })
    }

    /// A path in the work directory.
    pub fn path(&self, rel: &str) -> std::path::PathBuf {
        self.work.path().join(rel)
    }

    /// `kmigrate build --progress=plain --state-dir <work>/state ARGS` as the
    /// unprivileged user; the first build opens what the test wrote in the
    /// work directory up to that user.
    pub fn build(&self, args: &[&str]) -> Output {
        use std::os::unix::fs::PermissionsExt;
        if !self.opened.replace(true) {
            for e in walkdir::WalkDir::new(self.work.path()) {
                let p = e.unwrap().into_path();
                let mode = if p.is_dir() { 0o777 } else { 0o755 };
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            }
        }
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&self.bin)
            .args(["build", "--progress=plain", "--state-dir"])
            .arg(self.path("state"))
            .args(args)
            .env("HOME", self.work.path())
            .env_remove("SOURCE_DATE_EPOCH")
            .output()
            .unwrap()
    }
}
