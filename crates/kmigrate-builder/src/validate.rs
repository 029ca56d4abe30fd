//! Whole-file validation: every instruction and flag of the stages a build
//! needs is checked before anything runs, so a refusal on line 40 comes
//! before a RUN on line 2 spends minutes, and every refusal is listed at once.
//!
//! The engine keeps its own checks at each step (they also see values that
//! only expansion gives); the messages are the same, from [`problems`].

use super::api::BuildError;
use super::dockerfile::{Args, Dockerfile, DockerfileError, Instruction, Keyword};
use super::instructions;
use super::remote::{self, Remote};
use super::run_mount;

/// One thing the embedded builder cannot build, with what to do instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub message: String,
    pub help: Option<String>,
}

impl Problem {
    fn new(message: String) -> Self {
        Problem {
            message,
            help: None,
        }
    }

    fn with_help(message: String, help: &str) -> Self {
        Problem {
            message,
            help: Some(help.into()),
        }
    }

    /// This problem as an error pointing at `ins`.
    pub fn at(&self, df: &Dockerfile, ins: &Instruction) -> BuildError {
        Box::new(self.error(df, ins)).into()
    }

    fn error(&self, df: &Dockerfile, ins: &Instruction) -> DockerfileError {
        match &self.help {
            Some(h) => df.error_help(ins, &self.message, h),
            None => df.error_at(ins, &self.message),
        }
    }
}

/// The flags COPY and ADD accept.
const COPY_FLAGS: [&str; 5] = ["from", "chown", "chmod", "link", "exclude"];
/// COPY/ADD flags BuildKit has that the embedded builder refuses by name.
const COPY_REFUSED: [(&str, &str); 2] = [
    (
        "parents",
        "copy each directory to its full destination path explicitly",
    ),
    (
        "keep-git-dir",
        "clone the repository into the build context and COPY it",
    ),
];
/// RUN flags BuildKit has that the embedded builder refuses.
const RUN_REFUSED: [&str; 2] = ["network", "security"];

/// What is wrong with `ins` as written, before any expansion.
pub(crate) fn problems(ins: &Instruction) -> Vec<Problem> {
    let mut out = Vec::new();
    match ins.keyword {
        Keyword::Run => {
            if ins
                .heredoc_script()
                .is_some_and(|h| h.content().starts_with("#!"))
            {
                out.push(Problem::with_help(
                    "RUN of a heredoc script with a #! line is not supported by the embedded builder".into(),
                    "name the interpreter in the command: RUN python3 <<EOF",
                ));
            }
            let mounts = ins.flags.iter().filter(|(f, _)| f == "mount").count();
            if mounts > run_mount::MOUNTS_MAX {
                out.push(Problem::new(format!(
                    "more than {} --mount flags on one RUN",
                    run_mount::MOUNTS_MAX
                )));
            }
            for (f, v) in &ins.flags {
                if f == "mount" {
                    out.extend(mount_problem(v.as_deref().unwrap_or_default()));
                    continue;
                }
                out.push(if RUN_REFUSED.contains(&f.as_str()) {
                    Problem::with_help(
                        format!("RUN --{f} is not supported by the embedded builder"),
                        "remove the flag or build this Dockerfile with BuildKit",
                    )
                } else {
                    Problem::new(format!("unknown flag for RUN: --{f}"))
                });
            }
        }
        Keyword::Copy | Keyword::Add => {
            let is_add = ins.keyword == Keyword::Add;
            for (f, _) in &ins.flags {
                if COPY_FLAGS.contains(&f.as_str()) || (is_add && f == "checksum") {
                    continue;
                }
                if f == "checksum" {
                    out.push(Problem::with_help(
                        "COPY --checksum: BuildKit takes --checksum on ADD of a URL only".into(),
                        "use ADD --checksum=sha256:<digest> <URL> <dest>",
                    ));
                    continue;
                }
                out.push(match COPY_REFUSED.iter().find(|(n, _)| n == f) {
                    Some((_, help)) => Problem::with_help(
                        format!(
                            "{} --{f} is not supported by the embedded builder",
                            ins.keyword
                        ),
                        help,
                    ),
                    None => Problem::new(format!("unknown flag for {}: --{f}", ins.keyword)),
                });
            }
            if let Some(m) = ins.flag("chmod").filter(|m| !m.contains('$'))
                && u32::from_str_radix(m, 8).is_err()
            {
                out.push(Problem::new(format!(
                    "invalid --chmod {m:?}: use an octal mode like 755"
                )));
            }
            let sources: Vec<String> = match &ins.args {
                Args::Json(v) => v.clone(),
                Args::Shell(s) => super::words::split_words(s),
            };
            if let Some((_, srcs)) = sources.split_last() {
                out.extend(srcs.iter().filter_map(|s| remote_problem(ins.keyword, s)));
                if let Some(c) = ins.flag("checksum").filter(|c| is_add && !c.contains('$')) {
                    if let Err(e) = remote::parse_checksum(c) {
                        out.push(Problem::new(e));
                    } else if srcs
                        .iter()
                        .any(|s| !s.contains('$') && remote::classify(s) != Some(Remote::Url))
                    {
                        out.push(Problem::new(
                            "ADD --checksum verifies a download: every source must be an http(s) URL".into(),
                        ));
                    }
                }
            }
        }
        Keyword::From => {
            for (f, _) in ins.flags.iter().filter(|(f, _)| f != "platform") {
                out.push(Problem::new(format!("unknown flag for FROM: --{f}")));
            }
        }
        Keyword::Shell if !matches!(&ins.args, Args::Json(v) if !v.is_empty()) => {
            out.push(Problem::new(
                "SHELL requires the JSON form: SHELL [\"executable\", \"parameters\"]".into(),
            ));
        }
        Keyword::Healthcheck => {
            if let Err(e) = instructions::healthcheck(ins, &[]) {
                out.push(Problem::new(e));
            }
        }
        _ => {}
    }
    out
}

