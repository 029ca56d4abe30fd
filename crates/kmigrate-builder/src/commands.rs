//! Typed Dockerfile commands: the second reading of each parsed node.
//!
//! The parser ([`super::dockerfile`]) gives nodes: a keyword, flags and
//! arguments as written. [`convert`] reads each node once into a
//! [`Command`] with typed fields (COPY's `--from`, RUN's `--mount`s,
//! HEALTHCHECK's options, ...) and lists what the embedded builder refuses
//! in it ([`Problem`]s); the engine dispatches on the command and never
//! looks at a flag by name again.
//!
//! Values stay as written until a step runs: variables are only known then.
//! Each command expands itself (`expand`, `mounts`, ...) with the step's
//! variables. Where Docker expands a text before splitting it (ENV, LABEL,
//! EXPOSE, the shell form of COPY), the command keeps the text and its
//! expansion splits after, so a variable's value is read as it always was.

use std::collections::BTreeMap;

use super::chmod::Chmod;
use super::dockerfile::{Args, Heredoc, Instruction, Keyword, heredoc_word};
use super::remote::{self, Remote};
use super::run_mount::{self, MountError, RunMount};
use super::validate::{self, Problem};
use super::words;

/// One instruction of a Dockerfile as the builder reads it. A flag the
/// builder refuses (`RUN --security=insecure`, `ADD --keep-git-dir`, ...) has no field:
/// the conversion lists it as a problem instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    From(FromCmd),
    Run(RunCmd),
    /// COPY, and ADD (`add` set).
    Copy(CopyCmd),
    Arg(ArgCmd),
    Env(PairsCmd),
    Label(PairsCmd),
    /// The maintainer's name, kept as written.
    Maintainer(String),
    Expose(TextCmd),
    Volume(Args),
    User(TextCmd),
    Workdir(TextCmd),
    StopSignal(TextCmd),
    Cmd(Args),
    Entrypoint(Args),
    /// The shell's command line (empty only when refused: not JSON).
    Shell(Vec<String>),
    /// The trigger instruction, kept as written for images built from this one.
    OnBuild(String),
    Healthcheck(Healthcheck),
}

/// A node with its command and what the builder refuses in it. A command
/// with problems is never run: the build lists them before any step.
#[derive(Debug, Clone)]
pub(crate) struct Typed {
    pub node: Instruction,
    pub command: Command,
    pub problems: Vec<Problem>,
}

/// `FROM [--platform=p] image [AS name]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FromCmd {
    /// The base image or stage as written (variables expand with the
    /// global ARGs).
    pub image: String,
    /// The stage name, lower case.
    pub name: Option<String>,
    pub platform: Option<String>,
}

impl FromCmd {
    /// The base with the global ARGs expanded.
    pub fn expand_image(&self, globals: &BTreeMap<String, String>) -> Result<String, String> {
        words::expand(&self.image, globals)
    }
}

/// RUN: its mounts as written, its network and what it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunCmd {
    /// The `--mount` values as written; they are parsed after expansion.
    pub mounts: Vec<String>,
    /// `--network` (given once: a second one is refused).
    pub network: RunNetwork,
    /// What runs, as BuildKit reads here-documents: a RUN that is only
    /// `<<EOF` runs the body as the shell's script; otherwise the shell gets
    /// the command line with the bodies and delimiters after it, and reads
    /// the heredocs itself (quoted delimiters then keep `$` literal, `<<-`
    /// strips tabs).
    pub cmd: Args,
}

impl RunCmd {
    /// The mounts with `vars` expanded (global ARGs count too, as for
    /// `COPY --from`); relative targets are under `workdir`.
    pub fn mounts(
        &self,
        vars: &BTreeMap<String, String>,
        workdir: &str,
    ) -> Result<Vec<RunMount>, Problem> {
        let mut out = Vec::new();
        for written in &self.mounts {
            let option = words::expand(written, vars).map_err(Problem::new)?;
            out.push(run_mount::parse(&option, workdir).map_err(|e| mount_refusal(&option, e))?);
        }
        if out.len() > run_mount::MOUNTS_MAX {
            return Err(too_many_mounts());
        }
        Ok(out)
    }

    /// The stages or images the mounts bind from (`from=`), with `vars`
    /// expanded; a value that does not expand is skipped.
    pub fn mount_sources(&self, vars: &BTreeMap<String, String>) -> Vec<String> {
        self.mounts
            .iter()
            .filter_map(|m| {
                let option = words::expand(m, vars).unwrap_or_default();
                run_mount::from_field(&option).map(str::to_string)
            })
            .collect()
    }
}

/// `RUN --network=default|none|host`. The step's key has it as written, in
/// the instruction's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunNetwork {
    /// The builder's own: the embedded builder's RUN shares the host's.
    Default,
    /// A network namespace of the RUN's own, with only loopback.
    None,
    /// The host's network, which BuildKit gives only with the
    /// `network.host` entitlement; here it is the default's.
    Host,
}

