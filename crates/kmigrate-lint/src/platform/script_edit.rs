//! Replacing one shell command inside a YAML scalar, written back in the
//! scalar's own style (literal block, quoted, plain).

use std::ops::Range;

use crate::source::patch::Edit;
use crate::source::scalar::ScalarStyle;
use crate::source::{Node, SourceFile, Value};

/// An edit that replaces the decoded range `command` of `node`'s script with
/// `words` (shell text, one word each). `None` when the scalar's style
/// cannot hold the new text without changing its meaning.
pub fn replace_command(
    source: &SourceFile,
    node: &Node,
    command: Range<usize>,
    words: &[String],
) -> Option<Edit> {
    let Value::Scalar(scalar) = &node.value else {
        return None;
    };
    let range = scalar.source_range(&node.span, command.clone());
    let original = &scalar.text[command];
    let nl = source.line_ending.as_str();
    let text = match scalar.style {
        ScalarStyle::Literal(_) => {
            let one_line = words.join(" ");
            if !original.contains('\n') && one_line.len() <= 100 {
                one_line
            } else {
                continuation_lines(words, &" ".repeat(scalar.block_indent + 2), nl)
            }
        }
        ScalarStyle::DoubleQuoted if !original.contains('\n') => {
            let mut out = String::new();
            for c in words.join(" ").chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    c => out.push(c),
                }
            }
            out
        }
        ScalarStyle::SingleQuoted if !original.contains('\n') => {
            words.join(" ").replace('\'', "''")
        }
        ScalarStyle::Plain if !original.contains('\n') => {
            let text = words.join(" ");
            let line = &source.text[range.clone()];
            if text.contains(": ") || text.contains(" #") || line.contains('\n') {
                return None;
            }
            text
        }
        _ => return None,
    };
    Some(Edit::replace(range, text))
}

/// A command written readably over several lines: the command words
/// (`docker buildx build`) on the first, then one flag (with its value) per
/// `\` continuation line, each starting with `pad`.
pub fn continuation_lines(words: &[String], pad: &str, nl: &str) -> String {
    let lead = words
        .iter()
        .take_while(|w| !w.starts_with('-'))
        .count()
        .min(words.len().saturating_sub(1))
        .max(1);
    let mut out = words[..lead].join(" ");
    let mut i = lead;
    while i < words.len() {
        out.push_str(&format!(" \\{nl}{pad}"));
        out.push_str(&words[i]);
        // A flag and its value share a line.
        if words[i].starts_with("--")
            && !words[i].contains('=')
            && words.get(i + 1).is_some_and(|w| !w.starts_with('-'))
            && i + 2 < words.len()
        {
            out.push(' ');
            out.push_str(&words[i + 1]);
            i += 1;
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::patch::apply;
    use std::path::Path;

    fn edit(src: &str, find: &str, words: &[&str]) -> Option<String> {
        let s = SourceFile::from_text(Path::new("t.yaml"), src.into()).unwrap();
        let node = s.root().unwrap().get("script").unwrap();
        let text = node.as_str().unwrap();
        let start = text.find(find).unwrap();
        let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        let e = replace_command(&s, node, start..start + find.len(), &words)?;
        Some(apply(&s.text, &[e]).unwrap())
    }

    #[test]
    fn literal_blocks_get_continuation_lines() {
        let src = "script: |\n  echo hi\n  /kaniko/executor \\\n    --context .\n  echo bye\n";
        let out = edit(
            src,
            "/kaniko/executor \\\n  --context .",
            &["docker", "buildx", "build", "--tag", "x", "--push", "."],
        )
        .unwrap();
        assert_eq!(
            out,
            "script: |\n  echo hi\n  docker buildx build \\\n    --tag x \\\n    --push \\\n    .\n  echo bye\n"
        );
    }

    #[test]
    fn quoted_scalars_are_escaped_in_kind() {
        let out = edit(
            "script: \"a && /kaniko/executor -c .\"\n",
            "/kaniko/executor -c .",
            &["say", "\"x\""],
        )
        .unwrap();
        assert_eq!(out, "script: \"a && say \\\"x\\\"\"\n");
        let out = edit(
            "script: 'a; /kaniko/executor -c .'\n",
            "/kaniko/executor -c .",
            &["it's"],
        )
        .unwrap();
        assert_eq!(out, "script: 'a; it''s'\n");
        assert!(
            edit(
                "script: a; /kaniko/executor\n",
                "/kaniko/executor",
                &["x: y"]
            )
            .is_none()
        );
    }
}
