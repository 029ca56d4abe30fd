//! Command-line surface: argument handling and exit codes only.

mod build;
mod check;
mod diagnostic;
mod rewrite;

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
    /// Report archived-Kaniko usage with source spans. Exit 0 clean, 1 findings, 2 errors.
    Check(check::CheckArgs),
    /// Build an image daemonless from `docker buildx build` flags.
    Build(build::BuildCmd),
}

/// Entry point used by `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Rewrite(args) => rewrite::run(args),
        Command::Check(args) => check::run(args),
        Command::Build(cmd) => build::run(cmd),
    }
}