impl RunNetwork {
    fn parse(value: &str) -> Option<RunNetwork> {
        match value {
            "default" => Some(RunNetwork::Default),
            "none" => Some(RunNetwork::None),
            "host" => Some(RunNetwork::Host),
            _ => None,
        }
    }
}

/// COPY or ADD, flags typed, sources and destination as written
/// (`--link` is accepted and changes nothing: every layer is a diff).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CopyCmd {
    /// ADD: URLs are downloaded, local archives unpacked.
    pub add: bool,
    pub from: Option<String>,
    pub chown: Option<String>,
    /// The mode as written: octal, or with a variable.
    pub chmod: Option<String>,
    pub exclude: Vec<String>,
    /// `--parents`: each source keeps its path (from the context's or the
    /// source's root, or from a `/./` in the pattern) under the destination.
    pub parents: bool,
    /// ADD's `--checksum` as written.
    pub checksum: Option<String>,
    /// ADD's `--unpack`: whether archives are unpacked (by default local
    /// ones are, downloads are not).
    pub unpack: Option<bool>,
    /// Sources and destination (the shell form splits after expansion).
    pub args: Args,
    pub heredocs: Vec<Heredoc>,
}

/// A COPY/ADD with the step's variables expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExpandedCopy {
    /// `--from`, expanded with the global ARGs too.
    pub from: Option<String>,
    /// Paths in the context or the `--from` stage/image.
    pub sources: Vec<String>,
    /// `ADD <URL>` sources.
    pub urls: Vec<String>,
    /// Here-document sources: name and content (expanded unless quoted).
    pub inline: Vec<(String, String)>,
    /// The destination as written after expansion.
    pub dest: String,
    /// The hex sha256 `--checksum` asks for.
    pub checksum: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<Chmod>,
    pub exclude: Vec<String>,
}

impl CopyCmd {
    pub fn keyword(&self) -> Keyword {
        if self.add {
            Keyword::Add
        } else {
            Keyword::Copy
        }
    }

    /// The command with `vars` expanded; `from_vars` (the global ARGs and
    /// `vars`) expand `--from`, which may name an image through a global.
    pub fn expand(
        &self,
        vars: &BTreeMap<String, String>,
        from_vars: &BTreeMap<String, String>,
    ) -> Result<ExpandedCopy, Problem> {
        let expand = |s: &str| words::expand(s, vars).map_err(Problem::new);
        let from = match &self.from {
            Some(f) => Some(words::expand(f, from_vars).map_err(Problem::new)?),
            None => None,
        };
        let mut items: Vec<String> = match &self.args {
            Args::Json(v) => v.iter().map(|w| expand(w)).collect::<Result<_, _>>()?,
            Args::Shell(s) => words::split_words(&expand(s)?),
        };
        if items.len() < 2 {
            return Err(Problem::new(format!(
                "{} requires at least two arguments: source(s) and destination",
                self.keyword()
            )));
        }
        let dest = items.pop().unwrap_or_default();
        let inline = self.heredoc_sources(vars, &mut items)?;
        // After expansion a variable may have made a source remote.
        if let Some(p) = items
            .iter()
            .find_map(|s| validate::remote_problem(self.keyword(), s))
        {
            return Err(p);
        }
        let checksum = match &self.checksum {
            Some(c) => Some(remote::parse_checksum(&expand(c)?).map_err(Problem::new)?),
            None => None,
        };
        let (urls, sources): (Vec<String>, Vec<String>) = items
            .into_iter()
            .partition(|s| remote::classify(s) == Some(Remote::Url));
        if checksum.is_some() && (urls.len() != 1 || !sources.is_empty() || !inline.is_empty()) {
            return Err(Problem::new(
                "ADD --checksum verifies one download: give exactly one http(s) URL source".into(),
            ));
        }
        // `--chown=$APP_UID` and `--chmod=${MODE}` take the step's variables.
        let chown = self.chown.as_deref().map(expand).transpose()?;
        let chmod = match &self.chmod {
            Some(m) => Some(Chmod::parse(&expand(m)?).map_err(|e| Problem::new(e.to_string()))?),
            None => None,
        };
        let exclude = self
            .exclude
            .iter()
            .map(|e| expand(e))
            .collect::<Result<_, _>>()?;
        Ok(ExpandedCopy {
            from,
            sources,
            urls,
            inline,
            dest,
            checksum,
            chown,
            chmod,
            exclude,
        })
    }

