//! How a command ends: its [`ExitStatus`], and stdout that a reader may
//! stop reading at any time (`kmigrate rules | head`).

use std::io::Write;
use std::process::ExitCode;

/// The outcome every command returns; `main` turns it into the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: done; nothing at or above the threshold.
    Success,
    /// 1: the command ran and found what it looks for: findings at or above
    /// `--fail-on`, a file `rewrite --check` would change, a failed check of
    /// `verify`, a failed build.
    Failure,
    /// 2: usage, configuration, read, parse or write error.
    Error,
}

impl ExitStatus {
    /// The status for a numeric code computed elsewhere (`verify`'s report).
    pub fn from_code(code: u8) -> Self {
        match code {
            0 => ExitStatus::Success,
            1 => ExitStatus::Failure,
            _ => ExitStatus::Error,
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> ExitCode {
        match status {
            ExitStatus::Success => ExitCode::SUCCESS,
            ExitStatus::Failure => ExitCode::from(1),
            ExitStatus::Error => ExitCode::from(2),
        }
    }
}

/// Ends the process quietly with success when `e` says the reader of our
/// output went away (`| head`, `| true`): it asked for no more, which is not
/// an error, as ripgrep and ruff treat it.
pub fn exit_if_broken_pipe(e: &std::io::Error) {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
}

/// Writes `text` to stdout and flushes it (see [`exit_if_broken_pipe`]):
/// [`ExitStatus::Success`], or [`ExitStatus::Error`] after saying why the
/// text could not be written.
pub fn print(text: &str) -> ExitStatus {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitStatus::Success,
        Err(e) => {
            exit_if_broken_pipe(&e);
            eprintln!("kmigrate: cannot write to stdout: {e}");
            ExitStatus::Error
        }
    }
}

/// The same for `print!`/`eprint!` in code that does not use [`print`]
/// (the builder's progress, clap): their "failed printing to stdout: Broken
/// pipe" panic ends the process quietly instead of with a backtrace and
/// exit code 101.
pub fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to std") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}
