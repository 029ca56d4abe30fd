//! Dockerfile parser: logical lines, parser directives, flags, JSON and shell
//! forms, with the line number of every instruction kept for error messages.
//!
//! Variable expansion and word splitting live in [`super::words`].

// The error carries the source for miette; it is returned boxed upstream.
#![allow(clippy::result_large_err)]

use miette::{Diagnostic, NamedSource, SourceSpan};
use thiserror::Error;

/// One instruction as written, after joining continuation lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based line of the keyword.
    pub line: usize,
    /// Byte span of the whole instruction in the file (for diagnostics).
    pub span: (usize, usize),
    /// What the instruction is; the parser refuses unknown keywords.
    pub keyword: Keyword,
    /// Leading `--name=value` flags (`--name` alone has value `None`).
    pub flags: Vec<(String, Option<String>)>,
    pub args: Args,
    /// The instruction text after the keyword and flags, continuations joined.
    pub rest: String,
    /// The here-documents of a RUN/COPY/ADD (`<<EOF` ... `EOF`), in order.
    pub heredocs: Vec<Heredoc>,
}

/// One here-document: `<<NAME` (or `<<-NAME`, `<<"NAME"`) in the
/// instruction, its body on the following lines up to a line `NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word, quotes removed (also COPY's file name).
    pub name: String,
    /// The body as written, each line with its `\n`.
    pub body: String,
    /// `<<-`: leading tabs are stripped from the body lines.
    pub strip_tabs: bool,
    /// Unquoted delimiter: variables in the body are expanded.
    pub expand: bool,
}

impl Heredoc {
    /// The body as the instruction uses it (leading tabs gone for `<<-`).
    pub fn content(&self) -> String {
        if !self.strip_tabs {
            return self.body.clone();
        }
        self.body
            .split_inclusive('\n')
            .map(|l| l.trim_start_matches('\t'))
            .collect()
    }
}

/// Most here-documents one instruction may have.
const HEREDOCS_MAX: usize = 64;

/// The here-document named by `word` (`<<EOF`, `<<-EOF`, `<<'EOF'`,
/// `<<"EOF"`): its name, whether `<<-`, and whether the name was unquoted.
pub fn heredoc_word(word: &str) -> Option<(String, bool, bool)> {
    let w = word.strip_prefix("<<")?;
    let (strip_tabs, w) = match w.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, w),
    };
    let (name, quoted) = match w.chars().next() {
        Some(q @ ('"' | '\'')) => (w.strip_prefix(q)?.strip_suffix(q)?, true),
        _ => (w, false),
    };
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| !c.is_whitespace() && !"'\"<>;&|()$`\\".contains(c));
    ok.then(|| (name.to_string(), strip_tabs, !quoted))
}

/// The here-document words of a shell-form `rest`, outside quotes.
fn heredoc_words(rest: &str) -> Vec<(String, bool, bool)> {
    let mut out = Vec::new();
    let mut quote: Option<char> = None;
    let mut word = String::new();
    let mut chars = rest.chars().chain(std::iter::once(' '));
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if let Some(h) = heredoc_word(&word) {
                    out.push(h);
                }
                word.clear();
            }
            (None, '\\') => {
                word.push(c);
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            (None, '"' | '\'') => {
                // Quotes in a `<<"EOF"` word are the delimiter's.
                if !word.starts_with("<<") {
                    quote = Some(c);
                }
                word.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                word.push(c);
            }
            _ => word.push(c),
        }
    }
    out
}

/// The instructions the builder knows, decided once by the parser so the
/// engine dispatches on a type rather than on strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Keyword {
    From,
    Run,
    Cmd,
    Label,
    Maintainer,
    Expose,
    Env,
    Add,
    Copy,
    Entrypoint,
    Volume,
    User,
    Workdir,
    Arg,
    OnBuild,
    StopSignal,
    Healthcheck,
    Shell,
}

impl Keyword {
    const ALL: [Keyword; 18] = [
        Keyword::From,
        Keyword::Run,
        Keyword::Cmd,
        Keyword::Label,
        Keyword::Maintainer,
        Keyword::Expose,
        Keyword::Env,
        Keyword::Add,
        Keyword::Copy,
        Keyword::Entrypoint,
        Keyword::Volume,
        Keyword::User,
        Keyword::Workdir,
        Keyword::Arg,
        Keyword::OnBuild,
        Keyword::StopSignal,
        Keyword::Healthcheck,
        Keyword::Shell,
    ];

