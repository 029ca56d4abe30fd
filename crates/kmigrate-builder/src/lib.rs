//! The embedded, daemonless image builder behind `kmigrate build`.
//!
//! Module map: [`dockerfile`] and [`words`] parse; `commands` reads each
//! parsed instruction into a typed command that expands itself; [`context`],
//! [`ignore`] and [`glob`] resolve COPY sources; `engine` runs stages and
//! steps, dispatching on the command (`instructions` has one function per
//! metadata instruction and ARG, [`copy`] plans and runs COPY/ADD,
//! `pull` for base images, `progress` for the step view, `parallel` for
//! independent stages at once); [`run_mount`] parses `RUN --mount` and
//! `mount_prep` readies its mounts, with the build's [`secrets`];
//! [`remote`] downloads `ADD <URL>`; [`sandbox`] executes RUN in namespaces; [`snapshot`] and [`layer`] turn filesystem
//! diffs into deterministic tars and extract layers safely ([`fsutil`]);
//! [`cache`] holds the key scheme and cache records, `cache_io` moves them
//! to and from registries and directories; [`image`] is the OCI data model,
//! [`registry`] the distribution client, [`store`] the local content store ([`gc`] bounds it),
//! `output` writes images out; [`api`] holds the public types; `validate`
//! words the refusals and lists those of every instruction a build needs
//! before any step runs.
//!
//! Every `unsafe` block of the builder (`fork`, `pre_exec` and the syscalls
//! nix has no wrapper for, in [`sandbox`] and `tmp_session`) says why it is
//! sound in a `// SAFETY:` comment; clippy refuses one that does not.
#![deny(clippy::undocumented_unsafe_blocks)]
// A panic on hostile input is a bug: outside tests, failures are values
// (`expect` remains for invariants, with the reason it cannot fail).
#![deny(clippy::unwrap_used)]
pub mod api;
pub mod cache;
mod cache_io;
pub mod chmod;
mod commands;
pub mod context;
pub mod copy;
pub mod decompress;
pub mod digest;
pub mod dockerfile;
mod early_upload;
mod engine;
pub mod fsutil;
pub mod gc;
pub mod glob;
pub mod ignore;
pub mod image;
mod instructions;
pub mod layer;
mod layer_gzip;
pub mod limits;
mod mount_prep;
mod output;
pub mod overlay;
mod parallel;
mod progress;
mod pull;
pub mod registry;
pub mod remote;
pub mod run_mount;
pub mod sandbox;
pub mod secrets;
pub mod snapshot;
pub mod store;
mod tmp_session;
pub mod user;
mod validate;
pub mod words;

use std::collections::HashMap;

pub use api::{BuildError, BuildOptions, BuildReport, LogSink, Progress, StepRecord};

