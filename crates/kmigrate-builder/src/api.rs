//! Public types of the builder API: options, report, errors.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use miette::Diagnostic;
use thiserror::Error;

use super::cache::CacheError;
use super::digest::{BlobError, DigestError};
use super::dockerfile::DockerfileError;
use super::registry::{RegistryConfig, RegistryError};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Progress {
    /// The caller's choice of a live view or plain lines; the library treats
    /// it as [`Progress::Plain`] (the CLI picks [`Progress::Tty`] when stderr
    /// is a terminal).
    #[default]
    Auto,
    /// A live spinner per step on stderr (indicatif): step, running/cached/
    /// done, elapsed time, layer size.
    Tty,
    /// One line per event, BuildKit style (`#3 [2/4] RUN ...`, `#3 CACHED`).
    Plain,
    /// Only errors.
    Quiet,
}

impl Progress {
    pub fn parse(s: Option<&str>) -> Result<Self, String> {
        match s {
            None | Some("auto") => Ok(Self::Auto),
            Some("tty") => Ok(Self::Tty),
            Some("plain") | Some("rawjson") => Ok(Self::Plain),
            Some("quiet") | Some("none") => Ok(Self::Quiet),
            Some(o) => Err(format!(
                "invalid --progress {o:?}: use auto, plain or quiet"
            )),
        }
    }
}

/// Where build logs go; shared so callers can capture them.
pub type LogSink = Arc<Mutex<dyn Write + Send>>;

/// Options that are not part of the `docker buildx build` flags.
#[derive(Clone)]
pub struct BuildOptions {
    /// Local state: content store, local cache records, work directories.
    /// Deleting it makes the next build cold (except for `--cache-from`).
    pub state_dir: PathBuf,
    /// Insecure (plain HTTP) registries, registry host rewrites and the
    /// Docker `config.json` to read credentials from.
    pub registry: RegistryConfig,
    pub progress: Progress,
    /// Log output (progress lines, RUN output, warnings, summary).
    pub log: LogSink,
    /// Most processes one RUN may have at once (`None`: no bound); default
    /// [`DEFAULT_RUN_PIDS_LIMIT`].
    pub run_pids_limit: Option<u32>,
    /// Host directories that are never part of the build context, even when
    /// they lie inside it (verify's store). The state directory never is.
    pub exclude_from_context: Vec<PathBuf>,
    /// Most stages built at the same time (independent stages of a
    /// multi-stage build run in parallel, as with BuildKit); 1 builds them
    /// one after another. Default: the number of CPUs.
    pub max_parallel_stages: usize,
    /// The bound on the state directory: after a successful build, what
    /// earlier builds left is removed least recently used first down to
    /// this many bytes (`None`: no bound). Default
    /// [`DEFAULT_STATE_MAX_SIZE`].
    pub state_max_size: Option<u64>,
}

/// The default of [`BuildOptions::max_parallel_stages`]: the CPUs this
/// process may use.
pub fn default_parallel_stages() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// kmigrate's directory under the user's cache: `$XDG_CACHE_HOME/kmigrate`,
/// else `~/.cache/kmigrate`, else `<tmp>/kmigrate`.
pub fn user_cache_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("kmigrate");
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(h) => PathBuf::from(h).join(".cache/kmigrate"),
        None => std::env::temp_dir().join("kmigrate"),
    }
}

/// The default bound on the state directory (see [`crate::gc`]): room for
/// a few toolchain images and their caches, well below what fills a CI
/// runner's disk.
pub const DEFAULT_STATE_MAX_SIZE: u64 = 10 << 30;

/// The default bound on a RUN's processes: far above what builds use,
/// far below what exhausts a host (Podman's default is 2048).
pub const DEFAULT_RUN_PIDS_LIMIT: u32 = 4096;

impl BuildOptions {
    /// Options with logs on stderr.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Self {
            state_dir: state_dir.into(),
            registry: RegistryConfig::default(),
            progress: Progress::Auto,
            log: Arc::new(Mutex::new(std::io::stderr())),
            run_pids_limit: Some(DEFAULT_RUN_PIDS_LIMIT),
            exclude_from_context: Vec::new(),
            max_parallel_stages: default_parallel_stages(),
            state_max_size: Some(DEFAULT_STATE_MAX_SIZE),
        }
    }
}

