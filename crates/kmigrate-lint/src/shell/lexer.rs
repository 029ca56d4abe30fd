//! Tokenizer and command assembler behind [`super::parse`].

use super::{Command, Nesting, Script, Word, escape_dq};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `\n`, `;`, `;;`, `&`: end of a command.
    End,
    /// `&&`, `||`, `|`: the next command is part of the same list.
    List,
    /// `(` or `)`.
    Paren(bool),
}

#[derive(Debug)]
enum Token {
    Word(Word),
    Op(Op),
    /// A redirection operator; the next word is its target, not an argument.
    Redirect,
}

struct Heredoc {
    delimiter: String,
    strip_tabs: bool,
    at: usize,
}

struct Lexer<'s> {
    src: &'s str,
    bytes: &'s [u8],
    pos: usize,
    heredocs: Vec<Heredoc>,
    problems: Vec<(usize, String)>,
}

/// Reads `src` into commands. Never fails: what it cannot read is listed in
/// [`Script::problems`].
pub fn parse(src: &str) -> Script {
    let mut lx = Lexer {
        src,
        bytes: src.as_bytes(),
        pos: 0,
        heredocs: Vec::new(),
        problems: Vec::new(),
    };
    let mut asm = Assembler::default();
    let mut expect_heredoc_word = None;
    while let Some(tok) = lx.next_token() {
        if let (Some(strip_tabs), Token::Word(w)) = (expect_heredoc_word.take(), &tok) {
            lx.heredocs.push(Heredoc {
                delimiter: super::unescape_dq(&w.dq),
                strip_tabs,
                at: w.span.start,
            });
            continue;
        }
        match tok {
            Token::Redirect if lx.last_redirect_was_heredoc() => {
                expect_heredoc_word = Some(lx.src[..lx.pos].ends_with("<<-"));
            }
            t => asm.push(t),
        }
    }
    asm.finish_command(false);
    if let Some(h) = lx.heredocs.first() {
        lx.problems
            .push((h.at, format!("heredoc `{}` is not terminated", h.delimiter)));
    }
    Script {
        commands: asm.commands,
        assignments: asm.bare_assignments,
        problems: lx.problems,
    }
}

