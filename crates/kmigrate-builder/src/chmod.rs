//! `COPY/ADD --chmod`: an octal mode, or chmod(1)'s symbolic form (`+x`,
//! `go=u`, `u=rwX,go=rX`), which BuildKit's stable Dockerfile syntax takes
//! too. An octal mode replaces each entry's mode; a symbolic one changes
//! each entry's own mode, so `X` gives execute to directories and to files
//! that had it. As BuildKit does, no umask applies (`+x` is `a+x`).

use std::fmt;

/// A parsed `--chmod` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chmod {
    Octal(u32),
    /// The text as written (after expansion) and its clauses.
    Symbolic {
        text: String,
        clauses: Vec<Clause>,
    },
}

/// One comma-separated clause: the classes it changes and its actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    /// The classes, as a mask of their rwx bits (`u` is 0o700, ...).
    who: u32,
    actions: Vec<Action>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Action {
    op: Op,
    perm: Perm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Remove,
    Set,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Perm {
    /// Letters among `rwxXst`.
    Letters(String),
    /// The bits one class has now (`g=u`): its rwx mask.
    CopyOf(u32),
}

const USER: u32 = 0o700;
const GROUP: u32 = 0o070;
const OTHER: u32 = 0o007;
const ALL: u32 = USER | GROUP | OTHER;
const SETUID: u32 = 0o4000;
const SETGID: u32 = 0o2000;
const STICKY: u32 = 0o1000;

/// Why a `--chmod` value does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChmodError(String);

impl fmt::Display for ChmodError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid --chmod {:?}: use an octal mode like 755 or a symbolic one like u=rwX,go=rX",
            self.0
        )
    }
}

impl Chmod {
    pub fn parse(text: &str) -> Result<Chmod, ChmodError> {
        let bad = || ChmodError(text.to_string());
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return match u32::from_str_radix(text, 8) {
                Ok(m) if m <= 0o7777 => Ok(Chmod::Octal(m)),
                _ => Err(bad()),
            };
        }
        let clauses = text
            .split(',')
            .map(|c| parse_clause(c).ok_or_else(bad))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Chmod::Symbolic {
            text: text.to_string(),
            clauses,
        })
    }

    /// The value in a step's key: octal as it always was, a symbolic mode
    /// as written.
    pub fn key_text(&self) -> String {
        match self {
            Chmod::Octal(m) => format!("{m:o}"),
            Chmod::Symbolic { text, .. } => text.clone(),
        }
    }

    /// The mode an entry whose mode is `mode` (permission bits) gets.
    pub fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        let clauses = match self {
            Chmod::Octal(m) => return *m,
            Chmod::Symbolic { clauses, .. } => clauses,
        };
        let mut mode = mode & 0o7777;
        for clause in clauses {
            for action in &clause.actions {
                mode = action.apply(clause.who, mode, is_dir);
            }
        }
        mode
    }
}

fn parse_clause(text: &str) -> Option<Clause> {
    let mut chars = text.chars().peekable();
    let mut who = 0;
    while let Some(&c) = chars.peek() {
        who |= match c {
            'u' => USER,
            'g' => GROUP,
            'o' => OTHER,
            'a' => ALL,
            _ => break,
        };
        chars.next();
    }
    if who == 0 {
        who = ALL;
    }
    let mut actions = Vec::new();
    while let Some(c) = chars.next() {
        let op = match c {
            '+' => Op::Add,
            '-' => Op::Remove,
            '=' => Op::Set,
            _ => return None,
        };
        let mut letters = String::new();
        let perm = match chars.peek() {
            Some(&c @ ('u' | 'g' | 'o')) => {
                chars.next();
                Perm::CopyOf(match c {
                    'u' => USER,
                    'g' => GROUP,
                    _ => OTHER,
                })
            }
            _ => {
                while let Some(&c @ ('r' | 'w' | 'x' | 'X' | 's' | 't')) = chars.peek() {
                    letters.push(c);
                    chars.next();
                }
                Perm::Letters(letters)
            }
        };
        actions.push(Action { op, perm });
    }
    (!actions.is_empty()).then_some(Clause { who, actions })
}

