//! One Kaniko executor call: its argv parsed against the flag table.
//!
//! Parsing follows Kaniko's cobra/pflag rules (`--flag=value`, `--flag value`,
//! `-dVALUE`, booleans only take `=value`). Whatever it cannot read exactly
//! becomes a [`CallProblem`]; the caller decides whether that blocks a rewrite.

use std::ops::Range;

use super::flags::{Arity, FlagSpec, FlagTable};

/// One word of the call as the CI file writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    /// The word's value after quoting is removed (variables left as written).
    pub text: String,
    /// Where the word is in the source file, when known.
    pub span: Option<Range<usize>>,
    /// The whole word is a variable expansion that may stand for any number
    /// of flags (`$KANIKO_ARGS` unquoted in a shell, `${_EXTRA}` in a step).
    pub dynamic: bool,
}

impl Arg {
    pub fn new(text: impl Into<String>) -> Self {
        Arg {
            text: text.into(),
            span: None,
            dynamic: false,
        }
    }

    /// A word of a shell script, found at `span` in the source file: its
    /// literal value (else as written), dynamic when it is an unquoted
    /// expansion that may stand for several flags.
    pub fn from_word(w: &crate::shell::Word, span: Range<usize>) -> Self {
        Arg {
            text: w.literal().unwrap_or_else(|| w.dq.clone()),
            span: Some(span),
            dynamic: w.is_bare_expansion(),
        }
    }
}

/// A flag as used in the call.
#[derive(Debug, Clone)]
pub struct FlagUse {
    pub spec: &'static FlagSpec,
    /// The spelling used, e.g. `--tarPath` or `-d`.
    pub spelled: String,
    /// The value for value flags; for bools, the `=value` text if written.
    pub value: Option<String>,
    /// For bools: the parsed value (`--cache` is `true`).
    pub enabled: Option<bool>,
    /// Indices of the args this use occupies.
    pub args: Range<usize>,
}

/// What kind of problem a call has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// Kaniko itself would reject or misread this (a positional word, a
    /// missing value, `--bool word`): the rewrite keeps the evident intent.
    Malformed,
    /// kmigrate cannot know what this means (unknown flag, a variable standing
    /// for flags, a variable bool): the call must be migrated by hand.
    Unknowable,
}

/// Something in the call that is not a plain, known flag.
#[derive(Debug, Clone)]
pub struct CallProblem {
    pub kind: ProblemKind,
    /// The args involved.
    pub args: Range<usize>,
    pub message: String,
    pub help: String,
}

/// A parsed executor call.
#[derive(Debug, Clone, Default)]
pub struct Call {
    pub args: Vec<Arg>,
    pub uses: Vec<FlagUse>,
    pub problems: Vec<CallProblem>,
    /// Words standing for a variable whose value is unknown where the call
    /// is read back ([`kmigrate_plan::stand_in`]) in a flag's place: passed
    /// through to the build as flags.
    pub passthrough: Vec<String>,
}

impl Call {
    /// Every use of the flag called `name` (canonical name), in order.
    pub fn all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a FlagUse> + 'a {
        let name = name.to_string();
        self.uses.iter().filter(move |u| u.spec.name == name)
    }

    /// The value of the last use of a value flag.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.all(name).last().and_then(|u| u.value.as_deref())
    }

    /// Every value of a repeatable flag, split as the table says.
    pub fn values(&self, name: &str) -> Vec<&str> {
        let mut out = Vec::new();
        for u in self.all(name) {
            let Some(v) = u.value.as_deref() else {
                continue;
            };
            match u.spec.split.as_deref() {
                Some(sep) => out.extend(v.split(sep).filter(|s| !s.is_empty())),
                None => out.push(v),
            }
        }
        out
    }

    /// A bool flag's effective value (its table default when absent).
    pub fn enabled(&self, name: &str) -> bool {
        match self.all(name).last() {
            Some(u) => u.enabled.unwrap_or(true),
            None => FlagTable::get()
                .long(name)
                .and_then(|s| s.default)
                .unwrap_or(false),
        }
    }

    /// Whether anything makes the call impossible to translate exactly.
    pub fn is_unknowable(&self) -> bool {
        self.problems
            .iter()
            .any(|p| p.kind == ProblemKind::Unknowable)
    }
}