impl Lexer<'_> {
    fn peek(&self, k: usize) -> Option<u8> {
        self.bytes.get(self.pos + k).copied()
    }

    fn last_redirect_was_heredoc(&self) -> bool {
        let before = &self.src[..self.pos];
        (before.ends_with("<<") || before.ends_with("<<-")) && !before.ends_with("<<<")
    }

    fn next_token(&mut self) -> Option<Token> {
        loop {
            let c = self.peek(0)?;
            match c {
                b' ' | b'\t' | b'\r' => self.pos += 1,
                b'\\' if self.peek(1) == Some(b'\n') => self.pos += 2,
                b'\\' if self.peek(1) == Some(b'\r') && self.peek(2) == Some(b'\n') => {
                    self.pos += 3
                }
                b'#' => {
                    while self.peek(0).is_some_and(|c| c != b'\n') {
                        self.pos += 1;
                    }
                }
                b'\n' => {
                    self.pos += 1;
                    self.skip_heredoc_bodies();
                    return Some(Token::Op(Op::End));
                }
                b';' => {
                    self.pos += if self.peek(1) == Some(b';') { 2 } else { 1 };
                    return Some(Token::Op(Op::End));
                }
                b'&' if self.peek(1) == Some(b'&') => {
                    self.pos += 2;
                    return Some(Token::Op(Op::List));
                }
                b'&' if self.peek(1) == Some(b'>') => {
                    self.pos += if self.peek(2) == Some(b'>') { 3 } else { 2 };
                    return Some(Token::Redirect);
                }
                b'&' => {
                    self.pos += 1;
                    return Some(Token::Op(Op::End));
                }
                b'|' => {
                    self.pos += if self.peek(1) == Some(b'|') { 2 } else { 1 };
                    return Some(Token::Op(Op::List));
                }
                b'(' | b')' => {
                    self.pos += 1;
                    return Some(Token::Op(Op::Paren(c == b'(')));
                }
                b'<' | b'>' => return Some(self.redirect()),
                b'0'..=b'9' if self.digits_then_redirect() => {
                    while self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
                        self.pos += 1;
                    }
                    return Some(self.redirect());
                }
                _ => return Some(Token::Word(self.word())),
            }
        }
    }

    fn digits_then_redirect(&self) -> bool {
        let mut k = 0;
        while self.peek(k).is_some_and(|c| c.is_ascii_digit()) {
            k += 1;
        }
        matches!(self.peek(k), Some(b'<' | b'>'))
    }

    /// `<`, `>`, `>>`, `<<`, `<<-`, `<<<`, `>&`, `<&`, `>|`, `<>`.
    fn redirect(&mut self) -> Token {
        let first = self.bytes[self.pos];
        self.pos += 1;
        match (first, self.peek(0)) {
            (b'<', Some(b'<')) => {
                self.pos += 1;
                if matches!(self.peek(0), Some(b'-' | b'<')) {
                    self.pos += 1;
                }
            }
            (b'>', Some(b'>' | b'|')) | (_, Some(b'&')) | (b'<', Some(b'>')) => self.pos += 1,
            _ => {}
        }
        // `2>&1`: the target is a descriptor, still a "word".
        Token::Redirect
    }

    fn skip_heredoc_bodies(&mut self) {
        for h in std::mem::take(&mut self.heredocs) {
            let mut terminated = false;
            while self.pos < self.bytes.len() {
                let end = self.src[self.pos..]
                    .find('\n')
                    .map(|i| self.pos + i)
                    .unwrap_or(self.bytes.len());
                let mut line = self.src[self.pos..end].trim_end_matches('\r');
                if h.strip_tabs {
                    line = line.trim_start_matches('\t');
                }
                self.pos = (end + 1).min(self.bytes.len());
                if line == h.delimiter {
                    terminated = true;
                    break;
                }
            }
            if !terminated {
                self.problems
                    .push((h.at, format!("heredoc `{}` is not terminated", h.delimiter)));
            }
        }
    }

    fn word(&mut self) -> Word {
        let start = self.pos;
        let mut w = Word {
            span: start..start,
            dq: String::new(),
            has_expansion: false,
            unquoted_expansion: false,
        };
        while let Some(c) = self.peek(0) {
            match c {
                b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'(' | b')' | b'<' | b'>' => break,
                b'\r' if self.peek(1) == Some(b'\n') => break,
                b'\\' => {
                    self.pos += 1;
                    match self.next_char() {
                        Some('\n') => {}
                        Some('\r') if self.peek(0) == Some(b'\n') => self.pos += 1,
                        Some(ch) => w.dq.push_str(&escape_dq(&ch.to_string())),
                        None => {}
                    }
                }
                b'\'' => {
                    let open = self.pos;
                    self.pos += 1;
                    match self.src[self.pos..].find('\'') {
                        Some(i) => {
                            w.dq.push_str(&escape_dq(&self.src[self.pos..self.pos + i]));
                            self.pos += i + 1;
                        }
                        None => {
                            self.problems
                                .push((open, "unterminated single quote".into()));
                            w.dq.push_str(&escape_dq(&self.src[self.pos..]));
                            self.pos = self.bytes.len();
                        }
                    }
                }
                b'"' => self.double_quoted(&mut w),
                b'$' | b'`' => {
                    if self.expansion(&mut w.dq) {
                        w.has_expansion = true;
                        w.unquoted_expansion = true;
                    }
                }
                _ => {
                    if let Some(ch) = self.next_char() {
                        w.dq.push(ch);
                    }
                }
            }
        }
        w.span = start..self.pos;
        w
    }

    fn next_char(&mut self) -> Option<char> {
        let ch = self.src[self.pos..].chars().next()?;
        self.pos += ch.len_utf8();
        Some(ch)
    }

    fn double_quoted(&mut self, w: &mut Word) {
        let open = self.pos;
        self.pos += 1;
        loop {
            let Some(c) = self.peek(0) else {
                self.problems
                    .push((open, "unterminated double quote".into()));
                return;
            };
            match c {
                b'"' => {
                    self.pos += 1;
                    return;
                }
                b'\\' => {
                    self.pos += 1;
                    match self.next_char() {
                        Some('\n') => {}
                        Some(ch @ ('$' | '`' | '"' | '\\')) => {
                            w.dq.push('\\');
                            w.dq.push(ch);
                        }
                        // Inside double quotes other backslashes are literal.
                        Some(ch) => {
                            w.dq.push_str("\\\\");
                            w.dq.push(ch);
                        }
                        None => {}
                    }
                }
                b'$' | b'`' => {
                    if self.expansion(&mut w.dq) {
                        w.has_expansion = true;
                    }
                }
                _ => {
                    if let Some(ch) = self.next_char() {
                        w.dq.push(ch);
                    }
                }
            }
        }
    }

    /// Copies an expansion starting at `$` or `` ` `` into `out` as written.
    /// Returns false when the `$` is a literal dollar sign.
    fn expansion(&mut self, out: &mut String) -> bool {
        let start = self.pos;
        let opened = match (self.bytes[self.pos], self.peek(1)) {
            (b'`', _) => {
                self.pos += 1;
                self.skip_nested(Nest::Backquote);
                true
            }
            (_, Some(b'{')) => {
                self.pos += 2;
                self.skip_nested(Nest::Brace);
                true
            }
            (_, Some(b'(')) => {
                self.pos += 2;
                self.skip_nested(Nest::Paren);
                true
            }
            (_, Some(b'[')) if self.peek(2) == Some(b'[') => self.skip_gitlab_input(),
            (_, Some(c)) if c.is_ascii_alphabetic() || c == b'_' => {
                self.pos += 1;
                while self
                    .peek(0)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
                {
                    self.pos += 1;
                }
                true
            }
            (_, Some(c)) if c.is_ascii_digit() || b"@*#?$!-".contains(&c) => {
                self.pos += 2;
                true
            }
            _ => false,
        };
        if !opened {
            self.pos = start + 1;
            out.push_str("\\$");
            return false;
        }
        out.push_str(&self.src[start..self.pos]);
        true
    }

    /// GitLab's `$[[ inputs.name ]]` (CI/CD component inputs): GitLab
    /// replaces it before any shell runs, so it is one opaque word however
    /// many spaces it holds. Without its closing `]]` it is literal text.
    fn skip_gitlab_input(&mut self) -> bool {
        let body = self.pos + 3;
        match self.src[body..].find("]]") {
            Some(i) if !self.src[body..body + i].contains('\n') => {
                self.pos = body + i + 2;
                true
            }
            _ => false,
        }
    }

    /// Moves past the body of an expansion whose opener (`$(`, `${`, `` ` ``)
    /// was just consumed, honouring nested expansions, quotes and
    /// backquotes (`$(echo ")")` ends at the second `)`). The nesting is
    /// an explicit stack, so hostile input cannot exhaust the call stack.
    fn skip_nested(&mut self, outer: Nest) {
        let start = self.pos;
        let mut stack = vec![outer];
        while let Some(&top) = stack.last() {
            let Some(ch) = self.next_char() else {
                self.problems.push((start, "unterminated expansion".into()));
                return;
            };
            // Every byte that matters here is ASCII.
            let c = if ch.is_ascii() { ch as u8 } else { 0 };
            let next = self.peek(0);
            match (top, c) {
                (_, b'\\') => {
                    self.next_char();
                }
                (Nest::Backquote, b'`')
                | (Nest::Quote, b'"')
                | (Nest::Paren, b')')
                | (Nest::Brace, b'}') => {
                    stack.pop();
                }
                (Nest::Backquote, _) => {}
                (Nest::Paren, b'\'') => match self.src[self.pos..].find('\'') {
                    Some(i) => self.pos += i + 1,
                    None => self.pos = self.bytes.len(),
                },
                (Nest::Paren, b'(') | (Nest::Brace, b'{') => stack.push(top),
                (_, b'$') if next == Some(b'[') && self.peek(1) == Some(b'[') => {
                    self.pos -= 1;
                    if !self.skip_gitlab_input() {
                        self.pos += 1;
                    }
                }
                (_, b'$') if next == Some(b'(') => {
                    self.pos += 1;
                    stack.push(Nest::Paren);
                }
                (_, b'$') if next == Some(b'{') => {
                    self.pos += 1;
                    stack.push(Nest::Brace);
                }
                (_, b'`') => stack.push(Nest::Backquote),
                (Nest::Paren | Nest::Brace, b'"') => stack.push(Nest::Quote),
                _ => {}
            }
        }
    }
}