    /// Takes the here-document sources (`<<EOF`, in the order the heredocs
    /// were written) out of `items`: their names and contents, expanded
    /// unless the delimiter was quoted.
    fn heredoc_sources(
        &self,
        vars: &BTreeMap<String, String>,
        items: &mut Vec<String>,
    ) -> Result<Vec<(String, String)>, Problem> {
        let mut docs = self.heredocs.iter();
        let mut inline = Vec::new();
        let mut err = None;
        items.retain(|item| {
            let Some((name, _, _)) = heredoc_word(item) else {
                return true;
            };
            let Some(h) = docs.next().filter(|h| h.name == name) else {
                return true;
            };
            let content = if h.expand {
                words::expand_heredoc(&h.content(), vars).unwrap_or_else(|e| {
                    err.get_or_insert(e);
                    String::new()
                })
            } else {
                h.content()
            };
            inline.push((h.name.clone(), content));
            false
        });
        match err {
            Some(e) => Err(Problem::new(e)),
            None => Ok(inline),
        }
    }
}

/// ARG: names with their defaults as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ArgCmd {
    pub decls: Vec<(String, Option<String>)>,
}

impl ArgCmd {
    /// The declarations with the defaults expanded from `vars`.
    pub fn expand(
        &self,
        vars: &BTreeMap<String, String>,
    ) -> Result<Vec<(String, Option<String>)>, String> {
        if self.decls.is_empty() {
            return Err("ARG requires a name".into());
        }
        self.decls
            .iter()
            .map(|(k, v)| {
                Ok((
                    k.clone(),
                    v.as_deref().map(|v| words::expand(v, vars)).transpose()?,
                ))
            })
            .collect()
    }
}

/// ENV or LABEL: `K=V` pairs, or the legacy `K V` form. The text is
/// expanded before it is split into pairs, as the builder always has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PairsCmd {
    pub text: String,
}

impl PairsCmd {
    pub fn expand(&self, vars: &BTreeMap<String, String>) -> Result<Vec<(String, String)>, String> {
        words::parse_pairs(&words::expand(&self.text, vars)?)
    }
}

/// An instruction whose argument is one text expanded whole (USER,
/// WORKDIR, STOPSIGNAL, EXPOSE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TextCmd {
    pub text: String,
}

impl TextCmd {
    pub fn expand(&self, vars: &BTreeMap<String, String>) -> Result<String, String> {
        words::expand(&self.text, vars)
    }

    /// EXPOSE: the ports, a port without a protocol being TCP.
    pub fn ports(&self, vars: &BTreeMap<String, String>) -> Result<Vec<String>, String> {
        Ok(words::split_words(&self.expand(vars)?)
            .into_iter()
            .map(|p| {
                if p.contains('/') {
                    p
                } else {
                    format!("{p}/tcp")
                }
            })
            .collect())
    }
}

/// HEALTHCHECK NONE, or its test with the options given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Healthcheck {
    None,
    Check {
        /// `CMD`/`CMD-SHELL` and the command line.
        test: Vec<String>,
        /// Config keys (`Interval`, `Retries`, ...) in the order written;
        /// durations in nanoseconds.
        options: Vec<(&'static str, u64)>,
    },
}

impl Healthcheck {
    /// The image config's `Healthcheck` object.
    pub fn to_config(&self) -> serde_json::Value {
        match self {
            Healthcheck::None => serde_json::json!({"Test": ["NONE"]}),
            Healthcheck::Check { test, options } => {
                let mut hc = serde_json::json!({ "Test": test });
                for (key, value) in options {
                    hc[*key] = serde_json::json!(value);
                }
                hc
            }
        }
    }

    fn parse(ins: &Instruction) -> Result<Self, String> {
        let rest = ins.rest.trim();
        if rest.eq_ignore_ascii_case("NONE") {
            return Ok(Healthcheck::None);
        }
        let body = rest
            .strip_prefix("CMD")
            .or_else(|| rest.strip_prefix("cmd"))
            .ok_or("HEALTHCHECK needs CMD or NONE")?
            .trim();
        let test: Vec<String> = match serde_json::from_str::<Vec<String>>(body) {
            Ok(v) => std::iter::once("CMD".to_string()).chain(v).collect(),
            Err(_) => vec!["CMD-SHELL".into(), body.into()],
        };
        let mut options = Vec::new();
        for (k, v) in &ins.flags {
            let v = v.as_deref().unwrap_or_default();
            let key = match k.as_str() {
                "interval" => "Interval",
                "timeout" => "Timeout",
                "start-period" => "StartPeriod",
                "start-interval" => "StartInterval",
                "retries" => {
                    let n = v
                        .parse::<u64>()
                        .map_err(|_| format!("invalid --retries {v:?}"))?;
                    options.push(("Retries", n));
                    continue;
                }
                o => return Err(format!("unknown HEALTHCHECK flag --{o}")),
            };
            options.push((key, parse_duration(v)?));
        }
        Ok(Healthcheck::Check { test, options })
    }
}

