//! A small OCI distribution client: references, manifests and blobs over
//! plain HTTP for loopback/insecure registries and HTTPS otherwise, with
//! Basic and Bearer-token auth from the Docker `config.json`.
//!
//! Credentials never appear in errors or logs: messages carry the URL path
//! and status only.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;

use base64::Engine as _;

use super::digest;
use super::limits::{self, ERROR_EXCERPT_MAX, MANIFEST_MAX, TOKEN_RESPONSE_MAX};

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Registry host (`docker.io` for Docker Hub), with port if any.
    pub registry: String,
    /// Repository path (`library/busybox`).
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Reference {
    /// Parses `[registry/]repo[:tag][@digest]` as Docker does.
    pub fn parse(s: &str) -> Result<Self> {
        if s.is_empty() || s.chars().any(|c| c.is_whitespace()) {
            return Err(RegistryError::Reference(format!(
                "invalid image reference {s:?}"
            )));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                digest::validate(d)?;
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        let (registry, path) = match rest.split_once('/') {
            Some((first, p)) if first.contains(['.', ':']) || first == "localhost" => {
                (first.to_string(), p.to_string())
            }
            _ => ("docker.io".to_string(), rest.to_string()),
        };
        let (repo, tag) = match path.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r.to_string(), Some(t.to_string())),
            _ => (path, None),
        };
        let repo = if registry == "docker.io" && !repo.contains('/') {
            format!("library/{repo}")
        } else {
            repo
        };
        if repo.is_empty()
            || !repo
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c))
        {
            return Err(RegistryError::Reference(format!(
                "invalid repository name in {s:?}: use lower-case letters, digits, '.', '_', '-' and '/'"
            )));
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        Ok(Self {
            registry,
            repository: repo,
            tag,
            digest,
        })
    }

    /// The tag or digest to fetch.
    pub fn reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Registry access settings.
#[derive(Debug, Clone, Default)]
pub struct RegistryConfig {
    /// Hosts reached over plain HTTP in addition to loopback ones.
    pub insecure: Vec<String>,
    /// Host rewrites (`registry.example.com` -> `127.0.0.1:5000`).
    pub mirror: HashMap<String, String>,
    /// Path of a Docker `config.json`; default `$DOCKER_CONFIG/config.json`
    /// or `~/.docker/config.json`.
    pub docker_config: Option<std::path::PathBuf>,
}

/// A registry client (a clone shares the connection pool and starts with
/// the tokens got so far).
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    cfg: RegistryConfig,
    auths: HashMap<String, String>,
    /// `credHelpers` (registry -> helper suffix) and `credsStore`.
    helpers: HashMap<String, String>,
    store: Option<String>,
    tokens: HashMap<(String, String), String>,
}

/// A fetched manifest.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: String,
}

type Result<T> = std::result::Result<T, RegistryError>;