    /// The keyword as written in upper case.
    pub fn as_str(self) -> &'static str {
        match self {
            Keyword::From => "FROM",
            Keyword::Run => "RUN",
            Keyword::Cmd => "CMD",
            Keyword::Label => "LABEL",
            Keyword::Maintainer => "MAINTAINER",
            Keyword::Expose => "EXPOSE",
            Keyword::Env => "ENV",
            Keyword::Add => "ADD",
            Keyword::Copy => "COPY",
            Keyword::Entrypoint => "ENTRYPOINT",
            Keyword::Volume => "VOLUME",
            Keyword::User => "USER",
            Keyword::Workdir => "WORKDIR",
            Keyword::Arg => "ARG",
            Keyword::OnBuild => "ONBUILD",
            Keyword::StopSignal => "STOPSIGNAL",
            Keyword::Healthcheck => "HEALTHCHECK",
            Keyword::Shell => "SHELL",
        }
    }

    /// The keyword of `word`, case-insensitively.
    pub fn parse(word: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(word))
    }

    /// Whether the step makes a layer (and a cache record): RUN, COPY, ADD.
    pub fn makes_layer(self) -> bool {
        matches!(self, Keyword::Run | Keyword::Copy | Keyword::Add)
    }

    /// Whether `--name` flags are read before the arguments.
    fn takes_flags(self) -> bool {
        matches!(
            self,
            Keyword::From | Keyword::Run | Keyword::Copy | Keyword::Add | Keyword::Healthcheck
        )
    }

    /// Whether a `[...]` argument is the JSON (exec) form.
    fn takes_json(self) -> bool {
        matches!(
            self,
            Keyword::Run
                | Keyword::Cmd
                | Keyword::Entrypoint
                | Keyword::Shell
                | Keyword::Copy
                | Keyword::Add
                | Keyword::Volume
                | Keyword::Healthcheck
        )
    }
}

impl std::fmt::Display for Keyword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Exec (JSON array) or shell form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Args {
    Shell(String),
    Json(Vec<String>),
}

impl Instruction {
    /// The value of flag `--name`.
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_deref().unwrap_or(""))
    }

    /// Canonical text: keyword, flags, arguments (used in history and cache keys).
    pub fn text(&self) -> String {
        let mut s = self.keyword.as_str().to_string();
        for (n, v) in &self.flags {
            match v {
                Some(v) => s.push_str(&format!(" --{n}={v}")),
                None => s.push_str(&format!(" --{n}")),
            }
        }
        match &self.args {
            Args::Shell(t) => {
                if !t.is_empty() {
                    s.push(' ');
                    s.push_str(t);
                }
            }
            Args::Json(v) => {
                s.push(' ');
                s.push_str(&serde_json::to_string(v).unwrap_or_default());
            }
        }
        self.with_heredocs(s)
    }

    /// `head` followed by each heredoc's body and delimiter line, as the
    /// instruction was written (a shell reads the heredocs from this).
    pub fn with_heredocs(&self, mut head: String) -> String {
        for h in &self.heredocs {
            head.push('\n');
            head.push_str(&h.body);
            head.push_str(&h.name);
        }
        head
    }

    /// The heredoc a RUN consists of alone (`RUN <<EOF`), whose body is the
    /// script to run.
    pub fn heredoc_script(&self) -> Option<&Heredoc> {
        match self.heredocs.as_slice() {
            [h] if heredoc_word(self.rest.trim()).is_some() => Some(h),
            _ => None,
        }
    }
}

/// A parsed Dockerfile.
#[derive(Debug, Clone)]
pub struct Dockerfile {
    pub name: String,
    pub source: String,
    pub instructions: Vec<Instruction>,
    /// Parser directives and notes worth showing (e.g. an ignored `# syntax=`).
    pub notes: Vec<String>,
}

/// A Dockerfile error pointing at the offending line.
#[derive(Debug, Error, Diagnostic)]
#[error("{file}:{line}: {message}")]
#[diagnostic(code(kmigrate::build::dockerfile))]
pub struct DockerfileError {
    pub file: String,
    pub line: usize,
    pub message: String,
    #[source_code]
    pub src: NamedSource<String>,
    #[label("here")]
    pub span: SourceSpan,
    #[help]
    pub help: Option<String>,
}

