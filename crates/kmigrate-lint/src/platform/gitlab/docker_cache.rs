//! KM003 for GitLab scripts: a `docker buildx build` / `docker build` that
//! exports cache (`--cache-to type=registry|local|gha`) with no
//! docker-container builder created before it in the job and no
//! `--builder`: the default docker driver fails with "Cache export is not
//! supported for the docker driver".

use super::Pipeline;
use super::job::{Job, Section};
use super::rewrite::{FileEdit, section_seq};
use crate::shell::{Command, Word};
use crate::source::Span;
use crate::source::patch::Edit;
use crate::source::render::{Quote, scalar};
use crate::source::tree::Value;

/// One build that would fail to export its cache.
#[derive(Debug, Clone)]
pub struct DriverProblem {
    pub file: usize,
    /// The build command as written.
    pub span: Span,
    /// Inserts the builder setup before the build's script item, when the
    /// item is in a list written in the job.
    pub fix: Option<FileEdit>,
}

fn lits(c: &Command) -> Vec<String> {
    c.words
        .iter()
        .map(|w: &Word| w.literal().unwrap_or_else(|| w.dq.clone()))
        .collect()
}

/// `docker buildx create … --driver docker-container` (a builder that can
/// export cache), or `docker buildx use NAME`.
fn creates_builder(w: &[String]) -> bool {
    let is = |i: usize, s: &str| w.get(i).is_some_and(|x| x == s);
    if !(is(0, "docker") && is(1, "buildx")) {
        return false;
    }
    if is(2, "use") {
        return true;
    }
    is(2, "create") && w.windows(2).any(|p| p[0] == "--driver" && p[1] != "docker")
        || w.iter()
            .any(|x| x.starts_with("--driver=") && x != "--driver=docker")
}

/// The build's `--cache-to` values when it is a build without `--builder`.
fn exports_cache(w: &[String]) -> bool {
    let is_build = (w.first().is_some_and(|x| x == "docker"))
        && (w.get(1).is_some_and(|x| x == "build")
            || (w.get(1).is_some_and(|x| x == "buildx") && w.get(2).is_some_and(|x| x == "build")));
    if !is_build
        || w.iter()
            .any(|x| x == "--builder" || x.starts_with("--builder="))
    {
        return false;
    }
    let mut values = Vec::new();
    for (i, x) in w.iter().enumerate() {
        if x == "--cache-to" {
            if let Some(v) = w.get(i + 1) {
                values.push(v.clone());
            }
        } else if let Some(v) = x.strip_prefix("--cache-to=") {
            values.push(v.to_string());
        }
    }
    values.iter().any(|v| {
        let kind = v
            .split(',')
            .find_map(|kv| kv.strip_prefix("type="))
            .unwrap_or("registry");
        matches!(kind, "registry" | "local" | "gha" | "s3" | "azblob")
    })
}

/// Every build of `job` that exports cache on the docker driver.
pub fn problems(p: &Pipeline, job: &Job, builder: &str) -> Vec<DriverProblem> {
    let mut out = Vec::new();
    let mut have_builder = false;
    for section in [Section::BeforeScript, Section::Script] {
        let lines = job.section(section);
        if lines.is_empty() {
            continue;
        }
        let parsed = job.parsed(section);
        for c in &parsed.script.commands {
            let w = lits(c);
            if creates_builder(&w) {
                have_builder = true;
                continue;
            }
            if have_builder || !exports_cache(&w) {
                continue;
            }
            let Some((li, local)) = parsed.locate(&c.span) else {
                continue;
            };
            let line = &lines[li];
            let span = line.source_range(local);
            let fix = section_seq(p, job, section).and_then(|(file, seq)| {
                let Value::Seq(s) = &seq.value else {
                    return None;
                };
                let item = s
                    .items
                    .iter()
                    .find(|i| i.span.start <= span.start && span.end <= i.span.end)?;
                let setup = format!(
                    "docker buildx create --use --driver docker-container --name {builder}"
                );
                let f = &p.files[file];
                let text = scalar(&setup, Quote::Plain, s.flow);
                let edit = if s.flow {
                    Edit::insert(item.span.start, format!("{text}, "))
                } else {
                    let start = super::yaml_edit::line_start(&f.text, item.span.start);
                    let pad = &f.text[start..item.span.start];
                    Edit::insert(start, format!("{pad}- {text}{}", f.line_ending.as_str()))
                };
                Some((file, edit))
            });
            out.push(DriverProblem {
                file: line.origin.file,
                span,
                fix,
            });
            // One builder fixes every later build of the job.
            have_builder = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::patch::apply;
    use std::path::Path;

    fn run(src: &str) -> (usize, Option<String>) {
        let p = Pipeline::from_text(
            Path::new("/nonexistent"),
            Path::new(".gitlab-ci.yml"),
            src.into(),
        )
        .unwrap();
        let probs = problems(&p, &p.jobs[0], "kmigrate");
        let fixed = probs
            .first()
            .and_then(|x| x.fix.clone())
            .map(|(_, e)| apply(&p.files[0].text, &[e]).unwrap());
        (probs.len(), fixed)
    }

    #[test]
    fn cache_export_on_the_docker_driver_is_found_and_fixed() {
        let (n, fixed) = run(
            "b:\n  script:\n    - docker buildx build --cache-to type=registry,ref=r/c,mode=max -t r .\n    - docker build --cache-to=type=local,dest=/c .\n",
        );
        assert_eq!(n, 1);
        assert_eq!(
            fixed.unwrap(),
            "b:\n  script:\n    - docker buildx create --use --driver docker-container --name kmigrate\n    - docker buildx build --cache-to type=registry,ref=r/c,mode=max -t r .\n    - docker build --cache-to=type=local,dest=/c .\n"
        );
    }

    #[test]
    fn a_builder_or_inline_cache_is_fine() {
        assert_eq!(run("b:\n  before_script: [docker buildx create --use --driver=docker-container]\n  script:\n    - docker buildx build --cache-to type=registry,ref=r .\n").0, 0);
        assert_eq!(run("b:\n  script:\n    - docker buildx build --builder x --cache-to type=registry,ref=r .\n").0, 0);
        assert_eq!(
            run("b:\n  script:\n    - docker buildx build --cache-to type=inline .\n").0,
            0
        );
        assert_eq!(run("b:\n  script:\n    - docker buildx create --use\n    - docker buildx build --cache-to type=registry,ref=r .\n").0, 1);
    }
}
