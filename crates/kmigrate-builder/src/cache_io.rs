//! Cache import (`--cache-from`) and export (`--cache-to`) for the registry
//! and local-directory backends.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::api::BuildError;
use super::cache::{self, CacheConfig, CacheError, CacheRecord, Mode};
use super::digest;
use super::early_upload::EarlyUploads;
use super::engine::{BlobSource, Engine, KnownBlob, R, StageState};
use super::image::{self, Descriptor, Index, Manifest};
use super::limits::{self, CACHE_CONFIG_MAX, MANIFEST_MAX};
use super::output::write_layout;
use super::registry::Reference;
use kmigrate_plan::AttrList;

/// The backend of a `--cache-to`: its `type=`, or `registry` for a bare
/// reference.
fn export_kind(spec: &AttrList) -> &str {
    spec.kind().unwrap_or(if spec.get("").is_some() {
        "registry"
    } else {
        ""
    })
}

impl Engine<'_> {
    /// Starts sending new layers to the first `--cache-to` that is a
    /// `mode=max` registry cache (see [`super::early_upload`]); `None` when
    /// there is none, or its spec is wrong (the export reports that).
    pub(crate) fn start_early_uploads(&self) -> Option<std::sync::Arc<EarlyUploads>> {
        let spec = self.plan.cache_to.iter().find(|spec| {
            export_kind(spec) == "registry"
                && Mode::parse(spec.get("mode")).is_ok_and(|m| m == Mode::Max)
        })?;
        let target = Reference::parse(spec.get("ref").or(spec.get(""))?).ok()?;
        Some(std::sync::Arc::new(EarlyUploads::start(
            self.client.clone(),
            &target,
        )))
    }

    /// Imports every `--cache-from`; a missing or foreign cache is a warning.
    pub(crate) fn import_caches(&mut self) -> R<()> {
        for spec in self.plan.cache_from.clone() {
            let kind = spec.kind().unwrap_or(if spec.get("").is_some() {
                "registry"
            } else {
                ""
            });
            let res = match kind {
                "registry" => {
                    let r = spec.get("ref").or(spec.get("")).unwrap_or("");
                    self.import_registry(r)
                }
                "local" => {
                    let src = spec.get("src").unwrap_or("");
                    self.import_local(Path::new(src))
                }
                "inline" | "gha" | "s3" | "azblob" => Err(CacheError::Spec(format!(
                    "cache type {kind:?} is not supported by the embedded builder; ignored"
                ))),
                other => {
                    return Err(BuildError::Usage(format!(
                        "unknown --cache-from type {other:?}: use type=registry,ref=... or type=local,src=..."
                    )));
                }
            };
            match res {
                Ok(n) => self.log(&format!("importing cache from {spec}: {n} records")),
                Err(e) => self.warn(format!("cache import from {spec}: {e}")),
            }
        }
        Ok(())
    }

    fn import_registry(&mut self, raw: &str) -> Result<usize, CacheError> {
        let r = Reference::parse(raw)?;
        let m = self.client.get_manifest(&r, r.reference())?;
        let man: Manifest = serde_json::from_slice(&m.bytes).map_err(CacheError::NotManifest)?;
        if man.config.media_type != cache::CONFIG_TYPE {
            return Err(CacheError::Foreign(format!(
                "{raw} is not a kmigrate cache (config media type {}); ignored",
                man.config.media_type
            )));
        }
        let cfg = {
            if man.config.size > CACHE_CONFIG_MAX {
                return Err(CacheError::Foreign(format!(
                    "the cache config is {} bytes, over the {} limit for a cache config",
                    man.config.size,
                    limits::show(CACHE_CONFIG_MAX)
                )));
            }
            let path = self.store.temp_file_path("cache-config");
            let fetched = self
                .client
                .get_blob(
                    &r.registry,
                    &r.repository,
                    &man.config.digest,
                    man.config.size,
                    &path,
                )
                .map_err(CacheError::from)
                .and_then(|()| {
                    limits::read_regular_file(&path, CACHE_CONFIG_MAX, "cache config")
                        .map_err(CacheError::Io)
                });
            let _ = fs::remove_file(&path);
            serde_json::from_slice::<CacheConfig>(&fetched?)?
        };
        let source = BlobSource::Registry {
            registry: r.registry.clone(),
            repo: r.repository.clone(),
        };
        self.know_cache_layers(&man, &source);
        Ok(self.add_records(cfg.records))
    }

    fn import_local(&mut self, dir: &Path) -> Result<usize, CacheError> {
        let read = |p: &Path, limit: u64, what: &str| -> Result<Vec<u8>, CacheError> {
            limits::read_regular_file(p, limit, what).map_err(|source| CacheError::File {
                path: p.to_path_buf(),
                source,
            })
        };
        let idx: Index =
            serde_json::from_slice(&read(&dir.join("index.json"), MANIFEST_MAX, "index")?)?;
        let d = idx
            .manifests
            .first()
            .ok_or_else(|| CacheError::Foreign("empty index.json".into()))?;
        let blob = |d: &str, limit: u64, what: &str| -> Result<Vec<u8>, CacheError> {
            let hex = digest::validate(d)?;
            read(&dir.join("blobs/sha256").join(hex), limit, what)
        };
        let man: Manifest = serde_json::from_slice(&blob(&d.digest, MANIFEST_MAX, "manifest")?)?;
        if man.config.media_type != cache::CONFIG_TYPE {
            return Err(CacheError::Foreign("not a kmigrate cache".into()));
        }
        let cfg: CacheConfig =
            serde_json::from_slice(&blob(&man.config.digest, CACHE_CONFIG_MAX, "cache config")?)?;
        self.know_cache_layers(&man, &BlobSource::Dir(dir.to_path_buf()));
        Ok(self.add_records(cfg.records))
    }

    /// Records where a cache's layers come from, with their declared
    /// sizes; a source already known (a base image's) is kept.
    fn know_cache_layers(&mut self, man: &Manifest, source: &BlobSource) {
        for l in &man.layers {
            self.blob_sources
                .entry(l.digest.clone())
                .or_insert_with(|| KnownBlob {
                    source: source.clone(),
                    size: l.size,
                });
        }
    }

    fn add_records(&mut self, records: Vec<CacheRecord>) -> usize {
        let mut n = 0;
        for r in records {
            if let Some(l) = &r.layer
                && digest::validate(&l.digest).is_err()
            {
                continue;
            }
            self.imported.insert(r.key.clone(), r);
            n += 1;
        }
        n
    }

    /// Runs every `--cache-to`.
    pub(crate) fn export_caches(&mut self, fin: &StageState) -> R<()> {
        for spec in self.plan.cache_to.clone() {
            let ignore = spec.get("ignore-error") == Some("true");
            let res = self.export_one(&spec, fin);
            match res {
                Ok(n) => {
                    self.report.cache_bytes_exported += n;
                    self.log(&format!("exported cache to {spec} ({n} bytes written)"));
                }
                Err(e) if ignore => self.warn(format!(
                    "cache export to {spec} failed (ignore-error=true): {e}"
                )),
                Err(source) => {
                    return Err(BuildError::Cache {
                        context: format!("cache export to {spec} failed"),
                        source,
                    });
                }
            }
        }
        Ok(())
    }

    fn export_one(&mut self, spec: &AttrList, fin: &StageState) -> Result<u64, CacheError> {
        let kind = export_kind(spec);
        let mode = Mode::parse(spec.get("mode")).map_err(CacheError::Spec)?;
        let records = cache::select(&self.records, &fin.chain, mode);
        let cfg = CacheConfig::new(mode.as_str(), records);
        let cfg_bytes = serde_json::to_vec(&cfg)?;
        let man = cfg.manifest(&cfg_bytes);
        let man_bytes = serde_json::to_vec(&man)?;
        match kind {
            "registry" => {
                let raw = spec
                    .get("ref")
                    .or(spec.get(""))
                    .ok_or_else(|| CacheError::Spec("type=registry needs ref=".into()))?;
                let r = Reference::parse(raw)?;
                let early = match &self.early_uploads {
                    Some(up) if up.registry == r.registry && up.repository == r.repository => {
                        up.finish()
                    }
                    _ => HashMap::new(),
                };
                let mut n = 0;
                for l in &man.layers {
                    n += match early.get(&l.digest) {
                        Some(&sent) => {
                            self.note_blob_in(&r.registry, &r.repository, &l.digest, l.size);
                            sent
                        }
                        None => self.copy_blob_to(&r.registry, &r.repository, &l.digest)?,
                    };
                }
                self.client.push_blob_bytes(
                    &r.registry,
                    &r.repository,
                    &man.config.digest,
                    &cfg_bytes,
                )?;
                n += cfg_bytes.len() as u64;
                let tag = r.tag.clone().unwrap_or_else(|| "latest".into());
                self.client
                    .put_manifest(&r, &tag, image::MANIFEST, &man_bytes)?;
                Ok(n + man_bytes.len() as u64)
            }
            "local" => {
                let dest = PathBuf::from(
                    spec.get("dest")
                        .ok_or_else(|| CacheError::Spec("type=local needs dest=".into()))?,
                );
                let mut n = 0;
                let blobs = dest.join("blobs/sha256");
                fs::create_dir_all(&blobs)?;
                for l in &man.layers {
                    let target = blobs.join(digest::validate(&l.digest)?);
                    if !target.exists() {
                        let p = self
                            .ensure_blob(&l.digest)
                            .map_err(|e| CacheError::Build(Box::new(e)))?;
                        n += fs::copy(p, target)?;
                    }
                }
                for b in [&cfg_bytes, &man_bytes] {
                    fs::write(blobs.join(digest::sha256_hex(b)), b)?;
                    n += b.len() as u64;
                }
                write_layout(
                    &dest,
                    &Descriptor::new(
                        image::MANIFEST,
                        &digest::sha256_digest(&man_bytes),
                        man_bytes.len() as u64,
                    ),
                    "cache",
                )?;
                Ok(n)
            }
            "inline" => Err(CacheError::Spec(
                "inline cache is not supported by the embedded builder".into(),
            )),
            other => Err(CacheError::Spec(format!(
                "unknown --cache-to type {other:?}: use type=registry,ref=... or type=local,dest=..."
            ))),
        }
    }
}
