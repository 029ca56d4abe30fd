//! Security: bounded reads (issue 13 item 8). A hostile registry (a tiny
//! loopback HTTP server in this file) serves a manifest that never ends, a
//! blob longer or shorter than its descriptor, a wrong digest, a body cut
//! mid-transfer, an endless token; Dockerfiles and `.dockerignore` files
//! that are `/dev/zero`, FIFOs or huge. Each must end with a clear error,
//! bounded memory and no partial file left behind.
//!
//! The hostile server caps what it sends per response, and every binary run
//! here has an address-space limit and a timeout, so a regression fails the
//! test instead of hanging it or filling the disk.

use crate::support;
use support::output_text;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kmigrate::builder::digest;

/// The most the hostile server sends in one response.
const SEND_CAP: u64 = 256 << 20;
/// What a client that stops at a 4 MiB limit may still have been sent:
/// the limit plus the loopback socket buffers.
const BOUNDED_SEND: u64 = 24 << 20;

/// One answer of the hostile registry.
#[derive(Clone)]
enum Reply {
    /// A complete response.
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// `prefix`, then `fill` bytes until the client hangs up or
    /// [`SEND_CAP`] is reached; no Content-Length.
    Endless { prefix: Vec<u8>, fill: u8 },
    /// Declares `declared` bytes, sends `body`, then closes.
    Truncated { declared: u64, body: Vec<u8> },
}

fn ok(body: impl Into<Vec<u8>>, content_type: &str) -> Reply {
    Reply::Full {
        status: 200,
        headers: vec![("Content-Type".into(), content_type.into())],
        body: body.into(),
    }
}

/// A loopback HTTP/1.1 server answering each `GET path` from a table; it
/// counts the body bytes it managed to send. Stopped on Drop.
struct Hostile {
    addr: String,
    routes: Arc<Mutex<BTreeMap<String, Reply>>>,
    sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Hostile {
    fn start(routes: BTreeMap<String, Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let sent = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let routes = Arc::new(Mutex::new(routes));
        let thread = {
            let (sent, stop, routes) = (sent.clone(), stop.clone(), routes.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (routes, sent) = (routes.clone(), sent.clone());
                    std::thread::spawn(move || serve(conn, &routes, &sent));
                }
            })
        };
        Hostile {
            addr,
            routes,
            sent,
            stop,
            thread: Some(thread),
        }
    }

    fn route(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert(path.to_string(), reply);
    }

    fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut conn: TcpStream, routes: &Mutex<BTreeMap<String, Reply>>, sent: &AtomicU64) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = conn.set_write_timeout(Some(Duration::from_secs(10)));
    // The request head, bounded; GET requests have no body.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
        match conn.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .split('?')
        .next()
        .unwrap_or("/")
        .to_string();
    let reply = routes.lock().unwrap().get(&path).cloned();
    let reply = reply.unwrap_or(Reply::Full {
        status: 404,
        headers: Vec::new(),
        body: b"{\"errors\":[{\"code\":\"NOT_FOUND\"}]}".to_vec(),
    });
    // Body bytes count as sent once written.
    let send = |conn: &mut TcpStream, bytes: &[u8]| -> bool {
        if conn.write_all(bytes).is_err() {
            return false;
        }
        sent.fetch_add(bytes.len() as u64, Ordering::SeqCst);
        true
    };
    match reply {
        Reply::Full {
            status,
            headers,
            body,
        } => {
            let mut h = format!(
                "HTTP/1.1 {status} X\r\nConnection: close\r\nContent-Length: {}\r\n",
                body.len()
            );
            for (k, v) in headers {
                h.push_str(&format!("{k}: {v}\r\n"));
            }
            h.push_str("\r\n");
            let _ = conn.write_all(h.as_bytes());
            send(&mut conn, &body);
        }
        Reply::Endless { prefix, fill } => {
            let _ = conn.write_all(
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\n\r\n",
            );
            if !send(&mut conn, &prefix) {
                return;
            }
            let chunk = vec![fill; 64 * 1024];
            let mut n = 0;
            while n < SEND_CAP && send(&mut conn, &chunk) {
                n += chunk.len() as u64;
            }
        }
        Reply::Truncated { declared, body } => {
            let _ = conn.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: {declared}\r\n\r\n"
                )
                .as_bytes(),
            );
            send(&mut conn, &body);
        }
    }
    let _ = conn.flush();
}

/// Runs the binary with a 2 GiB address-space limit and a timeout, so an
/// unbounded read fails fast instead of taking the machine down.
fn run_bounded(args: &[&str], timeout_secs: u32) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v 2097152 && exec timeout -s KILL {timeout_secs} \"$@\""
        ))
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_kmigrate"))
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("DOCKER_CONFIG")
        .output()
        .unwrap()
}