/// Go's `strconv.ParseBool` spellings.
pub fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

fn looks_variable(s: &str) -> bool {
    s.contains('$')
}

/// Parses the words after the executor (or the step's `args`).
pub fn parse(args: Vec<Arg>) -> Call {
    let table = FlagTable::get();
    let mut call = Call {
        args,
        ..Call::default()
    };
    let mut i = 0;
    while i < call.args.len() {
        let arg = &call.args[i];
        let text = arg.text.clone();
        if arg.dynamic {
            call.problems.push(CallProblem {
                kind: ProblemKind::Unknowable,
                args: i..i + 1,
                message: format!("`{text}` expands to flags kmigrate cannot see"),
                help: "write the flags out in the call, or migrate this call by hand".into(),
            });
            i += 1;
            continue;
        }
        let flag = match word_at(table, &text, i) {
            Word::Flag(flag) => flag,
            Word::Passthrough => {
                call.passthrough.push(text);
                i += 1;
                continue;
            }
            Word::Problem(problem) => {
                call.problems.push(problem);
                i += 1;
                continue;
            }
        };
        i = match flag.spec.arity {
            Arity::Bool => read_bool(&mut call, flag),
            Arity::Value | Arity::Repeatable | Arity::Map => read_value(&mut call, flag),
        };
    }
    call
}

/// What one word of a call is.
enum Word {
    Flag(FlagAt),
    /// A stand-in for flags kmigrate passes through as written.
    Passthrough,
    Problem(CallProblem),
}

/// A known flag at arg `start`, as spelled, with its `=value` if inline.
struct FlagAt {
    spec: &'static FlagSpec,
    spelled: String,
    inline: Option<String>,
    start: usize,
}

/// Reads arg `i`, whose text is `text` (not a dynamic word).
fn word_at(table: &'static FlagTable, text: &str, i: usize) -> Word {
    let flag = |spec, spelled, inline| {
        Word::Flag(FlagAt {
            spec,
            spelled,
            inline,
            start: i,
        })
    };
    if let Some(rest) = text.strip_prefix("--") {
        let (name, inline) = match rest.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (rest, None),
        };
        match table.long(name) {
            Some(spec) => flag(spec, format!("--{name}"), inline),
            None => {
                let help = match table.suggest(name) {
                    Some(s) => format!("did you mean --{s}? Otherwise migrate this call by hand"),
                    None => {
                        "Kaniko rejects unknown flags; check the call and migrate it by hand".into()
                    }
                };
                Word::Problem(CallProblem {
                    kind: ProblemKind::Unknowable,
                    args: i..i + 1,
                    message: format!("unknown Kaniko flag `--{name}`"),
                    help,
                })
            }
        }
    } else if let Some(rest) = text.strip_prefix('-').filter(|r| !r.is_empty()) {
        let mut chars = rest.chars();
        let c = chars.next().unwrap_or('-');
        let after: String = chars.collect();
        match table.short(c) {
            Some(spec) => {
                let inline = if after.is_empty() {
                    None
                } else {
                    Some(after.strip_prefix('=').unwrap_or(&after).to_string())
                };
                flag(spec, format!("-{c}"), inline)
            }
            None => Word::Problem(CallProblem {
                kind: ProblemKind::Unknowable,
                args: i..i + 1,
                message: format!("unknown Kaniko flag `-{c}`"),
                help: "Kaniko has only the short flags -c -f -d -b -v; migrate this call by hand"
                    .into(),
            }),
        }
    } else if kmigrate_plan::stand_in::is_word(text) {
        Word::Passthrough
    } else {
        Word::Problem(positional_problem(table, text, i))
    }
}

