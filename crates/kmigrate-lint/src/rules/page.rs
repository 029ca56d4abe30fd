//! The front matter of a rule page, `rules/KMxxx.md`.
//!
//! Shared by `build.rs`, which generates [`crate::rules::Rule`] and its
//! metadata table from the pages, and by the unit tests; it depends on
//! nothing else in the crate so the build script can include it.
//!
//! ```text
//! ---
//! id: KM001
//! severity: error                 # error | warning | info
//! fixable: true                   # `kmigrate rewrite` can fix it
//! kind: build                     # see KINDS
//! markers: kaniko, executor       # words a file needs for the rule to fire
//! summary: One line for `kmigrate rules`
//! ---
//! # KM001: title
//! ## What / ## Why / ## How to fix / ## Example
//! ```

/// The severities a page may give.
pub const SEVERITIES: &[&str] = &["error", "warning", "info"];

/// What a rule's finding is about:
/// - `build`: a step or job to migrate (its fix is the build's rewrite);
/// - `rewrite-note`: what a build's rewrite changes, moot when the build
///   stays as it is;
/// - `call-note`: true of the Kaniko call as written, rewritten or not;
/// - `file-note`: about the file, not one build.
pub const KINDS: &[&str] = &["build", "rewrite-note", "call-note", "file-note"];

/// The sections every page has, in this order.
pub const SECTIONS: &[&str] = &["## What", "## Why", "## How to fix", "## Example"];

/// One parsed page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<'a> {
    pub id: &'a str,
    pub severity: &'a str,
    pub fixable: bool,
    pub kind: &'a str,
    /// Lower-case words: a file holding none of them cannot have a finding
    /// of this rule (see `src/prefilter.rs`).
    pub markers: Vec<&'a str>,
    pub summary: &'a str,
    /// The Markdown after the front matter.
    pub doc: &'a str,
}

/// Parses and checks a page.
pub fn parse(page: &str) -> Result<Page<'_>, String> {
    let rest = page
        .strip_prefix("---\n")
        .ok_or("page must start with `---` front matter")?;
    let end = rest
        .find("\n---\n")
        .ok_or("front matter is not closed by `---`")?;
    let (front, doc) = (&rest[..end], rest[end + 5..].trim_start());
    let field = |name: &str| -> Result<&str, String> {
        front
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
            .ok_or_else(|| format!("front matter has no `{name}`"))
    };
    let id = field("id")?;
    let well_formed =
        id.len() == 5 && id.starts_with("KM") && id[2..].bytes().all(|b| b.is_ascii_digit());
    if !well_formed {
        return Err(format!("id `{id}` is not KM and three digits"));
    }
    let severity = field("severity")?;
    if !SEVERITIES.contains(&severity) {
        return Err(format!("unknown severity `{severity}`"));
    }
    let fixable = match field("fixable")? {
        "true" => true,
        "false" => false,
        other => return Err(format!("fixable must be true or false, not `{other}`")),
    };
    let kind = field("kind")?;
    if !KINDS.contains(&kind) {
        return Err(format!(
            "unknown kind `{kind}`; it must be one of {}",
            KINDS.join(", ")
        ));
    }
    let markers: Vec<&str> = field("markers")?
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .collect();
    if markers.is_empty() {
        return Err(
            "`markers` names no word: the rule would never fire in a directory scan".into(),
        );
    }
    if let Some(bad) = markers
        .iter()
        .find(|m| !m.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'))
    {
        return Err(format!("marker `{bad}` must be lower-case ASCII letters"));
    }
    let summary = field("summary")?;
    if !doc.starts_with(&format!("# {id}:")) {
        return Err(format!("the page must start with `# {id}: title`"));
    }
    let mut at = 0;
    for section in SECTIONS {
        match doc[at..].find(&format!("\n{section}\n")) {
            Some(i) => at += i + 1,
            None => return Err(format!("no `{section}` section (after the ones before it)")),
        }
    }
    Ok(Page {
        id,
        severity,
        fixable,
        kind,
        markers,
        summary,
        doc,
    })
}
