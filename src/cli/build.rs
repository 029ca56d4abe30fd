//! `kmigrate build`: the embedded builder behind `docker buildx build` flags.

use std::path::PathBuf;

use clap::Args;

use super::ExitStatus;
use crate::builder::{self, BuildOptions, Progress};
use crate::buildx::BuildxArgs;

#[derive(Debug, Args)]
pub struct BuildCmd {
    #[command(flatten)]
    pub buildx: Box<BuildxArgs>,
    /// Local state (content store and cache records); default
    /// $XDG_CACHE_HOME/kmigrate/builder or ~/.cache/kmigrate/builder.
    #[arg(long = "state-dir", env = "KMIGRATE_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// A registry reached over plain HTTP (loopback ones always are); repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure: Vec<String>,
    /// Most processes one RUN may have at once (0: no bound); enforced with
    /// a pids cgroup, else RLIMIT_NPROC (which does not bind root).
    #[arg(long = "run-pids-limit", env = "KMIGRATE_RUN_PIDS_LIMIT", value_name = "N", default_value_t = builder::api::DEFAULT_RUN_PIDS_LIMIT)]
    pub run_pids_limit: u32,
    /// Most stages built at the same time (independent stages of a
    /// multi-stage build run in parallel; 1: one after another); default:
    /// the number of CPUs.
    #[arg(
        long = "max-parallel-stages",
        env = "KMIGRATE_MAX_PARALLEL_STAGES",
        value_name = "N"
    )]
    pub max_parallel_stages: Option<usize>,
    /// Bound on the state directory: after a build, what earlier builds
    /// left (layers, cache records, RUN cache mounts) is removed least
    /// recently used first down to SIZE (e.g. 20g; 0: no bound); default 10g.
    #[arg(
        long = "state-max-size",
        env = "KMIGRATE_STATE_MAX_SIZE",
        value_name = "SIZE",
        value_parser = builder::limits::parse_byte_size
    )]
    pub state_max_size: Option<u64>,
}

fn default_state_dir() -> PathBuf {
    builder::api::user_cache_dir().join("builder")
}

pub fn run(cmd: BuildCmd) -> ExitStatus {
    // Before any thread starts: stage roots become overlay mounts that no
    // one else sees and that end with this process.
    builder::overlay::isolate_mounts();
    let plan = match cmd.buildx.into_plan() {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("kmigrate build: {e}");
            return ExitStatus::Error;
        }
    };
    let progress = match Progress::parse(plan.progress.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("kmigrate build: {e}");
            return ExitStatus::Error;
        }
    };
    let progress = match progress {
        Progress::Auto if std::io::IsTerminal::is_terminal(&std::io::stderr()) => Progress::Tty,
        Progress::Auto => Progress::Plain,
        p => p,
    };
    let mut opts = BuildOptions::new(cmd.state_dir.unwrap_or_else(default_state_dir));
    opts.progress = progress;
    opts.registry.insecure = cmd.insecure;
    opts.run_pids_limit = (cmd.run_pids_limit > 0).then_some(cmd.run_pids_limit);
    if let Some(n) = cmd.max_parallel_stages {
        opts.max_parallel_stages = n.max(1);
    }
    if let Some(n) = cmd.state_max_size {
        opts.state_max_size = (n > 0).then_some(n);
    }
    match builder::build(&plan, &opts) {
        Ok(report) => {
            if progress == Progress::Quiet {
                println!("{}", report.manifest_digest);
            }
            ExitStatus::Success
        }
        Err(e) => {
            let usage = matches!(e, builder::BuildError::Usage(_));
            eprintln!("{}", render(&e));
            if usage {
                ExitStatus::Error
            } else {
                ExitStatus::Failure
            }
        }
    }
}

/// Renders an error with its Dockerfile excerpt; lines are not wrapped so
/// messages stay greppable in CI logs.
fn render(e: &builder::BuildError) -> String {
    use std::io::IsTerminal;
    let theme = if std::io::stderr().is_terminal() {
        miette::GraphicalTheme::unicode()
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    };
    let handler = miette::GraphicalReportHandler::new_themed(theme).with_wrap_lines(false);
    let mut out = String::new();
    let out = match handler.render_report(&mut out, &Flat(e)) {
        Ok(()) => out,
        Err(_) => format!("error: {e}"),
    };
    // Without colour nothing in the report is meant to act on the terminal:
    // a Dockerfile's escape sequences are shown escaped.
    if std::io::stderr().is_terminal() {
        out
    } else {
        crate::report::terminal::escape(&out).into_owned()
    }
}

/// A build error as miette renders it, without its `source()` chain: each
/// message already quotes its cause, which the chain would print again.
struct Flat<'a>(&'a builder::BuildError);

impl std::fmt::Debug for Flat<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.0, f)
    }
}

impl std::fmt::Display for Flat<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self.0, f)
    }
}

impl std::error::Error for Flat<'_> {}

impl miette::Diagnostic for Flat<'_> {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.0.code()
    }
    fn severity(&self) -> Option<miette::Severity> {
        self.0.severity()
    }
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.0.help()
    }
    fn url<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.0.url()
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.0.source_code()
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        self.0.labels()
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        self.0.related()
    }
    fn diagnostic_source(&self) -> Option<&dyn miette::Diagnostic> {
        self.0.diagnostic_source()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_is_printed_once() {
        let e = builder::BuildError::Io {
            context: "state directory /x".into(),
            source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "Not a directory"),
        };
        let out = render(&e);
        assert_eq!(out.matches("Not a directory").count(), 1, "{out}");
        assert!(out.contains("state directory /x: Not a directory"), "{out}");
    }
}
