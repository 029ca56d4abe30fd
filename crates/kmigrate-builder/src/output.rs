//! Image outputs: registry push, OCI layout (dir or tar), `docker load`
//! tarball, local root filesystem, cacheonly.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::api::{BuildError, TransferError};
use super::digest;
use super::engine::{Engine, R, StageState, io_err, json_err};
use super::image::{self, Descriptor, Index};
use super::registry::{Reference, RegistryError};
use kmigrate_plan::AttrList;

/// An image archive that `--output type=oci|docker` writes.
#[derive(Clone, Copy)]
struct Archive<'a> {
    dest: &'a Path,
    /// `oci`, or `docker` (which adds `manifest.json`).
    kind: &'a str,
    /// A tar file, else a directory (`tar=false`).
    tar: bool,
}

impl Engine<'_> {
    /// Produces the requested outputs for the assembled image.
    pub(crate) fn outputs(
        &mut self,
        fin: &StageState,
        cfg_bytes: &[u8],
        man_bytes: &[u8],
    ) -> R<()> {
        let mut specs: Vec<AttrList> = self.plan.outputs.clone();
        if self.plan.push {
            specs.push(AttrList::new([("type", "registry")]));
        }
        if self.plan.load {
            specs.push(AttrList::new([("type", "docker")]));
        }
        let man_digest = self.report.manifest_digest.clone();
        for spec in specs {
            let kind = spec
                .kind()
                .unwrap_or(if spec.get("").is_some() { "local" } else { "" })
                .to_string();
            let mut names: Vec<String> = self.plan.tags.clone();
            if let Some(n) = spec.get("name") {
                names.extend(n.split(',').map(String::from));
            }
            match kind.as_str() {
                "image" | "registry" => {
                    let push = kind == "registry" || spec.get("push") == Some("true");
                    if !push {
                        self.log(&format!("image {man_digest} kept in the local store (add push=true or --push to push)"));
                        continue;
                    }
                    if names.is_empty() {
                        return Err(BuildError::Usage(
                            "pushing needs an image name: add -t NAME or name=NAME".into(),
                        ));
                    }
                    for name in names.clone() {
                        let sent = self.push_image(&name, fin, cfg_bytes, man_bytes)?;
                        let r = Reference::parse(&name)
                            .map_err(|e| BuildError::Usage(e.to_string()))?;
                        self.report
                            .pushed
                            .push(format!("{}/{}@{man_digest}", r.registry, r.repository));
                        self.log(&format!(
                            "pushed {name} ({man_digest}, {sent} bytes uploaded)"
                        ));
                    }
                }
                "oci" | "docker" => {
                    let dest = spec.get("dest").ok_or_else(|| {
                        BuildError::Usage(format!(
                            "--output type={kind} needs dest=FILE: the embedded builder has no image store to load into (then run `docker load -i FILE`)"
                        ))
                    })?;
                    let tar = spec.get("tar") != Some("false");
                    let archive = Archive {
                        dest: Path::new(dest),
                        kind: &kind,
                        tar,
                    };
                    self.write_archive(archive, &names, fin, cfg_bytes, man_bytes)?;
                    self.log(&format!("wrote {kind} image to {dest}"));
                }
                "local" => {
                    let dest = spec.get("dest").or(spec.get("")).ok_or_else(|| {
                        BuildError::Usage("--output type=local needs dest=DIR".into())
                    })?;
                    let dest = PathBuf::from(dest);
                    fs::create_dir_all(&dest).map_err(io_err(dest.display()))?;
                    for l in &fin.layers {
                        let p = self.ensure_blob(&l.digest)?;
                        super::layer::extract(&p, &dest).map_err(io_err("local output"))?;
                    }
                    self.log(&format!("wrote image filesystem to {}", dest.display()));
                }
                "cacheonly" => {}
                other => {
                    return Err(BuildError::Usage(format!(
                        "unknown --output type {other:?}: use image, registry, oci, docker, local or cacheonly"
                    )));
                }
            }
            self.report.names.extend(names);
        }
        self.report.names.sort();
        self.report.names.dedup();
        Ok(())
    }

    /// Pushes the image as `name`; returns the blob bytes uploaded (layers
    /// already there or mounted from another repository cost none).
    fn push_image(
        &mut self,
        name: &str,
        fin: &StageState,
        cfg_bytes: &[u8],
        man_bytes: &[u8],
    ) -> R<u64> {
        let r = Reference::parse(name).map_err(|e| BuildError::Usage(e.to_string()))?;
        let e = |source: TransferError| BuildError::Push {
            name: name.to_string(),
            source,
        };
        let re = |source: RegistryError| e(source.into());
        let mut sent = 0;
        for l in &fin.layers {
            sent += self
                .copy_blob_to(&r.registry, &r.repository, &l.digest)
                .map_err(e)?;
        }
        let cd = digest::sha256_digest(cfg_bytes);
        if !self
            .client
            .has_blob(&r.registry, &r.repository, &cd)
            .map_err(re)?
        {
            self.client
                .push_blob_bytes(&r.registry, &r.repository, &cd, cfg_bytes)
                .map_err(re)?;
            sent += cfg_bytes.len() as u64;
        }
        let tag = r.tag.clone().unwrap_or_else(|| "latest".into());
        self.client
            .put_manifest(&r, &tag, image::MANIFEST, man_bytes)
            .map_err(re)?;
        Ok(sent)
    }

    fn write_archive(
        &mut self,
        archive: Archive,
        names: &[String],
        fin: &StageState,
        cfg_bytes: &[u8],
        man_bytes: &[u8],
    ) -> R<()> {
        let Archive { dest, kind, tar } = archive;
        let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
        for l in &fin.layers {
            let p = self.ensure_blob(&l.digest)?;
            files.insert(format!("blobs/sha256/{}", digest::validate(&l.digest)?), p);
        }
        let mut inline: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        inline.insert(
            format!("blobs/sha256/{}", digest::sha256_hex(cfg_bytes)),
            cfg_bytes.to_vec(),
        );
        inline.insert(
            format!("blobs/sha256/{}", digest::sha256_hex(man_bytes)),
            man_bytes.to_vec(),
        );
        let mut desc = Descriptor::new(
            image::MANIFEST,
            &digest::sha256_digest(man_bytes),
            man_bytes.len() as u64,
        );
        if let Some(n) = names.first() {
            desc.annotations
                .insert("io.containerd.image.name".into(), n.clone());
            let tag = Reference::parse(n)
                .ok()
                .and_then(|r| r.tag)
                .unwrap_or_else(|| "latest".into());
            desc.annotations
                .insert("org.opencontainers.image.ref.name".into(), tag);
        }
        let index = Index {
            schema_version: 2,
            media_type: Some(image::INDEX.into()),
            manifests: vec![desc],
        };
        inline.insert(
            "index.json".into(),
            serde_json::to_vec(&index).map_err(json_err(""))?,
        );
        inline.insert(
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        );
        if kind == "docker" {
            let dm = serde_json::json!([{
                "Config": format!("blobs/sha256/{}", digest::sha256_hex(cfg_bytes)),
                "RepoTags": names.iter().map(|n| docker_tag(n)).collect::<Vec<_>>(),
                "Layers": fin.layers.iter().map(|l| format!("blobs/sha256/{}", l.digest.trim_start_matches("sha256:"))).collect::<Vec<_>>(),
            }]);
            inline.insert(
                "manifest.json".into(),
                serde_json::to_vec(&dm).map_err(json_err(""))?,
            );
        }
        let e = io_err(dest.display());
        if tar {
            if let Some(p) = dest.parent() {
                fs::create_dir_all(p).map_err(io_err(p.display()))?;
            }
            let f = fs::File::create(dest).map_err(io_err(dest.display()))?;
            let mut b = tar::Builder::new(std::io::BufWriter::new(f));
            let mut dirs = vec!["blobs/".to_string(), "blobs/sha256/".to_string()];
            dirs.sort();
            for d in dirs {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, d, std::io::empty())
                    .map_err(io_err("archive"))?;
            }
            for (name, p) in &files {
                let mut h = tar::Header::new_gnu();
                let len = fs::metadata(p).map_err(io_err(p.display()))?.len();
                h.set_mode(0o644);
                h.set_size(len);
                b.append_data(
                    &mut h,
                    name,
                    fs::File::open(p).map_err(io_err(p.display()))?,
                )
                .map_err(io_err("archive"))?;
            }
            for (name, data) in &inline {
                let mut h = tar::Header::new_gnu();
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, name, data.as_slice())
                    .map_err(io_err("archive"))?;
            }
            let mut w = b.into_inner().map_err(io_err("archive"))?;
            w.flush().map_err(e)?;
        } else {
            fs::create_dir_all(dest.join("blobs/sha256")).map_err(io_err(dest.display()))?;
            for (name, p) in &files {
                fs::copy(p, dest.join(name)).map_err(io_err(dest.display()))?;
            }
            for (name, data) in &inline {
                fs::write(dest.join(name), data).map_err(io_err(dest.display()))?;
            }
        }
        Ok(())
    }
}

fn docker_tag(n: &str) -> String {
    match Reference::parse(n) {
        Ok(r) => {
            let repo = if r.registry == "docker.io" {
                r.repository.trim_start_matches("library/").to_string()
            } else {
                format!("{}/{}", r.registry, r.repository)
            };
            format!("{repo}:{}", r.tag.unwrap_or_else(|| "latest".into()))
        }
        Err(_) => n.to_string(),
    }
}

/// Writes `oci-layout` and an `index.json` with one manifest.
pub fn write_layout(dir: &Path, desc: &Descriptor, ref_name: &str) -> std::io::Result<()> {
    let mut d = desc.clone();
    d.annotations
        .insert("org.opencontainers.image.ref.name".into(), ref_name.into());
    let idx = Index {
        schema_version: 2,
        media_type: Some(image::INDEX.into()),
        manifests: vec![d],
    };
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&idx).map_err(std::io::Error::other)?,
    )
}