/// Reads `ins` as its command. `Err`: the node is not that instruction at
/// all (a FROM without an image); refusals of what the builder lacks are
/// the [`Typed::problems`].
pub(crate) fn convert(ins: &Instruction) -> Result<Typed, Problem> {
    let mut problems = validate::duplicate_flags(ins);
    let text = || TextCmd {
        text: ins.rest.clone(),
    };
    let command = match ins.keyword {
        Keyword::From => Command::From(from(ins, &mut problems)?),
        Keyword::Run => Command::Run(run(ins, &mut problems)),
        Keyword::Copy | Keyword::Add => Command::Copy(copy(ins, &mut problems)),
        Keyword::Arg => Command::Arg(ArgCmd {
            decls: words::split_words(&ins.rest)
                .into_iter()
                .map(|w| match w.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (w, None),
                })
                .collect(),
        }),
        Keyword::Env => Command::Env(PairsCmd {
            text: ins.rest.clone(),
        }),
        Keyword::Label => Command::Label(PairsCmd {
            text: ins.rest.clone(),
        }),
        Keyword::Maintainer => Command::Maintainer(ins.rest.clone()),
        Keyword::Expose => Command::Expose(text()),
        Keyword::Volume => Command::Volume(ins.args.clone()),
        Keyword::User => Command::User(text()),
        Keyword::Workdir => Command::Workdir(text()),
        Keyword::StopSignal => Command::StopSignal(text()),
        Keyword::Cmd => Command::Cmd(ins.args.clone()),
        Keyword::Entrypoint => Command::Entrypoint(ins.args.clone()),
        Keyword::Shell => Command::Shell(match &ins.args {
            Args::Json(v) if !v.is_empty() => v.clone(),
            _ => {
                problems.push(Problem::new(
                    "SHELL requires the JSON form: SHELL [\"executable\", \"parameters\"]".into(),
                ));
                Vec::new()
            }
        }),
        Keyword::OnBuild => Command::OnBuild(ins.rest.clone()),
        Keyword::Healthcheck => Command::Healthcheck(Healthcheck::parse(ins).unwrap_or_else(|e| {
            problems.push(Problem::new(e));
            Healthcheck::None
        })),
    };
    Ok(Typed {
        node: ins.clone(),
        command,
        problems,
    })
}

/// The last value of flag `--name` (`""` when written bare).
fn last_flag(ins: &Instruction, name: &str) -> Option<String> {
    ins.flag(name).map(str::to_string)
}

fn from(ins: &Instruction, problems: &mut Vec<Problem>) -> Result<FromCmd, Problem> {
    let mut w = words::split_words(&ins.rest);
    let name = if w.len() == 3 && w[1].eq_ignore_ascii_case("as") {
        Some(w.pop().unwrap_or_default().to_ascii_lowercase())
    } else if w.len() == 1 {
        None
    } else {
        return Err(Problem::new(
            "FROM takes an image and an optional `AS name`".into(),
        ));
    };
    for (f, _) in ins.flags.iter().filter(|(f, _)| f != "platform") {
        problems.push(Problem::new(format!("unknown flag for FROM: --{f}")));
    }
    Ok(FromCmd {
        image: w.swap_remove(0),
        name,
        platform: last_flag(ins, "platform"),
    })
}

fn run(ins: &Instruction, problems: &mut Vec<Problem>) -> RunCmd {
    let script = ins.heredoc_script();
    if script.is_some_and(|h| h.content().starts_with("#!")) {
        problems.push(validate::shebang_script());
    }
    if ins.flags.iter().filter(|(f, _)| f == "mount").count() > run_mount::MOUNTS_MAX {
        problems.push(too_many_mounts());
    }
    let mut mounts = Vec::new();
    let mut network = RunNetwork::Default;
    for (f, v) in &ins.flags {
        let value = v.as_deref().unwrap_or_default();
        match f.as_str() {
            "mount" => {
                problems.extend(mount_problem(value));
                mounts.push(value.to_string());
            }
            "network" => match RunNetwork::parse(value) {
                Some(n) => network = n,
                None => problems.push(validate::run_network(value)),
            },
            "security" => problems.extend(validate::run_security(value)),
            _ => problems.push(validate::run_flag(f)),
        }
    }
    let cmd = match script {
        _ if ins.heredocs.is_empty() => ins.args.clone(),
        Some(h) => Args::Shell(h.content()),
        None => Args::Shell(ins.with_heredocs(ins.rest.clone())),
    };
    RunCmd {
        mounts,
        network,
        cmd,
    }
}

