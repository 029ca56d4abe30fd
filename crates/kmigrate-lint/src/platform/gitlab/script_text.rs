//! Writing new shell text into a script line's YAML scalar, in the
//! scalar's own style: literal and folded blocks, plain (also multi-line)
//! and quoted scalars.

use std::ops::Range;

use super::job::ScriptLine;
use super::yaml_edit::column;
use crate::source::SourceFile;
use crate::source::patch::Edit;
use crate::source::render::plain_safe;
use crate::source::scalar::ScalarStyle;

/// Longest call written on one line before flags go one per line.
const ONE_LINE_MAX: usize = 100;

/// Replaces `range` of the line's text with the command `words`. `None`
/// when the scalar's style cannot hold the new text with the same meaning
/// (a plain scalar that would gain `: ` or ` #`).
pub fn replace_command(
    file: &SourceFile,
    line: &ScriptLine,
    range: Range<usize>,
    words: &[String],
) -> Option<Edit> {
    replace_commands(file, line, range, std::slice::from_ref(&words.to_vec()))
}

/// [`replace_command`] with several commands joined by `&&` (a target that
/// builds and pushes in separate commands); across lines, each command
/// starts a line of its own.
pub fn replace_commands(
    file: &SourceFile,
    line: &ScriptLine,
    range: Range<usize>,
    commands: &[Vec<String>],
) -> Option<Edit> {
    let scalar = line.scalar();
    let src_range = line.source_range(range.clone());
    let original = &file.text[src_range.clone()];
    let multi_line_source = original.contains('\n');
    let one_line = commands
        .iter()
        .map(|w| w.join(" "))
        .collect::<Vec<_>>()
        .join(" && ");
    let joined = |sep: &str| {
        commands
            .iter()
            .map(|w| join_flags(w, sep))
            .collect::<Vec<_>>()
            .join(&format!("{sep}&& "))
    };
    let nl = file.line_ending.as_str();
    let text = match scalar.style {
        ScalarStyle::Literal(_) => {
            if !multi_line_source && one_line.len() <= ONE_LINE_MAX {
                one_line
            } else {
                // Continuation lines one step past the command itself.
                let pad =
                    " ".repeat(column(&file.text, src_range.start).max(scalar.block_indent) + 2);
                joined(&format!(" \\{nl}{pad}"))
            }
        }
        ScalarStyle::Folded(_) => {
            // Folded lines at the block's own indentation join with spaces.
            if !multi_line_source && one_line.len() <= ONE_LINE_MAX {
                one_line
            } else {
                let pad = " ".repeat(scalar.block_indent);
                joined(&format!("{nl}{pad}"))
            }
        }
        ScalarStyle::Plain => {
            let mut new_text = line.text.clone();
            new_text.replace_range(range.clone(), &one_line);
            let in_flow = super::yaml_edit::seq_of(file, &line.origin.span)
                .is_some_and(|(s, _)| s.as_seq().is_some_and(|q| q.flow));
            if !plain_safe(&new_text, in_flow) {
                // The new text needs quoting (`: `, ` #`, commas in a flow
                // list): write the whole line as one double-quoted scalar.
                let quoted = format!(
                    "\"{}\"",
                    new_text.replace('\\', "\\\\").replace('"', "\\\"")
                );
                return Some(Edit::replace(line.origin.span.clone(), quoted));
            }
            if multi_line_source {
                // Continuation lines of a plain scalar fold into spaces; keep
                // them at the indentation the original used.
                let second = src_range.start + original.find('\n')? + 1;
                let indent = file.text[second..]
                    .bytes()
                    .take_while(|b| *b == b' ')
                    .count()
                    .max(column(&file.text, line.origin.span.start));
                joined(&format!("{nl}{}", " ".repeat(indent)))
            } else {
                one_line
            }
        }
        ScalarStyle::DoubleQuoted => {
            if multi_line_source {
                return None;
            }
            one_line.replace('\\', "\\\\").replace('"', "\\\"")
        }
        ScalarStyle::SingleQuoted => {
            if multi_line_source {
                return None;
            }
            one_line.replace('\'', "''")
        }
    };
    Some(Edit::replace(src_range, text))
}

/// Replaces `range` of the line's text (on one source line) with `text`,
/// escaped for the scalar's style.
pub fn replace_text(
    file: &SourceFile,
    line: &ScriptLine,
    range: Range<usize>,
    text: &str,
) -> Option<Edit> {
    let src_range = line.source_range(range.clone());
    if file.text[src_range.clone()] != line.text[range] {
        return None;
    }
    let text = match line.scalar().style {
        ScalarStyle::DoubleQuoted => text.replace('\\', "\\\\").replace('"', "\\\""),
        ScalarStyle::SingleQuoted => text.replace('\'', "''"),
        _ => text.to_string(),
    };
    Some(Edit::replace(src_range, text))
}