/// What an expansion body is inside of, while skipping it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nest {
    /// `$(…)`, `$((…))` or a `(…)` inside one.
    Paren,
    /// `${…}`.
    Brace,
    /// `"…"` inside an expansion.
    Quote,
    /// `` `…` ``.
    Backquote,
}

/// The length of the expansion at the start of `s` (`$X`, `${…}`, `$(…)`,
/// `` `…` ``, `$[[ … ]]`), or 0 when `s` does not start with one.
pub fn expansion_len(s: &str) -> usize {
    if !s.starts_with(['$', '`']) {
        return 0;
    }
    let mut lx = Lexer {
        src: s,
        bytes: s.as_bytes(),
        pos: 0,
        heredocs: Vec::new(),
        problems: Vec::new(),
    };
    if lx.expansion(&mut String::new()) {
        lx.pos.min(s.len())
    } else {
        0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Control {
    If,
    Case,
    Loop,
}

#[derive(Default)]
struct Assembler {
    commands: Vec<Command>,
    control: Vec<Control>,
    words: Vec<Word>,
    assignments: Vec<Word>,
    /// Assignments with no command after them.
    bare_assignments: Vec<(Word, Nesting)>,
    redirect_target: bool,
    /// Skipping a `for x in …` or `case x in` header.
    in_header: bool,
    list: bool,
}

impl Assembler {
    fn push(&mut self, tok: Token) {
        match tok {
            Token::Redirect => self.redirect_target = true,
            Token::Word(w) => self.word(w),
            Token::Op(Op::List) => {
                self.finish_command(true);
                self.list = true;
            }
            Token::Op(Op::End) => {
                self.finish_command(self.list);
                self.list = false;
                self.in_header = false;
            }
            Token::Op(Op::Paren(open)) => {
                // `pattern)` inside a case is a pattern, not a command.
                if !open && self.control.last() == Some(&Control::Case) {
                    self.words.clear();
                    self.assignments.clear();
                } else {
                    self.finish_command(self.list);
                }
            }
        }
    }

    fn word(&mut self, w: Word) {
        if std::mem::take(&mut self.redirect_target) {
            return;
        }
        if self.in_header {
            if self.control.last() == Some(&Control::Case) && w.literal().as_deref() == Some("in") {
                self.in_header = false;
            }
            return;
        }
        if self.words.is_empty() {
            match w.literal().as_deref() {
                Some("if") => return self.control.push(Control::If),
                Some("while" | "until") => return self.control.push(Control::Loop),
                Some("for" | "select") => {
                    self.control.push(Control::Loop);
                    self.in_header = true;
                    return;
                }
                Some("case") => {
                    self.control.push(Control::Case);
                    self.in_header = true;
                    return;
                }
                Some("then" | "do" | "else" | "elif" | "{" | "}" | "!") => return,
                Some("fi" | "done" | "esac") => {
                    self.control.pop();
                    return;
                }
                _ => {}
            }
            if is_assignment(&w) {
                self.assignments.push(w);
                return;
            }
        }
        self.words.push(w);
    }

    fn finish_command(&mut self, in_list: bool) {
        self.redirect_target = false;
        let nesting = if self.control.contains(&Control::Loop) {
            Nesting::Loop
        } else if self.control.is_empty() {
            Nesting::TopLevel
        } else {
            Nesting::Conditional
        };
        if self.words.is_empty() {
            let bare = std::mem::take(&mut self.assignments);
            self.bare_assignments
                .extend(bare.into_iter().map(|w| (w, nesting)));
            return;
        }
        let words = std::mem::take(&mut self.words);
        let span = words[0].span.start..words[words.len() - 1].span.end;
        self.commands.push(Command {
            words,
            span,
            assignments: std::mem::take(&mut self.assignments),
            nesting,
            in_list: in_list || self.list,
        });
    }
}

fn is_assignment(w: &Word) -> bool {
    let Some(eq) = w.dq.find('=') else {
        return false;
    };
    // Bash's `X+=value` appends (GitLab's shells are often bash).
    let name = w.dq[..eq].strip_suffix('+').unwrap_or(&w.dq[..eq]);
    !name.is_empty()
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::super::*;

    fn words(cmd: &Command) -> Vec<String> {
        cmd.words.iter().map(|w| w.dq.clone()).collect()
    }

    #[test]
    fn splits_commands_and_keeps_word_spans() {
        let src = "mkdir -p /kaniko/.docker && /kaniko/executor --context \"${CI_PROJECT_DIR}\" \\\n  --destination $IMG:1; echo done";
        let s = parse(src);
        assert_eq!(s.commands.len(), 3);
        let call = &s.commands[1];
        assert_eq!(
            words(call),
            [
                "/kaniko/executor",
                "--context",
                "${CI_PROJECT_DIR}",
                "--destination",
                "$IMG:1"
            ]
        );
        assert!(call.in_list);
        assert_eq!(&src[call.words[2].span.clone()], "\"${CI_PROJECT_DIR}\"");
        assert!(call.words[4].unquoted_expansion);
        assert!(!call.words[2].unquoted_expansion);
        assert_eq!(
            &src[call.span.clone()],
            &src[src.find("/kaniko/executor").unwrap()..src.find(";").unwrap()]
        );
    }

    #[test]
    fn echo_comments_and_heredocs_are_not_calls() {
        let src = "echo \"/kaniko/executor --x\"\n# /kaniko/executor\ncat <<EOF > f\n/kaniko/executor --y\nEOF\ncat <<-'X'\n\t/kaniko/executor\n\tX\nls";
        let s = parse(src);
        let names: Vec<_> = s.commands.iter().map(|c| c.words[0].dq.clone()).collect();
        assert_eq!(names, ["echo", "cat", "cat", "ls"]);
        assert!(s.problems.is_empty(), "{:?}", s.problems);
    }

    #[test]
    fn control_structures_mark_nesting() {
        let src = "if [ -n \"$T\" ]; then\n  a\nelse b; fi\nfor t in x y; do c $t; done\nwhile read l; do d; done\ncase $x in\n  a) e;;\nesac\nf";
        let s = parse(src);
        let got: Vec<_> = s
            .commands
            .iter()
            .map(|c| (c.words[0].dq.clone(), c.nesting))
            .collect();
        assert_eq!(
            got,
            [
                ("[".into(), Nesting::Conditional),
                ("a".into(), Nesting::Conditional),
                ("b".into(), Nesting::Conditional),
                ("c".into(), Nesting::Loop),
                ("read".into(), Nesting::Loop),
                ("d".into(), Nesting::Loop),
                ("e".into(), Nesting::Conditional),
                ("f".into(), Nesting::TopLevel),
            ]
        );
    }

    #[test]
    fn quoting_forms_and_literals() {
        let s = parse(r#"x 'a $b' "c \$d" e\ f ${G:-h} $(date +%s) `id` $"#);
        let w = &s.commands[0].words;
        assert_eq!(w[1].literal().as_deref(), Some("a $b"));
        assert_eq!(w[2].literal().as_deref(), Some("c $d"));
        assert_eq!(w[3].literal().as_deref(), Some("e f"));
        assert!(w[4].is_bare_expansion());
        assert_eq!(w[4].dq, "${G:-h}");
        assert_eq!(w[5].dq, "$(date +%s)");
        assert_eq!(w[6].dq, "`id`");
        assert_eq!(w[7].literal().as_deref(), Some("$"));
        assert_eq!(render_word(&w[1].dq), "\"a \\$b\"");
    }

    #[test]
    fn assignments_prefix_and_exec() {
        let s = parse("FOO=1 exec /kaniko/executor -d x");
        let c = &s.commands[0];
        assert_eq!(c.assignments.len(), 1);
        assert_eq!(c.program().unwrap().1.dq, "/kaniko/executor");
    }

    #[test]
    fn bare_assignments_are_kept_with_their_nesting() {
        let s = parse("A=1\nif t; then B+=\" x\"; fi\nfor i in 1; do C=\"$C y\"; done\nD=2 cmd");
        let got: Vec<(&str, Nesting)> = s
            .assignments
            .iter()
            .map(|(w, n)| (w.dq.as_str(), *n))
            .collect();
        assert_eq!(
            got,
            [
                ("A=1", Nesting::TopLevel),
                ("B+= x", Nesting::Conditional),
                ("C=$C y", Nesting::Loop)
            ]
        );
        assert_eq!(s.commands.last().unwrap().assignments[0].dq, "D=2");
    }

    /// Each opaque form is one word, kept byte for byte, whatever quotes,
    /// spaces or parentheses it holds.
    fn one_word(src: &str) -> Word {
        let s = parse(&format!("x {src} y"));
        assert!(s.problems.is_empty(), "{src}: {:?}", s.problems);
        let w = &s.commands[0].words;
        assert_eq!(w.len(), 3, "{src}: {w:?}");
        assert_eq!(w[2].dq, "y");
        w[1].clone()
    }

    #[test]
    fn gitlab_inputs_are_one_opaque_word() {
        let w = one_word("$[[ inputs.image_tag ]]");
        assert_eq!(w.dq, "$[[ inputs.image_tag ]]");
        assert!(w.is_bare_expansion());
        let w = one_word("$[[ inputs.image ]]:$[[ inputs.tag | expand_vars ]]");
        assert_eq!(w.dq, "$[[ inputs.image ]]:$[[ inputs.tag | expand_vars ]]");
        assert!(w.has_expansion && !w.is_bare_expansion());
        let w = one_word("\"VERSION=$[[ inputs.version ]]\"");
        assert_eq!(w.dq, "VERSION=$[[ inputs.version ]]");
        assert!(w.has_expansion && !w.unquoted_expansion);
        // Without its `]]` it is a literal dollar, as GitLab leaves it.
        assert_eq!(parse("x $[[ y").commands[0].words[1].dq, "\\$[[");
    }

    #[test]
    fn command_substitutions_hold_quotes_and_parentheses() {
        for src in [
            "$(git rev-parse --short HEAD)",
            "$(echo \")\" )",
            "\"$(echo \")\" )\"",
            "$( [ \"$[[ inputs.push ]]\" = \"false\" ] && echo \"--no-push --tarPath image.tar\" )",
            "\"$(git describe --tags \"$(git rev-list --tags --max-count=1)\")\"",
            "$(echo '(' \"${A:-)}\")",
            "$(echo `echo )`)",
        ] {
            let w = one_word(src);
            assert!(w.has_expansion, "{src}");
            assert_eq!(w.dq, src.trim_matches('"'), "{src}");
        }
    }

    #[test]
    fn backquotes_nest_with_escapes() {
        let w = one_word("`echo \\`whoami\\` )`");
        assert_eq!(w.dq, "`echo \\`whoami\\` )`");
        let w = one_word("\"built-by=$(echo `whoami`)\"");
        assert_eq!(w.dq, "built-by=$(echo `whoami`)");
    }

    #[test]
    fn parameter_expansions_and_arithmetic_are_one_word() {
        for src in [
            "${CTX:-.}",
            "${CI_COMMIT_REF_SLUG//\\//-}",
            "${A:-\"}\"}",
            "${A:-${B:-c d}}",
            "$((1+2))",
            "$(( (1+2) * 3 ))",
        ] {
            let w = one_word(src);
            assert_eq!(w.dq, src, "{src}");
            assert!(w.unquoted_expansion, "{src}");
        }
    }

    #[test]
    fn expansion_len_measures_one_expansion() {
        assert_eq!(expansion_len("$(a \")\") b"), 8);
        assert_eq!(expansion_len("$[[ inputs.x ]]:y"), 15);
        assert_eq!(expansion_len("${X}y"), 4);
        assert_eq!(expansion_len("$ x"), 0);
        assert_eq!(expansion_len("x"), 0);
    }

    #[test]
    fn deep_or_unterminated_nesting_is_a_problem_not_a_panic() {
        let deep = "$(\"".repeat(100_000);
        let s = parse(&format!("x {deep}"));
        assert_eq!(s.problems.len(), 1);
        for src in ["x $(a \"é", "x `é", "x ${é", "x $(é\\"] {
            assert_eq!(parse(src).problems.len(), 1, "{src}");
        }
    }

    #[test]
    fn unterminated_quote_is_a_problem_not_a_panic() {
        let s = parse("a \"b");
        assert_eq!(s.problems.len(), 1);
    }
}