impl Dockerfile {
    /// Builds an error pointing at `ins`.
    pub fn error_at(&self, ins: &Instruction, message: impl Into<String>) -> DockerfileError {
        self.error_span(ins.line, ins.span, message.into(), None)
    }

    pub fn error_help(
        &self,
        ins: &Instruction,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> DockerfileError {
        self.error_span(ins.line, ins.span, message.into(), Some(help.into()))
    }

    /// One error for `errors`: a single one as it is; several listed in
    /// file order, each with its line, pointing at the first.
    pub fn error_list(&self, mut errors: Vec<DockerfileError>) -> Option<DockerfileError> {
        errors.sort_by_key(|e| e.line);
        if errors.len() <= 1 {
            return errors.pop();
        }
        let list: Vec<String> = errors
            .iter()
            .map(|e| {
                let help = e
                    .help
                    .as_deref()
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default();
                format!("  {}:{}: {}{help}", e.file, e.line, e.message)
            })
            .collect();
        let first = &errors[0];
        Some(DockerfileError {
            file: first.file.clone(),
            line: first.line,
            message: format!(
                "{} problems in this Dockerfile (nothing was run):\n{}",
                errors.len(),
                list.join("\n")
            ),
            src: NamedSource::new(&self.name, self.source.clone()),
            span: first.span,
            help: Some(
                "fix or remove each listed line, or build this Dockerfile with BuildKit".into(),
            ),
        })
    }

    fn error_span(
        &self,
        line: usize,
        span: (usize, usize),
        message: String,
        help: Option<String>,
    ) -> DockerfileError {
        DockerfileError {
            file: self.name.clone(),
            line,
            message,
            src: NamedSource::new(&self.name, self.source.clone()),
            span: (span.0, span.1).into(),
            help,
        }
    }
}

/// Parses Dockerfile text.
pub fn parse(name: &str, source: &str) -> Result<Dockerfile, DockerfileError> {
    let mut df = Dockerfile {
        name: name.to_string(),
        source: source.to_string(),
        instructions: Vec::new(),
        notes: Vec::new(),
    };
    let mut escape = '\\';
    // Line table: (start offset, text without newline).
    let mut lines: Vec<(usize, &str)> = Vec::new();
    let mut off = 0;
    for l in source.split_inclusive('\n') {
        lines.push((off, l.trim_end_matches(['\n', '\r'])));
        off += l.len();
    }

    // Parser directives: leading `# key=value` comments.
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].1.trim();
        let Some(body) = t.strip_prefix('#') else {
            break;
        };
        let Some((k, v)) = body.split_once('=') else {
            break;
        };
        let k = k.trim().to_ascii_lowercase();
        let v = v.trim();
        match k.as_str() {
            "escape" => match v {
                "\\" => escape = '\\',
                "`" => escape = '`',
                _ => {
                    return Err(df.error_span(
                        i + 1,
                        (lines[i].0, lines[i].1.len()),
                        format!("invalid escape directive {v:?}: use \\ or `"),
                        None,
                    ));
                }
            },
            "syntax" => df.notes.push(format!(
                "line {}: `# syntax={v}` ignored: the embedded builder has its own Dockerfile frontend (no image is pulled)",
                i + 1
            )),
            "check" => {}
            _ => break,
        }
        i += 1;
    }

    let mut errors: Vec<DockerfileError> = Vec::new();
    while i < lines.len() {
        let (start, text) = lines[i];
        let trimmed = text.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            i += 1;
            continue;
        }
        let first_line = i + 1;
        // Join continuation lines; comment lines inside a continuation are dropped.
        let mut logical = String::new();
        let mut end;
        loop {
            let (s, t) = lines[i];
            end = s + t.len();
            let tt = t.trim_end();
            if let Some(stripped) = tt.strip_suffix(escape) {
                logical.push_str(stripped);
                i += 1;
                // Skip comment and empty lines inside the continuation.
                while i < lines.len() {
                    let nt = lines[i].1.trim_start();
                    if nt.starts_with('#') || nt.is_empty() {
                        i += 1;
                    } else {
                        break;
                    }
                }
                if i >= lines.len() {
                    break;
                }
            } else {
                logical.push_str(t);
                i += 1;
                break;
            }
        }
        let span = (start, end - start);
        let logical = logical.trim().to_string();
        let (kw, rest) = match logical.find(char::is_whitespace) {
            Some(p) => (&logical[..p], logical[p..].trim_start()),
            None => (logical.as_str(), ""),
        };
        let mk_err = |msg: String, help: Option<String>| df.error_span(first_line, span, msg, help);
        let Some(keyword) = Keyword::parse(kw) else {
            // Keep going: every unknown instruction is listed at once.
            errors.push(mk_err(format!("unknown instruction: {kw}"), None));
            continue;
        };
        // Flags.
        let mut flags = Vec::new();
        let mut rest = rest;
        if keyword.takes_flags() {
            while let Some(f) = rest.strip_prefix("--") {
                let (word, after) = match f.find(char::is_whitespace) {
                    Some(p) => (&f[..p], f[p..].trim_start()),
                    None => (f, ""),
                };
                let (n, v) = match word.split_once('=') {
                    Some((n, v)) => (n.to_string(), Some(unquote(v))),
                    None => (word.to_string(), None),
                };
                flags.push((n, v));
                rest = after;
            }
        }
        // Here-documents: their bodies follow the instruction's last line.
        let mut heredocs = Vec::new();
        if keyword.makes_layer() && !rest.starts_with('[') {
            let words = heredoc_words(rest);
            if words.len() > HEREDOCS_MAX {
                return Err(mk_err(
                    format!("more than {HEREDOCS_MAX} heredocs in one instruction"),
                    None,
                ));
            }
            for (name, strip_tabs, expand) in words {
                let mut body = String::new();
                loop {
                    let Some((s, t)) = lines.get(i) else {
                        return Err(mk_err(
                            format!("heredoc <<{name} is not terminated: no line {name} ends it"),
                            Some(format!("end the heredoc with a line holding only {name}")),
                        ));
                    };
                    i += 1;
                    end = s + t.len();
                    let candidate = if strip_tabs {
                        t.trim_start_matches('\t')
                    } else {
                        t
                    };
                    if candidate == name {
                        break;
                    }
                    body.push_str(t);
                    body.push('\n');
                }
                heredocs.push(Heredoc {
                    name,
                    body,
                    strip_tabs,
                    expand,
                });
            }
        }
        let span = (start, end - start);
        let args = if keyword.takes_json() && rest.starts_with('[') {
            match serde_json::from_str::<Vec<String>>(rest) {
                Ok(v) => Args::Json(v),
                Err(_) => Args::Shell(rest.to_string()),
            }
        } else {
            Args::Shell(rest.to_string())
        };
        df.instructions.push(Instruction {
            line: first_line,
            span,
            keyword,
            flags,
            args,
            rest: rest.to_string(),
            heredocs,
        });
    }
    match df.error_list(errors) {
        Some(e) => Err(e),
        None => Ok(df),
    }
}