/// Reads a bool flag's use; returns the index of the arg after it.
fn read_bool(call: &mut Call, flag: FlagAt) -> usize {
    let FlagAt {
        spec,
        spelled,
        inline,
        start,
    } = flag;
    let mut i = start + 1;
    let mut enabled = Some(true);
    if let Some(v) = &inline {
        enabled = parse_go_bool(v);
        if enabled.is_none() {
            let kind = if looks_variable(v) {
                ProblemKind::Unknowable
            } else {
                ProblemKind::Malformed
            };
            call.problems.push(CallProblem {
                kind,
                args: start..i,
                message: format!("`{spelled}={v}` is not a boolean kmigrate can read"),
                help: if kind == ProblemKind::Unknowable {
                    "the value comes from a variable; write true or false, or migrate this call by hand".into()
                } else {
                    "Kaniko accepts true/false (or 1/0, t/f)".into()
                },
            });
        }
    } else if let Some(next) = call.args.get(i).and_then(|a| parse_go_bool(&a.text)) {
        // `--cache true`: Kaniko reads `true` as a positional and
        // stops; the intent is plain, so keep it and say so.
        call.problems.push(CallProblem {
            kind: ProblemKind::Malformed,
            args: start..i + 1,
            message: format!(
                "`{spelled} {}`: Kaniko does not take a boolean's value as a separate word and fails with `unknown command`",
                call.args[i].text
            ),
            help: format!("write `{spelled}={}`; kmigrate reads it that way", call.args[i].text),
        });
        enabled = Some(next);
        i += 1;
    }
    call.uses.push(FlagUse {
        spec,
        spelled,
        value: inline,
        enabled,
        args: start..i,
    });
    i
}

/// Reads a value flag's use (`--flag=value` or `--flag value`); returns
/// the index of the arg after it.
fn read_value(call: &mut Call, flag: FlagAt) -> usize {
    let (start, spelled) = (flag.start, flag.spelled);
    let mut i = start + 1;
    let value = match flag.inline {
        Some(v) => Some(v),
        None => match call.args.get(i) {
            Some(next) if !next.dynamic => {
                i += 1;
                Some(next.text.clone())
            }
            _ => None,
        },
    };
    match value {
        Some(v) => call.uses.push(FlagUse {
            spec: flag.spec,
            spelled,
            value: Some(v),
            enabled: None,
            args: start..i,
        }),
        None => call.problems.push(CallProblem {
            kind: ProblemKind::Malformed,
            args: start..i,
            message: format!("`{spelled}` has no value"),
            help: format!("Kaniko fails with `flag needs an argument`; give {spelled} a value"),
        }),
    }
    i
}

