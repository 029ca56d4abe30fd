//! Dockerfile variable expansion (`$V`, `${V}`, `${V:-d}`, `${V:+a}`,
//! `${V:?m}`, `${V#p}`, `${V%p}`, `${V/p/r}`, nested in defaults) and
//! quote-aware word splitting, as Docker applies them to FROM, COPY, ENV, ...

use std::collections::BTreeMap;

/// Expands variables from `vars`; unknown ones become empty as in Docker.
/// Quotes are kept (word splitting removes them later); `\$` is a literal `$`.
pub fn expand(s: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    expand_quoting(s, vars, true)
}

/// Expands the body of an unquoted here-document: as in a shell heredoc,
/// single quotes are plain characters there, not quoting.
pub fn expand_heredoc(s: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    expand_quoting(s, vars, false)
}

fn expand_quoting(
    s: &str,
    vars: &BTreeMap<String, String>,
    single_quotes: bool,
) -> Result<String, String> {
    let c: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let mut in_single = false;
    while i < c.len() {
        let ch = c[i];
        if ch == '\'' && single_quotes {
            in_single = !in_single;
            out.push(ch);
            i += 1;
            continue;
        }
        if ch == '\\' && i + 1 < c.len() && c[i + 1] == '$' {
            out.push('$');
            i += 2;
            continue;
        }
        if ch != '$' || in_single || i + 1 >= c.len() {
            out.push(ch);
            i += 1;
            continue;
        }
        if c[i + 1] == '{' {
            let close =
                matching_brace(&c[i + 2..])?.ok_or_else(|| format!("missing '}}' in {s:?}"))?;
            let inner: String = c[i + 2..i + 2 + close].iter().collect();
            out.push_str(&expand_braced(&inner, vars)?);
            i += close + 3;
        } else if c[i + 1].is_ascii_alphanumeric() || c[i + 1] == '_' {
            let mut j = i + 1;
            while j < c.len() && (c[j].is_ascii_alphanumeric() || c[j] == '_') {
                j += 1;
            }
            let name: String = c[i + 1..j].iter().collect();
            out.push_str(vars.get(&name).map(String::as_str).unwrap_or(""));
            i = j;
        } else {
            out.push(ch);
            i += 1;
        }
    }
    Ok(out)
}

/// How deep `${...}` may nest in defaults (each level is a recursion).
const NESTING_MAX: usize = 32;

/// The index of the `}` closing a `${` whose body starts `body`: nested
/// `${...}` in a default (`${A:-${B:-c}}`) and `\}` are skipped.
fn matching_brace(body: &[char]) -> Result<Option<usize>, String> {
    let mut depth = 0usize;
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            '\\' => i += 1,
            '$' if body.get(i + 1) == Some(&'{') => {
                depth += 1;
                if depth > NESTING_MAX {
                    return Err(format!("variables nested more than {NESTING_MAX} deep"));
                }
                i += 1;
            }
            '}' if depth == 0 => return Ok(Some(i)),
            '}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    Ok(None)
}