/// `v` without one pair of matching surrounding quotes.
pub(crate) fn unquote(v: &str) -> String {
    let b = v.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        v[1..v.len() - 1].to_string()
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuations_flags_and_forms() {
        let df = parse(
            "Dockerfile",
            "# syntax=docker/dockerfile:1\nARG V=1\nFROM --platform=$BUILDPLATFORM busybox AS b\n# c\nRUN echo a \\\n  # inside\n  && echo b\nCMD [\"sh\", \"-c\", \"x\"]\ncopy --from=b --chmod=755 /a /b\n",
        )
        .unwrap();
        assert_eq!(df.notes.len(), 1);
        let k: Vec<_> = df.instructions.iter().map(|i| i.keyword.as_str()).collect();
        assert_eq!(k, ["ARG", "FROM", "RUN", "CMD", "COPY"]);
        assert_eq!(df.instructions[1].flag("platform"), Some("$BUILDPLATFORM"));
        assert_eq!(df.instructions[2].line, 5);
        assert_eq!(
            df.instructions[2].args,
            Args::Shell("echo a   && echo b".into())
        );
        assert_eq!(
            df.instructions[3].args,
            Args::Json(vec!["sh".into(), "-c".into(), "x".into()])
        );
        assert_eq!(df.instructions[4].flag("from"), Some("b"));
        assert_eq!(df.instructions[4].line, 9);
        assert_eq!(df.instructions[4].text(), "COPY --from=b --chmod=755 /a /b");
    }

    #[test]
    fn keywords_are_typed_once_whatever_their_case() {
        let df = parse(
            "Dockerfile",
            "from scratch\nHealthCheck NONE\nonbuild RUN x\n",
        )
        .unwrap();
        let k: Vec<_> = df.instructions.iter().map(|i| i.keyword).collect();
        assert_eq!(k, [Keyword::From, Keyword::Healthcheck, Keyword::OnBuild]);
        for k in Keyword::ALL {
            assert_eq!(Keyword::parse(k.as_str()), Some(k));
            assert_eq!(Keyword::parse(&k.as_str().to_ascii_lowercase()), Some(k));
            assert_eq!(
                k.makes_layer(),
                matches!(k, Keyword::Run | Keyword::Copy | Keyword::Add)
            );
        }
        assert_eq!(Keyword::parse("FORM"), None);
    }

    #[test]
    fn unknown_instruction_names_the_line() {
        let err = parse("Dockerfile", "FROM scratch\n\nFORM x\n").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(
            err.to_string()
                .contains("Dockerfile:3: unknown instruction: FORM")
        );
    }

    #[test]
    fn every_unknown_instruction_is_listed() {
        let err = parse("Dockerfile", "FROM scratch\nFORM x\nRUN true\nCOYP a b\n").unwrap_err();
        assert_eq!(err.line, 2);
        let e = err.to_string();
        assert!(e.starts_with("Dockerfile:2: 2 problems"), "{e}");
        let (two, four) = (
            e.find("Dockerfile:2: unknown instruction: FORM").unwrap(),
            e.find("Dockerfile:4: unknown instruction: COYP").unwrap(),
        );
        assert!(two < four, "{e}");
    }

    #[test]
    fn heredocs_are_read_with_their_bodies() {
        let df = parse(
            "D",
            "FROM scratch\nRUN <<EOF\necho $A\n# not a comment\nEOF\nRUN <<-'X' cat >f && cat <<\"Y\"\n\tone\n\tX\ntwo\nY\nCOPY <<a.txt /a\nhi\na.txt\nENV B=1\n",
        )
        .unwrap();
        let k: Vec<_> = df.instructions.iter().map(|i| i.keyword.as_str()).collect();
        assert_eq!(k, ["FROM", "RUN", "RUN", "COPY", "ENV"]);
        let h = &df.instructions[1].heredocs;
        assert_eq!(h.len(), 1);
        assert_eq!(
            (h[0].name.as_str(), h[0].body.as_str()),
            ("EOF", "echo $A\n# not a comment\n")
        );
        assert!(h[0].expand && !h[0].strip_tabs);
        let h = &df.instructions[2].heredocs;
        assert_eq!(h.len(), 2);
        assert_eq!(
            (h[0].name.as_str(), h[0].content()),
            ("X", "one\n".to_string())
        );
        assert!(h[0].strip_tabs && !h[0].expand);
        assert_eq!((h[1].name.as_str(), h[1].body.as_str()), ("Y", "two\n"));
        assert!(!h[1].expand);
        assert_eq!(df.instructions[3].heredocs[0].body, "hi\n");
        assert_eq!(df.instructions[4].line, 14);
        // The text (history, cache key) carries the bodies.
        assert_eq!(
            df.instructions[1].text(),
            "RUN <<EOF\necho $A\n# not a comment\nEOF"
        );
        // A shift inside quotes, in an exec form or inside a word is not a heredoc.
        for src in [
            "FROM scratch\nRUN [\"sh\",\"-c\",\"cat <<EOF\"]\n",
            "FROM scratch\nRUN echo '<<EOF' \"<<EOF\" $((1<<2)) x<<EOF\n",
            "FROM scratch\nENV A=<<EOF\n",
        ] {
            let df = parse("D", src).unwrap();
            assert!(
                df.instructions.iter().all(|i| i.heredocs.is_empty()),
                "{src}"
            );
        }
    }

    #[test]
    fn unterminated_heredoc_names_the_line() {
        let err = parse("D", "FROM scratch\nRUN <<EOF\necho\nEOFX\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(
            err.message.contains("heredoc <<EOF is not terminated"),
            "{}",
            err.message
        );
    }

    #[test]
    fn backtick_escape_directive() {
        let df = parse("D", "# escape=`\nFROM scratch\nRUN a `\n b\n").unwrap();
        assert_eq!(df.instructions[1].args, Args::Shell("a  b".into()));
    }
}