fn build(state: &Path, args: &[&str]) -> Output {
    let mut all = vec!["build", "--progress=plain", "--state-dir"];
    all.push(state.to_str().unwrap());
    all.extend_from_slice(args);
    run_bounded(&all, 60)
}

fn failed(out: &Output) -> String {
    let t = output_text(out);
    assert!(!out.status.success(), "expected a failure:\n{t}");
    assert!(
        !t.contains("panicked"),
        "a hostile input must not panic:\n{t}"
    );
    t
}

/// Every file under `dir` whose name says it is a partial download.
fn partial_files(dir: &Path) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().display().to_string())
        .filter(|p| p.contains(".part") || p.contains("/tmp/blob-"))
        .collect()
}

/// A one-layer image whose layer descriptor says `layer` (digest and size
/// of the real content); the routes serve its manifest and config, the
/// caller adds the layer's route.
struct Image {
    manifest: Vec<u8>,
    config: Vec<u8>,
    layer_digest: String,
}

fn image(layer: &[u8], declared_size: u64) -> Image {
    let layer_digest = digest::sha256_digest(layer);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": kmigrate::builder::image::host_platform().architecture,
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": digest::sha256_digest(&config),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": declared_size,
        }],
    }))
    .unwrap();
    Image {
        manifest,
        config,
        layer_digest,
    }
}

const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// Routes for `evil/img:t` serving `img` with `layer` as the layer's reply.
fn routes_for(img: &Image, layer: Reply) -> BTreeMap<String, Reply> {
    let mut r = BTreeMap::new();
    r.insert(
        "/v2/evil/img/manifests/t".into(),
        ok(img.manifest.clone(), MANIFEST_TYPE),
    );
    r.insert(
        format!("/v2/evil/img/blobs/{}", digest::sha256_digest(&img.config)),
        ok(img.config.clone(), "application/octet-stream"),
    );
    r.insert(format!("/v2/evil/img/blobs/{}", img.layer_digest), layer);
    r
}

/// Builds `FROM <addr>/evil/img:t` into an OCI tar, which needs every layer.
fn build_from_hostile(server: &Hostile) -> (tempfile::TempDir, Output) {
    let d = tempfile::tempdir().unwrap();
    let ctx = d.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {}/evil/img:t\n", server.addr),
    )
    .unwrap();
    let out_tar = d.path().join("out.tar");
    let state = d.path().join("state");
    let o = build(
        &state,
        &[
            "--output",
            &format!("type=oci,dest={}", out_tar.display()),
            ctx.to_str().unwrap(),
        ],
    );
    (d, o)
}

fn assert_no_partial_download(d: &tempfile::TempDir) {
    let left = partial_files(&d.path().join("state"));
    assert!(left.is_empty(), "partial downloads left behind: {left:?}");
    assert!(!d.path().join("out.tar").exists(), "no output on failure");
}

#[test]
fn endless_manifest_stops_at_the_manifest_limit() {
    let mut routes = BTreeMap::new();
    routes.insert(
        "/v2/evil/img/manifests/t".into(),
        Reply::Endless {
            prefix: br#"{"schemaVersion":2,"x":""#.to_vec(),
            fill: b'a',
        },
    );
    let server = Hostile::start(routes);
    let (_d, o) = build_from_hostile(&server);
    let t = failed(&o);
    assert!(
        t.contains("manifest") && t.contains("4 MiB limit"),
        "the error names the manifest and the limit:\n{t}"
    );
    assert!(
        server.sent() < BOUNDED_SEND,
        "kmigrate kept reading an endless manifest: {} bytes",
        server.sent()
    );
}

#[test]
fn blob_longer_than_its_descriptor_stops_at_the_declared_size() {
    let layer = vec![b'L'; 100];
    let img = image(&layer, 100);
    let server = Hostile::start(routes_for(
        &img,
        Reply::Endless {
            prefix: layer.clone(),
            fill: b'x',
        },
    ));
    let (d, o) = build_from_hostile(&server);
    let t = failed(&o);
    assert!(
        t.contains("longer than the 100 bytes its descriptor declares"),
        "{t}"
    );
    assert!(
        server.sent() < BOUNDED_SEND,
        "kmigrate kept downloading past the descriptor's size: {} bytes",
        server.sent()
    );
    assert_no_partial_download(&d);
}