fn expand_braced(inner: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let name_end = inner
        .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
        .unwrap_or(inner.len());
    let name = &inner[..name_end];
    if name.is_empty() {
        return Err(format!("bad substitution: ${{{inner}}}"));
    }
    let val = vars.get(name);
    let op = &inner[name_end..];
    let word = |w: &str| expand(w, vars);
    Ok(match op {
        "" => val.cloned().unwrap_or_default(),
        _ if op.starts_with(":-") => match val {
            Some(v) if !v.is_empty() => v.clone(),
            _ => word(&op[2..])?,
        },
        _ if op.starts_with(":+") => match val {
            Some(v) if !v.is_empty() => word(&op[2..])?,
            _ => String::new(),
        },
        _ if op.starts_with('-') => match val {
            Some(v) => v.clone(),
            None => word(&op[1..])?,
        },
        _ if op.starts_with('+') => match val {
            Some(_) => word(&op[1..])?,
            None => String::new(),
        },
        // `${A:?message}` / `${A?message}`: a required variable.
        _ if op.starts_with(":?") || op.starts_with('?') => match val {
            Some(v) if !v.is_empty() || !op.starts_with(':') => v.clone(),
            _ => {
                let msg = word(op.trim_start_matches(':').trim_start_matches('?'))?;
                let msg = if msg.is_empty() {
                    "is not set".to_string()
                } else {
                    msg
                };
                return Err(format!("{name}: {msg}"));
            }
        },
        // `${A#p}`/`${A##p}` and `${A%p}`/`${A%%p}`: the shortest/longest
        // prefix or suffix matching the shell pattern `p` removed.
        _ if op.starts_with('#') || op.starts_with('%') => {
            let v: Vec<char> = val.cloned().unwrap_or_default().chars().collect();
            let longest = op[1..].starts_with(&op[..1]);
            let pat = word(&op[if longest { 2 } else { 1 }..])?;
            let mut tokens = pattern_tokens(&pat);
            // Matching costs pattern × value steps: bounded for hostile input.
            if tokens.len().saturating_mul(v.len() + 1) > PATTERN_WORK_MAX {
                return Err(format!(
                    "${{{name}{}}}: value or pattern too long to match",
                    &op[..1]
                ));
            }
            if op.starts_with('#') {
                let ends = matching_prefixes(&tokens, &v);
                let cut = if longest { ends.last() } else { ends.first() };
                v[cut.copied().unwrap_or(0)..].iter().collect()
            } else {
                tokens.reverse();
                let rev: Vec<char> = v.iter().rev().copied().collect();
                let ends = matching_prefixes(&tokens, &rev);
                let cut = if longest { ends.last() } else { ends.first() };
                v[..v.len() - cut.copied().unwrap_or(0)].iter().collect()
            }
        }
        // `${A/p/r}`/`${A//p/r}`: the first/every longest match of the
        // shell pattern `p` replaced by `r`. As in BuildKit (and unlike a
        // shell), the second `/` is required: `${A/p/}` deletes.
        _ if op.starts_with('/') => {
            let all = op[1..].starts_with('/');
            let rest: Vec<char> = op[if all { 2 } else { 1 }..].chars().collect();
            let Some(slash) = pattern_end(&rest) else {
                return Err(format!(
                    "${{{inner}}}: missing the '/' before the replacement (write ${{{name}/pattern/}} to delete)"
                ));
            };
            let pat = word(&rest[..slash].iter().collect::<String>())?;
            let replacement = word(&rest[slash + 1..].iter().collect::<String>())?;
            let v: Vec<char> = val.cloned().unwrap_or_default().chars().collect();
            replace_matches(&v, &pattern_tokens(&pat), &replacement, all)
                .ok_or_else(|| format!("${{{name}/…}}: value or pattern too long to match"))?
        }
        _ => return Err(format!("unsupported substitution: ${{{inner}}}")),
    })
}

/// Most pattern × value steps one `${A#p}`/`${A%p}`/`${A/p/r}` may take.
const PATTERN_WORK_MAX: usize = 1 << 24;

/// Where the pattern of `${A/pattern/replacement}` ends in `s` (the text
/// after `${A/`): the first `/` that is not escaped and not inside a nested
/// `${…}`, so a `/` in a variable's default or value does not split it.
fn pattern_end(s: &[char]) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            '\\' => i += 1,
            '$' if s.get(i + 1) == Some(&'{') => {
                depth += 1;
                i += 1;
            }
            '}' if depth > 0 => depth -= 1,
            '/' if depth == 0 => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// `v` with the first (or, `all`, every) leftmost-longest non-empty match of
