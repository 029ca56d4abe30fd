//! Command-line surface: argument handling and exit codes only.

mod build;
mod check;
mod diagnostic;
mod exit;
mod report;
mod rewrite;
mod rules;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use exit::ExitStatus;

/// Find and fix archived-Kaniko usage in Cloud Build and GitLab CI.
#[derive(Debug, Parser)]
#[command(name = "kmigrate", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Rewrite Kaniko steps to `docker buildx build` (in place, or --diff/--check/--stdout).
    Rewrite(rewrite::RewriteArgs),
    /// Lint files or directories for archived-Kaniko usage. Exit 0 clean, 1 findings at or
    /// above --fail-on, 2 usage/read/parse errors.
    Check(check::CheckArgs),
    /// Migration audit: builds found, how many migrate automatically, partially or only by
    /// hand, the manual tasks, the Kaniko flags seen and cache-TTL cleanup policies (a value
    /// not in the file is a `<NAME>` placeholder to fill in).
    Report(report::ReportArgs),
    /// List every rule: id, default severity, fixable, summary.
    Rules(rules::RulesArgs),
    /// Print the documentation page of one or more rules (`--all`: every rule).
    Explain(rules::ExplainArgs),
    /// Show the effective configuration.
    Config(rules::ConfigArgs),
    /// Build an image daemonless from `docker buildx build` flags.
    // One context, as buildx takes (the argument list accepts more words
    // only for builds read back from CI files, see kmigrate-plan's stand_in).
    #[command(override_usage = "kmigrate build [OPTIONS] <PATH | URL | ->")]
    Build(build::BuildCmd),
    /// Prove a (rewritten) config builds and its registry cache works: every image built
    /// cold then warm. Exit 0 all pass, 1 a check failed, 2 could not run.
    Verify(verify::VerifyArgs),
}

/// Entry point used by `main`.
pub fn main() -> ExitCode {
    exit::quiet_on_closed_pipe();
    let cli = Cli::parse();
    let status = match cli.command {
        Command::Rewrite(args) => rewrite::run(args),
        Command::Check(args) => check::run(args),
        Command::Report(args) => report::run(args),
        Command::Rules(args) => rules::rules(args),
        Command::Explain(args) => rules::explain(args),
        Command::Config(args) => rules::config(args),
        Command::Build(cmd) => build::run(cmd),
        Command::Verify(args) => verify::run(args),
    };
    status.into()
}
