//! Wildcards in `include: local:` paths, as GitLab documents them:
//! `*` matches within one path segment, `**` across segments
//! (`configs/**.yml` is every `.yml` under `configs/`, `configs/**/*.yml`
//! only those in its subdirectories), `?` one character.

use std::path::{Path, PathBuf};

/// True when `pattern` has a wildcard.
pub fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// Compiles a glob (relative to the repository root, `/`-separated, no
/// leading `/`) into an anchored regular expression.
fn to_regex(pattern: &str) -> Result<regex::Regex, regex::Error> {
    let mut re = String::from("^");
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                if chars.peek() == Some(&'/') {
                    // `**/`: one or more directories (GitLab: subfolders only
                    // when written as `dir/**/*.yml`).
                    chars.next();
                    re.push_str("(?:[^/]+/)+");
                } else {
                    re.push_str(".*");
                }
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' => {
                let mut class = String::from("[");
                for d in chars.by_ref() {
                    if d == ']' {
                        break;
                    }
                    if d == '\\' {
                        class.push_str("\\\\");
                    } else {
                        class.push(d);
                    }
                }
                class.push(']');
                re.push_str(&class);
            }
            _ => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    regex::Regex::new(&re)
}

/// Files under `root` whose root-relative path matches `pattern`, sorted.
/// `.git` and `target` directories are not searched.
pub fn expand(root: &Path, pattern: &str) -> Result<Vec<PathBuf>, String> {
    let re = to_regex(pattern).map_err(|e| format!("invalid wildcard `{pattern}`: {e}"))?;
    let mut out = Vec::new();
    let walker = walkdir::WalkDir::new(root)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| {
            e.depth() == 0 || !matches!(e.file_name().to_str(), Some(".git" | "target"))
        });
    for entry in walker {
        let entry = entry.map_err(|e| format!("cannot list files for `{pattern}`: {e}"))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(root) else {
            continue;
        };
        let rel: Vec<_> = rel
            .components()
            .filter_map(|c| c.as_os_str().to_str())
            .collect();
        if re.is_match(&rel.join("/")) {
            out.push(entry.path().to_path_buf());
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_stays_in_a_segment_double_star_crosses() {
        let star = to_regex("configs/*.yml").unwrap();
        assert!(star.is_match("configs/a.yml"));
        assert!(!star.is_match("configs/sub/a.yml"));
        let any = to_regex("configs/**.yml").unwrap();
        assert!(any.is_match("configs/a.yml"));
        assert!(any.is_match("configs/sub/deeper/a.yml"));
        let sub = to_regex("configs/**/*.yml").unwrap();
        assert!(!sub.is_match("configs/a.yml"));
        assert!(sub.is_match("configs/sub/a.yml"));
        assert!(to_regex("c/?.y[am]l").unwrap().is_match("c/x.yml"));
        assert!(!to_regex("c/a.yml").unwrap().is_match("c/aXyml"));
    }

    #[test]
    fn expands_against_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("ci/sub")).unwrap();
        for f in ["ci/a.yml", "ci/b.yaml", "ci/sub/c.yml", "top.yml"] {
            std::fs::write(dir.path().join(f), "x: 1\n").unwrap();
        }
        let got: Vec<_> = expand(dir.path(), "ci/*.yml")
            .unwrap()
            .iter()
            .map(|p| {
                p.strip_prefix(dir.path())
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(got, ["ci/a.yml"]);
        assert_eq!(expand(dir.path(), "ci/**.yml").unwrap().len(), 2);
        assert!(is_glob("a/*.yml") && !is_glob("a/b.yml"));
    }
}