/// `pattern` replaced; `None` when matching would pass [`PATTERN_WORK_MAX`].
/// Empty matches are not replaced, so a pattern of only `*` leaves an empty
/// value empty.
fn replace_matches(v: &[char], pattern: &[Token], replacement: &str, all: bool) -> Option<String> {
    let mut out = String::new();
    let mut from = 0;
    let mut work = 0usize;
    while from < v.len() {
        let Some((start, end)) = leftmost_longest(pattern, v, from, &mut work)? else {
            break;
        };
        out.extend(&v[from..start]);
        out.push_str(replacement);
        from = end;
        if !all {
            break;
        }
    }
    out.extend(&v[from..]);
    Some(out)
}

/// The leftmost non-empty match of `pattern` in `s[from..]`, and the longest
/// at that start, as `(start, end)`. One pass over `s` that keeps, for each
/// pattern position, the smallest start from which the tokens so far match
/// up to here; it stops once no state can still give that start. `work`
/// counts the steps; `None` when it passes [`PATTERN_WORK_MAX`].
fn leftmost_longest(
    pattern: &[Token],
    s: &[char],
    from: usize,
    work: &mut usize,
) -> Option<Option<(usize, usize)>> {
    // col[t]: the smallest start with pattern[..t] matching s[start..j].
    let mut col: Vec<Option<usize>> = vec![None; pattern.len() + 1];
    let mut next = col.clone();
    let mut best: Option<(usize, usize)> = None;
    for j in from..=s.len() {
        *work = work.saturating_add(pattern.len() + 1);
        if *work > PATTERN_WORK_MAX {
            return None;
        }
        // A match may start here unless a better start is already found.
        next[0] = best.is_none().then_some(j);
        for (t, token) in pattern.iter().enumerate() {
            let stepped = match token {
                Token::Star => next[t],
                Token::Any => (j > from).then(|| col[t]).flatten(),
                Token::Char(c) => (j > from && s[j - 1] == *c).then(|| col[t]).flatten(),
            };
            // A star also extends its own match by the character just read.
            let extended = match token {
                Token::Star if j > from => col[t + 1],
                _ => None,
            };
            next[t + 1] = match (stepped, extended) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        std::mem::swap(&mut col, &mut next);
        if let Some(start) = col[pattern.len()].filter(|&st| st < j) {
            match best {
                Some((b, _)) if b < start => {}
                _ => best = Some((start, j)),
            }
        }
        // Nothing alive can reach the best start again: it is final.
        if let Some((b, _)) = best
            && col.iter().all(|c| c.is_none_or(|st| st > b))
        {
            break;
        }
    }
    Some(best)
}

/// One element of a shell pattern: `*`, `?` or a character (`\\x` is `x`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Star,
    Any,
    Char(char),
}

fn pattern_tokens(p: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut it = p.chars();
    while let Some(c) = it.next() {
        out.push(match c {
            '*' => Token::Star,
            '?' => Token::Any,
            '\\' => Token::Char(it.next().unwrap_or('\\')),
            c => Token::Char(c),
        });
    }
    out
}

/// The lengths of the prefixes of `s` that `pattern` matches, ascending;
/// one pass over `s` per token (no backtracking, so no blow-up).
fn matching_prefixes(pattern: &[Token], s: &[char]) -> Vec<usize> {
    // row[j]: the tokens so far match s[..j].
    let mut row: Vec<bool> = (0..=s.len()).map(|j| j == 0).collect();
    for t in pattern {
        let mut next = vec![false; s.len() + 1];
        for j in 0..=s.len() {
            next[j] = match t {
                Token::Star => row[j] || (j > 0 && next[j - 1]),
                Token::Any => j > 0 && row[j - 1],
                Token::Char(c) => j > 0 && row[j - 1] && s[j - 1] == *c,
            };
        }
        row = next;
    }
    (0..=s.len()).filter(|&j| row[j]).collect()
}

