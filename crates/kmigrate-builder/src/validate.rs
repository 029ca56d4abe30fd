//! Whole-file validation: every instruction and flag of the stages a build
//! needs is checked before anything runs, so a refusal on line 40 comes
//! before a RUN on line 2 spends minutes, and every refusal is listed at once.
//!
//! The problems are found where each node is read as its command
//! ([`super::commands::convert`]); this module words the refusals and lists
//! them. Values only expansion gives are checked when the step expands them,
//! with the same words.

use super::api::BuildError;
use super::dockerfile::{Dockerfile, DockerfileError, Instruction, Keyword};
use super::remote::{self, Remote};

/// One thing the embedded builder cannot build, with what to do instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub message: String,
    pub help: Option<String>,
}

impl Problem {
    pub fn new(message: String) -> Self {
        Problem {
            message,
            help: None,
        }
    }

    pub fn with_help(message: String, help: &str) -> Self {
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
const COPY_FLAGS: [&str; 6] = ["from", "chown", "chmod", "link", "exclude", "parents"];
/// The flags ADD accepts besides COPY's.
const ADD_FLAGS: [&str; 2] = ["checksum", "unpack"];
/// COPY/ADD flags BuildKit has that the embedded builder refuses by name.
const COPY_REFUSED: [(&str, &str); 1] = [(
    "keep-git-dir",
    "clone the repository into the build context and COPY it",
)];

/// A boolean flag's value, as BuildKit reads it: bare (`--parents`) or
/// `true` is true, `false` is false, in any case.
pub(crate) fn bool_flag(keyword: Keyword, flag: &str, value: &str) -> Result<bool, Problem> {
    match value.to_ascii_lowercase().as_str() {
        "" | "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(Problem::new(format!(
            "{keyword} --{flag}={value}: expected true or false"
        ))),
    }
}

/// The refusal of a heredoc script that names its interpreter in `#!`.
pub(crate) fn shebang_script() -> Problem {
    Problem::with_help(
        "RUN of a heredoc script with a #! line is not supported by the embedded builder".into(),
        "name the interpreter in the command: RUN python3 <<EOF",
    )
}

/// Flags an instruction may repeat (BuildKit's list-valued ones).
const REPEATABLE_FLAGS: [&str; 2] = ["mount", "exclude"];

/// The refusal of each flag `ins` has more than once that only one may
/// be given of, as BuildKit refuses them, rather than taking one silently.
pub(crate) fn duplicate_flags(ins: &Instruction) -> Vec<Problem> {
    let mut seen: Vec<&str> = Vec::new();
    let mut problems = Vec::new();
    for (f, _) in &ins.flags {
        if REPEATABLE_FLAGS.contains(&f.as_str()) {
            continue;
        }
        if seen.contains(&f.as_str()) {
            let message = format!("duplicate flag for {}: --{f}", ins.keyword);
            if !problems.iter().any(|p: &Problem| p.message == message) {
                problems.push(Problem::with_help(message, "keep one of them"));
            }
        } else {
            seen.push(f);
        }
    }
    problems
}

/// The refusal of a RUN flag the Dockerfile frontend does not have.
pub(crate) fn run_flag(flag: &str) -> Problem {
    Problem::new(format!("unknown flag for RUN: --{flag}"))
}

/// The refusal of `RUN --network=<value>` other than the three modes (a
/// variable in it is not expanded).
pub(crate) fn run_network(value: &str) -> Problem {
    Problem::new(format!(
        "RUN --network={value}: expected default, none or host"
    ))
}

/// What is wrong with `RUN --security=<value>`, if anything: `sandbox` is
/// how every RUN runs; `insecure` (BuildKit's `security.insecure`
/// entitlement: a privileged container) is refused.
pub(crate) fn run_security(value: &str) -> Option<Problem> {
    match value {
        "sandbox" => None,
        "insecure" => Some(Problem::with_help(
            "RUN --security=insecure is not supported by the embedded builder: every RUN is sandboxed"
                .into(),
            "remove the flag, or build this Dockerfile with BuildKit and --allow security.insecure",
        )),
        _ => Some(Problem::new(format!(
            "RUN --security={value}: expected sandbox or insecure"
        ))),
    }
}

