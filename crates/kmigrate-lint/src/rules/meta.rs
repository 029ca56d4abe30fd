//! Rule metadata, read from the front matter of `rules/KMxxx.md`.

use std::sync::OnceLock;

use super::Severity;

/// Every rule page, compiled in. Adding a rule adds a line here and a page.
const PAGES: &[&str] = &[
    include_str!("../../../../rules/KM001.md"),
    include_str!("../../../../rules/KM002.md"),
    include_str!("../../../../rules/KM003.md"),
    include_str!("../../../../rules/KM004.md"),
    include_str!("../../../../rules/KM005.md"),
    include_str!("../../../../rules/KM010.md"),
    include_str!("../../../../rules/KM011.md"),
    include_str!("../../../../rules/KM012.md"),
    include_str!("../../../../rules/KM013.md"),
    include_str!("../../../../rules/KM014.md"),
    include_str!("../../../../rules/KM015.md"),
    include_str!("../../../../rules/KM020.md"),
];

/// What a rule is, as its page says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleMeta {
    pub id: &'static str,
    pub severity: Severity,
    pub fixable: bool,
    pub summary: &'static str,
    /// The page's Markdown without its front matter.
    pub doc: &'static str,
}

impl RuleMeta {
    /// Where the rule is documented online (the page in the repository).
    pub fn help_url(&self) -> String {
        format!(
            "https://github.com/kmigrate/kmigrate/blob/main/rules/{}.md",
            self.id
        )
    }
}

fn parse_page(page: &'static str) -> Result<RuleMeta, String> {
    let rest = page
        .strip_prefix("---\n")
        .ok_or("page must start with `---` front matter")?;
    let end = rest
        .find("\n---\n")
        .ok_or("front matter is not closed by `---`")?;
    let (front, doc) = (&rest[..end], &rest[end + 5..]);
    let field = |name: &str| -> Result<&'static str, String> {
        front
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
            .ok_or_else(|| format!("front matter has no `{name}`"))
    };
    let severity = match field("severity")? {
        "error" => Severity::Error,
        "warning" => Severity::Warning,
        "info" => Severity::Info,
        other => return Err(format!("unknown severity `{other}`")),
    };
    let fixable = match field("fixable")? {
        "true" => true,
        "false" => false,
        other => return Err(format!("fixable must be true or false, not `{other}`")),
    };
    Ok(RuleMeta {
        id: field("id")?,
        severity,
        fixable,
        summary: field("summary")?,
        doc: doc.trim_start(),
    })
}

/// All rules, sorted by id.
pub fn all() -> &'static [RuleMeta] {
    static RULES: OnceLock<Vec<RuleMeta>> = OnceLock::new();
    RULES.get_or_init(|| {
        let mut rules: Vec<RuleMeta> = PAGES
            .iter()
            .map(|p| parse_page(p).expect("rule pages are checked by tests"))
            .collect();
        rules.sort_by_key(|r| r.id);
        rules
    })
}

/// The rule with this id.
pub fn get(id: &str) -> Option<&'static RuleMeta> {
    all().iter().find(|r| r.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_parses_and_has_the_four_sections() {
        for page in PAGES {
            let meta = parse_page(page).unwrap();
            assert!(
                meta.doc.starts_with(&format!("# {}:", meta.id)),
                "{}",
                meta.id
            );
            for section in ["## What", "## Why", "## How to fix", "## Example"] {
                assert!(meta.doc.contains(section), "{} lacks {section}", meta.id);
            }
        }
        assert_eq!(get("KM001").unwrap().severity, Severity::Error);
        assert_eq!(get("KM010").unwrap().severity, Severity::Info);
        assert!(get("KM999").is_none());
    }

    #[test]
    fn broken_front_matter_is_rejected() {
        assert!(parse_page("# no front matter").is_err());
        assert!(
            parse_page("---\nid: KM9\nseverity: fatal\nfixable: true\nsummary: s\n---\nx").is_err()
        );
    }
}
