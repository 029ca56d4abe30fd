//! Path globs as Docker uses them: Go's `filepath.Match` per segment (`*`,
//! `?`, `[a-z]`, `\` escapes; `*` never crosses `/`), plus `**` for any number
//! of segments in `.dockerignore`.

/// Matches a `/`-separated relative path against a pattern.
pub fn matches(pattern: &str, path: &str) -> bool {
    let p: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
    let s: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match_segments(&p, &s)
}

fn match_segments(p: &[&str], s: &[&str]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(&"**") => (0..=s.len()).any(|i| match_segments(&p[1..], &s[i..])),
        Some(seg) => {
            !s.is_empty()
                && match_segment(seg.as_bytes(), s[0].as_bytes())
                && match_segments(&p[1..], &s[1..])
        }
    }
}

fn match_segment(p: &[u8], s: &[u8]) -> bool {
    if p.is_empty() {
        return s.is_empty();
    }
    match p[0] {
        b'*' => (0..=s.len()).any(|i| match_segment(&p[1..], &s[i..])),
        b'?' => !s.is_empty() && match_segment(&p[1..], &s[1..]),
        b'[' => {
            if s.is_empty() {
                return false;
            }
            let Some(end) = p.iter().skip(1).position(|&b| b == b']').map(|e| e + 1) else {
                return p[0] == s[0] && match_segment(&p[1..], &s[1..]);
            };
            let mut class = &p[1..end];
            let negate = matches!(class.first(), Some(b'^' | b'!'));
            if negate {
                class = &class[1..];
            }
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == b'-' {
                    if class[i] <= s[0] && s[0] <= class[i + 2] {
                        hit = true;
                    }
                    i += 3;
                } else {
                    if class[i] == s[0] {
                        hit = true;
                    }
                    i += 1;
                }
            }
            hit != negate && match_segment(&p[end + 1..], &s[1..])
        }
        b'\\' if p.len() > 1 => !s.is_empty() && p[1] == s[0] && match_segment(&p[2..], &s[1..]),
        c => !s.is_empty() && c == s[0] && match_segment(&p[1..], &s[1..]),
    }
}

/// True when the pattern has glob metacharacters.
pub fn has_meta(p: &str) -> bool {
    p.contains(['*', '?', '['])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_and_double_star() {
        assert!(matches("*.txt", "a.txt"));
        assert!(!matches("*.txt", "d/a.txt"));
        assert!(matches("**/*.txt", "d/e/a.txt"));
        assert!(matches("**/*.txt", "a.txt"));
        assert!(matches("d/**", "d/x/y"));
        assert!(matches("file[0-9]", "file7"));
        assert!(!matches("file[!0-9]", "file7"));
        assert!(matches("a?c", "abc"));
        assert!(matches("a\\*", "a*"));
        assert!(!matches("a\\*", "ab"));
    }
}
