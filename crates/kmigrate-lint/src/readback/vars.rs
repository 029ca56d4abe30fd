//! Variable tables and expansion: Cloud Build substitutions and built-ins,
//! GitLab predefined and `variables:` values, shell `$X` / `${X}` words.
//!
//! Nothing is guessed silently: a name without a value is returned as
//! unresolved, and values that are placeholders (no git repository to read
//! them from) are listed so the report can say so.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Values known to a build, with where they came from.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    pub values: BTreeMap<String, String>,
    /// Names whose value is a stand-in (not read from git or the config).
    pub placeholders: Vec<String>,
    /// Variables whose value names variables without a value: using one
    /// makes those names unresolved.
    pub broken: BTreeMap<String, Vec<String>>,
}

impl Vars {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.values.insert(name.to_string(), value.into());
        self.placeholders.retain(|p| p != name);
        self.broken.remove(name);
    }

    /// Sets a value that still names the unresolved `missing`.
    pub fn set_broken(&mut self, name: &str, value: impl Into<String>, missing: Vec<String>) {
        self.set(name, value);
        if !missing.is_empty() {
            self.broken.insert(name.to_string(), missing);
        }
    }

    /// The value of `name`, noting unresolved names it depends on.
    fn lookup(&self, name: &str, missing: &mut Vec<String>) -> Option<&str> {
        if let Some(m) = self.broken.get(name) {
            for x in m {
                push_unique(missing, x.clone());
            }
        }
        self.get(name)
    }

    fn placeholder(&mut self, name: &str, value: &str) {
        self.values.insert(name.to_string(), value.to_string());
        if !self.placeholders.iter().any(|p| p == name) {
            self.placeholders.push(name.to_string());
        }
    }
}

/// What git says about the repository at `dir`, when it is one.
#[derive(Debug, Clone, Default)]
pub struct GitInfo {
    pub commit: Option<String>,
    pub branch: Option<String>,
    pub tag: Option<String>,
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!s.is_empty()).then_some(s)
}

impl GitInfo {
    pub fn read(dir: &Path) -> Self {
        GitInfo {
            commit: git(dir, &["rev-parse", "HEAD"]),
            branch: git(dir, &["rev-parse", "--abbrev-ref", "HEAD"]).filter(|b| b != "HEAD"),
            tag: git(dir, &["describe", "--tags", "--exact-match"]),
        }
    }
}

const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

/// Cloud Build built-in substitutions plus the config's `substitutions:`.
pub fn cloudbuild(
    git: &GitInfo,
    repo_name: &str,
    defaults: &BTreeMap<String, String>,
    overrides: &BTreeMap<String, String>,
) -> Vars {
    let mut v = Vars::default();
    match &git.commit {
        Some(c) => {
            v.set("COMMIT_SHA", c);
            v.set("SHORT_SHA", &c[..7.min(c.len())]);
            v.set("REVISION_ID", c);
        }
        None => {
            v.placeholder("COMMIT_SHA", ZERO_SHA);
            v.placeholder("SHORT_SHA", &ZERO_SHA[..7]);
            v.placeholder("REVISION_ID", ZERO_SHA);
        }
    }
    match &git.branch {
        Some(b) => {
            v.set("BRANCH_NAME", b);
            v.set("REF_NAME", b);
        }
        None => {
            v.placeholder("BRANCH_NAME", "main");
            v.placeholder("REF_NAME", "main");
        }
    }
    match &git.tag {
        Some(t) => v.set("TAG_NAME", t),
        None => v.set("TAG_NAME", ""),
    }
    v.placeholder("PROJECT_ID", "kmigrate-verify");
    v.placeholder("PROJECT_NUMBER", "123456789012");
    v.placeholder("BUILD_ID", "00000000-0000-4000-8000-000000000000");
    v.placeholder("LOCATION", "global");
    v.placeholder("TRIGGER_NAME", "kmigrate-verify");
    v.placeholder("TRIGGER_BUILD_CONFIG_PATH", "cloudbuild.yaml");
    v.placeholder(
        "SERVICE_ACCOUNT_EMAIL",
        "kmigrate-verify@kmigrate-verify.iam.gserviceaccount.com",
    );
    v.placeholder("SERVICE_ACCOUNT", "projects/kmigrate-verify/serviceAccounts/kmigrate-verify@kmigrate-verify.iam.gserviceaccount.com");
    v.set("REPO_NAME", repo_name);
    v.set("REPO_FULL_NAME", repo_name);
    for (k, val) in defaults.iter().chain(overrides) {
        v.set(k, val);
    }
    // Dynamic substitutions: a default may name other substitutions.
    for _ in 0..3 {
        let snapshot = v.clone();
        for k in defaults.keys().chain(overrides.keys()) {
            if let Some(val) = snapshot.get(k) {
                let (expanded, _) = substitute_cloudbuild(val, &snapshot);
                v.values.insert(k.to_string(), expanded);
            }
        }
    }
    v
}