/// The refusal of COPY/ADD flag `--flag`, if it is refused.
pub(crate) fn copy_flag(keyword: Keyword, flag: &str) -> Option<Problem> {
    let is_add = keyword == Keyword::Add;
    if COPY_FLAGS.contains(&flag) || (is_add && ADD_FLAGS.contains(&flag)) {
        return None;
    }
    if flag == "checksum" {
        return Some(Problem::with_help(
            "COPY --checksum: BuildKit takes --checksum on ADD of a URL only".into(),
            "use ADD --checksum=sha256:<digest> <URL> <dest>",
        ));
    }
    Some(match COPY_REFUSED.iter().find(|(n, _)| *n == flag) {
        Some((_, help)) => Problem::with_help(
            format!("{keyword} --{flag} is not supported by the embedded builder"),
            help,
        ),
        None => Problem::new(format!("unknown flag for {keyword}: --{flag}")),
    })
}

/// What is wrong with `ADD --checksum=<checksum>` (no variable in it) of
/// `sources` as written: a malformed digest, or a source that is no URL
/// (one with a variable waits for expansion).
pub(crate) fn checksum_problem(checksum: &str, sources: &[String]) -> Option<Problem> {
    if let Err(e) = remote::parse_checksum(checksum) {
        return Some(Problem::new(e));
    }
    sources
        .iter()
        .any(|s| !s.contains('$') && remote::classify(s) != Some(Remote::Url))
        .then(|| {
            Problem::new(
                "ADD --checksum verifies a download: every source must be an http(s) URL".into(),
            )
        })
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

/// Lists the problems of `instructions` (those of the stages a build
/// needs, each with the problems its conversion found); one problem is
/// returned as it is, several as one error listing each line in file order
/// (see [`Dockerfile::error_list`]).
pub(crate) fn check<'a>(
    df: &Dockerfile,
    instructions: impl IntoIterator<Item = (&'a Instruction, &'a [Problem])>,
) -> Result<(), BuildError> {
    let errors: Vec<_> = instructions
        .into_iter()
        .flat_map(|(ins, problems)| problems.iter().map(|p| p.error(df, ins)))
        .collect();
    match df.error_list(errors) {
        Some(e) => Err(Box::new(e).into()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::{Typed, convert};
    use crate::dockerfile::parse;

    /// Every instruction of `df` read as its command.
    fn typed(df: &Dockerfile) -> Vec<Typed> {
        df.instructions
            .iter()
            .map(|i| convert(i).unwrap())
            .collect()
    }

    /// What [`check`] takes: each node with its problems.
    fn nodes<'a>(
        typed: impl IntoIterator<Item = &'a Typed>,
    ) -> impl Iterator<Item = (&'a Instruction, &'a [Problem])> {
        typed.into_iter().map(|t| (&t.node, t.problems.as_slice()))
    }

    fn messages(src: &str) -> Vec<String> {
        let df = parse("Dockerfile", src).unwrap();
        typed(&df)
            .into_iter()
            .flat_map(|t| t.problems)
            .map(|p| p.message)
            .collect()
    }

    #[test]
    fn refused_flags_are_named() {
        let h = "a".repeat(64);
        assert_eq!(
            messages(&format!(
                "FROM --foo=x scratch\nCOPY --exclude=*.md --parents=maybe --bogus a /a\n\
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
                "unknown flag for COPY: --bogus",
                "COPY --parents=maybe: expected true or false",
                "unknown flag for RUN: --net",
                "invalid --chmod \"9\": use an octal mode like 755 or a symbolic one like u=rwX,go=rX",
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
            "FROM scratch\nRUN true\nSHELL sh\nCOPY --keep-git-dir a /a\nHEALTHCHECK --bad=1 CMD x\n",
        )
        .unwrap();
        let all = typed(&df);
        assert!(check(&df, nodes(&all[..2])).is_ok());
        let e = check(&df, nodes(all.iter().rev())).unwrap_err().to_string();
        assert!(e.starts_with("Dockerfile:3: 3 problems"), "{e}");
        let (three, four, five) = (
            e.find("Dockerfile:3: SHELL").unwrap(),
            e.find("Dockerfile:4: COPY --keep-git-dir").unwrap(),
            e.find("Dockerfile:5: unknown HEALTHCHECK flag --bad")
                .unwrap(),
        );
        assert!(three < four && four < five, "{e}");
        let one = parse("Dockerfile", "FROM scratch\nRUN --mount=type=ssh true\n").unwrap();
        let e = check(&one, nodes(&typed(&one))).unwrap_err().to_string();
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