#[test]
fn blob_shorter_than_its_descriptor_is_refused() {
    let layer = vec![b'L'; 100];
    let img = image(&layer, 100);
    let server = Hostile::start(routes_for(
        &img,
        ok(layer[..50].to_vec(), "application/octet-stream"),
    ));
    let (d, o) = build_from_hostile(&server);
    let t = failed(&o);
    assert!(
        t.contains("50 bytes, shorter than the 100 bytes its descriptor declares"),
        "{t}"
    );
    assert_no_partial_download(&d);
}

#[test]
fn blob_with_the_wrong_digest_is_refused() {
    let layer = vec![b'L'; 100];
    let img = image(&layer, 100);
    let server = Hostile::start(routes_for(
        &img,
        ok(vec![b'W'; 100], "application/octet-stream"),
    ));
    let (d, o) = build_from_hostile(&server);
    let t = failed(&o);
    assert!(t.contains("digest mismatch"), "{t}");
    assert_no_partial_download(&d);
}

#[test]
fn blob_cut_mid_transfer_leaves_no_partial_file() {
    let layer = vec![b'L'; 100 * 1024];
    let img = image(&layer, layer.len() as u64);
    let server = Hostile::start(routes_for(
        &img,
        Reply::Truncated {
            declared: layer.len() as u64,
            body: layer[..50 * 1024].to_vec(),
        },
    ));
    let (d, o) = build_from_hostile(&server);
    let t = failed(&o);
    assert!(
        t.contains(&img.layer_digest),
        "the error names the blob:\n{t}"
    );
    assert_no_partial_download(&d);
}

#[test]
fn image_config_over_the_limit_is_refused_before_download() {
    let layer = vec![b'L'; 100];
    let mut img = image(&layer, 100);
    let mut m: serde_json::Value = serde_json::from_slice(&img.manifest).unwrap();
    m["config"]["size"] = serde_json::json!(1u64 << 30);
    img.manifest = serde_json::to_vec(&m).unwrap();
    let mut routes = routes_for(&img, ok(layer, "application/octet-stream"));
    routes.insert(
        format!("/v2/evil/img/blobs/{}", digest::sha256_digest(&img.config)),
        Reply::Endless {
            prefix: br#"{"architecture":""#.to_vec(),
            fill: b'a',
        },
    );
    let server = Hostile::start(routes);
    let (d, o) = build_from_hostile(&server);
    let t = failed(&o);
    assert!(
        t.contains("image config") && t.contains("4 MiB limit"),
        "{t}"
    );
    assert!(server.sent() < BOUNDED_SEND, "sent {} bytes", server.sent());
    assert_no_partial_download(&d);
}

#[test]
fn endless_token_response_stops_at_its_limit() {
    // The challenge names the server itself, known once it listens.
    let server = Hostile::start(BTreeMap::new());
    server.route(
        "/v2/evil/img/manifests/t",
        Reply::Full {
            status: 401,
            headers: vec![(
                "WWW-Authenticate".into(),
                format!(
                    "Bearer realm=\"http://{}/token\",service=\"evil\"",
                    server.addr
                ),
            )],
            body: Vec::new(),
        },
    );
    server.route(
        "/token",
        Reply::Endless {
            prefix: br#"{"token":""#.to_vec(),
            fill: b'a',
        },
    );
    let (_d, o) = build_from_hostile(&server);
    let t = failed(&o);
    assert!(
        t.contains("token response") && t.contains("1 MiB limit"),
        "{t}"
    );
    assert!(server.sent() < BOUNDED_SEND, "sent {} bytes", server.sent());
}

#[test]
fn endless_cache_manifest_is_a_warning_and_the_build_goes_on() {
    let mut routes = BTreeMap::new();
    routes.insert(
        "/v2/evil/cache/manifests/t".into(),
        Reply::Endless {
            prefix: br#"{"schemaVersion":2,"x":""#.to_vec(),
            fill: b'a',
        },
    );
    let server = Hostile::start(routes);
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("Dockerfile"), "FROM scratch\nENV A=1\n").unwrap();
    let o = build(
        &d.path().join("state"),
        &[
            "--cache-from",
            &format!("type=registry,ref={}/evil/cache:t", server.addr),
            d.path().to_str().unwrap(),
        ],
    );
    let t = output_text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("4 MiB limit"), "{t}");
    assert!(server.sent() < BOUNDED_SEND, "sent {} bytes", server.sent());
}

// Dockerfiles and ignore files: regular files only, with a size limit.

fn context_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    support::write_files(d.path(), files);
    d
}

#[test]
fn dockerfile_from_dev_zero_is_refused() {
    let d = context_with(&[]);
    let o = build(
        &d.path().join("state"),
        &["-f", "/dev/zero", d.path().to_str().unwrap()],
    );
    let t = failed(&o);
    assert!(
        t.contains("/dev/zero") && t.contains("not a regular file"),
        "{t}"
    );
}

