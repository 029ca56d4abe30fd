//! Command-line surface: argument handling and exit codes only.

mod check;
mod diagnostic;
mod report;
mod rewrite;
mod rules;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// hand, the manual tasks, the Kaniko flags seen and cache-TTL cleanup policies.
    Report(report::ReportArgs),
    /// List every rule: id, default severity, fixable, summary.
    Rules,
    /// Print a rule's documentation page.
    Explain(rules::ExplainArgs),
    /// Show the effective configuration (`kmigrate config --show`).
    Config(rules::ConfigArgs),
}

/// Entry point used by `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Rewrite(args) => rewrite::run(args),
        Command::Check(args) => check::run(args),
        Command::Report(args) => report::run(args),
        Command::Rules => rules::rules(),
        Command::Explain(args) => rules::explain(args),
        Command::Config(args) => rules::config(args),
    }
}