/// GitLab predefined variables for a job run from `project_dir`.
pub fn gitlab(git: &GitInfo, project_dir: &Path, job: &str) -> Vars {
    let mut v = Vars::default();
    let name = project_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("project")
        .to_string();
    v.set("CI", "true");
    v.set("GITLAB_CI", "true");
    v.set("CI_PROJECT_DIR", project_dir.display().to_string());
    v.set(
        "CI_BUILDS_DIR",
        project_dir
            .parent()
            .unwrap_or(project_dir)
            .display()
            .to_string(),
    );
    v.set("CI_PROJECT_NAME", &name);
    v.set("CI_JOB_NAME", job);
    v.set("CI_JOB_NAME_SLUG", slug(job));
    v.placeholder("CI_SERVER_HOST", "gitlab.example.com");
    v.placeholder("CI_SERVER_URL", "https://gitlab.example.com");
    v.placeholder("CI_REGISTRY", "registry.gitlab.example.com");
    v.placeholder("CI_PROJECT_NAMESPACE", "group");
    // A registry path component must start with a letter or digit.
    let path_name = match slug(&name) {
        s if s.is_empty() => "project".to_string(),
        s => s,
    };
    v.placeholder("CI_PROJECT_PATH", &format!("group/{path_name}"));
    v.placeholder("CI_PROJECT_PATH_SLUG", &format!("group-{path_name}"));
    v.placeholder(
        "CI_REGISTRY_IMAGE",
        &format!("registry.gitlab.example.com/group/{path_name}"),
    );
    v.placeholder("CI_PROJECT_ID", "1");
    v.placeholder("CI_PIPELINE_ID", "1");
    v.placeholder("CI_PIPELINE_IID", "1");
    v.placeholder("CI_JOB_ID", "1");
    v.placeholder("CI_REGISTRY_USER", "gitlab-ci-token");
    v.placeholder("CI_REGISTRY_PASSWORD", "placeholder");
    v.placeholder("CI_JOB_TOKEN", "placeholder");
    v.placeholder("CI_DEFAULT_BRANCH", "main");
    match &git.commit {
        Some(c) => {
            v.set("CI_COMMIT_SHA", c);
            v.set("CI_COMMIT_SHORT_SHA", &c[..8.min(c.len())]);
        }
        None => {
            v.placeholder("CI_COMMIT_SHA", ZERO_SHA);
            v.placeholder("CI_COMMIT_SHORT_SHA", &ZERO_SHA[..8]);
        }
    }
    let reference = git.tag.clone().or_else(|| git.branch.clone());
    match reference {
        Some(r) => {
            v.set("CI_COMMIT_REF_NAME", &r);
            v.set("CI_COMMIT_REF_SLUG", slug(&r));
        }
        None => {
            v.placeholder("CI_COMMIT_REF_NAME", "main");
            v.placeholder("CI_COMMIT_REF_SLUG", "main");
        }
    }
    if let Some(t) = &git.tag {
        v.set("CI_COMMIT_TAG", t);
    } else if let Some(b) = &git.branch {
        v.set("CI_COMMIT_BRANCH", b);
    } else {
        v.placeholder("CI_COMMIT_BRANCH", "main");
    }
    v
}

/// GitLab's `CI_COMMIT_REF_SLUG` rule: lowercase, non-alphanumerics to `-`,
/// at most 63 bytes, no leading/trailing `-`.
pub fn slug(s: &str) -> String {
    let mut out: String = s
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    out.truncate(63);
    out.trim_matches('-').to_string()
}

/// Expands Cloud Build substitutions in a step field: `$$` is a literal
/// `$`, `$NAME` and `${NAME}` take the table's value. Returns the text and
/// the names that have no value.
pub fn substitute_cloudbuild(text: &str, vars: &Vars) -> (String, Vec<String>) {
    let mut out = String::with_capacity(text.len());
    let mut missing = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            let c = text[i..].chars().next().unwrap_or('\0');
            out.push(c);
            i += c.len_utf8().max(1);
            continue;
        }
        if b.get(i + 1) == Some(&b'$') {
            out.push('$');
            i += 2;
            continue;
        }
        match read_name(text, i + 1) {
            Some((name, default, end)) => {
                match vars.lookup(&name, &mut missing) {
                    Some(v) => out.push_str(v),
                    None => match default {
                        Some(d) => out.push_str(&d),
                        None => {
                            push_unique(&mut missing, name.clone());
                            out.push_str(&text[i..end]);
                        }
                    },
                }
                i = end;
            }
            None => {
                out.push('$');
                i += 1;
            }
        }
    }
    (out, missing)
}