/// A failed registry operation. Messages name the registry, repository or
/// URL (without credentials or query) and quote the cause; the cause itself
/// (transport, I/O, JSON, digest) is the error's `source()`.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// An image reference that does not parse.
    #[error("{0}")]
    Reference(String),
    #[error(transparent)]
    Digest(#[from] digest::DigestError),
    /// A request that could not be built.
    #[error("{request}: {source}")]
    Request {
        /// Method and redacted URL.
        request: String,
        #[source]
        source: ureq::http::Error,
    },
    /// A request that got no answer (connection, TLS, timeout).
    #[error("{request}: {source}")]
    Transport {
        /// Method and redacted URL.
        request: String,
        #[source]
        source: ureq::Error,
    },
    /// Credentials missing or refused, or an auth scheme not supported.
    #[error("{0}")]
    Auth(String),
    /// An answer with an unexpected status or content.
    #[error("{0}")]
    Response(String),
    /// A response body that could not be read within its bound.
    #[error(transparent)]
    Body(#[from] limits::LimitError),
    /// A token response that is not JSON.
    #[error("{what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// A downloaded blob that could not be written or failed verification.
    #[error("{repository}: {source}")]
    Blob {
        /// `registry/repository`.
        repository: String,
        #[source]
        source: digest::BlobError,
    },
    /// The local file of a blob to upload could not be read.
    #[error("{}: {source}", path.display())]
    Upload {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The open upload file's metadata could not be read.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

impl Client {
    pub fn new(cfg: RegistryConfig) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(std::time::Duration::from_secs(10)))
            .build()
            .into();
        let DockerAuth {
            auths,
            helpers,
            store,
        } = load_auths(cfg.docker_config.as_deref());
        Self {
            agent,
            cfg,
            auths,
            helpers,
            store,
            tokens: HashMap::new(),
        }
    }

    fn host(&self, registry: &str) -> String {
        let r = self
            .cfg
            .mirror
            .get(registry)
            .cloned()
            .unwrap_or_else(|| registry.to_string());
        if r == "docker.io" {
            "registry-1.docker.io".into()
        } else {
            r
        }
    }

    fn base(&self, registry: &str) -> String {
        let host = self.host(registry);
        let name = host.rsplit_once(':').map_or(host.as_str(), |(h, p)| {
            if p.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                host.as_str()
            }
        });
        let plain = name == "localhost"
            || name.starts_with("127.")
            || name == "[::1]"
            || self
                .cfg
                .insecure
                .iter()
                .any(|i| i == &host || i == registry);
        format!("{}://{host}", if plain { "http" } else { "https" })
    }

    /// Sends a request, answering one auth challenge if needed.
    fn send(
        &mut self,
        method: &str,
        registry: &str,
        repo: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        let scope = format!(
            "repository:{repo}:{}",
            if matches!(method, "GET" | "HEAD") {
                "pull"
            } else {
                "pull,push"
            }
        );
        let mut attempt = 0;
        loop {
            let auth = self.auth_header(registry, &scope);
            let mut req = ureq::http::Request::builder().method(method).uri(url);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            if let Some(a) = &auth {
                req = req.header("Authorization", a.as_str());
            }
            let request = || format!("{method} {}", redact(url));
            let req = req
                .body(body.map(|b| b.to_vec()).unwrap_or_default())
                .map_err(|source| RegistryError::Request {
                    request: request(),
                    source,
                })?;
            let resp = self
                .agent
                .run(req)
                .map_err(|source| RegistryError::Transport {
                    request: request(),
                    source,
                })?;
            if resp.status().as_u16() == 401 && attempt == 0 {
                attempt += 1;
                let challenge = resp
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                self.answer_challenge(registry, &scope, &challenge)?;
                continue;
            }
            return Ok(resp);
        }
    }

    fn auth_header(&self, registry: &str, scope: &str) -> Option<String> {
        if let Some(t) = self.tokens.get(&(registry.to_string(), scope.to_string())) {
            return Some(t.clone());
        }
        self.tokens
            .get(&(registry.to_string(), "*".to_string()))
            .cloned()
    }

    fn answer_challenge(&mut self, registry: &str, scope: &str, challenge: &str) -> Result<()> {
        let basic = self.basic_for(registry);
        let lower = challenge.to_ascii_lowercase();
        if lower.starts_with("basic") {
            let b = basic.ok_or_else(|| {
                RegistryError::Auth(format!("registry {registry} requires authentication: add credentials with `docker login {registry}`"))
            })?;
            self.tokens.insert(
                (registry.to_string(), "*".to_string()),
                format!("Basic {b}"),
            );
            return Ok(());
        }
        if !lower.starts_with("bearer") {
            return Err(RegistryError::Auth(format!(
                "registry {registry}: unsupported auth challenge"
            )));
        }
        let params = parse_challenge(&challenge[6..]);
        let realm = params.get("realm").ok_or_else(|| {
            RegistryError::Auth(format!(
                "registry {registry}: bearer challenge without realm"
            ))
        })?;
        let mut url = format!("{realm}?scope={}", urlencode(scope));
        if let Some(s) = params.get("service") {
            url.push_str(&format!("&service={}", urlencode(s)));
        }
        let mut req = self.agent.get(&url);
        if let Some(b) = &basic {
            req = req.header("Authorization", &format!("Basic {b}"));
        }
        let mut resp = req.call().map_err(|source| RegistryError::Transport {
            request: format!("token request to {}", redact(realm)),
            source,
        })?;
        if resp.status().as_u16() != 200 {
            return Err(RegistryError::Auth(format!(
                "token request to {} for {scope}: HTTP {}{}",
                redact(realm),
                resp.status().as_u16(),
                if basic.is_none() {
                    " (no credentials for this registry in the Docker config.json)"
                } else {
                    ""
                }
            )));
        }
        let what = format!("token response from {}", redact(realm));
        let bytes = limits::read_limited(resp.body_mut().as_reader(), TOKEN_RESPONSE_MAX, &what)?;
        let v: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|source| RegistryError::Json { what, source })?;
        let tok = v
            .get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str())
            .ok_or_else(|| {
                RegistryError::Auth(format!(
                    "token response from {} has no token",
                    redact(realm)
                ))
            })?;
        self.tokens.insert(
            (registry.to_string(), scope.to_string()),
            format!("Bearer {tok}"),
        );
        Ok(())
    }

    fn basic_for(&self, registry: &str) -> Option<String> {
        let keys = [
            registry.to_string(),
            format!("https://{registry}"),
            format!("http://{registry}"),
            if registry == "docker.io" {
                "https://index.docker.io/v1/".into()
            } else {
                String::new()
            },
        ];
        if let Some(b) = keys.iter().find_map(|k| self.auths.get(k).cloned()) {
            return Some(b);
        }
        let helper = self.helpers.get(registry).or(self.store.as_ref())?;
        let server = if registry == "docker.io" {
            "https://index.docker.io/v1/"
        } else {
            registry
        };
        credential_helper(helper, server)
    }

    /// `…/v2/<repository>/manifests/<tag or digest>` on the reference's registry.
    fn manifest_url(&self, r: &Reference, reference: &str) -> String {
        format!(
            "{}/v2/{}/manifests/{reference}",
            self.base(&r.registry),
            r.repository
        )
    }

    /// Fetches a manifest (or index) by tag or digest.
    pub fn get_manifest(&mut self, r: &Reference, reference: &str) -> Result<Fetched> {
        let url = self.manifest_url(r, reference);
        let mut resp = self.send(
            "GET",
            &r.registry,
            &r.repository,
            &url,
            &[("Accept", ACCEPT)],
            None,
        )?;
        let status = resp.status().as_u16();
        if status == 404 {
            return Err(RegistryError::Response(format!(
                "{r}: manifest {reference} not found (HTTP 404)"
            )));
        }
        if status != 200 {
            return Err(RegistryError::Response(format!(
                "{r}: GET manifest {reference}: HTTP {status}"
            )));
        }
        let media_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .to_string();
        // containerd's bound: a manifest or index never needs more, and an
        // endless one must not fill memory.
        let bytes = limits::read_limited(
            resp.body_mut().as_reader(),
            MANIFEST_MAX,
            &format!("{r}: manifest {reference}"),
        )?;
        let d = digest::sha256_digest(&bytes);
        if reference.starts_with("sha256:") && d != reference {
            return Err(RegistryError::Response(format!(
                "{r}: manifest digest mismatch: asked {reference}, got {d}"
            )));
        }
        let media_type = if media_type.is_empty() || media_type == "application/json" {
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| {
                    v.get("mediaType")
                        .and_then(|m| m.as_str())
                        .map(String::from)
                })
                .unwrap_or_else(|| super::image::MANIFEST.to_string())
        } else {
            media_type
        };
        Ok(Fetched {
            bytes,
            media_type,
            digest: d,
        })
    }

    /// Downloads the blob `d` of `size` bytes (its descriptor's) into `dest`:
    /// stops at `size`, verifies length and digest, and leaves no partial
    /// file on any error (see [`digest::write_verified`]).
    pub fn get_blob(
        &mut self,
        registry: &str,
        repo: &str,
        d: &str,
        size: u64,
        dest: &Path,
    ) -> Result<()> {
        digest::validate(d)?;
        let url = format!("{}/v2/{repo}/blobs/{d}", self.base(registry));
        let mut resp = self.send("GET", registry, repo, &url, &[], None)?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(RegistryError::Response(format!(
                "{registry}/{repo}: GET blob {d}: HTTP {status}"
            )));
        }
        digest::write_verified(resp.body_mut().as_reader(), dest, d, size).map_err(|source| {
            RegistryError::Blob {
                repository: format!("{registry}/{repo}"),
                source,
            }
        })
    }

    /// True when the registry already has the blob.
    pub fn has_blob(&mut self, registry: &str, repo: &str, d: &str) -> Result<bool> {
        let url = format!("{}/v2/{repo}/blobs/{d}", self.base(registry));
        let resp = self.send("HEAD", registry, repo, &url, &[], None)?;
        Ok(resp.status().as_u16() == 200)
    }

    /// Uploads a blob from a file unless present. Returns bytes uploaded.
    pub fn push_blob(&mut self, registry: &str, repo: &str, d: &str, path: &Path) -> Result<u64> {
        if self.has_blob(registry, repo, d)? {
            return Ok(0);
        }
        let put = self.start_upload(registry, repo, d)?;
        let mut f = std::fs::File::open(path).map_err(|source| RegistryError::Upload {
            path: path.to_path_buf(),
            source,
        })?;
        let len = f.metadata()?.len();
        // The POST above answered any auth challenge for this repository's
        // push scope; the streamed PUT reuses that authorization.
        let auth = self.auth_header(registry, &format!("repository:{repo}:pull,push"));
        let mut req = ureq::http::Request::builder()
            .method("PUT")
            .uri(&put)
            .header("Content-Type", "application/octet-stream")
            .header("Content-Length", len.to_string());
        if let Some(a) = &auth {
            req = req.header("Authorization", a.as_str());
        }
        let request = || format!("PUT {}", redact(&put));
        let req = req
            .body(ureq::SendBody::from_reader(&mut f))
            .map_err(|source| RegistryError::Request {
                request: request(),
                source,
            })?;
        let resp = self
            .agent
            .run(req)
            .map_err(|source| RegistryError::Transport {
                request: request(),
                source,
            })?;
        let status = resp.status().as_u16();
        if status != 201 {
            return Err(RegistryError::Response(format!(
                "{registry}/{repo}: uploading blob {d}: HTTP {status}"
            )));
        }
        Ok(len)
    }

    /// Cross-repository mount within one registry; true when the registry
    /// linked the blob (HTTP 201) so nothing needs uploading.
    pub fn mount_blob(&mut self, registry: &str, repo: &str, d: &str, from: &str) -> Result<bool> {
        digest::validate(d)?;
        let url = format!(
            "{}/v2/{repo}/blobs/uploads/?mount={d}&from={}",
            self.base(registry),
            urlencode(from)
        );
        let resp = self.send(
            "POST",
            registry,
            repo,
            &url,
            &[("Content-Length", "0")],
            Some(&[]),
        )?;
        Ok(resp.status().as_u16() == 201)
    }

    /// Starts an upload session; returns the PUT URL carrying the digest.
    fn start_upload(&mut self, registry: &str, repo: &str, d: &str) -> Result<String> {
        let base = self.base(registry);
        let url = format!("{base}/v2/{repo}/blobs/uploads/");
        let resp = self.send(
            "POST",
            registry,
            repo,
            &url,
            &[("Content-Length", "0")],
            Some(&[]),
        )?;
        let status = resp.status().as_u16();
        if status != 202 {
            return Err(RegistryError::Response(format!(
                "{registry}/{repo}: starting blob upload: HTTP {status}"
            )));
        }
        let loc = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                RegistryError::Response(format!("{registry}/{repo}: upload without Location"))
            })?
            .to_string();
        let loc = if loc.starts_with('/') {
            format!("{base}{loc}")
        } else {
            loc
        };
        let sep = if loc.contains('?') { '&' } else { '?' };
        Ok(format!("{loc}{sep}digest={d}"))
    }

    /// Monolithic upload of bytes: POST then PUT with the digest.
    pub fn push_blob_bytes(
        &mut self,
        registry: &str,
        repo: &str,
        d: &str,
        data: &[u8],
    ) -> Result<()> {
        let put = self.start_upload(registry, repo, d)?;
        let len = data.len().to_string();
        let resp = self.send(
            "PUT",
            registry,
            repo,
            &put,
            &[
                ("Content-Type", "application/octet-stream"),
                ("Content-Length", &len),
            ],
            Some(data),
        )?;
        let status = resp.status().as_u16();
        if status != 201 {
            return Err(RegistryError::Response(format!(
                "{registry}/{repo}: uploading blob {d}: HTTP {status}"
            )));
        }
        Ok(())
    }

    /// Pushes manifest bytes under a tag or digest.
    pub fn put_manifest(
        &mut self,
        r: &Reference,
        tag: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<()> {
        let url = self.manifest_url(r, tag);
        let mut resp = self.send(
            "PUT",
            &r.registry,
            &r.repository,
            &url,
            &[("Content-Type", media_type)],
            Some(bytes),
        )?;
        let status = resp.status().as_u16();
        if status != 201 && status != 200 {
            let mut body = String::new();
            let _ = resp
                .body_mut()
                .as_reader()
                .take(ERROR_EXCERPT_MAX)
                .read_to_string(&mut body);
            return Err(RegistryError::Response(format!(
                "{r}: pushing manifest: HTTP {status}: {}",
                body.trim()
            )));
        }
        Ok(())
    }
}