#[test]
fn dockerfile_fifo_is_refused_without_waiting_for_a_writer() {
    let d = context_with(&[]);
    let fifo = d.path().join("Dockerfile");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let state = d.path().join("state");
    let o = run_bounded(
        &[
            "build",
            "--progress=plain",
            "--state-dir",
            state.to_str().unwrap(),
            d.path().to_str().unwrap(),
        ],
        20,
    );
    let t = failed(&o);
    assert!(t.contains("not a regular file"), "{t}");
}

#[test]
fn huge_dockerfile_is_refused_by_size() {
    let d = context_with(&[]);
    let f = std::fs::File::create(d.path().join("Dockerfile")).unwrap();
    f.set_len(64 << 20).unwrap();
    let o = build(&d.path().join("state"), &[d.path().to_str().unwrap()]);
    let t = failed(&o);
    assert!(t.contains("larger than the 4 MiB limit"), "{t}");
}

#[test]
fn dockerignore_that_is_not_a_bounded_regular_file_is_refused() {
    let d = context_with(&[("Dockerfile", "FROM scratch\nENV A=1\n")]);
    let ignore = d.path().join(".dockerignore");
    std::os::unix::fs::symlink("/dev/zero", &ignore).unwrap();
    let state = d.path().join("state");
    let t = failed(&build(&state, &[d.path().to_str().unwrap()]));
    assert!(
        t.contains(".dockerignore") && t.contains("not a regular file"),
        "{t}"
    );
    std::fs::remove_file(&ignore).unwrap();
    std::fs::File::create(&ignore)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let t = failed(&build(&state, &[d.path().to_str().unwrap()]));
    assert!(
        t.contains(".dockerignore") && t.contains("larger than the 4 MiB limit"),
        "{t}"
    );
}

#[test]
fn verify_refuses_a_fifo_dockerfile_in_the_repository() {
    let d = context_with(&[(
        "cloudbuild.yaml",
        "steps:\n- name: gcr.io/cloud-builders/docker\n  args: [buildx, build, -f, ci/Dockerfile, -t, reg.example/p/app, --cache-from, 'type=registry,ref=reg.example/p/app:c', --cache-to, 'type=registry,ref=reg.example/p/app:c,mode=max', .]\n",
    )]);
    std::fs::create_dir(d.path().join("ci")).unwrap();
    nix::unistd::mkfifo(
        &d.path().join("ci/Dockerfile"),
        nix::sys::stat::Mode::S_IRWXU,
    )
    .unwrap();
    let store = tempfile::tempdir().unwrap();
    let o = run_bounded(
        &[
            "verify",
            "--store",
            store.path().join("s").to_str().unwrap(),
            d.path().join("cloudbuild.yaml").to_str().unwrap(),
        ],
        30,
    );
    let t = failed(&o);
    assert!(t.contains("not a regular file"), "{t}");
}

// `verify` builds only inside the repository (issue 13 item 9).

/// A repository with `cloudbuild.yaml` running `docker buildx build ARGS`,
/// next to an `outer` directory holding a Dockerfile with a host secret.
struct Repo {
    _d: tempfile::TempDir,
    repo: std::path::PathBuf,
    outer: std::path::PathBuf,
}

const SECRET: &str = "HOSTSECRET-41c7";

fn repo_building(args: &dyn Fn(&Path) -> String) -> Repo {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().canonicalize().unwrap();
    let repo = root.join("repo");
    let outer = root.join("outer");
    support::write_files(
        &outer,
        &[
            // Not an instruction: a build of it prints the line in its error.
            ("Dockerfile", &format!("FROM scratch\n{SECRET} here\n")),
            ("secret.txt", SECRET),
        ],
    );
    support::write_files(
        &repo,
        &[
            ("Dockerfile", "FROM scratch\nENV A=1\n"),
            (
                "cloudbuild.yaml",
                &format!(
                    "steps:\n- name: gcr.io/cloud-builders/docker\n  args: [buildx, build, -t, reg.example/p/app, {}]\n",
                    args(&outer)
                ),
            ),
        ],
    );
    Repo { _d: d, repo, outer }
}

fn verify_in(r: &Repo, extra: &[&str]) -> Output {
    let config = r.repo.join("cloudbuild.yaml");
    let mut args = vec!["verify"];
    args.extend_from_slice(extra);
    args.push(config.to_str().unwrap());
    run_bounded(&args, 60)
}