/// `NAME` or `{NAME}` / `{NAME:-default}` after a `$` at `start`.
fn read_name(text: &str, start: usize) -> Option<(String, Option<String>, usize)> {
    let rest = &text[start..];
    if let Some(inner) = rest.strip_prefix('{') {
        let close = inner.find('}')?;
        let body = &inner[..close];
        let (name, default) = match body.split_once(":-") {
            Some((n, d)) => (n, Some(d.to_string())),
            None => match body.split_once('-') {
                Some((n, d)) if is_name(n) => (n, Some(d.to_string())),
                _ => (body, None),
            },
        };
        if !is_name(name) {
            return None;
        }
        return Some((name.to_string(), default, start + 1 + close + 1));
    }
    let len = rest
        .char_indices()
        .take_while(|(_, c)| c.is_ascii_alphanumeric() || *c == '_')
        .map(|(i, c)| i + c.len_utf8())
        .last()?;
    let name = &rest[..len];
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    Some((name.to_string(), None, start + len))
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn push_unique(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}

/// Expands a shell word in its double-quote-ready form
/// ([`crate::shell::Word::dq`]): backslash escapes are literal characters,
/// `$NAME` / `${NAME}` / `${NAME:-d}` take the table's value, and a command
/// substitution cannot be known (returned as unresolved `$(…)`).
pub fn expand_word(dq: &str, vars: &Vars) -> (String, Vec<String>) {
    let mut out = String::with_capacity(dq.len());
    let mut missing = Vec::new();
    let mut i = 0;
    while i < dq.len() {
        let c = dq[i..].chars().next().unwrap_or('\0');
        match c {
            '\\' => {
                if let Some(n) = dq[i + 1..].chars().next() {
                    out.push(n);
                    i += 1 + n.len_utf8();
                } else {
                    i += 1;
                }
            }
            '$' if dq[i + 1..].starts_with('(') || dq[i + 1..].starts_with('`') => {
                push_unique(&mut missing, "$(…) command substitution".into());
                out.push('$');
                i += 1;
            }
            '`' => {
                push_unique(&mut missing, "`…` command substitution".into());
                i += 1;
            }
            '$' => match read_name(dq, i + 1) {
                Some((name, default, end)) => {
                    match vars.lookup(&name, &mut missing) {
                        Some(v) => out.push_str(v),
                        None => match default {
                            Some(d) => out.push_str(&expand_word(&d, vars).0),
                            None => push_unique(&mut missing, name),
                        },
                    }
                    i = end;
                }
                None => {
                    out.push('$');
                    i += 1;
                }
            },
            _ => {
                out.push(c);
                i += c.len_utf8();
            }
        }
    }
    (out, missing)
}

/// Expands a GitLab `variables:` value (which may name other variables, as
/// GitLab expands them) against `vars`.
pub fn expand_value(value: &str, vars: &Vars) -> (String, Vec<String>) {
    let (s, missing) = substitute_cloudbuild(value, vars);
    (s, missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        let mut v = Vars::default();
        for (k, val) in pairs {
            v.set(k, *val);
        }
        v
    }

    #[test]
    fn cloudbuild_substitution_keeps_double_dollar_and_reports_missing() {
        let v = vars(&[("_IMAGE", "reg/app"), ("SHORT_SHA", "abc1234")]);
        let (s, m) = substitute_cloudbuild("${_IMAGE}:$SHORT_SHA $$HOME ${_NOPE}", &v);
        assert_eq!(s, "reg/app:abc1234 $HOME ${_NOPE}");
        assert_eq!(m, vec!["_NOPE".to_string()]);
    }

    #[test]
    fn shell_word_expansion() {
        let v = vars(&[("CI_REGISTRY_IMAGE", "r/p"), ("X", "1")]);
        let (s, m) = expand_word("${CI_REGISTRY_IMAGE}/a:$X-\\$lit${Y:-dflt}$MISSING", &v);
        assert_eq!(s, "r/p/a:1-$litdflt");
        assert_eq!(m, vec!["MISSING".to_string()]);
        let (_, m) = expand_word("$(git rev-parse HEAD)", &v);
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn slug_follows_gitlab() {
        assert_eq!(slug("Feature/Foo_bar"), "feature-foo-bar");
    }

    #[test]
    fn gitlab_placeholders_are_listed() {
        let g = GitInfo::default();
        let v = gitlab(&g, Path::new("/tmp/proj"), "build");
        assert!(v.placeholders.contains(&"CI_COMMIT_SHA".to_string()));
        assert_eq!(v.get("CI_PROJECT_DIR"), Some("/tmp/proj"));
        let g = GitInfo {
            commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
            branch: Some("dev".into()),
            tag: None,
        };
        let v = gitlab(&g, Path::new("/tmp/proj"), "build");
        assert_eq!(v.get("CI_COMMIT_SHORT_SHA"), Some("01234567"));
        assert!(!v.placeholders.contains(&"CI_COMMIT_SHA".to_string()));
    }
}
