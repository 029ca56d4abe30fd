//! `kmigrate rules`, `kmigrate explain ID…` and `kmigrate config`: the
//! rules and the configuration as documentation.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;

use super::ExitStatus;
use super::exit::print;
use crate::config::Loaded;
use crate::rules::meta;
use kmigrate_lint::targets;

/// `kmigrate rules`.
#[derive(Debug, Args)]
pub struct RulesArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: RulesFormat,
}

/// Formats of `kmigrate rules`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RulesFormat {
    /// A table.
    Text,
    /// An array of `{id, severity, fixable, summary, url}`.
    Json,
}

/// `kmigrate explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Rule ids, e.g. KM002 (case-insensitive), or migration targets as
    /// `target:NAME` (buildx, buildkit, buildah, fork, split).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub rules: Vec<String>,
    /// Every rule's page, in id order.
    #[arg(long)]
    pub all: bool,
}

/// `kmigrate config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Print the effective configuration (file values over the defaults);
    /// what `kmigrate config` does without it too.
    #[arg(long)]
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

/// Every rule as JSON, for tools and scripts.
pub fn rules_json() -> String {
    let rules: Vec<serde_json::Value> = meta::all()
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id,
                "severity": r.severity.to_string(),
                "fixable": r.fixable,
                "summary": r.summary,
                "url": r.help_url(),
            })
        })
        .collect();
    let mut s = serde_json::to_string_pretty(&rules).expect("JSON serialises");
    s.push('\n');
    s
}

pub fn rules(args: RulesArgs) -> ExitStatus {
    let text = match args.format {
        RulesFormat::Text => rules_table(),
        RulesFormat::Json => rules_json(),
    };
    print(&text)
}

/// A rule's page for the terminal, with its severity, fixability and link.
fn page(rule: &meta::RuleMeta, color: bool) -> String {
    let mut page = render_markdown(rule.doc, color);
    let _ = write!(
        page,
        "\nSeverity: {}. Fixable by `kmigrate rewrite`: {}.\nOnline: {}\n",
        rule.severity,
        if rule.fixable { "yes" } else { "no" },
        rule.help_url()
    );
    page
}

/// A migration target's page for the terminal, with its runner
/// requirement and link.
fn target_page(target: &targets::TargetPage, color: bool) -> String {
    let mut page = render_markdown(target.doc, color);
    let _ = write!(
        page,
        "\nRunner: {}. Platforms: {}.\nOnline: {}\n",
        target.runner_change,
        target.platforms,
        target.help_url()
    );
    page
}

pub fn explain(args: ExplainArgs) -> ExitStatus {
    let color = stdout_color();
    let pages: Vec<String> = if args.all {
        meta::all().iter().map(|r| page(r, color)).collect()
    } else {
        let mut pages = Vec::new();
        for asked in &args.rules {
            if let Some(name) = asked.strip_prefix("target:") {
                match targets::page(&name.to_ascii_lowercase()) {
                    Some(t) => pages.push(target_page(t, color)),
                    None => {
                        let names: Vec<String> = targets::all()
                            .iter()
                            .map(|t| format!("target:{}", t.name))
                            .collect();
                        eprintln!(
                            "kmigrate: no target `{}`; targets are {}",
                            crate::report::terminal::escape_inline(name),
                            names.join(", ")
                        );
                        return ExitStatus::Error;
                    }
                }
                continue;
            }
            match asked.parse::<crate::rules::Rule>() {
                Ok(rule) => pages.push(page(rule.meta(), color)),
                Err(_) => {
                    let ids: Vec<&str> = meta::all().iter().map(|r| r.id).collect();
                    eprintln!(
                        "kmigrate: no rule `{}`; rules are {} (and the targets, as target:NAME)",
                        crate::report::terminal::escape_inline(asked),
                        ids.join(", ")
                    );
                    return ExitStatus::Error;
                }
            }
        }
        pages
    };
    print(&pages.join("\n"))
}

pub fn config(args: ConfigArgs) -> ExitStatus {
    // `--show` is the only action, so it is also the default.
    let _ = args.show;
    let loaded = match &args.config {
        Some(path) => Loaded::from_file(path),
        None => Loaded::discover(&args.path),
    };
    match loaded {
        Ok(loaded) => print(&show(&loaded)),
        Err(e) => {
            eprintln!(
                "kmigrate: {}",
                crate::report::terminal::escape(&e.to_string())
            );
            ExitStatus::Error
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
