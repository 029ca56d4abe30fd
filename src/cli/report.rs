//! `kmigrate report [PATH…]`: the migration audit (see
//! [`crate::report::migration`]).

use std::path::PathBuf;

use clap::Args;

use super::ExitStatus;
use super::check::{Settings, check_targets, load_config};
use crate::discover;
use crate::engine;
use crate::platform::Platform;
use crate::report::migration::{self, Input};
use crate::report::terminal::escape;

/// `kmigrate report`.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 report written, 2 a file could not be read or parsed \
(it is listed under \"Not checked\") or a usage/configuration error."
)]
pub struct ReportArgs {
    /// Files or directories (walked like `kmigrate check`). Default: `.`.
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "markdown")]
    pub format: ReportFormat,
    /// Write the report to this file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Treat every file as this platform instead of detecting it.
    #[arg(long, value_enum)]
    pub platform: Option<Platform>,
    /// Configuration file (default: found upward from the first path).
    #[arg(long, value_name = "FILE", conflicts_with = "no_config")]
    pub config: Option<PathBuf>,
    /// Ignore any configuration file.
    #[arg(long)]
    pub no_config: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Markdown,
    Json,
}

pub fn run(args: ReportArgs) -> ExitStatus {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    let config = match load_config(
        args.config.as_deref(),
        args.no_config,
        paths.first().map(PathBuf::as_path),
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kmigrate: {}", escape(&e.to_string()));
            return ExitStatus::Error;
        }
    };
    let settings = Settings {
        config,
        platform: args.platform,
        // An audit counts every build, including those silenced inline.
        no_ignores: true,
        prefilter: false,
    };
    let mut found = discover::discover(&paths, &settings.config);
    discover::add_included(
        &mut found,
        &settings.config,
        &discover::gitlab_local_includes,
    );
    let kinds: std::collections::HashMap<PathBuf, Option<Platform>> = found
        .targets
        .iter()
        .map(|t| (t.path.clone(), t.kind))
        .collect();
    let (files, mut errors) = check_targets(&found.targets, &settings);
    errors.extend(found.errors);
    errors.sort_by(|a, b| (&a.path, a.position).cmp(&(&b.path, b.position)));
    let mut inputs = Vec::new();
    for f in &files {
        let Some(source) = &f.source else { continue };
        let hint = kinds.get(&f.path).copied().flatten();
        // check_targets already detected it successfully.
        let Ok(platform) = engine::platform_of(source, settings.platform.or(hint)) else {
            continue;
        };
        inputs.push(Input {
            path: &f.path,
            source,
            platform,
            findings: &f.findings,
        });
    }
    let failed = !errors.is_empty();
    let report = migration::build(&inputs, errors);
    let text = match args.format {
        // Paths, step ids and job names come from the files: nothing in
        // the Markdown may act on the terminal it is printed to.
        ReportFormat::Markdown => escape(&report.to_markdown()).into_owned(),
        ReportFormat::Json => {
            let mut s = serde_json::to_string_pretty(&report.to_json()).expect("JSON serialises");
            s.push('\n');
            crate::report::terminal::escape_json(s)
        }
    };
    let written = match &args.output {
        Some(p) => std::fs::write(p, &text).map_err(|e| {
            eprintln!(
                "kmigrate: {}",
                escape(&format!("cannot write {}: {e}", p.display()))
            );
            ExitStatus::Error
        }),
        None => match super::exit::print(&text) {
            ExitStatus::Success => Ok(()),
            status => Err(status),
        },
    };
    if let Err(status) = written {
        return status;
    }
    if failed {
        ExitStatus::Error
    } else {
        ExitStatus::Success
    }
}