/// Joins words with `sep` between flags, keeping a flag and its value (and
/// the leading program words) on one line.
fn join_flags(words: &[String], sep: &str) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut i = 0;
    // Program words up to the first flag share the first line.
    let mut first = Vec::new();
    while i < words.len() && !words[i].starts_with('-') {
        first.push(words[i].clone());
        i += 1;
    }
    if !first.is_empty() {
        lines.push(first.join(" "));
    }
    while i < words.len() {
        let mut l = words[i].clone();
        if words[i].starts_with("--")
            && !words[i].contains('=')
            && words.get(i + 1).is_some_and(|w| !w.starts_with('-'))
            // `docker buildx build` and `buildah build` end with their
            // context, a word of its own.
            && (i + 2 < words.len() || !matches!(words[0].as_str(), "docker" | "buildah"))
        {
            l.push(' ');
            l.push_str(&words[i + 1]);
            i += 1;
        }
        lines.push(l);
        i += 1;
    }
    lines.join(sep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::gitlab::Pipeline;
    use crate::source::patch::apply;
    use std::path::Path;

    fn rewrite(src: &str) -> String {
        let p = Pipeline::from_text(
            Path::new("/nonexistent"),
            Path::new(".gitlab-ci.yml"),
            src.into(),
        )
        .unwrap();
        let f = &p.files[0];
        let line = &p.jobs[0].script[0];
        let start = line.text.find("/kaniko/executor").unwrap();
        let end = line.text.find(" &&").unwrap_or(line.text.len());
        let words: Vec<String> = [
            "docker", "buildx", "build", "--tag", "\"$IMG\"", "--push", ".",
        ]
        .map(String::from)
        .to_vec();
        let e = replace_command(f, line, start..end, &words).unwrap();
        apply(&f.text, &[e]).unwrap()
    }

    #[test]
    fn text_a_plain_scalar_cannot_hold_is_requoted() {
        let src = "j:\n  script: [/kaniko/executor -d x, make]\n";
        let p = Pipeline::from_text(
            Path::new("/nonexistent"),
            Path::new(".gitlab-ci.yml"),
            src.into(),
        )
        .unwrap();
        let line = &p.jobs[0].script[0];
        let words: Vec<String> = [
            "docker",
            "buildx",
            "build",
            "--cache-to",
            "type=registry,ref=r",
            ".",
        ]
        .map(String::from)
        .to_vec();
        let e = replace_command(&p.files[0], line, 0..line.text.len(), &words).unwrap();
        assert_eq!(
            apply(src, &[e]).unwrap(),
            "j:\n  script: [\"docker buildx build --cache-to type=registry,ref=r .\", make]\n"
        );
    }

    #[test]
    fn folded_blocks_keep_one_flag_per_line() {
        let out =
            rewrite("j:\n  script:\n    - >-\n      /kaniko/executor\n      --destination $IMG\n");
        assert_eq!(
            out,
            "j:\n  script:\n    - >-\n      docker buildx build\n      --tag \"$IMG\"\n      --push\n      .\n"
        );
    }

    #[test]
    fn literal_and_plain_and_quoted() {
        assert_eq!(
            rewrite(
                "j:\n  script:\n    - |\n      /kaniko/executor --destination $IMG && echo ok\n"
            ),
            "j:\n  script:\n    - |\n      docker buildx build --tag \"$IMG\" --push . && echo ok\n"
        );
        assert_eq!(
            rewrite("j:\n  script:\n    - /kaniko/executor\n      --destination $IMG\n"),
            "j:\n  script:\n    - docker buildx build\n      --tag \"$IMG\"\n      --push\n      .\n"
        );
        assert_eq!(
            rewrite("j:\n  script:\n    - \"/kaniko/executor --destination $IMG\"\n"),
            "j:\n  script:\n    - \"docker buildx build --tag \\\"$IMG\\\" --push .\"\n"
        );
        assert_eq!(
            rewrite("j:\n  script: [/kaniko/executor -d x, make]\n"),
            "j:\n  script: [docker buildx build --tag \"$IMG\" --push ., make]\n"
        );
        assert_eq!(
            rewrite("j:\n  script: ['/kaniko/executor -d x']\n"),
            "j:\n  script: ['docker buildx build --tag \"$IMG\" --push .']\n"
        );
    }
}
