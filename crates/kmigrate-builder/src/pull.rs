//! Image sources: base images and `COPY --from=image` from a registry (index
//! resolved to the host platform) or an OCI layout directory, and lazy blob
//! fetching into the local store with digest checks.

use std::path::PathBuf;

use super::api::{BuildError, TransferError};
use super::cache::{self, LayerRef};
use super::engine::{BlobSource, Engine, KnownBlob, R, StageState, io_err, json_err};
use super::image::{self, ImageConfig, Manifest};
use super::layer;
use super::limits::{self, IMAGE_CONFIG_MAX, MANIFEST_MAX};
use super::registry::Reference;

impl Engine<'_> {
    /// Makes sure a blob is in the local store, fetching it from where its
    /// descriptor was found; the download stops at the descriptor's size
    /// and is verified against its digest.
    pub(crate) fn ensure_blob(&mut self, digest: &str) -> R<PathBuf> {
        let path = self.store.blob_path(digest).map_err(io_err("blob"))?;
        if path.is_file() {
            return Ok(path);
        }
        // Stages that start together need the same base layers: one
        // fetches, the others wait and find the blob stored.
        let fetch = self.blob_fetches.of(digest);
        let _fetching = fetch.lock().unwrap_or_else(|e| e.into_inner());
        if path.is_file() {
            return Ok(path);
        }
        let Some(KnownBlob { source, size }) = self.blob_sources.get(digest).cloned() else {
            return Err(BuildError::Image(format!(
                "blob {digest} is neither in the local store nor in a known cache"
            )));
        };
        match source {
            BlobSource::Registry { registry, repo } => {
                self.client
                    .get_blob(&registry, &repo, digest, size, &path)?;
            }
            BlobSource::Dir(dir) => {
                let hex = super::digest::validate(digest)?;
                let src = dir.join("blobs/sha256").join(hex);
                let (f, _) = limits::open_regular(&src)
                    .map_err(io_err(format!("blob {digest} in {}", dir.display())))?;
                super::digest::write_verified(f, &path, digest, size).map_err(|source| {
                    BuildError::Blob {
                        context: dir.display().to_string(),
                        source,
                    }
                })?;
            }
        }
        Ok(path)
    }

    /// Pulls `raw` and extracts its root filesystem for a stage that starts
    /// later (see [`super::parallel::PreparedRoots`]). The root is one of
    /// this engine's work directories, removed with the build's.
    pub(crate) fn prepare_root(&mut self, raw: &str) -> R<PathBuf> {
        let mut st = self.pull(raw)?;
        self.ensure_rootfs_pub(&mut st)
    }

    /// The root prepared for stage `index` (waiting while it is prepared):
    /// the caller has it to itself.
    pub(crate) fn take_prepared_root(&self, index: usize) -> Option<PathBuf> {
        self.prepared_roots.take(index)
    }

    /// Records where the blobs of `m` come from, with their declared sizes.
    fn know_blobs(&mut self, m: &Manifest, source: &BlobSource) {
        for d in m.layers.iter().chain([&m.config]) {
            let known = KnownBlob {
                source: source.clone(),
                size: d.size,
            };
            self.blob_sources.insert(d.digest.clone(), known);
        }
    }

    /// Resolves an image reference to a stage state (config + layers), lazily.
    pub(crate) fn pull(&mut self, raw: &str) -> R<StageState> {
        if let Some(s) = self.images.get(raw) {
            return Ok(s.clone());
        }
        let (m, manifest_digest, source) = match raw.strip_prefix("oci-layout://") {
            Some(rest) => self.resolve_layout(raw, rest)?,
            None => self.resolve_registry(raw)?,
        };
        self.know_blobs(&m, &source);
        if m.config.size > IMAGE_CONFIG_MAX {
            return Err(BuildError::Image(format!(
                "{raw}: the image config is {} bytes, over the {} limit for an image config",
                m.config.size,
                limits::show(IMAGE_CONFIG_MAX)
            )));
        }
        let cfg_path = self.ensure_blob(&m.config.digest)?;
        let cfg_bytes = limits::read_regular_file(&cfg_path, IMAGE_CONFIG_MAX, "image config")
            .map_err(io_err("image config"))?;
        let config: ImageConfig = serde_json::from_slice(&cfg_bytes)
            .map_err(json_err(format!("{raw}: bad image config")))?;
        if config.rootfs.diff_ids.len() != m.layers.len() {
            return Err(BuildError::Image(format!(
                "{raw}: config lists {} diff_ids for {} layers",
                config.rootfs.diff_ids.len(),
                m.layers.len()
            )));
        }
        let layers = m
            .layers
            .iter()
            .zip(&config.rootfs.diff_ids)
            .map(|(l, d)| LayerRef {
                digest: l.digest.clone(),
                diff_id: d.clone(),
                size: l.size,
                media_type: layer::oci_media_type(&l.media_type),
            })
            .collect();
        let st = StageState {
            name: raw.to_string(),
            last_created: config.created.clone().unwrap_or_else(|| image::rfc3339(0)),
            config,
            layers,
            key: cache::root_key(&self.platform, &format!("image@{manifest_digest}")),
            rootfs: None,
            chain: Vec::new(),
        };
        self.images.insert(raw.to_string(), st.clone());
        Ok(st)
    }

    /// Fetches an image manifest from a registry, following an index to the
    /// host platform.
    pub(crate) fn resolve_registry(&mut self, raw: &str) -> R<(Manifest, String, BlobSource)> {
        let r = Reference::parse(raw).map_err(|e| BuildError::Usage(e.to_string()))?;
        let mut fetched = self
            .client
            .get_manifest(&r, r.reference())
            .map_err(|source| BuildError::Registry {
                context: format!("pulling {raw}"),
                source,
            })?;
        if fetched.media_type == image::INDEX || fetched.media_type == image::DOCKER_LIST {
            let idx: image::Index = serde_json::from_slice(&fetched.bytes)
                .map_err(json_err(format!("{raw}: bad index")))?;
            let d = self.pick_platform(raw, &idx)?;
            fetched = self.client.get_manifest(&r, &d)?;
        }
        let m: Manifest = serde_json::from_slice(&fetched.bytes)
            .map_err(json_err(format!("{raw}: bad manifest")))?;
        let src = BlobSource::Registry {
            registry: r.registry.clone(),
            repo: r.repository.clone(),
        };
        Ok((m, fetched.digest, src))
    }

    pub(crate) fn pick_platform(&self, raw: &str, idx: &image::Index) -> R<String> {
        let host = image::host_platform();
        idx.manifests
            .iter()
            .find(|m| {
                m.platform
                    .as_ref()
                    .is_none_or(|p| p.os == host.os && p.architecture == host.architecture)
            })
            .map(|m| m.digest.clone())
            .ok_or_else(|| {
                BuildError::Image(format!("{raw} has no manifest for {}", self.platform))
            })
    }

    /// Reads an image from an OCI layout directory:
    /// `oci-layout://DIR[:TAG]` or `oci-layout://DIR@sha256:...`.
    pub(crate) fn resolve_layout(
        &mut self,
        raw: &str,
        rest: &str,
    ) -> R<(Manifest, String, BlobSource)> {
        let (dir, sel) = match rest.split_once('@') {
            Some((d, dg)) => (d.to_string(), Some(dg.to_string())),
            None => match rest.rsplit_once(':') {
                Some((d, t)) if !t.contains('/') => (d.to_string(), Some(t.to_string())),
                _ => (rest.to_string(), None),
            },
        };
        let dir = PathBuf::from(dir);
        let read = |d: &str| -> R<Vec<u8>> {
            let hex = super::digest::validate(d)?;
            limits::read_regular_file(
                &dir.join("blobs/sha256").join(hex),
                MANIFEST_MAX,
                "manifest",
            )
            .map_err(io_err(format!("{raw}: blob {d}")))
        };
        let idx: image::Index = serde_json::from_slice(
            &limits::read_regular_file(&dir.join("index.json"), MANIFEST_MAX, "index")
                .map_err(io_err(format!("{raw}: index.json")))?,
        )
        .map_err(json_err(format!("{raw}: bad index.json")))?;
        let desc = idx
            .manifests
            .iter()
            .find(|m| match &sel {
                None => true,
                Some(s) if s.starts_with("sha256:") => &m.digest == s,
                Some(t) => m.annotations.get("org.opencontainers.image.ref.name") == Some(t),
            })
            .ok_or_else(|| BuildError::Image(format!("{raw}: no matching image in the layout")))?
            .clone();
        let mut digest = desc.digest.clone();
        let mut bytes = read(&digest)?;
        if desc.media_type == image::INDEX {
            let inner: image::Index = serde_json::from_slice(&bytes).map_err(json_err(raw))?;
            digest = self.pick_platform(raw, &inner)?;
            bytes = read(&digest)?;
        }
        if super::digest::sha256_digest(&bytes) != digest {
            return Err(BuildError::Image(format!(
                "{raw}: manifest does not match its digest"
            )));
        }
        let m: Manifest =
            serde_json::from_slice(&bytes).map_err(json_err(format!("{raw}: bad manifest")))?;
        Ok((m, digest, BlobSource::Dir(dir)))
    }

    /// Makes `digest` present in `registry/repo`: nothing if it is there, a
    /// cross-repository mount when the blob is known in another repository
    /// of the same registry, else an upload (fetching it first if needed).
    /// An uploaded blob is then known in `registry/repo`, so the next push
    /// of it to that registry (the image after its `--cache-to`) mounts it.
    /// Returns the bytes uploaded.
    pub(crate) fn copy_blob_to(
        &mut self,
        registry: &str,
        repo: &str,
        digest: &str,
    ) -> Result<u64, TransferError> {
        // A blob another repository of this registry has is mounted first:
        // one request, which succeeds whether or not `repo` has it already.
        if let Some(KnownBlob {
            source:
                BlobSource::Registry {
                    registry: from_reg,
                    repo: from,
                },
            ..
        }) = self.blob_sources.get(digest).cloned()
            && from_reg == registry
            && from != repo
            && self.client.mount_blob(registry, repo, digest, &from)?
        {
            return Ok(0);
        }
        if self.client.has_blob(registry, repo, digest)? {
            return Ok(0);
        }
        let p = self
            .ensure_blob(digest)
            .map_err(|e| TransferError::Local(Box::new(e)))?;
        let sent = self.client.push_blob(registry, repo, digest, &p)?;
        let size = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(sent);
        self.note_blob_in(registry, repo, digest, size);
        Ok(sent)
    }

    /// Records that `repo` on `registry` has the blob (a later push there
    /// mounts it from `repo`), unless one of that registry's repositories
    /// is known to have it already.
    pub(crate) fn note_blob_in(&mut self, registry: &str, repo: &str, digest: &str, size: u64) {
        let known_here = matches!(
            self.blob_sources.get(digest),
            Some(KnownBlob { source: BlobSource::Registry { registry: r, .. }, .. }) if r == registry
        );
        if !known_here {
            let source = BlobSource::Registry {
                registry: registry.to_string(),
                repo: repo.to_string(),
            };
            self.blob_sources
                .insert(digest.to_string(), KnownBlob { source, size });
        }
    }
}