/// What is wrong with one `RUN --mount` value as written: all of it when it
/// has no variable, else only a `type=ssh` (the rest waits for expansion).
fn mount_problem(option: &str) -> Option<Problem> {
    let refusal = |e: run_mount::MountError| match e {
        run_mount::MountError::Ssh => {
            Problem::with_help(run_mount::SSH_REFUSED.into(), run_mount::SSH_HELP)
        }
        e => Problem::new(format!("--mount={option}: {e}")),
    };
    if option.contains('$') {
        return (run_mount::written_type(option) == Some("ssh"))
            .then(|| refusal(run_mount::MountError::Ssh));
    }
    run_mount::parse(option, "/").err().map(refusal)
}

/// The refusal of a remote COPY/ADD source: COPY takes none, ADD fetches
/// http(s) URLs but no git repository or other scheme. `None`: a context
/// path, or a URL that ADD fetches.
pub(crate) fn remote_problem(keyword: Keyword, source: &str) -> Option<Problem> {
    let shown = super::registry::redact(source);
    match (keyword, remote::classify(source)?) {
        (Keyword::Add, Remote::Url) => None,
        (Keyword::Add, Remote::Git) => Some(Problem::with_help(
            format!("ADD of the git repository {shown:?} is not supported by the embedded builder"),
            "clone the repository into the build context and COPY it",
        )),
        (Keyword::Add, _) => Some(Problem::with_help(
            format!("ADD of {shown:?}: only http and https URLs are downloaded"),
            "download the file into the build context and COPY it",
        )),
        _ => Some(Problem::with_help(
            format!("{keyword} does not download: {shown:?} is not a path in the build context"),
            "use ADD for an http(s) URL, or download the file into the build context",
        )),
    }
}

