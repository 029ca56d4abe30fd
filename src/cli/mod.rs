//! Command-line surface: argument handling and exit codes only.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod build;

/// Find and fix archived-Kaniko usage in Cloud Build and GitLab CI.
#[derive(Debug, Parser)]
#[command(name = "kmigrate", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the `docker buildx build` argv a set of flags parses to.
    BuildxArgs {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        argv: Vec<String>,
    },
    /// Build an image daemonless from `docker buildx build` flags.
    Build(build::BuildCmd),
}

/// Entry point used by `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::BuildxArgs { argv } => match crate::buildx::parse_build_args(&argv) {
            Ok(plan) => {
                println!("{}", plan.to_args().join(" "));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("kmigrate: {e}");
                ExitCode::from(2)
            }
        },
        Command::Build(cmd) => build::run(cmd),
    }
}
