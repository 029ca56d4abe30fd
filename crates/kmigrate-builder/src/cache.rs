//! Cache keys (`kmigrate-key-v1`) and the cache records exchanged with a
//! registry (`--cache-to/--cache-from type=registry`) or a local directory
//! (`type=local`).
//!
//! Keys chain like Kaniko's: `k0 = H(scheme, platform, base)`, then
//! `k_i = H(k_{i-1}, instruction kind, canonical text, extras)` where extras
//! are the env/args in scope for RUN and a content digest of the sources for
//! COPY/ADD (relative paths included, mtimes excluded).
//!
//! Exported format: one OCI image manifest with `artifactType`
//! [`ARTIFACT_TYPE`], a config blob of media type [`CONFIG_TYPE`] holding the
//! records, and the layer blobs as layers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::api::{BuildError, TransferError};
use super::digest::{self, DigestError};
use super::image::{self, Descriptor, Manifest};
use super::registry::RegistryError;

pub const KEY_SCHEME: &str = "kmigrate-key-v1";
pub const ARTIFACT_TYPE: &str = "application/vnd.kmigrate.cache.v1";
pub const CONFIG_TYPE: &str = "application/vnd.kmigrate.cache.config.v1+json";

/// The first key of a stage.
pub fn root_key(platform: &str, base: &str) -> String {
    chain(&[KEY_SCHEME, platform, base])
}

/// The next key in a chain.
pub fn next_key(prev: &str, kind: &str, text: &str, extras: &str) -> String {
    chain(&[prev, kind, text, extras])
}

fn chain(parts: &[&str]) -> String {
    let mut buf = Vec::new();
    for p in parts {
        buf.extend_from_slice(&(p.len() as u64).to_be_bytes());
        buf.extend_from_slice(p.as_bytes());
    }
    digest::sha256_hex(&buf)
}

/// A layer as a cache record refers to it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LayerRef {
    pub digest: String,
    #[serde(rename = "diffID")]
    pub diff_id: String,
    pub size: u64,
    #[serde(rename = "mediaType")]
    pub media_type: String,
}

/// One cached step.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CacheRecord {
    pub key: String,
    pub parent: String,
    pub stage: String,
    pub instruction: String,
    /// `None` when the step changed nothing (no layer).
    pub layer: Option<LayerRef>,
    pub created: String,
}

/// The config blob of an exported cache.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CacheConfig {
    pub schema: String,
    #[serde(rename = "keyScheme")]
    pub key_scheme: String,
    pub mode: String,
    pub records: Vec<CacheRecord>,
}

impl CacheConfig {
    pub fn new(mode: &str, mut records: Vec<CacheRecord>) -> Self {
        records.sort_by(|a, b| a.key.cmp(&b.key));
        records.dedup_by(|a, b| a.key == b.key);
        Self {
            schema: "kmigrate.cache.v1".into(),
            key_scheme: KEY_SCHEME.into(),
            mode: mode.into(),
            records,
        }
    }

    /// The cache manifest for this config (config blob bytes given).
    pub fn manifest(&self, config_bytes: &[u8]) -> Manifest {
        let mut layers: BTreeMap<String, Descriptor> = BTreeMap::new();
        for r in &self.records {
            if let Some(l) = &r.layer {
                let mut d = Descriptor::new(&l.media_type, &l.digest, l.size);
                d.annotations
                    .insert("org.kmigrate.cache.diffid".into(), l.diff_id.clone());
                layers.entry(l.digest.clone()).or_insert(d);
            }
        }
        Manifest {
            schema_version: 2,
            media_type: Some(image::MANIFEST.into()),
            artifact_type: Some(ARTIFACT_TYPE.into()),
            config: Descriptor::new(
                CONFIG_TYPE,
                &digest::sha256_digest(config_bytes),
                config_bytes.len() as u64,
            ),
            layers: layers.into_values().collect(),
            annotations: BTreeMap::new(),
        }
    }
}

