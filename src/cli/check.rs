//! `kmigrate check FILE…`: report findings with their source spans.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::diagnostic;
use crate::engine;
use crate::options::Options;
use crate::platform::Platform;
use crate::rules::Severity;
use crate::source::SourceFile;

/// Lint CI files for archived-Kaniko usage.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Files to check.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Treat every file as this platform instead of detecting it.
    #[arg(long, value_enum)]
    pub platform: Option<Platform>,
}

/// Exit codes: 0 no finding at error severity, 1 findings, 2 a file could
/// not be read or parsed.
pub fn run(args: CheckArgs) -> ExitCode {
    let opts = Options::default();
    let color = diagnostic::use_color(std::io::stdout().is_terminal());
    let mut failed = false;
    let mut errored = false;
    for path in &args.files {
        let result = SourceFile::load(path).and_then(|source| {
            let platform = engine::platform_of(&source, args.platform)?;
            let findings = engine::analyze(&source, platform, &opts)?;
            Ok((source, findings))
        });
        match result {
            Ok((source, findings)) => {
                failed |= findings.iter().any(|f| f.severity >= Severity::Error);
                print!("{}", diagnostic::render(&source, &findings, color, true));
            }
            Err(e) => {
                errored = true;
                eprintln!("error: {e}");
            }
        }
    }
    if errored {
        ExitCode::from(2)
    } else if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
