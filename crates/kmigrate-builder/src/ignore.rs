//! `.dockerignore`: patterns with `!` exceptions, last match wins, a pattern
//! that matches a directory excludes everything below it.

use std::path::Path;

use super::glob;

#[derive(Debug, Clone, Default)]
pub struct IgnoreRules {
    rules: Vec<(bool, String)>,
}

impl IgnoreRules {
    /// Parses the file's text.
    pub fn parse(text: &str) -> Self {
        let mut rules = Vec::new();
        for line in text.lines() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let (neg, p) = match t.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, t),
            };
            let p = clean(p);
            if p.is_empty() {
                continue;
            }
            rules.push((neg, p));
        }
        Self { rules }
    }

    /// Reads `<dockerfile>.dockerignore` next to the Dockerfile if present,
    /// else `<context>/.dockerignore`, else no rules.
    pub fn load(context: &Path, dockerfile: &Path) -> std::io::Result<(Self, Option<String>)> {
        let specific = {
            let mut s = dockerfile.as_os_str().to_owned();
            s.push(".dockerignore");
            std::path::PathBuf::from(s)
        };
        for p in [specific, context.join(".dockerignore")] {
            // Present (through a symlink too) but not a bounded regular
            // file: an error, not silently no rules.
            if p.exists() {
                let text = super::limits::read_regular_text(
                    &p,
                    super::limits::IGNORE_FILE_MAX,
                    ".dockerignore",
                )
                .map_err(|e| std::io::Error::other(format!("{}: {e}", p.display())))?;
                return Ok((Self::parse(&text), Some(p.display().to_string())));
            }
        }
        Ok((Self::default(), None))
    }

    /// Excludes `rel` (a context-relative directory or file) whatever the
    /// ignore file says: the rule comes last, so no `!` exception re-includes
    /// it. Glob characters in `rel` are matched literally.
    pub fn exclude_always(&mut self, rel: &str) {
        let escaped: String = rel
            .chars()
            .flat_map(|c| {
                let meta = matches!(c, '*' | '?' | '[' | ']' | '\\');
                meta.then_some('\\').into_iter().chain([c])
            })
            .collect();
        self.rules.push((false, clean(&escaped)));
    }

    /// True when the relative path (with `/` separators) is excluded.
    pub fn excluded(&self, rel: &str) -> bool {
        let rel = clean(rel);
        let mut out = false;
        for (neg, pat) in &self.rules {
            if matches_or_parent(pat, &rel) {
                out = !neg;
            }
        }
        out
    }

    /// True when some exception could re-include something below `dir`, so a
    /// walk must descend into an excluded directory.
    pub fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|(n, _)| *n)
    }
}

fn matches_or_parent(pat: &str, rel: &str) -> bool {
    if glob::matches(pat, rel) {
        return true;
    }
    let mut cur = rel;
    while let Some(p) = cur.rfind('/') {
        cur = &cur[..p];
        if glob::matches(pat, cur) {
            return true;
        }
    }
    false
}

/// Lexical clean: drop `.` segments, leading `/`, resolve `..` within the path.
fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    out.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusions_exceptions_and_dirs() {
        let r = IgnoreRules::parse("# c\n*.log\n/build\n!keep.log\nsecret*/**\n");
        assert!(r.excluded("a.log"));
        assert!(!r.excluded("keep.log"));
        assert!(!r.excluded("d/a.log"));
        assert!(r.excluded("build"));
        assert!(r.excluded("build/x/y.o"));
        assert!(r.excluded("secrets/k"));
        assert!(!r.excluded("src/main.rs"));
    }

    #[test]
    fn always_excluded_paths_beat_exceptions_and_match_literally() {
        let mut r = IgnoreRules::parse("!state/keep\n");
        r.exclude_always("state");
        r.exclude_always("odd[1]*");
        assert!(r.excluded("state/keep") && r.excluded("state/x/y"));
        assert!(r.excluded("odd[1]*/f"));
        assert!(!r.excluded("odd1x") && !r.excluded("stateful"));
    }
}