fn copy(ins: &Instruction, problems: &mut Vec<Problem>) -> CopyCmd {
    let add = ins.keyword == Keyword::Add;
    for (f, _) in &ins.flags {
        if let Some(p) = validate::copy_flag(ins.keyword, f) {
            problems.push(p);
        }
    }
    let chmod = last_flag(ins, "chmod");
    if let Some(Err(e)) = chmod
        .as_deref()
        .filter(|m| !m.contains('$'))
        .map(Chmod::parse)
    {
        problems.push(Problem::new(e.to_string()));
    }
    let checksum = last_flag(ins, "checksum").filter(|_| add);
    let mut bool_flag = |name: &str| {
        let value = ins.flag(name)?;
        validate::bool_flag(ins.keyword, name, value)
            .map_err(|p| problems.push(p))
            .ok()
    };
    let parents = bool_flag("parents").unwrap_or(false);
    let unpack = bool_flag("unpack").filter(|_| add);
    let written: Vec<String> = match &ins.args {
        Args::Json(v) => v.clone(),
        Args::Shell(s) => words::split_words(s),
    };
    if let Some((_, sources)) = written.split_last() {
        problems.extend(
            sources
                .iter()
                .filter_map(|s| validate::remote_problem(ins.keyword, s)),
        );
        if let Some(c) = checksum.as_deref().filter(|c| !c.contains('$')) {
            problems.extend(validate::checksum_problem(c, sources));
        }
    }
    CopyCmd {
        add,
        from: last_flag(ins, "from"),
        chown: last_flag(ins, "chown"),
        chmod,
        exclude: ins
            .flags
            .iter()
            .filter(|(n, _)| n == "exclude")
            .map(|(_, v)| v.clone().unwrap_or_default())
            .collect(),
        parents,
        checksum,
        unpack,
        args: ins.args.clone(),
        heredocs: ins.heredocs.clone(),
    }
}

/// What is wrong with one `RUN --mount` value as written: all of it when it
/// has no variable, else only a `type=ssh` (the rest waits for expansion).
fn mount_problem(option: &str) -> Option<Problem> {
    if option.contains('$') {
        return (run_mount::written_type(option) == Some("ssh"))
            .then(|| mount_refusal(option, MountError::Ssh));
    }
    run_mount::parse(option, "/")
        .err()
        .map(|e| mount_refusal(option, e))
}

fn mount_refusal(option: &str, e: MountError) -> Problem {
    match e {
        MountError::Ssh => Problem::with_help(run_mount::SSH_REFUSED.into(), run_mount::SSH_HELP),
        e => Problem::new(format!("--mount={option}: {e}")),
    }
}

fn too_many_mounts() -> Problem {
    Problem::new(format!(
        "more than {} --mount flags on one RUN",
        run_mount::MOUNTS_MAX
    ))
}

