//! The migration targets as documentation and advice: one page per target
//! (`rules/targets/<target>.md`, shown by `kmigrate explain target:NAME`)
//! and the signals in a GitLab job's configuration that say which target
//! its runner can run (`rules/targets/hints.yaml`, read by `kmigrate
//! report`).

use std::sync::OnceLock;

use regex::Regex;
use serde::Deserialize;

use crate::platform::gitlab::job::Job;

/// The pages, in the order `explain` and the report list them.
const PAGES: &[(&str, &str)] = &[
    ("buildx", include_str!("../../../rules/targets/buildx.md")),
    (
        "buildkit",
        include_str!("../../../rules/targets/buildkit.md"),
    ),
    ("buildah", include_str!("../../../rules/targets/buildah.md")),
    ("fork", include_str!("../../../rules/targets/fork.md")),
    ("split", include_str!("../../../rules/targets/split.md")),
];

const HINTS: &str = include_str!("../../../rules/targets/hints.yaml");

/// One target's page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetPage {
    /// As users write it (`--gitlab-target NAME`, `target:NAME`).
    pub name: &'static str,
    pub platforms: &'static str,
    /// The runner requirement in one word: `privileged`, `unconfined` or
    /// `none`.
    pub runner: &'static str,
    /// What the runner needs, in a sentence.
    pub runner_change: &'static str,
    pub summary: &'static str,
    /// The Markdown after the front matter.
    pub doc: &'static str,
}

/// `---`-delimited `key: value` front matter and the rest of the page.
fn parse(name: &'static str, text: &'static str) -> Result<TargetPage, String> {
    let rest = text
        .strip_prefix("---\n")
        .ok_or_else(|| format!("rules/targets/{name}.md: no front matter"))?;
    let (front, doc) = rest
        .split_once("\n---\n")
        .ok_or_else(|| format!("rules/targets/{name}.md: front matter not closed"))?;
    let field = |key: &str| -> Result<&'static str, String> {
        front
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(": "))
            .map(str::trim)
            .ok_or_else(|| format!("rules/targets/{name}.md: no `{key}`"))
    };
    let page = TargetPage {
        name,
        platforms: field("platforms")?,
        runner: field("runner")?,
        runner_change: field("runner_change")?,
        summary: field("summary")?,
        doc: doc.trim_start_matches('\n'),
    };
    if field("target")? != name {
        return Err(format!("rules/targets/{name}.md: `target` is not {name}"));
    }
    if !matches!(page.runner, "privileged" | "unconfined" | "none") {
        return Err(format!(
            "rules/targets/{name}.md: runner `{}` is not privileged, unconfined or none",
            page.runner
        ));
    }
    Ok(page)
}

/// Every target page.
pub fn all() -> &'static [TargetPage] {
    static ALL: OnceLock<Vec<TargetPage>> = OnceLock::new();
    ALL.get_or_init(|| {
        PAGES
            .iter()
            .map(|(n, t)| parse(n, t).expect("rules/targets pages are checked by tests"))
            .collect()
    })
}

impl TargetPage {
    /// Where the page is online (in the repository).
    pub fn help_url(&self) -> String {
        format!(
            "https://github.com/kmigrate/kmigrate/blob/main/rules/targets/{}.md",
            self.name
        )
    }
}

