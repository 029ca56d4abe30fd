//! Which registry an image reference of a job names, once the job's
//! variables are resolved: GitLab's own (`$CI_REGISTRY`,
//! `$CI_REGISTRY_IMAGE`), a host written out, or one kmigrate cannot know
//! (a variable set in the project's CI/CD settings or by the script).
//! Deciding "docker.io" for `$IMAGE:1` would add the wrong login, or none.

use super::Job;

/// Where a reference pushes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registry {
    /// GitLab's registry of the project (`$CI_REGISTRY…`).
    Gitlab,
    /// A registry host written out (`docker.io` for a bare `user/app`).
    Host(String),
    /// Not known before the job runs: the variable that decides it, as
    /// written (`$TARGET`, `registry.$DOMAIN`).
    Unknown(String),
}

/// Variables expanded in a row at most; past this the chain (or a loop
/// such as `A: $B`, `B: $A`) is reported as unknown.
const MAX_EXPANSIONS: usize = 16;

/// The registry `reference` (as written in a job's call, quotes allowed)
/// pushes to, with the job's variables (its own, then global) resolved.
pub fn registry_of(job: &Job, reference: &str) -> Registry {
    let mut r = reference.trim_matches('"').to_string();
    for _ in 0..MAX_EXPANSIONS {
        if r.starts_with("$CI_REGISTRY") || r.starts_with("${CI_REGISTRY") {
            return Registry::Gitlab;
        }
        let Some((name, rest)) = leading_variable(&r) else {
            if r.starts_with('$') {
                return Registry::Unknown(r);
            }
            let host = crate::buildx::registry_config::registry_host(&r);
            if host.contains('$') {
                return Registry::Unknown(host);
            }
            return Registry::Host(host);
        };
        match job.variable(name) {
            Some(value) => r = format!("{}{rest}", value.trim_matches('"')),
            None => return Registry::Unknown(format!("${name}")),
        }
    }
    Registry::Unknown(reference.trim_matches('"').to_string())
}

/// `$NAME…` or `${NAME}…` at the start of `r`: the name and what follows.
fn leading_variable(r: &str) -> Option<(&str, &str)> {
    let after = r.strip_prefix('$')?;
    if let Some(braced) = after.strip_prefix('{') {
        let end = braced.find('}')?;
        return Some((&braced[..end], &braced[end + 1..]));
    }
    let end = after
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(after.len());
    (end > 0).then(|| (&after[..end], &after[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::gitlab::Pipeline;

    fn registry(vars: &str, reference: &str) -> Registry {
        let text = format!("variables:\n{vars}build:\n  script: [x]\n");
        let p = Pipeline::from_text(
            std::path::Path::new("."),
            std::path::Path::new(".gitlab-ci.yml"),
            text,
        )
        .unwrap();
        registry_of(p.job("build").unwrap(), reference)
    }

    #[test]
    fn variables_resolve_before_the_host_is_read() {
        let vars = "  IMAGE: $CI_REGISTRY_IMAGE/app\n  HUB: user/app\n  LOOP: $LOOP/x\n  HOST: $REGISTRY/app\n";
        for (reference, want) in [
            ("$IMAGE:1", Registry::Gitlab),
            ("\"${IMAGE}:$CI_COMMIT_SHA\"", Registry::Gitlab),
            ("$CI_REGISTRY_IMAGE", Registry::Gitlab),
            ("$HUB:1", Registry::Host("docker.io".into())),
            ("ghcr.io/o/app", Registry::Host("ghcr.io".into())),
            ("app:1", Registry::Host("docker.io".into())),
            ("$TARGET:1", Registry::Unknown("$TARGET".into())),
            ("$HOST:1", Registry::Unknown("$REGISTRY".into())),
            ("registry.$D/app", Registry::Unknown("registry.$D".into())),
            ("$LOOP", Registry::Unknown("$LOOP".into())),
            ("${", Registry::Unknown("${".into())),
        ] {
            assert_eq!(registry(vars, reference), want, "{reference}");
        }
    }
}