fn parse_challenge(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((k, after)) = rest.split_once('=') else {
            break;
        };
        let k = k.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let (v, next) = if let Some(a) = after.strip_prefix('"') {
            match a.find('"') {
                Some(e) => (&a[..e], &a[e + 1..]),
                None => (a, ""),
            }
        } else {
            match after.find(',') {
                Some(e) => (&after[..e], &after[e..]),
                None => (after, ""),
            }
        };
        out.insert(k, v.to_string());
        rest = next.trim_start_matches(',').trim();
    }
    out
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Drops userinfo and query from a URL for messages.
pub(crate) fn redact(url: &str) -> String {
    let no_query = url.split('?').next().unwrap_or(url);
    match no_query.split_once("://") {
        Some((scheme, rest)) => {
            let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
            format!("{scheme}://{rest}")
        }
        None => no_query.to_string(),
    }
}

/// Credentials configured in a Docker `config.json`.
#[derive(Debug, Default)]
struct DockerAuth {
    /// registry -> base64 `user:pass`.
    auths: HashMap<String, String>,
    helpers: HashMap<String, String>,
    store: Option<String>,
}

/// Asks `docker-credential-<helper> get` for a server's credentials and
/// returns them as base64 `user:secret`. Failures mean "no credentials".
fn credential_helper(helper: &str, server: &str) -> Option<String> {
    use std::process::{Command, Stdio};
    if !helper
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return None;
    }
    let mut child = Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(server.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let user = v.get("Username")?.as_str()?;
    let secret = v.get("Secret")?.as_str()?;
    if user == "<token>" {
        // Identity tokens need an OAuth2 refresh flow, which is not implemented.
        return None;
    }
    Some(base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}")))
}

