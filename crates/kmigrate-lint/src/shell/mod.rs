//! A small shell reader for what CI scripts use: words with quotes and
//! expansions, `\` continuations, command lists (`;`, `&&`, `||`, `|`, `&`),
//! comments, heredocs, and the control words of `if`/`for`/`while`/`case`.
//!
//! It does not execute or expand anything. Its job is to find simple commands
//! (`/kaniko/executor …`, `docker buildx build …`) with each word's exact span,
//! and to know when a command sits inside a loop or conditional, where a
//! rewrite could change meaning.

mod lexer;

pub use lexer::{expansion_len, parse};

use std::ops::Range;

/// One word of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// Where the word is written in the script.
    pub span: Range<usize>,
    /// The word with quotes removed, written so that it means the same inside
    /// double quotes: literal `$`, `` ` ``, `"` and `\` carry a backslash,
    /// expansions (`$X`, `${X}`, `$(…)`, `` `…` ``, `$((…))`, GitLab's
    /// `$[[ inputs.x ]]`) are kept as written, each one opaque.
    pub dq: String,
    /// The word contains at least one expansion.
    pub has_expansion: bool,
    /// An expansion outside quotes: the shell may split it into several words.
    pub unquoted_expansion: bool,
}

impl Word {
    /// The word's value when it contains no expansion.
    pub fn literal(&self) -> Option<String> {
        if self.has_expansion {
            return None;
        }
        Some(unescape_dq(&self.dq))
    }

    /// True when the whole word is one unquoted expansion (`$ARGS`,
    /// `${KANIKO_ARGS}`), whose value may be any number of words.
    pub fn is_bare_expansion(&self) -> bool {
        self.unquoted_expansion && is_single_expansion(&self.dq)
    }

    /// [`Self::is_bare_expansion`] for a script that escapes `$` as `$$`
    /// before the shell reads it (Cloud Build's substitutions): `$$ARGS`
    /// and `$${ARGS}` are the shell's `$ARGS` and `${ARGS}`.
    pub fn is_bare_escaped_expansion(&self) -> bool {
        self.unquoted_expansion
            && self
                .dq
                .strip_prefix('$')
                .is_some_and(|shell| shell.starts_with('$') && is_single_expansion(shell))
    }
}

/// Where a command sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nesting {
    TopLevel,
    /// Inside `if … fi` or `case … esac`.
    Conditional,
    /// Inside `for`/`while`/`until … done`.
    Loop,
}

/// A simple command: its words (assignments and redirections excluded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub words: Vec<Word>,
    /// From the first word's start to the last word's end.
    pub span: Range<usize>,
    /// `VAR=value` words written before the command name.
    pub assignments: Vec<Word>,
    pub nesting: Nesting,
    /// The command is part of a pipeline or an `&&`/`||` list.
    pub in_list: bool,
}

impl Command {
    /// The command name, skipping `exec`, `command` and `time` prefixes.
    pub fn program(&self) -> Option<(usize, &Word)> {
        self.words
            .iter()
            .enumerate()
            .find(|(_, w)| !matches!(w.literal().as_deref(), Some("exec" | "command" | "time")))
    }
}

/// A parsed script and what the reader could not make sense of.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Script {
    pub commands: Vec<Command>,
    /// Assignments that are commands of their own (`X=1`, `X+=" y"`; not
    /// `X=1 cmd`, which only sets `X` for `cmd`), in order, each with where
    /// it sits: a variable's definitions for later commands.
    pub assignments: Vec<(Word, Nesting)>,
    /// Unterminated quotes or heredocs, with the offset where they start.
    pub problems: Vec<(usize, String)>,
}

/// Undoes the backslashes of the double-quote-ready form.
pub fn unescape_dq(dq: &str) -> String {
    let mut out = String::with_capacity(dq.len());
    let mut chars = dq.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Renders a double-quote-ready word as shell text: bare when that is safe,
/// double-quoted otherwise.
pub fn render_word(dq: &str) -> String {
    let safe = !dq.is_empty()
        && dq
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c));
    if safe {
        dq.to_string()
    } else {
        format!("\"{dq}\"")
    }
}

/// Escapes a literal string into the double-quote-ready form.
pub fn escape_dq(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len());
    for c in literal.chars() {
        if matches!(c, '$' | '`' | '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn is_single_expansion(dq: &str) -> bool {
    // A GitLab input may hold any text, flags included.
    if dq.starts_with("$[[") {
        return expansion_len(dq) == dq.len();
    }
    let Some(rest) = dq.strip_prefix('$') else {
        return false;
    };
    if let Some(inner) = rest.strip_prefix('{') {
        return inner.find('}') == Some(inner.len() - 1);
    }
    !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}