/// Builds `plan` daemonless and returns what happened.
///
/// The Dockerfile is parsed and the stages the target needs are built, each
/// once the stages it uses are (independent ones at the same time, up to
/// `opts.max_parallel_stages`). Each RUN/COPY/ADD step gets a `kmigrate-key-v1` cache key; a key
/// found in the local store (`opts.state_dir`) or in an imported
/// `--cache-from` is a hit and is neither executed nor extracted (a build
/// whose every step hits materialises nothing). Misses run in a namespace
/// sandbox and their filesystem diff becomes a layer. Then the image config
/// and manifest are assembled, `--cache-to` exports run, and the outputs
/// (`--push`, `--output type=…`) are written. `--metadata-file` gets buildx's
/// `containerimage.digest` and `image.name` keys. Last, a state directory
/// over `opts.state_max_size` is collected ([`gc`]).
///
/// ```no_run
/// use kmigrate_builder::{build, BuildOptions};
/// let plan = kmigrate_plan::parse_build_args(&["-t", "127.0.0.1:5000/app:1", "--push", "."]).unwrap();
/// let report = build(&plan, &BuildOptions::new("/tmp/kmigrate-state")).unwrap();
/// println!("{} executed, {} cached, {}", report.executed, report.cached, report.manifest_digest);
/// ```
pub fn build(
    plan: &kmigrate_plan::BuildPlan,
    opts: &BuildOptions,
) -> Result<BuildReport, BuildError> {
    if let Some(word) = plan.passthrough.first() {
        // A variable with no value stood in a flag's place: nothing says
        // which flags it holds.
        return Err(BuildError::Usage(format!(
            "unexpected argument '{word}': `docker buildx build` takes one context"
        )));
    }
    let host = image::host_platform();
    let platform = format!("{}/{}", host.os, host.architecture);
    for p in &plan.platforms {
        let ok = p == &platform || p.starts_with(&format!("{platform}/"));
        if !ok {
            return Err(BuildError::Usage(format!(
                "--platform {p} is not supported: the embedded builder builds for the host platform {platform} only"
            )));
        }
    }
    let started = std::time::SystemTime::now();
    let state_err = || engine::io_err(format!("state directory {}", opts.state_dir.display()));
    let store = store::Store::open(&opts.state_dir).map_err(state_err())?;
    let state_lock = gc::StateLock::shared(&opts.state_dir).map_err(state_err())?;
    let secrets = secrets::Secrets::parse(&plan.secrets).map_err(BuildError::Usage)?;
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse().ok());
    let mut eng = engine::Engine {
        plan,
        opts,
        store,
        client: registry::Client::new(opts.registry.clone()),
        blob_sources: HashMap::new(),
        imported: HashMap::new(),
        records: Vec::new(),
        report: BuildReport::default(),
        epoch,
        step_no: Default::default(),
        images: HashMap::new(),
        work_dirs: Vec::new(),
        platform,
        bar: None,
        consumed: Vec::new(),
        secrets,
        multi: None,
        stage_prefix: false,
        prepared_roots: Default::default(),
        executed_any: Default::default(),
        early_uploads: None,
        overlays: overlay::Overlays::for_build(),
        blob_fetches: Default::default(),
    };
    eng.early_uploads = eng.start_early_uploads();
    let mut releasing = None;
    let res = (|| -> Result<(), BuildError> {
        if !plan.annotations.is_empty() {
            eng.warn("--annotation is not supported by the embedded builder; ignored".into());
        }
        if plan.sbom.as_deref().is_some_and(|s| s != "false") {
            eng.warn("--sbom: no SBOM attestation is produced".into());
        }
        if plan.provenance.as_deref().is_some_and(|s| s != "false") {
            eng.log("note: no provenance attestation is produced (as with --provenance=false)");
        }
        eng.import_caches()?;
        let fin = eng.run()?;
        releasing = Some(eng.release_work_dirs());
        let (cfg, man) = eng.assemble(&fin)?;
        eng.export_caches(&fin)?;
        eng.outputs(&fin, &cfg, &man)?;
        if let Some(path) = &plan.metadata_file {
            let mut names = eng.report.names.clone();
            if names.is_empty() {
                names = plan.tags.clone();
            }
            let md = serde_json::json!({
                "containerimage.digest": eng.report.manifest_digest,
                "containerimage.config.digest": eng.report.config_digest,
                "image.name": names.join(","),
            });
            std::fs::write(path, serde_json::to_vec_pretty(&md).unwrap_or_default())
                .map_err(engine::io_err(format!("--metadata-file {path}")))?;
        }
        Ok(())
    })();
    if let Some(r) = releasing {
        let _ = r.join();
    }
    eng.cleanup();
    res?;
    drop(state_lock);
    if let Some(max) = opts.state_max_size {
        eng.collect_state(max, started);
    }
    let r = &eng.report;
    eng.log(&format!(
        "kmigrate build: {} layer steps: {} executed, {} cached; image {}",
        r.executed + r.cached,
        r.executed,
        r.cached,
        r.manifest_digest
    ));
    Ok(eng.report)
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn an_unusable_state_directory_keeps_its_path_and_io_error() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("file");
        std::fs::write(&file, "").unwrap();
        let plan = kmigrate_plan::parse_build_args(&["."]).unwrap();
        let e = build(&plan, &BuildOptions::new(file.join("state"))).unwrap_err();
        let BuildError::Io { context, source } = &e else {
            panic!("{e:?}");
        };
        assert_eq!(
            context,
            &format!("state directory {}", file.join("state").display())
        );
        assert_eq!(e.to_string(), format!("{context}: {source}"));
        let io = e
            .source()
            .unwrap()
            .downcast_ref::<std::io::Error>()
            .unwrap();
        assert_eq!(io.kind(), std::io::ErrorKind::NotADirectory);
    }

    #[test]
    fn registry_and_cache_errors_chain_to_their_cause() {
        let e = BuildError::Cache {
            context: "cache export to type=registry,ref=x failed".into(),
            source: cache::CacheError::Registry(registry::RegistryError::Reference(
                "invalid image reference \"\"".into(),
            )),
        };
        assert_eq!(
            e.to_string(),
            "cache export to type=registry,ref=x failed: invalid image reference \"\""
        );
        let cause = e.source().unwrap();
        assert!(cause.downcast_ref::<cache::CacheError>().is_some());
        let e: BuildError = registry::RegistryError::Response("x: HTTP 500".into()).into();
        assert_eq!(e.to_string(), "x: HTTP 500");
        assert!(
            e.source()
                .unwrap()
                .downcast_ref::<registry::RegistryError>()
                .is_some()
        );
    }
}