/// The page of target `name`.
pub fn page(name: &str) -> Option<&'static TargetPage> {
    all().iter().find(|p| p.name == name)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HintsFile {
    signals: Vec<Signal>,
    default: Default_,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Signal {
    id: String,
    look_at: LookAt,
    pattern: String,
    target: String,
    reason: String,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum LookAt {
    Services,
    Variables,
    Tags,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Default_ {
    target: String,
    reason: String,
}

struct Hints {
    signals: Vec<(Signal, Regex)>,
    default: Default_,
}

fn hints() -> &'static Hints {
    static H: OnceLock<Hints> = OnceLock::new();
    H.get_or_init(|| {
        let file: HintsFile =
            yaml_serde::from_str(HINTS).expect("rules/targets/hints.yaml is checked by tests");
        Hints {
            signals: file
                .signals
                .into_iter()
                .map(|s| {
                    let re = Regex::new(&s.pattern).expect("hint patterns are checked by tests");
                    (s, re)
                })
                .collect(),
            default: file.default,
        }
    })
}

/// The target recommended for one job, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recommendation {
    pub target: &'static TargetPage,
    pub reason: String,
    /// The id of the signal that decided, `None` for the default.
    pub signal: Option<String>,
}

/// What the job shows of its runner, for each kind of signal.
fn shown(job: &Job, what: LookAt) -> Vec<String> {
    match what {
        LookAt::Services => job.services.iter().map(|s| s.name.value.clone()).collect(),
        LookAt::Variables => job.variables.iter().map(|v| v.name.clone()).collect(),
        LookAt::Tags => job
            .config
            .get("tags")
            .and_then(|t| t.as_seq())
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// The target `job`'s configuration points to: the first signal of
/// `rules/targets/hints.yaml` it shows, else the default.
pub fn recommend(job: &Job) -> Recommendation {
    let h = hints();
    for (signal, re) in &h.signals {
        let mut values = shown(job, signal.look_at);
        // Deterministic whatever order the file lists them in.
        values.sort();
        if let Some(v) = values.iter().find(|v| re.is_match(v)) {
            return Recommendation {
                target: page(&signal.target).expect("hint targets are checked by tests"),
                reason: signal.reason.replace("{match}", v),
                signal: Some(signal.id.clone()),
            };
        }
    }
    Recommendation {
        target: page(&h.default.target).expect("hint targets are checked by tests"),
        reason: h.default.reason.clone(),
        signal: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::gitlab::Pipeline;
    use std::path::Path;

    #[test]
    fn every_page_parses_and_every_target_has_one() {
        let names: Vec<&str> = all().iter().map(|p| p.name).collect();
        assert_eq!(names, ["buildx", "buildkit", "buildah", "fork", "split"]);
        for t in crate::options::GitlabTarget::ALL {
            assert!(page(t.name()).is_some(), "no page for {}", t.name());
        }
        for p in all() {
            assert!(
                p.doc.starts_with(&format!("# target:{}", p.name)),
                "{}",
                p.name
            );
            assert!(p.doc.contains("## Runner requirement"), "{}", p.name);
            assert!(p.doc.contains("## What changes"), "{}", p.name);
        }
        assert_eq!(page("buildx").unwrap().runner, "privileged");
        assert_eq!(page("buildkit").unwrap().runner, "unconfined");
        assert_eq!(page("fork").unwrap().runner, "none");
        assert!(parse("x", "---\ntarget: x\n---\n").is_err());
    }

    #[test]
    fn every_hint_names_a_target_and_compiles() {
        let h = hints();
        assert!(page(&h.default.target).is_some());
        for (s, _) in &h.signals {
            assert!(page(&s.target).is_some(), "{}", s.id);
            assert_ne!(s.target, "split", "split is no migration");
        }
    }

    fn job_recommendation(yaml: &str) -> (String, Option<String>, String) {
        let p = Pipeline::from_text(
            Path::new("/nonexistent"),
            Path::new(".gitlab-ci.yml"),
            yaml.into(),
        )
        .unwrap();
        let r = recommend(p.job("build").unwrap());
        (r.target.name.to_string(), r.signal, r.reason)
    }

    #[test]
    fn the_config_decides_the_target() {
        let base = "build:\n  image: gcr.io/kaniko-project/executor:debug\n  script: [/kaniko/executor --context . --destination r/a:1]\n";
        let with = |extra: &str| job_recommendation(&format!("{base}{extra}"));
        let (t, s, reason) = with("  services: [\"docker:27-dind\"]\n");
        assert_eq!((t.as_str(), s.as_deref()), ("buildx", Some("dind-service")));
        assert!(reason.contains("`docker:27-dind`"), "{reason}");
        let (t, s, _) = with("  variables:\n    KUBERNETES_CPU_REQUEST: \"1\"\n");
        assert_eq!(
            (t.as_str(), s.as_deref()),
            ("fork", Some("kubernetes-variable"))
        );
        let (t, s, _) =
            with("  variables:\n    FF_USE_LEGACY_KUBERNETES_EXECUTION_STRATEGY: \"false\"\n");
        assert_eq!(
            (t.as_str(), s.as_deref()),
            ("fork", Some("kubernetes-feature-flag"))
        );
        let (t, s, _) = with("  tags: [linux, k8s-build]\n");
        assert_eq!((t.as_str(), s.as_deref()), ("fork", Some("kubernetes-tag")));
        let (t, s, _) = with("  tags: [privileged-docker]\n");
        assert_eq!(
            (t.as_str(), s.as_deref()),
            ("buildx", Some("privileged-tag"))
        );
        let (t, s, _) = with("  tags: [saas-linux-small-amd64]\n");
        assert_eq!(
            (t.as_str(), s.as_deref()),
            ("buildx", Some("hosted-runner-tag"))
        );
        // The first signal in the table wins: dind beats a Kubernetes tag.
        let (t, _, _) = with("  tags: [kubernetes]\n  services: [docker:dind]\n");
        assert_eq!(t, "buildx");
        // Nothing said: the target that needs no runner change.
        let (t, s, _) = with("");
        assert_eq!((t.as_str(), s), ("fork", None));
        // Global variables count too.
        let (t, _, _) = job_recommendation(&format!(
            "variables:\n  KUBERNETES_MEMORY_LIMIT: 1Gi\n{base}"
        ));
        assert_eq!(t, "fork");
    }
}
