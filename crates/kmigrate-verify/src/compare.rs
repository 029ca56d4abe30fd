//! `--compare-original`: two images (OCI layout directories) compared by
//! their config (env, entrypoint, cmd, workdir, user, labels, exposed
//! ports) and by the file listing of each layer. Every difference is a
//! finding with its path (`config.Env[FOO]`, `layer 2: /app/bin`).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use kmigrate_builder::digest;
use kmigrate_builder::image::{ImageConfig, Index, Manifest};

/// One difference between the original and the rewritten image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Difference {
    /// Where: `config.Env[NAME]`, `config.Cmd`, `layer 3: /path`…
    pub path: String,
    pub original: String,
    pub rewritten: String,
}

/// A file entry of a layer: type, mode, owner, size and content digest.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    desc: String,
}

/// An image read back from an OCI layout directory.
#[derive(Debug)]
pub struct Image {
    pub config: ImageConfig,
    layers: Vec<BTreeMap<String, Entry>>,
}

fn blob(dir: &Path, d: &str) -> Result<std::path::PathBuf, String> {
    let hex = digest::validate(d).map_err(|e| e.to_string())?;
    Ok(dir.join("blobs/sha256").join(hex))
}

/// Reads the first image of an OCI layout directory.
pub fn read_layout(dir: &Path) -> Result<Image, String> {
    let idx: Index = serde_json::from_slice(
        &std::fs::read(dir.join("index.json"))
            .map_err(|e| format!("{}: {e}", dir.join("index.json").display()))?,
    )
    .map_err(|e| format!("{}: {e}", dir.display()))?;
    let desc = idx
        .manifests
        .first()
        .ok_or_else(|| format!("{}: index.json lists no image", dir.display()))?;
    let man: Manifest = serde_json::from_slice(
        &std::fs::read(blob(dir, &desc.digest)?).map_err(|e| e.to_string())?,
    )
    .map_err(|e| format!("manifest {}: {e}", desc.digest))?;
    let config: ImageConfig = serde_json::from_slice(
        &std::fs::read(blob(dir, &man.config.digest)?).map_err(|e| e.to_string())?,
    )
    .map_err(|e| format!("config {}: {e}", man.config.digest))?;
    let mut layers = Vec::new();
    for l in &man.layers {
        layers.push(list_layer(&blob(dir, &l.digest)?)?);
    }
    Ok(Image { config, layers })
}

/// A layer's entries; its compression (gzip, zstd, ... or none) is told by
/// its bytes, as the builder reads layers.
fn list_layer(path: &Path) -> Result<BTreeMap<String, Entry>, String> {
    let reader =
        kmigrate_builder::decompress::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut ar = tar::Archive::new(reader);
    let mut out = BTreeMap::new();
    for e in ar.entries().map_err(|e| e.to_string())? {
        let mut e = e.map_err(|e| format!("layer {}: {e}", path.display()))?;
        let name = format!(
            "/{}",
            e.path()
                .map_err(|e| e.to_string())?
                .display()
                .to_string()
                .trim_start_matches("./")
                .trim_end_matches('/')
        );
        let h = e.header().clone();
        let kind = match h.entry_type() {
            tar::EntryType::Directory => "dir".to_string(),
            tar::EntryType::Symlink => format!(
                "symlink -> {}",
                h.link_name()
                    .ok()
                    .flatten()
                    .map(|l| l.display().to_string())
                    .unwrap_or_default()
            ),
            tar::EntryType::Link => "hardlink".to_string(),
            _ => {
                let mut buf = Vec::new();
                e.read_to_end(&mut buf).map_err(|e| e.to_string())?;
                format!("file {} bytes {}", buf.len(), digest::sha256_digest(&buf))
            }
        };
        let desc = format!(
            "{kind}, mode {:o}, uid {} gid {}",
            h.mode().unwrap_or(0) & 0o7777,
            h.uid().unwrap_or(0),
            h.gid().unwrap_or(0)
        );
        out.insert(name, Entry { desc });
    }
    Ok(out)
}

fn show<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Every difference between `original` and `rewritten`.
pub fn compare(original: &Image, rewritten: &Image) -> Vec<Difference> {
    let mut out = Vec::new();
    let a = &original.config.config;
    let b = &rewritten.config.config;
    let mut diff = |path: String, x: String, y: String| {
        if x != y {
            out.push(Difference {
                path,
                original: x,
                rewritten: y,
            });
        }
    };
    let env = |v: &[String]| -> BTreeMap<String, String> {
        v.iter()
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (e.clone(), String::new()),
            })
            .collect()
    };
    let (ea, eb) = (env(&a.env), env(&b.env));
    for k in ea.keys().chain(eb.keys().filter(|k| !ea.contains_key(*k))) {
        let missing = || "(unset)".to_string();
        diff(
            format!("config.Env[{k}]"),
            ea.get(k).cloned().unwrap_or_else(missing),
            eb.get(k).cloned().unwrap_or_else(missing),
        );
    }
    diff(
        "config.Entrypoint".into(),
        show(&a.entrypoint),
        show(&b.entrypoint),
    );
    diff("config.Cmd".into(), show(&a.cmd), show(&b.cmd));
    diff(
        "config.WorkingDir".into(),
        show(&a.working_dir),
        show(&b.working_dir),
    );
    diff("config.User".into(), show(&a.user), show(&b.user));
    for k in a
        .labels
        .keys()
        .chain(b.labels.keys().filter(|k| !a.labels.contains_key(*k)))
    {
        diff(
            format!("config.Labels[{k}]"),
            a.labels.get(k).cloned().unwrap_or_else(|| "(unset)".into()),
            b.labels.get(k).cloned().unwrap_or_else(|| "(unset)".into()),
        );
    }
    diff(
        "config.ExposedPorts".into(),
        show(&a.exposed_ports.keys().collect::<Vec<_>>()),
        show(&b.exposed_ports.keys().collect::<Vec<_>>()),
    );
    if original.layers.len() != rewritten.layers.len() {
        diff(
            "layers".into(),
            format!("{} layers", original.layers.len()),
            format!("{} layers", rewritten.layers.len()),
        );
    }
    for (i, (la, lb)) in original.layers.iter().zip(&rewritten.layers).enumerate() {
        for p in la.keys().chain(lb.keys().filter(|k| !la.contains_key(*k))) {
            diff(
                format!("layer {}: {p}", i + 1),
                la.get(p)
                    .map(|e| e.desc.clone())
                    .unwrap_or_else(|| "(absent)".into()),
                lb.get(p)
                    .map(|e| e.desc.clone())
                    .unwrap_or_else(|| "(absent)".into()),
            );
        }
    }
    // Extra layers: list their files too, so the path is named.
    let (longer, is_orig) = if original.layers.len() > rewritten.layers.len() {
        (&original.layers, true)
    } else {
        (&rewritten.layers, false)
    };
    let common = original.layers.len().min(rewritten.layers.len());
    for (i, l) in longer.iter().enumerate().skip(common) {
        for (p, e) in l {
            let (x, y) = if is_orig {
                (e.desc.clone(), "(absent)".to_string())
            } else {
                ("(absent)".to_string(), e.desc.clone())
            };
            diff(format!("layer {}: {p}", i + 1), x, y);
        }
    }
    out
}