/// Splits on unquoted whitespace, removing quotes and backslash escapes.
pub fn split_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut has = false;
    let mut quote: Option<char> = None;
    let mut it = s.chars().peekable();
    while let Some(ch) = it.next() {
        match (quote, ch) {
            (None, c) if c.is_whitespace() => {
                if has {
                    words.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            (None, '"' | '\'') => {
                quote = Some(ch);
                has = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => cur.push(c),
            (_, '\\') => {
                if let Some(n) = it.next() {
                    cur.push(n);
                }
                has = true;
            }
            (_, c) => {
                cur.push(c);
                has = true;
            }
        }
    }
    if has {
        words.push(cur);
    }
    words
}

/// Parses `ENV`/`LABEL`-style `K=V K2="v 2"` pairs, or the legacy `K V...`
/// form when the first word has no `=` (as BuildKit reads it, `LABEL k = v`
/// is that form too: key `k`, value `= v`).
pub fn parse_pairs(s: &str) -> Result<Vec<(String, String)>, String> {
    let first = s.split_whitespace().next().unwrap_or("");
    if !first.contains('=') {
        let rest = s[s.find(first).unwrap_or(0) + first.len()..].trim();
        if first.is_empty() {
            return Err("missing name".into());
        }
        let value = split_words(rest).join(" ");
        return Ok(vec![(first.to_string(), value)]);
    }
    let mut out = Vec::new();
    for w in split_words(s) {
        match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => out.push((k.to_string(), v.to_string())),
            _ => return Err(format!("expected KEY=VALUE, found {w:?}")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        [("A", "1"), ("E", "")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn expansion_forms() {
        let v = vars();
        assert_eq!(expand("$A-${A}x", &v).unwrap(), "1-1x");
        assert_eq!(expand("${E:-d} ${E-d} ${N-d}", &v).unwrap(), "d  d");
        assert_eq!(expand("${A:+y}${N:+y}", &v).unwrap(), "y");
        assert_eq!(expand("\\$A '$A'", &v).unwrap(), "$A '$A'");
        assert!(expand("${A", &v).is_err());
        assert_eq!(
            expand_heredoc("don't $A '$A'\n", &v).unwrap(),
            "don't 1 '1'\n"
        );
    }

    #[test]
    fn nested_defaults_and_edge_cases() {
        let v = vars();
        assert_eq!(expand("${N:-${E:-c}}", &v).unwrap(), "c");
        assert_eq!(
            expand("${N:-${A}docker.io/x:3}", &v).unwrap(),
            "1docker.io/x:3"
        );
        assert_eq!(
            expand("\"${N:-${M:-${A:+a${A}b}}}\"-$A", &v).unwrap(),
            "\"a1b\"-1"
        );
        assert_eq!(expand("${A:-${N}}", &v).unwrap(), "1");
        assert_eq!(
            expand("[${E:-}][${N:-}][${E:+x}][${A:+}][${E+x}]", &v).unwrap(),
            "[][][][][x]"
        );
        assert_eq!(expand("${N:-a\\}b}", &v).unwrap(), "a\\}b");
        assert!(expand("${N:-${E}", &v).is_err());
        let deep = format!("{}x{}", "${N:-".repeat(100_000), "}".repeat(100_000));
        assert!(expand(&deep, &v).unwrap_err().contains("nested more than"));
        assert_eq!(expand("${A:?need A}${E?x}", &v).unwrap(), "1");
        assert_eq!(expand("${N:?need N}", &v).unwrap_err(), "N: need N");
        assert_eq!(expand("${E:?}", &v).unwrap_err(), "E: is not set");
    }

    #[test]
    fn prefix_and_suffix_removal() {
        let v: BTreeMap<String, String> = [("P", "a/b/c.tar.gz"), ("S", "*x")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(
            expand("${P#*/}|${P##*/}", &v).unwrap(),
            "b/c.tar.gz|c.tar.gz"
        );
        assert_eq!(expand("${P%.*}|${P%%.*}", &v).unwrap(), "a/b/c.tar|a/b/c");
        assert_eq!(
            expand("${P#x}|${P%?x}|${P%?z}|${N#a}", &v).unwrap(),
            "a/b/c.tar.gz|a/b/c.tar.gz|a/b/c.tar.|"
        );
        assert_eq!(expand("${P%.t?r.gz}|${S#\\*}", &v).unwrap(), "a/b/c|x");
        let big: BTreeMap<String, String> = [("B".to_string(), "x".repeat(1 << 20))].into();
        let pat = "*".repeat(64);
        assert!(
            expand(&format!("${{B#{pat}}}"), &big)
                .unwrap_err()
                .contains("too long")
        );
    }

    #[test]
    fn pattern_replacement() {
        let v: BTreeMap<String, String> = [
            ("V", "1.22.3"),
            ("P", "a/b/c.tar.gz"),
            ("U", "https://x/foo-arm64.tar.gz"),
            ("PAT", "*/"),
            ("REPL", ".../"),
            ("E", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        // First match, every match, deletion with an empty replacement.
        assert_eq!(
            expand("${V/./_}|${V//./_}|${V//./}", &v).unwrap(),
            "1_22.3|1_22_3|1223"
        );
        assert_eq!(
            expand("${U//arm64/aarch64}", &v).unwrap(),
            "https://x/foo-aarch64.tar.gz"
        );
        // Leftmost, then longest: `*` takes as much as it can.
        assert_eq!(
            expand("${P/*\\//x}|${P/b*/x}|${P/?/-}", &v).unwrap(),
            "xc.tar.gz|a/x|-/b/c.tar.gz"
        );
        assert_eq!(
            expand("${V//2?/x}|${V/2*2/x}|${V//*/x}", &v).unwrap(),
            "1.x.3|1.x.3|x"
        );
        // A pattern or replacement from variables: their `/` do not split,
        // their `*` is a wildcard.
        assert_eq!(expand("${P/$PAT/$REPL}", &v).unwrap(), ".../c.tar.gz");
        assert_eq!(expand("${P/${N:-a/b}/x}", &v).unwrap(), "x/c.tar.gz");
        // No match, an unset or empty value, a pattern that matches only
        // the empty string: unchanged.
        assert_eq!(
            expand("${V/9/x}|${N/a/b}|${E//*/x}", &v).unwrap(),
            "1.22.3||"
        );
        // BuildKit requires the second `/`.
        assert!(expand("${V/./}", &v).is_ok());
        assert!(
            expand("${V//}", &v)
                .unwrap_err()
                .contains("missing the '/'")
        );
        assert!(
            expand("${V/.}", &v)
                .unwrap_err()
                .contains("missing the '/' before the replacement")
        );
        // Bounded work on a long value with many matches.
        let big: BTreeMap<String, String> = [("B".to_string(), "x".repeat(1 << 20))].into();
        assert_eq!(expand("${B//x*x?x/y}", &big).unwrap(), "y");
        let pat = format!("{}z", "x".repeat(20));
        assert!(
            expand(&format!("${{B//{pat}/y}}"), &big)
                .unwrap_err()
                .contains("too long")
        );
        let dots: BTreeMap<String, String> = [("D".to_string(), ".a".repeat(5000))].into();
        assert_eq!(expand("${D//./}", &dots).unwrap(), "a".repeat(5000));
    }

    #[test]
    fn words_and_pairs() {
        assert_eq!(split_words(r#"a "b c" 'd e'\ f"#), ["a", "b c", "d e f"]);
        assert_eq!(
            parse_pairs(r#"A=1 B="two words""#).unwrap(),
            [("A".into(), "1".into()), ("B".into(), "two words".into())]
        );
        assert_eq!(
            parse_pairs("NAME some value").unwrap(),
            [("NAME".into(), "some value".into())]
        );
        assert_eq!(
            parse_pairs(r#"key = "v w""#).unwrap(),
            [("key".into(), "= v w".into())]
        );
    }
}