/// One Dockerfile step as it ran.
#[derive(Debug, Clone)]
pub struct StepRecord {
    /// Stage name or index.
    pub stage: String,
    /// Dockerfile line of the instruction.
    pub line: usize,
    /// The instruction text (after variable expansion for metadata steps).
    pub instruction: String,
    /// Whether a RUN/COPY/ADD step was served from cache (`false` for
    /// metadata steps, which are never executed either).
    pub cached: bool,
    /// Whether the step ran (RUN executed, COPY/ADD copied files).
    pub executed: bool,
    pub duration: Duration,
    /// The step's cache key (`kmigrate-key-v1`).
    pub key: String,
    /// Digest of the step's layer, if it has one.
    pub layer: Option<String>,
}

/// What a build did.
#[derive(Debug, Clone, Default)]
pub struct BuildReport {
    pub steps: Vec<StepRecord>,
    /// RUN/COPY/ADD steps executed.
    pub executed: usize,
    /// RUN/COPY/ADD steps served from cache.
    pub cached: usize,
    /// Digest of the image manifest (`containerimage.digest`).
    pub manifest_digest: String,
    /// Digest of the image config.
    pub config_digest: String,
    /// Bytes uploaded or written by cache exports (blobs not already there).
    pub cache_bytes_exported: u64,
    /// Refs pushed, as `name@digest`.
    pub pushed: Vec<String>,
    /// Image names (`-t` and `name=`).
    pub names: Vec<String>,
    pub warnings: Vec<String>,
}

/// A build failure.
#[derive(Debug, Error, Diagnostic)]
pub enum BuildError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Dockerfile(#[from] Box<DockerfileError>),
    /// Invalid flags or options.
    #[error("{0}")]
    #[diagnostic(code(kmigrate::build::usage))]
    Usage(String),
    /// A step failed (message names the step).
    #[error("{0}")]
    #[diagnostic(code(kmigrate::build::step))]
    Step(String),
    /// A file or directory operation failed; `context` names the path and
    /// what was being done with it.
    #[error("{context}: {source}")]
    #[diagnostic(code(kmigrate::build::io))]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A registry request failed (pulling a base image, pushing).
    #[error("{}", with_context(context, source))]
    #[diagnostic(code(kmigrate::build::io))]
    Registry {
        /// What was being done, e.g. `pulling busybox`; empty when the
        /// registry's message says it all.
        context: String,
        #[source]
        source: RegistryError,
    },
    /// A blob could not be fetched into the local store.
    #[error("{}", with_context(context, source))]
    #[diagnostic(code(kmigrate::build::io))]
    Blob {
        context: String,
        #[source]
        source: BlobError,
    },
    /// Pushing an image (`--push`, `--output type=registry`) failed.
    #[error("pushing {name}: {source}")]
    #[diagnostic(code(kmigrate::build::io))]
    Push {
        name: String,
        #[source]
        source: TransferError,
    },
    /// A `--cache-to` export failed.
    #[error("{context}: {source}")]
    #[diagnostic(code(kmigrate::build::io))]
    Cache {
        context: String,
        #[source]
        source: CacheError,
    },
    /// An image manifest, index or config that is not valid JSON.
    #[error("{}", with_context(context, source))]
    #[diagnostic(code(kmigrate::build::io))]
    Json {
        context: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    #[diagnostic(code(kmigrate::build::io))]
    Digest(#[from] DigestError),
    /// An image or blob that is missing or inconsistent (no manifest for the
    /// platform, a layer count that does not match the config).
    #[error("{0}")]
    #[diagnostic(code(kmigrate::build::io))]
    Image(String),
}

/// `context: cause`, or the cause alone when there is no context.
fn with_context(context: &str, cause: &dyn std::fmt::Display) -> String {
    if context.is_empty() {
        cause.to_string()
    } else {
        format!("{context}: {cause}")
    }
}

impl From<RegistryError> for BuildError {
    /// A registry failure whose message says it all.
    fn from(source: RegistryError) -> Self {
        Self::Registry {
            context: String::new(),
            source,
        }
    }
}

/// Why a blob could not be copied to a registry: the registry failed, or
/// the blob could not be made local first.
#[derive(Debug, Error)]
pub enum TransferError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Local(Box<BuildError>),
}