fn assert_refused_outside(r: &Repo, o: &Output, what: &str) {
    let t = output_text(o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains(&format!("the {what} "))
            && t.contains(&format!("is outside the repository {}", r.repo.display()))
            && t.contains("--allow-outside-repo"),
        "the refusal names the path, the repository and the flag:\n{t}"
    );
    assert!(
        !t.contains(SECRET),
        "a host file leaked into the report:\n{t}"
    );
}

#[test]
fn verify_refuses_an_absolute_context_outside_the_repository() {
    let r = repo_building(&|outer| outer.display().to_string());
    assert_refused_outside(&r, &verify_in(&r, &[]), "build context");
    // The explicit flag builds it (and so reads the host file).
    let t = output_text(&verify_in(&r, &["--allow-outside-repo"]));
    assert!(!t.contains("outside the repository"), "{t}");
    assert!(t.contains(SECRET), "the flag lifts the refusal:\n{t}");
}

#[test]
fn verify_refuses_a_parent_relative_context() {
    let r = repo_building(&|_| "../outer".into());
    assert_refused_outside(&r, &verify_in(&r, &[]), "build context");
}

#[test]
fn verify_refuses_a_symlinked_context_that_points_out() {
    let r = repo_building(&|_| "ctx".into());
    std::os::unix::fs::symlink(&r.outer, r.repo.join("ctx")).unwrap();
    let o = verify_in(&r, &[]);
    assert_refused_outside(&r, &o, "build context");
    assert!(
        output_text(&o).contains("which resolves to"),
        "{}",
        output_text(&o)
    );
}

#[test]
fn verify_refuses_a_dockerfile_outside_the_repository() {
    let r = repo_building(&|outer| format!("-f, {}/Dockerfile, .", outer.display()));
    assert_refused_outside(&r, &verify_in(&r, &[]), "Dockerfile");
    // A Dockerfile symlinked out of the repository, by its default name.
    let r = repo_building(&|_| "app".into());
    std::fs::create_dir(r.repo.join("app")).unwrap();
    std::os::unix::fs::symlink(r.outer.join("Dockerfile"), r.repo.join("app/Dockerfile")).unwrap();
    assert_refused_outside(&r, &verify_in(&r, &[]), "Dockerfile");
}

#[test]
fn verify_refuses_a_local_output_outside_the_repository() {
    let r = repo_building(&|outer| {
        format!("--output, 'type=local,dest={}/written', .", outer.display())
    });
    assert_refused_outside(&r, &verify_in(&r, &[]), "output destination");
    assert!(!r.outer.join("written").exists(), "nothing written outside");
}

// Verify's store never enters a build context (issue 15 item 6).

fn copy_everything_repo() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    support::write_files(
        d.path(),
        &[
            ("Dockerfile", "FROM scratch\nCOPY . /src\n"),
            ("app.txt", "app"),
            (
                "cloudbuild.yaml",
                "steps:\n- name: gcr.io/cloud-builders/docker\n  args: [buildx, build, -t, reg.example/p/app, --cache-from, 'type=registry,ref=reg.example/p/app:cache', --cache-to, 'type=registry,ref=reg.example/p/app:cache,mode=max', .]\n",
            ),
        ],
    );
    d
}

fn verify_with_cache_home(repo: &Path, cache_home: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kmigrate"))
        .arg("verify")
        .args(extra)
        .arg(repo.join("cloudbuild.yaml"))
        .env("XDG_CACHE_HOME", cache_home)
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("DOCKER_HOST")
        .output()
        .unwrap()
}

#[test]
fn verify_passes_copy_of_the_whole_context_with_the_default_store() {
    if !support::have("root") {
        return;
    }
    let repo = copy_everything_repo();
    let cache_home = tempfile::tempdir().unwrap();
    let o = verify_with_cache_home(repo.path(), cache_home.path(), &[]);
    let t = output_text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains("PASS"), "{t}");
    assert!(
        !repo.path().join(".kmigrate").exists(),
        "the default store is outside the repository"
    );
    let store = t
        .lines()
        .find_map(|l| l.strip_prefix("store: "))
        .expect("the report names the store");
    assert!(
        Path::new(store).starts_with(cache_home.path().join("kmigrate/verify")),
        "{store}"
    );
}

#[test]
fn verify_keeps_a_store_inside_the_context_out_of_it() {
    if !support::have("root") {
        return;
    }
    let repo = copy_everything_repo();
    let cache_home = tempfile::tempdir().unwrap();
    let store = repo.path().join("state/verify");
    let o = verify_with_cache_home(
        repo.path(),
        cache_home.path(),
        &["--store", store.to_str().unwrap()],
    );
    let t = output_text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(store.join("images").is_dir(), "the store was used: {t}");
}