/// Checks every instruction of `instructions` (the stages a build needs);
/// one problem is returned as it is, several as one error listing each line
/// in file order (see [`Dockerfile::error_list`]).
pub(crate) fn check<'a>(
    df: &Dockerfile,
    instructions: impl IntoIterator<Item = &'a Instruction>,
) -> Result<(), BuildError> {
    let errors: Vec<_> = instructions
        .into_iter()
        .flat_map(|ins| problems(ins).into_iter().map(move |p| p.error(df, ins)))
        .collect();
    match df.error_list(errors) {
        Some(e) => Err(Box::new(e).into()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::parse;

    fn messages(src: &str) -> Vec<String> {
        let df = parse("Dockerfile", src).unwrap();
        df.instructions
            .iter()
            .flat_map(problems)
            .map(|p| p.message)
            .collect()
    }

    #[test]
    fn refused_flags_are_named() {
        let h = "a".repeat(64);
        assert_eq!(
            messages(&format!(
                "FROM --foo=x scratch\nCOPY --exclude=*.md --parents --bogus a /a\n\
                 RUN --mount=type=cache,target=/c --net=none true\nADD https://x/y /y\n\
                 COPY --chmod=9 a /a\nCOPY --chmod=$M --chown=$U --from=$S --link --exclude=x a /a\n\
                 ADD --checksum=sha256:0 --keep-git-dir a /a\n\
                 ADD https://github.com/o/r.git /src\nADD git@github.com:o/r.git /src\n\
                 ADD ftp://u:pw@h/f /f\nCOPY https://x/y /y\nCOPY --checksum=sha256:0 a /a\n\
                 ADD --checksum=sha256:{h} a https://x/y /d/\nADD --checksum=sha256:{h} https://x/y /y\n\
                 ADD --checksum=sha256:{h} $WEB/y /y\n"
            )),
            [
                "unknown flag for FROM: --foo",
                "COPY --parents is not supported by the embedded builder",
                "unknown flag for COPY: --bogus",
                "unknown flag for RUN: --net",
                "invalid --chmod \"9\": use an octal mode like 755",
                "ADD --keep-git-dir is not supported by the embedded builder",
                "invalid --checksum \"sha256:0\": use sha256:<64 hex digits>",
                "ADD of the git repository \"https://github.com/o/r.git\" is not supported by the embedded builder",
                "ADD of the git repository \"git@github.com:o/r.git\" is not supported by the embedded builder",
                "ADD of \"ftp://h/f\": only http and https URLs are downloaded",
                "COPY does not download: \"https://x/y\" is not a path in the build context",
                "COPY --checksum: BuildKit takes --checksum on ADD of a URL only",
                "ADD --checksum verifies a download: every source must be an http(s) URL",
            ]
        );
    }

    #[test]
    fn several_problems_are_listed_in_file_order() {
        let df = parse(
            "Dockerfile",
            "FROM scratch\nRUN true\nSHELL sh\nCOPY --parents a /a\nHEALTHCHECK --bad=1 CMD x\n",
        )
        .unwrap();
        assert!(check(&df, &df.instructions[..2]).is_ok());
        let e = check(&df, df.instructions.iter().rev())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("Dockerfile:3: 3 problems"), "{e}");
        let (three, four, five) = (
            e.find("Dockerfile:3: SHELL").unwrap(),
            e.find("Dockerfile:4: COPY --parents").unwrap(),
            e.find("Dockerfile:5: unknown HEALTHCHECK flag --bad")
                .unwrap(),
        );
        assert!(three < four && four < five, "{e}");
        let one = parse("Dockerfile", "FROM scratch\nRUN --mount=type=ssh true\n").unwrap();
        let e = check(&one, &one.instructions).unwrap_err().to_string();
        assert_eq!(
            e,
            "Dockerfile:2: RUN --mount=type=ssh is not supported by the embedded builder: no SSH agent is forwarded into a RUN"
        );
    }

    #[test]
    fn run_mounts_are_checked_before_anything_runs() {
        assert_eq!(
            messages(
                "FROM scratch\nRUN --mount=type=cache,target=/c --mount=type=secret,id=s \
                 --mount=type=bind,from=b,target=/b --mount=type=tmpfs,target=/t true\n\
                 RUN --mount=type=$T,target=$D true\n\
                 RUN --mount=type=ssh,id=$K git clone x\n\
                 RUN --mount=type=cache,target=/proc/x true\n\
                 RUN --mount=type=cache,target=/c,sharing=$S,bogus=1 true\n"
            ),
            [
                "RUN --mount=type=ssh is not supported by the embedded builder: no SSH agent is forwarded into a RUN",
                "--mount=type=cache,target=/proc/x: --mount target=\"/proc/x\" is under /proc, which the sandbox provides",
            ]
        );
        let many = format!(
            "FROM scratch\nRUN {} true\n",
            "--mount=type=tmpfs,target=/t ".repeat(17)
        );
        assert_eq!(messages(&many), ["more than 16 --mount flags on one RUN"]);
    }
}
