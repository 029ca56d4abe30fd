//! `kmigrate rules`, `kmigrate explain ID` and `kmigrate config --show`:
//! the rules and the configuration as documentation.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::config::Loaded;
use crate::rules::meta;

/// `kmigrate explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Rule id, e.g. KM002 (case-insensitive).
    pub rule: String,
}

/// `kmigrate config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Print the effective configuration (file values over the defaults).
    #[arg(long, required = true)]
    pub show: bool,
    /// Configuration file to read instead of searching upward.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Where to start the upward search for kmigrate.toml / .kmigrate.toml.
    #[arg(default_value = ".")]
    pub path: PathBuf,
}

/// Whether stdout gets ANSI styling: a terminal, and `NO_COLOR` unset.
pub fn stdout_color() -> bool {
    color_for(std::io::stdout().is_terminal())
}

/// Colour for a stream that is (or is not) a terminal, honouring `NO_COLOR`
/// (any non-empty value) and `CLICOLOR_FORCE`/`FORCE_COLOR`.
pub fn color_for(is_terminal: bool) -> bool {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    if set("NO_COLOR") {
        return false;
    }
    if set("CLICOLOR_FORCE") || set("FORCE_COLOR") {
        return true;
    }
    is_terminal
}

/// The table `kmigrate rules` prints.
pub fn rules_table() -> String {
    let mut out = String::from("ID     SEVERITY  FIXABLE  SUMMARY\n");
    for r in meta::all() {
        let _ = writeln!(
            out,
            "{:<6} {:<9} {:<8} {}",
            r.id,
            r.severity.to_string(),
            if r.fixable { "yes" } else { "no" },
            r.summary
        );
    }
    out.push_str("\n`kmigrate explain ID` shows a rule's page.\n");
    out
}

pub fn rules() -> ExitCode {
    print!("{}", rules_table());
    ExitCode::SUCCESS
}

pub fn explain(args: ExplainArgs) -> ExitCode {
    match args.rule.parse::<crate::rules::Rule>().map(|r| r.meta()) {
        Ok(rule) => {
            let mut page = render_markdown(rule.doc, stdout_color());
            let _ = write!(
                page,
                "\nSeverity: {}. Fixable by `kmigrate rewrite`: {}.\nOnline: {}\n",
                rule.severity,
                if rule.fixable { "yes" } else { "no" },
                rule.help_url()
            );
            print!("{page}");
            ExitCode::SUCCESS
        }
        Err(_) => {
            let ids: Vec<&str> = meta::all().iter().map(|r| r.id).collect();
            eprintln!(
                "kmigrate: no rule `{}`; rules are {}",
                crate::report::terminal::escape_inline(&args.rule),
                ids.join(", ")
            );
            ExitCode::from(2)
        }
    }
}

pub fn config(args: ConfigArgs) -> ExitCode {
    debug_assert!(args.show);
    let loaded = match &args.config {
        Some(path) => Loaded::from_file(path),
        None => Loaded::discover(&args.path),
    };
    match loaded {
        Ok(loaded) => {
            print!("{}", show(&loaded));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "kmigrate: {}",
                crate::report::terminal::escape(&e.to_string())
            );
            ExitCode::from(2)
        }
    }
}

/// The effective configuration as TOML, headed by where it came from.
pub fn show(loaded: &Loaded) -> String {
    let origin = match &loaded.path {
        Some(p) => format!(
            "# from {}",
            crate::report::terminal::escape_inline(&p.display().to_string())
        ),
        None => "# no kmigrate.toml found: built-in defaults".to_string(),
    };
    // The values come from a file that may be the repository's.
    let toml = loaded.effective().to_toml();
    format!("{origin}\n{}", crate::report::terminal::escape(&toml))
}

/// Markdown for a terminal: headings underlined (bold in colour), fenced
/// code indented (dimmed), inline code kept in backticks or coloured.
pub fn render_markdown(md: &str, color: bool) -> String {
    const BOLD: &str = "\u{1b}[1m";
    const CYAN: &str = "\u{1b}[36m";
    const RESET: &str = "\u{1b}[0m";
    let mut out = String::new();
    let mut in_code = false;
    for line in md.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            if color {
                let _ = writeln!(out, "    {CYAN}{line}{RESET}");
            } else {
                let _ = writeln!(out, "    {line}");
            }
            continue;
        }
        let heading = line
            .strip_prefix("# ")
            .map(|h| (h, '═'))
            .or_else(|| line.strip_prefix("## ").map(|h| (h, '─')))
            .or_else(|| line.strip_prefix("### ").map(|h| (h, ' ')));
        if let Some((h, rule)) = heading {
            if color {
                let _ = writeln!(out, "{BOLD}{h}{RESET}");
            } else {
                let _ = writeln!(out, "{h}");
                if rule != ' ' {
                    let _ = writeln!(out, "{}", rule.to_string().repeat(h.chars().count()));
                }
            }
            continue;
        }
        if color {
            // Alternate backtick-delimited segments.
            let mut styled = String::new();
            for (i, part) in line.split('`').enumerate() {
                if i % 2 == 1 {
                    let _ = write!(styled, "{CYAN}{part}{RESET}");
                } else {
                    styled.push_str(part);
                }
            }
            let _ = writeln!(out, "{styled}");
        } else {
            let _ = writeln!(out, "{line}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_lists_every_rule() {
        let t = rules_table();
        for r in meta::all() {
            let line = t.lines().find(|l| l.starts_with(r.id)).unwrap();
            assert!(line.contains(r.summary), "{line}");
            assert!(line.contains(&r.severity.to_string()), "{line}");
        }
        assert!(t.lines().any(|l| l.starts_with("KM001  error     yes")));
        assert!(t.lines().any(|l| l.starts_with("KM020  info      no")));
    }

    #[test]
    fn markdown_plain_and_coloured() {
        let md = "# KM9: t\n\n## What\nUse `x`.\n```yaml\na: 1\n```\n";
        let plain = render_markdown(md, false);
        assert_eq!(plain, "KM9: t\n══════\n\nWhat\n────\nUse `x`.\n    a: 1\n");
        let col = render_markdown(md, true);
        assert!(col.contains("\u{1b}[1mWhat\u{1b}[0m"));
        assert!(col.contains("Use \u{1b}[36mx\u{1b}[0m."));
    }

    #[test]
    fn color_rules() {
        // Only NO_COLOR-free environments are asserted on: tests run in
        // parallel, so the environment is read, never changed.
        if std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            && std::env::var_os("CLICOLOR_FORCE").is_none()
            && std::env::var_os("FORCE_COLOR").is_none()
        {
            assert!(color_for(true));
            assert!(!color_for(false));
        }
    }
}
