//! `kmigrate verify`: build every image of a (rewritten) config cold and
//! warm, prove the registry cache works. Exit 0 all pass, 1 a check failed,
//! 2 could not run.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use clap::{Args, ValueEnum};

use super::ExitStatus;
use crate::builder::Progress;
use crate::report::terminal::{escape, escape_json};
use crate::verify::{self, EngineKind, Mapping, VerifyOptions};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Engine {
    /// The embedded daemonless builder (proves the registry cache itself).
    Embedded,
    /// A Docker Engine through its API (DOCKER_HOST or the default socket).
    Docker,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The CI config: Cloud Build, GitHub Actions workflow or GitLab CI (rewritten or not).
    pub config: PathBuf,
    /// The repository checkout the config builds from (`/workspace`,
    /// `$CI_PROJECT_DIR`); default: the config's directory.
    #[arg(long, value_name = "DIR")]
    pub context: Option<PathBuf>,
    /// Redirect image and cache refs starting with FROM to TO (repeatable), e.g.
    /// `europe-docker.pkg.dev/my-proj=127.0.0.1:5000/my-proj`. Unmapped refs go to the
    /// embedded store (see --store), never to a real registry.
    #[arg(long = "registry-map", value_name = "FROM=TO")]
    pub registry_map: Vec<String>,
    /// A Cloud Build substitution value (repeatable), e.g. `_REGION=europe-west1`.
    #[arg(long = "substitution", value_name = "K=V")]
    pub substitution: Vec<String>,
    /// A GitLab CI variable value (repeatable).
    #[arg(long = "variable", value_name = "K=V")]
    pub variable: Vec<String>,
    #[arg(long, value_enum, default_value = "embedded")]
    pub engine: Engine,
    /// Also build the original Kaniko plan and compare the two images.
    #[arg(long = "compare-original")]
    pub compare_original: bool,
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
    /// The embedded store, cleared at start; default
    /// `$XDG_CACHE_HOME/kmigrate/verify/<repository>-<id>` (or under ~/.cache),
    /// outside the repository. Never part of a build context, even inside it.
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Also build contexts, Dockerfiles, local caches and outputs that resolve
    /// (symlinks followed) outside the repository (--context, default the
    /// config's directory). Off by default: a config may come from a merge
    /// request, and must not read host files into an image or write over them.
    #[arg(long = "allow-outside-repo")]
    pub allow_outside_repo: bool,
    /// Docker Engine address for `--engine docker` (default DOCKER_HOST or the socket).
    #[arg(long = "docker-host", value_name = "URL")]
    pub docker_host: Option<String>,
    /// Network mode of Docker Engine build containers (e.g. `host`, `none`).
    #[arg(long = "docker-network", value_name = "MODE")]
    pub docker_network: Option<String>,
}

fn pairs(flag: &str, raw: &[String], out: &mut BTreeMap<String, String>) -> Result<(), String> {
    for r in raw {
        let (k, v) = r
            .split_once('=')
            .ok_or_else(|| format!("{flag} {r:?}: write NAME=VALUE"))?;
        if k.is_empty() {
            return Err(format!("{flag} {r:?}: the name is empty"));
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(())
}

pub fn run(args: VerifyArgs) -> ExitStatus {
    // As for `kmigrate build`: before any thread starts.
    crate::builder::overlay::isolate_mounts();
    let mut opts = VerifyOptions::new(&args.config);
    let setup = (|| -> Result<(), String> {
        for m in &args.registry_map {
            opts.maps.push(Mapping::parse(m)?);
        }
        pairs("--substitution", &args.substitution, &mut opts.overrides)?;
        pairs("--variable", &args.variable, &mut opts.overrides)?;
        Ok(())
    })();
    if let Err(e) = setup {
        eprintln!("kmigrate verify: {}", escape(&e));
        return ExitStatus::Error;
    }
    opts.context = args.context;
    opts.engine = match args.engine {
        Engine::Embedded => EngineKind::Embedded,
        Engine::Docker => EngineKind::Docker,
    };
    opts.compare_original = args.compare_original;
    opts.store = args.store;
    opts.allow_outside_repo = args.allow_outside_repo;
    opts.docker_host = args.docker_host;
    opts.docker_network = args.docker_network;
    opts.progress = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        Progress::Tty
    } else {
        Progress::Plain
    };
    opts.status = Arc::new(Mutex::new(std::io::stderr()));
    match verify::run(&opts) {
        Ok(report) => {
            match args.format {
                // Step ids, images and paths come from the config.
                Format::Human => print!("{}", escape(&verify::report::human(&report))),
                Format::Json => {
                    println!("{}", escape_json(verify::report::json(&report).to_string()))
                }
            }
            ExitStatus::from_code(report.exit_code)
        }
        Err(e) => {
            match args.format {
                Format::Human => eprintln!("kmigrate verify: {}", escape(&e.to_string())),
                Format::Json => println!(
                    "{}",
                    escape_json(
                        serde_json::json!({"config": args.config.display().to_string(), "error": e.to_string(), "exit_code": 2})
                            .to_string()
                    )
                ),
            }
            ExitStatus::Error
        }
    }
}
