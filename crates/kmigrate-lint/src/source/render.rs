//! Rendering new YAML/JSON text that matches a file's own style: scalars in
//! the quoting the file uses, sequences in block, flow or JSON layout.

use super::Syntax;
use super::scalar::ScalarStyle;
use super::tree::{Item, Node, Seq, Value};

/// How scalars should be quoted when the file shows a preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quote {
    /// Plain where YAML allows it, single quotes otherwise.
    Plain,
    Single,
    Double,
    /// JSON strings.
    Json,
}

impl Quote {
    /// The quoting most items of `seq` use (plain when none are quoted).
    pub fn of_seq(seq: &Seq, syntax: Syntax) -> Quote {
        Quote::of_items(&seq.items, syntax)
    }

    /// The quoting most of `items` use (plain when none are quoted).
    pub fn of_items(items: &[Item], syntax: Syntax) -> Quote {
        if syntax == Syntax::Json {
            return Quote::Json;
        }
        let (mut single, mut double, mut plain) = (0, 0, 0);
        for item in items {
            if let Value::Scalar(s) = &item.node.value {
                match s.style {
                    ScalarStyle::SingleQuoted => single += 1,
                    ScalarStyle::DoubleQuoted => double += 1,
                    _ => plain += 1,
                }
            }
        }
        if single > plain && single >= double {
            Quote::Single
        } else if double > plain && double > single {
            Quote::Double
        } else {
            Quote::Plain
        }
    }

    /// The quoting of one scalar node, used to re-write it in kind.
    pub fn of_node(node: &Node, syntax: Syntax) -> Quote {
        if syntax == Syntax::Json {
            return Quote::Json;
        }
        match &node.value {
            Value::Scalar(s) => match s.style {
                ScalarStyle::SingleQuoted => Quote::Single,
                ScalarStyle::DoubleQuoted => Quote::Double,
                _ => Quote::Plain,
            },
            _ => Quote::Plain,
        }
    }
}

/// Whether `s` can be written as a plain scalar (in flow context when
/// `flow`) and read back as the same string.
pub fn plain_safe(s: &str, flow: bool) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if s.trim() != s || s.contains(['\n', '\r', '\t']) || s.chars().any(char::is_control) {
        return false;
    }
    let second = s.chars().nth(1);
    if "?:-".contains(first) {
        if second.is_none_or(|c| c == ' ' || (flow && ",[]{}".contains(c))) {
            return false;
        }
    } else if ",[]{}#&*!|>'\"%@`".contains(first) {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.ends_with(':') {
        return false;
    }
    if flow && s.contains([',', '[', ']', '{', '}']) {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "~" | "null"
            | "true"
            | "false"
            | "yes"
            | "no"
            | "on"
            | "off"
            | "y"
            | "n"
            | ".inf"
            | "-.inf"
            | ".nan"
    ) {
        return false;
    }
    // Anything that starts like a number might be read as one.
    let digits = s.trim_start_matches(['-', '+']);
    !digits.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        || !digits.chars().any(|c| c.is_ascii_digit())
        || !digits
            .chars()
            .all(|c| c.is_ascii_hexdigit() || "._xXoOeE+-:".contains(c))
}

/// Renders `s` as a scalar with the preferred quoting, falling back to a
/// quoting that can hold it.
pub fn scalar(s: &str, quote: Quote, flow: bool) -> String {
    match quote {
        Quote::Json => serde_json::to_string(s).expect("strings serialise"),
        Quote::Plain if plain_safe(s, flow) => s.to_string(),
        Quote::Plain | Quote::Single if !s.contains(['\n', '\r', '\t']) => {
            format!("'{}'", s.replace('\'', "''"))
        }
        _ => double_quoted(s),
    }
}

/// Renders `s` quoted even when plain would do (values with commas, which a
/// reader could mistake for several flow items).
pub fn quoted(s: &str, quote: Quote) -> String {
    match quote {
        Quote::Plain => scalar(s, Quote::Single, true),
        q => scalar(s, q, true),
    }
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// How a sequence is laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeqLayout {
    /// `- item` lines at this column.
    Block { column: usize },
    /// `[a, b]` on one line.
    FlowInline,
    /// `[` then one item per line at `column`, `]` at `close_column`.
    FlowLines { column: usize, close_column: usize },
}

/// Renders already-formatted items (see [`scalar`]) in `layout`. Block
/// output starts with a newline, so it can follow `key:` directly.
pub fn sequence(items: &[String], layout: &SeqLayout, nl: &str) -> String {
    match layout {
        SeqLayout::Block { column } => items
            .iter()
            .map(|i| format!("{nl}{}- {i}", " ".repeat(*column)))
            .collect(),
        SeqLayout::FlowInline => format!("[{}]", items.join(", ")),
        SeqLayout::FlowLines {
            column,
            close_column,
        } => {
            let pad = " ".repeat(*column);
            let body: Vec<String> = items.iter().map(|i| format!("{pad}{i}")).collect();
            format!(
                "[{nl}{}{nl}{}]",
                body.join(&format!(",{nl}")),
                " ".repeat(*close_column)
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_safety_follows_yaml() {
        for ok in [
            "--push",
            "buildx",
            "gcr.io/p/a:${SHORT_SHA}",
            "type=registry,ref=x",
            "-t",
            "a:b",
            "v1.2",
            "1.2.3-rc",
        ] {
            assert!(plain_safe(ok, false), "{ok}");
        }
        for bad in [
            "", "- x", "#x", "a: b", "a #b", "true", "No", "123", "1.5", "'q", "*a", "x:", " a",
            "0x1f", "-", "@x",
        ] {
            assert!(!plain_safe(bad, false), "{bad}");
        }
        assert!(!plain_safe("type=registry,ref=x", true));
        assert!(!plain_safe("${X}", true));
        assert!(plain_safe("${X}", false));
    }

    #[test]
    fn every_rendering_reads_back_as_the_same_string() {
        let samples = [
            "--push",
            "it's",
            "a \"b\"",
            "true",
            "x,y",
            "${A}",
            "- dash",
            "tab\there",
            "#",
            "",
        ];
        for s in samples {
            for q in [Quote::Plain, Quote::Single, Quote::Double] {
                for flow in [false, true] {
                    let r = scalar(s, q, flow);
                    let doc = if flow {
                        format!("[{r}]")
                    } else {
                        format!("- {r}")
                    };
                    let back: Vec<String> = yaml_serde::from_str(&doc).unwrap();
                    assert_eq!(back, [s], "{q:?} flow={flow}: {doc}");
                }
            }
            let json = scalar(s, Quote::Json, true);
            assert_eq!(serde_json::from_str::<String>(&json).unwrap(), s);
        }
    }

    #[test]
    fn sequences_in_each_layout() {
        let items = vec!["a".to_string(), "b".to_string()];
        assert_eq!(
            sequence(&items, &SeqLayout::Block { column: 4 }, "\n"),
            "\n    - a\n    - b"
        );
        assert_eq!(sequence(&items, &SeqLayout::FlowInline, "\n"), "[a, b]");
        assert_eq!(
            sequence(
                &items,
                &SeqLayout::FlowLines {
                    column: 8,
                    close_column: 6
                },
                "\r\n"
            ),
            "[\r\n        a,\r\n        b\r\n      ]"
        );
    }
}