impl Action {
    fn apply(&self, who: u32, mode: u32, is_dir: bool) -> u32 {
        let bits = match &self.perm {
            Perm::CopyOf(class) => spread((mode & class) >> class.trailing_zeros()) & who,
            Perm::Letters(letters) => {
                let mut bits = 0;
                for c in letters.chars() {
                    bits |= match c {
                        'r' => 0o444 & who,
                        'w' => 0o222 & who,
                        'x' => 0o111 & who,
                        'X' if is_dir || mode & 0o111 != 0 => 0o111 & who,
                        's' => special(who, USER, SETUID) | special(who, GROUP, SETGID),
                        't' => special(who, OTHER, STICKY),
                        _ => 0,
                    };
                }
                bits
            }
        };
        match self.op {
            Op::Add => mode | bits,
            Op::Remove => mode & !bits,
            Op::Set => {
                // `=` clears what the classes had (their special bits too).
                let cleared = who
                    | special(who, USER, SETUID)
                    | special(who, GROUP, SETGID)
                    | special(who, OTHER, STICKY);
                (mode & !cleared) | bits
            }
        }
    }
}

/// A class's three bits (`rwx` as 0..=7) given to every class.
fn spread(rwx: u32) -> u32 {
    rwx << 6 | rwx << 3 | rwx
}

/// `bit` when the classes `who` include `class`.
fn special(who: u32, class: u32, bit: u32) -> u32 {
    if who & class != 0 { bit } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(text: &str, mode: u32, is_dir: bool) -> u32 {
        Chmod::parse(text).unwrap().apply(mode, is_dir)
    }

    #[test]
    fn octal_replaces_the_mode() {
        assert_eq!(apply("640", 0o777, false), 0o640);
        assert_eq!(apply("0755", 0o600, true), 0o755);
        assert_eq!(apply("4755", 0, false), 0o4755);
        assert!(Chmod::parse("77777").is_err());
        assert!(Chmod::parse("9").is_err());
    }

    #[test]
    fn symbolic_changes_each_entry_as_chmod_does() {
        assert_eq!(apply("+x", 0o644, false), 0o755);
        assert_eq!(apply("u+x", 0o644, false), 0o744);
        assert_eq!(apply("go-w", 0o666, false), 0o644);
        assert_eq!(apply("a=r", 0o755, true), 0o444);
        assert_eq!(apply("g=u", 0o740, false), 0o770);
        assert_eq!(apply("o=g", 0o751, false), 0o755);
        assert_eq!(apply("u+x-w", 0o644, false), 0o544);
        assert_eq!(apply("u=rw,go=", 0o777, false), 0o600);
        // `X`: directories and files that had execute for someone.
        assert_eq!(apply("u=rwX,go=rX", 0o600, true), 0o755);
        assert_eq!(apply("u=rwX,go=rX", 0o600, false), 0o644);
        assert_eq!(apply("u=rwX,go=rX", 0o700, false), 0o755);
        assert_eq!(apply("a+rX,go-w", 0o664, false), 0o644);
        // Special bits follow their class; `=` clears them.
        assert_eq!(apply("u+s,g+s,o+t", 0o755, true), 0o7755);
        assert_eq!(apply("+t", 0o755, true), 0o1755);
        assert_eq!(apply("u=rwx", 0o4755, false), 0o755);
        assert_eq!(apply("g-s", 0o2755, true), 0o755);
    }

    #[test]
    fn malformed_values_are_named() {
        for bad in ["", "rwx", "u", "u+q", "z+x", "u+x,", ",u+x", "u+x;rm"] {
            let e = Chmod::parse(bad).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("invalid --chmod {bad:?}")),
                "{bad}: {e}"
            );
        }
    }
}