/// Why a cache import or export failed. An import's failure is a warning;
/// an export's is [`BuildError::Cache`] unless `ignore-error=true`.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// A `--cache-from`/`--cache-to` the embedded builder cannot use: an
    /// unsupported type, a missing `ref=`/`dest=`, a bad `mode=`.
    #[error("{0}")]
    Spec(String),
    /// What was found is not a kmigrate cache.
    #[error("{0}")]
    Foreign(String),
    /// The cache manifest is not JSON.
    #[error("not a cache manifest: {0}")]
    NotManifest(#[source] serde_json::Error),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A layer could not be copied to the cache's registry.
    #[error(transparent)]
    Transfer(#[from] TransferError),
    /// A layer could not be made local for a `type=local` export.
    #[error(transparent)]
    Build(Box<BuildError>),
    #[error(transparent)]
    Digest(#[from] DigestError),
    /// A file of a local cache directory.
    #[error("{}: {source}", path.display())]
    File {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// Export mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only the layers of the final image.
    Min,
    /// Every layer-producing step of every stage built.
    Max,
}

impl Mode {
    pub fn parse(s: Option<&str>) -> Result<Self, String> {
        match s {
            None | Some("min") => Ok(Mode::Min),
            Some("max") => Ok(Mode::Max),
            Some(o) => Err(format!(
                "invalid cache mode {o:?}: use mode=min or mode=max"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Min => "min",
            Mode::Max => "max",
        }
    }
}

/// Picks the records to export: `max` keeps all; `min` keeps the ones whose
/// key is in the final image's chain.
pub fn select(records: &[CacheRecord], final_chain: &[String], mode: Mode) -> Vec<CacheRecord> {
    records
        .iter()
        .filter(|r| mode == Mode::Max || final_chain.contains(&r.key))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(key: &str, layer: Option<&str>) -> CacheRecord {
        CacheRecord {
            key: key.into(),
            parent: String::new(),
            stage: "s".into(),
            instruction: "RUN x".into(),
            layer: layer.map(|d| LayerRef {
                digest: d.into(),
                diff_id: d.into(),
                size: 1,
                media_type: crate::layer::GZIP_LAYER.into(),
            }),
            created: "1970-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn keys_chain_and_separate_fields() {
        let k0 = root_key("linux/amd64", "scratch");
        assert_eq!(k0.len(), 64);
        let a = next_key(&k0, "RUN", "RUN a", "");
        assert_ne!(a, next_key(&k0, "RUN", "RUN b", ""));
        assert_ne!(
            a,
            next_key(&root_key("linux/arm64", "scratch"), "RUN", "RUN a", "")
        );
        // Length-prefixing keeps ("ab","c") apart from ("a","bc").
        assert_ne!(
            next_key(&k0, "RUN", "ab", "c"),
            next_key(&k0, "RUN", "a", "bc")
        );
        assert_eq!(a, next_key(&k0, "RUN", "RUN a", ""));
    }

    #[test]
    fn min_keeps_final_chain_max_keeps_all_and_manifest_dedups() {
        let recs = vec![
            rec("b", Some("sha256:2")),
            rec("a", Some("sha256:1")),
            rec("c", None),
        ];
        let min = select(&recs, &["a".into()], Mode::Min);
        assert_eq!(min.len(), 1);
        assert_eq!(select(&recs, &["a".into()], Mode::Max).len(), 3);
        let cfg = CacheConfig::new("max", [recs.clone(), recs].concat());
        assert_eq!(
            cfg.records
                .iter()
                .map(|r| r.key.as_str())
                .collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        let m = cfg.manifest(b"{}");
        assert_eq!(m.layers.len(), 2);
        assert_eq!(m.artifact_type.as_deref(), Some(ARTIFACT_TYPE));
        assert!(Mode::parse(Some("all")).is_err());
    }
}