fn positional_problem(table: &FlagTable, text: &str, i: usize) -> CallProblem {
    // A word built from a variable may hold any flag: kmigrate cannot
    // classify it, so the call keeps it by staying as written.
    if looks_variable(text) {
        return CallProblem {
            kind: ProblemKind::Unknowable,
            args: i..i + 1,
            message: format!(
                "`{text}` comes from a variable and may hold flags kmigrate cannot see"
            ),
            help: "write the flags out in the call, or migrate this call by hand".into(),
        };
    }
    let name = text.split('=').next().unwrap_or(text);
    let help = match table.long(name) {
        Some(spec) if text.contains('=') => format!(
            "the leading `--` is missing: Kaniko rejects this word; did you mean `--{text}`? kmigrate leaves it out of the rewrite (the flag `{}` is not applied)",
            spec.display()
        ),
        Some(spec) => format!(
            "the leading `--` is missing: did you mean `{}`? kmigrate leaves it out of the rewrite",
            spec.display()
        ),
        None => "Kaniko takes no positional arguments and fails on this word; remove it".into(),
    };
    CallProblem {
        kind: ProblemKind::Malformed,
        args: i..i + 1,
        message: format!("`{text}` is not a flag"),
        help,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(words: &[&str]) -> Call {
        parse(words.iter().map(|w| Arg::new(*w)).collect())
    }

    #[test]
    fn reads_every_spelling() {
        let c = call(&[
            "--dockerfile=Dockerfile",
            "--context",
            "dir:///workspace",
            "-dgcr.io/p/a:1",
            "-d=gcr.io/p/a:2",
            "-d",
            "gcr.io/p/a:3",
            "--cache",
            "--cache-run-layers=false",
            "--tarPath=/out.tar",
            "--registry-map=index.docker.io=m.example;quay.io=q.example",
        ]);
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        assert_eq!(c.value("dockerfile"), Some("Dockerfile"));
        assert_eq!(c.value("context"), Some("dir:///workspace"));
        assert_eq!(
            c.values("destination"),
            ["gcr.io/p/a:1", "gcr.io/p/a:2", "gcr.io/p/a:3"]
        );
        assert!(c.enabled("cache"));
        assert!(!c.enabled("cache-run-layers"));
        assert!(c.enabled("ignore-var-run"), "defaults apply when absent");
        assert_eq!(c.value("tar-path"), Some("/out.tar"));
        assert_eq!(c.values("registry-map").len(), 2);
        assert_eq!(c.uses[2].args, 3..4);
        assert_eq!(c.uses[4].args, 5..7);
    }

    #[test]
    fn bool_with_separate_word_is_read_with_a_problem() {
        let c = call(&["--cache", "true", "--destination", "x"]);
        assert!(c.enabled("cache"));
        assert_eq!(c.problems.len(), 1);
        assert_eq!(c.problems[0].kind, ProblemKind::Malformed);
        assert_eq!(c.value("destination"), Some("x"));
    }

    #[test]
    fn missing_dashes_suggest_the_flag() {
        let c = call(&["cache-ttl=6h", "--cache=true"]);
        assert_eq!(c.problems.len(), 1);
        assert!(
            c.problems[0].help.contains("--cache-ttl=6h"),
            "{}",
            c.problems[0].help
        );
        assert!(c.value("cache-ttl").is_none());
    }

    #[test]
    fn unknown_flags_and_variables_are_unknowable() {
        let c = call(&["--platform=linux/arm64"]);
        assert!(c.is_unknowable());
        let c = call(&["--destinaton=x"]);
        assert!(c.problems[0].help.contains("--destination"));
        let c = call(&["--cache=${_USE_CACHE}"]);
        assert!(c.is_unknowable());
        let c = parse(vec![Arg {
            text: "$KANIKO_ARGS".into(),
            span: None,
            dynamic: true,
        }]);
        assert!(c.is_unknowable());
        let c = call(&["\"$ONE\"", "$$EXTRA"]);
        assert_eq!(c.problems.len(), 2);
        assert!(c.problems.iter().all(|p| p.kind == ProblemKind::Unknowable));
        let c = call(&["--cache=yes"]);
        assert!(!c.is_unknowable());
        assert_eq!(c.problems[0].kind, ProblemKind::Malformed);
    }

    #[test]
    fn missing_value_is_reported() {
        let c = call(&["--destination"]);
        assert_eq!(c.problems[0].kind, ProblemKind::Malformed);
        assert!(c.problems[0].message.contains("no value"));
    }

    #[test]
    fn every_table_spelling_parses() {
        for spec in &FlagTable::get().flags {
            let mut spellings = vec![format!("--{}", spec.name)];
            spellings.extend(spec.aliases.iter().map(|a| {
                if a.starts_with('-') {
                    a.clone()
                } else {
                    format!("--{a}")
                }
            }));
            for s in spellings {
                let word = match spec.arity {
                    Arity::Bool => s.clone(),
                    _ if s.starts_with("--") => format!("{s}=v=1"),
                    _ => format!("{s}v=1"),
                };
                let c = call(&[&word]);
                assert!(c.problems.is_empty(), "{word}: {:?}", c.problems);
                assert_eq!(c.uses[0].spec.name, spec.name, "{word}");
            }
        }
    }
}