/// A HEALTHCHECK duration: `30s`, `1m`, `1.5h`, `500ms`, in nanoseconds.
fn parse_duration(s: &str) -> Result<u64, String> {
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1_000_000u64)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1_000_000_000)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000_000_000)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3_600_000_000_000)
    } else {
        return Err(format!("invalid duration {s:?}"));
    };
    let v: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    Ok((v * mult as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::{Dockerfile, parse};
    use crate::run_mount::MountKind;

    /// The commands of `src`, one per instruction.
    fn commands(src: &str) -> Vec<Command> {
        let df = parse("Dockerfile", src).unwrap();
        df.instructions
            .iter()
            .map(|i| convert(i).unwrap().command)
            .collect()
    }

    fn command(src: &str) -> Command {
        commands(src).pop().unwrap()
    }

    fn copy_of(src: &str) -> CopyCmd {
        match command(src) {
            Command::Copy(c) => c,
            o => panic!("not a COPY: {o:?}"),
        }
    }

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn healthcheck_durations_take_units() {
        assert_eq!(parse_duration("30s").unwrap(), 30_000_000_000);
        assert_eq!(parse_duration("1m").unwrap(), 60_000_000_000);
        assert_eq!(parse_duration("500ms").unwrap(), 500_000_000);
        assert!(parse_duration("3").is_err());
    }

    #[test]
    fn from_reads_image_name_and_platform() {
        assert_eq!(
            command("FROM --platform=$BUILDPLATFORM golang:${GO} AS Build\n"),
            Command::From(FromCmd {
                image: "golang:${GO}".into(),
                name: Some("build".into()),
                platform: Some("$BUILDPLATFORM".into()),
            })
        );
        let Command::From(f) = command("FROM scratch\n") else {
            panic!("not a FROM");
        };
        assert_eq!(
            (f.image.as_str(), f.name.as_deref(), f.platform.as_deref()),
            ("scratch", None, None)
        );
        assert_eq!(f.expand_image(&vars(&[])).unwrap(), "scratch".to_string());
        let Command::From(g) = command("FROM golang:${GO:-1.22}\n") else {
            panic!("not a FROM");
        };
        assert_eq!(
            g.expand_image(&vars(&[("GO", "1.23")])).unwrap(),
            "golang:1.23"
        );
        // A FROM that is not `image [AS name]` has no command at all.
        let df = parse("D", "FROM a b\n").unwrap();
        assert_eq!(
            convert(&df.instructions[0]).unwrap_err().message,
            "FROM takes an image and an optional `AS name`"
        );
    }

    #[test]
    fn run_keeps_mounts_as_written_and_reads_its_command_form() {
        let cmds = commands(
            "FROM scratch\nRUN --mount=type=cache,target=$D --mount=type=tmpfs,target=/t make\n\
             RUN [\"/bin/true\", \"x\"]\nRUN <<EOF\necho $A\nEOF\nRUN cat <<'X' >f\nbody\nX\n",
        );
        let runs: Vec<&RunCmd> = cmds
            .iter()
            .filter_map(|c| match c {
                Command::Run(r) => Some(r),
                _ => None,
            })
            .collect();
        assert_eq!(
            runs[0].mounts,
            ["type=cache,target=$D", "type=tmpfs,target=/t"]
        );
        assert_eq!(runs[0].cmd, Args::Shell("make".into()));
        assert_eq!(
            runs[1].cmd,
            Args::Json(vec!["/bin/true".into(), "x".into()])
        );
        // A RUN that is only a heredoc runs its body; otherwise the shell
        // reads the heredoc after the command line.
        assert_eq!(runs[2].cmd, Args::Shell("echo $A\n".into()));
        assert_eq!(runs[3].cmd, Args::Shell("cat <<'X' >f\nbody\nX".into()));
    }

    #[test]
    fn run_mounts_expand_with_variables() {
        let Command::Run(run) = command(
            "RUN --mount=type=cache,target=${DIR},id=$ID,sharing=${S:-locked} \
             --mount=type=bind,from=$BUILDER,source=/out,target=rel true\n",
        ) else {
            panic!("not a RUN");
        };
        let v = vars(&[("DIR", "/root/.cache"), ("ID", "go"), ("BUILDER", "build")]);
        let mounts = run.mounts(&v, "/src").unwrap();
        assert_eq!(mounts[0].target.as_deref(), Some("/root/.cache"));
        assert!(matches!(
            &mounts[0].kind,
            MountKind::Cache { id, sharing: run_mount::Sharing::Locked, .. } if id == "go"
        ));
        assert_eq!(mounts[1].target.as_deref(), Some("/src/rel"));
        assert!(matches!(
            &mounts[1].kind,
            MountKind::Bind { from: Some(f), source, .. } if f == "build" && source == "/out"
        ));
        assert_eq!(run.mount_sources(&v), ["build"]);
        // What a variable gives is checked as if written.
        let proc = run.mounts(&vars(&[("DIR", "/proc/x")]), "/").unwrap_err();
        assert!(proc.message.contains("is under /proc"), "{}", proc.message);
        let Command::Run(ssh) = command("RUN --mount=type=$T true\n") else {
            panic!("not a RUN");
        };
        let refused = ssh.mounts(&vars(&[("T", "ssh")]), "/").unwrap_err();
        assert_eq!(refused.message, run_mount::SSH_REFUSED);
        assert_eq!(refused.help.as_deref(), Some(run_mount::SSH_HELP));
    }

    #[test]
    fn copy_and_add_flags_are_typed() {
        let c = copy_of(
            "COPY --from=${STAGE} --chown=$UID:$GID --chmod=640 --link --exclude=*.md \
             --exclude=tmp --parents a b /dst/\n",
        );
        assert_eq!(
            c,
            CopyCmd {
                add: false,
                from: Some("${STAGE}".into()),
                chown: Some("$UID:$GID".into()),
                chmod: Some("640".into()),
                exclude: vec!["*.md".into(), "tmp".into()],
                parents: true,
                checksum: None,
                unpack: None,
                args: Args::Shell("a b /dst/".into()),
                heredocs: vec![],
            }
        );
        assert_eq!(c.keyword(), Keyword::Copy);
        let h = "a".repeat(64);
        let add = copy_of(&format!(
            "ADD --checksum=sha256:{h} [\"https://x/y.tgz\", \"/y\"]\n"
        ));
        assert!(add.add);
        assert_eq!(add.keyword(), Keyword::Add);
        assert_eq!(add.checksum, Some(format!("sha256:{h}")));
        assert_eq!(
            add.args,
            Args::Json(vec!["https://x/y.tgz".into(), "/y".into()])
        );
    }

    #[test]
    fn copy_expands_flags_sources_and_heredocs() {
        let c = copy_of(
            "COPY --from=${STAGE} --chown=$UID --chmod=${MODE} --exclude=$SKIP \
             $SRC <<A <<'B' ${DEST}/\n$NAME\nA\n$NAME\nB\n",
        );
        let v = vars(&[
            ("UID", "1000"),
            ("MODE", "750"),
            ("SKIP", "*.log"),
            ("SRC", "app"),
            ("DEST", "/srv"),
            ("NAME", "n"),
        ]);
        // `--from` alone takes the global ARGs too.
        let mut with_globals = v.clone();
        with_globals.insert("STAGE".into(), "builder".into());
        let e = c.expand(&v, &with_globals).unwrap();
        assert_eq!(
            e,
            ExpandedCopy {
                from: Some("builder".into()),
                sources: vec!["app".into()],
                urls: vec![],
                inline: vec![("A".into(), "n\n".into()), ("B".into(), "$NAME\n".into())],
                dest: "/srv/".into(),
                checksum: None,
                chown: Some("1000".into()),
                chmod: Some(Chmod::Octal(0o750)),
                exclude: vec!["*.log".into()],
            }
        );
        assert_eq!(c.expand(&v, &v).unwrap().from, Some(String::new()));
        // Values a variable gives are checked as written ones are.
        let bad_mode = vars(&[("MODE", "rwx"), ("SRC", "a"), ("DEST", "/d")]);
        assert_eq!(
            c.expand(&bad_mode, &bad_mode).unwrap_err().message,
            "invalid --chmod \"rwx\": use an octal mode like 755 or a symbolic one like u=rwX,go=rX"
        );
        let symbolic = vars(&[("MODE", "go=u"), ("SRC", "a"), ("DEST", "/d")]);
        assert_eq!(
            c.expand(&symbolic, &symbolic).unwrap().chmod,
            Some(Chmod::parse("go=u").unwrap())
        );
        let remote = vars(&[("SRC", "https://x/y"), ("DEST", "/d")]);
        let p = c.expand(&remote, &remote).unwrap_err();
        assert!(
            p.message.starts_with("COPY does not download"),
            "{}",
            p.message
        );
        assert!(p.help.is_some());
        let short = copy_of("COPY $ONE\n");
        assert_eq!(
            short.expand(&v, &v).unwrap_err().message,
            "COPY requires at least two arguments: source(s) and destination"
        );
    }

    #[test]
    fn add_expands_urls_and_checksum() {
        let h = "b".repeat(64);
        let add = copy_of("ADD --checksum=$SUM $URL /y\n");
        let v = vars(&[("SUM", &format!("sha256:{h}")), ("URL", "https://x/y")]);
        let e = add.expand(&v, &v).unwrap();
        assert_eq!(e.urls, ["https://x/y"]);
        assert!(e.sources.is_empty());
        assert_eq!(e.checksum, Some(h));
        let two = copy_of("ADD --checksum=$SUM $URL local /y/\n");
        assert_eq!(
            two.expand(&v, &v).unwrap_err().message,
            "ADD --checksum verifies one download: give exactly one http(s) URL source"
        );
    }

    #[test]
    fn arg_env_label_and_text_commands() {
        let cmds = commands(
            "FROM scratch\nARG A B=${A}x\nENV P=$B Q=\"two words\"\nLABEL legacy value $B\n\
             EXPOSE $PORT 53/udp\nUSER $U\nWORKDIR /w\nSTOPSIGNAL SIGTERM\nMAINTAINER Me <m@e>\n\
             ONBUILD RUN make\nSHELL [\"/bin/bash\", \"-c\"]\nVOLUME $V /data\nCMD [\"a\"]\n\
             ENTRYPOINT run it\n",
        );
        let v = vars(&[("A", "1"), ("B", "1x"), ("PORT", "80"), ("U", "app")]);
        let Command::Arg(arg) = &cmds[1] else {
            panic!("not an ARG");
        };
        assert_eq!(
            arg.decls,
            [("A".into(), None), ("B".into(), Some("${A}x".into()))]
        );
        assert_eq!(
            arg.expand(&v).unwrap(),
            [("A".into(), None), ("B".into(), Some("1x".into()))]
        );
        assert_eq!(
            ArgCmd { decls: vec![] }.expand(&v).unwrap_err(),
            "ARG requires a name"
        );
        let Command::Env(env) = &cmds[2] else {
            panic!("not an ENV");
        };
        assert_eq!(
            env.expand(&v).unwrap(),
            [("P".into(), "1x".into()), ("Q".into(), "two words".into())]
        );
        // LABEL's legacy form: the first word is the key, the rest the value.
        let Command::Label(label) = &cmds[3] else {
            panic!("not a LABEL");
        };
        assert_eq!(
            label.expand(&v).unwrap(),
            [("legacy".into(), "value 1x".into())]
        );
        let Command::Expose(expose) = &cmds[4] else {
            panic!("not an EXPOSE");
        };
        assert_eq!(expose.ports(&v).unwrap(), ["80/tcp", "53/udp"]);
        assert!(matches!(&cmds[5], Command::User(u) if u.expand(&v).unwrap() == "app"));
        assert!(matches!(&cmds[6], Command::Workdir(w) if w.text == "/w"));
        assert!(matches!(&cmds[7], Command::StopSignal(s) if s.text == "SIGTERM"));
        assert_eq!(cmds[8], Command::Maintainer("Me <m@e>".into()));
        assert_eq!(cmds[9], Command::OnBuild("RUN make".into()));
        assert_eq!(
            cmds[10],
            Command::Shell(vec!["/bin/bash".into(), "-c".into()])
        );
        assert_eq!(cmds[11], Command::Volume(Args::Shell("$V /data".into())));
        assert_eq!(cmds[12], Command::Cmd(Args::Json(vec!["a".into()])));
        assert_eq!(cmds[13], Command::Entrypoint(Args::Shell("run it".into())));
    }

    #[test]
    fn healthcheck_options_are_typed_once() {
        let cmds = commands(
            "FROM scratch\nHEALTHCHECK --interval=30s --retries=3 --timeout=500ms CMD [\"curl\", \"-f\", \"x\"]\n\
             HEALTHCHECK --start-period=1m CMD curl -f x || exit 1\nHEALTHCHECK none\n",
        );
        assert_eq!(
            cmds[1],
            Command::Healthcheck(Healthcheck::Check {
                test: vec!["CMD".into(), "curl".into(), "-f".into(), "x".into()],
                options: vec![
                    ("Interval", 30_000_000_000),
                    ("Retries", 3),
                    ("Timeout", 500_000_000)
                ],
            })
        );
        let Command::Healthcheck(shell) = &cmds[2] else {
            panic!("not a HEALTHCHECK");
        };
        assert_eq!(
            shell.to_config(),
            serde_json::json!({"Test": ["CMD-SHELL", "curl -f x || exit 1"], "StartPeriod": 60_000_000_000u64})
        );
        assert_eq!(cmds[3], Command::Healthcheck(Healthcheck::None));
        assert_eq!(
            Healthcheck::None.to_config(),
            serde_json::json!({"Test": ["NONE"]})
        );
    }

    #[test]
    fn run_network_and_security_modes() {
        let df = parse(
            "D",
            "FROM scratch\nRUN true\nRUN --network=none true\nRUN --network=host true\n\
             RUN --network=none --security=sandbox true\nRUN --network=bridge --network=$N true\n",
        )
        .unwrap();
        let typed: Vec<Typed> = df
            .instructions
            .iter()
            .map(|i| convert(i).unwrap())
            .collect();
        let network = |t: &Typed| match &t.command {
            Command::Run(r) => r.network,
            c => panic!("not a RUN: {c:?}"),
        };
        assert_eq!(
            typed[1..].iter().map(network).collect::<Vec<_>>(),
            [
                RunNetwork::Default,
                RunNetwork::None,
                RunNetwork::Host,
                RunNetwork::None,
                RunNetwork::Default
            ]
        );
        assert!(typed[1..5].iter().all(|t| t.problems.is_empty()));
        assert_eq!(
            typed[5]
                .problems
                .iter()
                .map(|p| p.message.as_str())
                .collect::<Vec<_>>(),
            [
                "duplicate flag for RUN: --network",
                "RUN --network=bridge: expected default, none or host",
                "RUN --network=$N: expected default, none or host"
            ]
        );
    }

    /// Each instruction's problems, as their messages.
    fn problems_per_instruction(df: &Dockerfile) -> Vec<Vec<String>> {
        df.instructions
            .iter()
            .map(|i| {
                convert(i)
                    .unwrap()
                    .problems
                    .into_iter()
                    .map(|p| p.message)
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_flag_given_twice_is_refused_unless_it_is_a_list() {
        let df = parse(
            "D",
            "FROM --platform=a --platform=b scratch\nCOPY --from=a --chown=1 --from=b --from=c x /\n\
             COPY --exclude=a --exclude=b x /\nRUN --mount=type=tmpfs,target=/a --mount=type=tmpfs,target=/b true\n\
             HEALTHCHECK --retries=1 --retries=2 CMD true\n",
        )
        .unwrap();
        let problems = problems_per_instruction(&df);
        assert_eq!(
            problems,
            [
                vec!["duplicate flag for FROM: --platform".to_string()],
                vec!["duplicate flag for COPY: --from".into()],
                vec![],
                vec![],
                vec!["duplicate flag for HEALTHCHECK: --retries".into()],
            ]
        );
    }

    #[test]
    fn refusals_are_the_conversions_and_in_written_order() {
        let df = parse(
            "D",
            &format!(
                "FROM scratch\nRUN --network=none {} --security=insecure --mount=type=ssh <<EOF\n#!/bin/sh\nEOF\n\
                 HEALTHCHECK --retries=x CMD true\nSHELL /bin/sh\nFROM --bogus=1 scratch\n",
                "--mount=type=tmpfs,target=/t ".repeat(16)
            ),
        )
        .unwrap();
        let problems = problems_per_instruction(&df);
        assert_eq!(
            problems,
            [
                vec![],
                vec![
                    "RUN of a heredoc script with a #! line is not supported by the embedded builder".to_string(),
                    "more than 16 --mount flags on one RUN".into(),
                    "RUN --security=insecure is not supported by the embedded builder: every RUN is sandboxed".into(),
                    run_mount::SSH_REFUSED.into(),
                ],
                vec!["invalid --retries \"x\"".into()],
                vec!["SHELL requires the JSON form: SHELL [\"executable\", \"parameters\"]".into()],
                vec!["unknown flag for FROM: --bogus".into()],
            ]
        );
    }
}