/// Reads `auths`, `credHelpers` and `credsStore` from the Docker config.
fn load_auths(path: Option<&Path>) -> DockerAuth {
    let path = match path {
        Some(p) => p.to_path_buf(),
        None => match std::env::var_os("DOCKER_CONFIG") {
            Some(d) => Path::new(&d).join("config.json"),
            None => match std::env::var_os("HOME") {
                Some(h) => Path::new(&h).join(".docker/config.json"),
                None => return DockerAuth::default(),
            },
        },
    };
    let Ok(text) = limits::read_regular_text(&path, limits::DOCKER_CONFIG_MAX, "Docker config")
    else {
        return DockerAuth::default();
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
        return DockerAuth::default();
    };
    let mut out = HashMap::new();
    if let Some(auths) = v.get("auths").and_then(|a| a.as_object()) {
        for (k, entry) in auths {
            let b64 = entry
                .get("auth")
                .and_then(|a| a.as_str())
                .map(String::from)
                .or_else(|| {
                    let u = entry.get("username")?.as_str()?;
                    let p = entry.get("password")?.as_str()?;
                    Some(base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")))
                });
            if let Some(b) = b64 {
                let host = k
                    .trim_start_matches("https://")
                    .trim_start_matches("http://");
                let host = host.split('/').next().unwrap_or(host).to_string();
                out.insert(host, b.clone());
                out.insert(k.clone(), b);
            }
        }
    }
    let helpers = v
        .get("credHelpers")
        .and_then(|h| h.as_object())
        .map(|h| {
            h.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let store = v
        .get("credsStore")
        .and_then(|s| s.as_str())
        .filter(|s| !s.is_empty())
        .map(String::from);
    DockerAuth {
        auths: out,
        helpers,
        store,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.reference()),
            ("docker.io", "library/busybox", "latest")
        );
        let r = Reference::parse("127.0.0.1:5000/base/bb:test").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.reference()),
            ("127.0.0.1:5000", "base/bb", "test")
        );
        let d = digest::sha256_digest(b"x");
        let r = Reference::parse(&format!("localhost/a@{d}")).unwrap();
        assert_eq!(r.reference(), d);
        assert!(Reference::parse("Upper/Case").is_err());
    }

    #[test]
    fn errors_keep_their_messages_and_their_causes() {
        use std::error::Error as _;
        let e = Reference::parse("Upper/Case").unwrap_err();
        assert!(matches!(e, RegistryError::Reference(_)), "{e:?}");
        assert_eq!(
            e.to_string(),
            r#"invalid repository name in "Upper/Case": use lower-case letters, digits, '.', '_', '-' and '/'"#
        );
        let e = Reference::parse("a@sha512:00").unwrap_err();
        assert!(matches!(e, RegistryError::Digest(_)), "{e:?}");
        assert_eq!(
            e.to_string(),
            r#"unsupported digest "sha512:00": only sha256 is supported"#
        );

        // Nothing listens on port 1: the transport error is the source.
        let mut c = Client::new(RegistryConfig::default());
        let r = Reference::parse("127.0.0.1:1/a:b").unwrap();
        let e = c.get_manifest(&r, "b").unwrap_err();
        let RegistryError::Transport { request, source } = &e else {
            panic!("{e:?}");
        };
        assert_eq!(request, "GET http://127.0.0.1:1/v2/a/manifests/b");
        assert_eq!(e.to_string(), format!("{request}: {source}"));
        assert!(e.source().unwrap().downcast_ref::<ureq::Error>().is_some());

        let d = tempfile::tempdir().unwrap();
        let e = c
            .push_blob("127.0.0.1:1", "a", &digest::sha256_digest(b""), d.path())
            .unwrap_err();
        assert!(matches!(e, RegistryError::Transport { .. }), "{e:?}");
    }

    #[test]
    fn challenge_and_redaction() {
        let c = parse_challenge(
            r#" realm="https://auth.example/token",service="reg",scope="repository:a:pull""#,
        );
        assert_eq!(c["realm"], "https://auth.example/token");
        assert_eq!(c["service"], "reg");
        assert_eq!(
            redact("https://user:pw@h/v2/x?_state=secret"),
            "https://h/v2/x"
        );
    }

    #[test]
    fn docker_config_auths() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("config.json");
        std::fs::write(&p, r#"{"auths":{"https://reg.example:5000":{"auth":"dTpw"},"o.example":{"username":"u","password":"p"}}}"#).unwrap();
        let a = load_auths(Some(&p)).auths;
        assert_eq!(a["reg.example:5000"], "dTpw");
        assert_eq!(a["o.example"], "dTpw");
    }
}
