//! Splitting a job that runs the executor several times (KM002) into a
//! hidden template with the job's shared keys and one job per build.

use std::collections::HashSet;

use super::Pipeline;
use super::analyze::KanikoJob;
use super::job::Section;
use super::rewrite::FileEdit;
use super::yaml_edit::{self, line_end, line_start, whole_lines};
use crate::buildx::from_kaniko::repository_of;
use crate::shell::Nesting;
use crate::source::patch::{Edit, apply};
use crate::source::render::{Quote, plain_safe, scalar};
use crate::source::tree::{Item, Seq, Value};
use crate::source::{SourceFile, Span};

/// Names for a split: the template and one job per call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitNames {
    pub template: String,
    pub jobs: Vec<String>,
}

/// What names one call's new job: the image it builds, and readable
/// suffixes that tell apart two calls building the same image, best first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallName {
    /// The last path segment of the first destination's repository.
    pub image: Option<String>,
    /// `--target`, the Dockerfile's directory or name, the context's
    /// directory (each job-name-safe, absent when unknown).
    pub suffixes: [Option<String>; 3],
}

impl CallName {
    /// The naming parts of one converted call.
    pub fn of(plan: &crate::buildx::BuildPlan) -> CallName {
        let dockerfile = plan.dockerfile.as_deref().and_then(|d| {
            let (dir, file) = d.rsplit_once('/').unwrap_or(("", d));
            let dir_name = dir.rsplit('/').next().unwrap_or("");
            // `Dockerfile.prod` / `prod.Dockerfile`: the variant's word.
            let variant = file
                .strip_prefix("Dockerfile.")
                .or_else(|| file.strip_suffix(".Dockerfile"));
            safe_part(dir_name).or_else(|| variant.and_then(safe_part))
        });
        let context = safe_part(
            plan.context
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or(""),
        );
        CallName {
            image: plan.tags.first().and_then(|d| image_part(d)),
            suffixes: [
                plan.target.as_deref().and_then(safe_part),
                dockerfile,
                context,
            ],
        }
    }
}

/// `text` as a job-name-safe word (`None` when empty, `.` or a variable).
fn safe_part(text: &str) -> Option<String> {
    if text.contains('$') {
        return None;
    }
    let clean: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let clean = clean.trim_matches(['-', '.']).to_string();
    (!clean.is_empty()).then_some(clean)
}

/// A job-name-safe form of the last path segment of a destination's
/// repository (`${CI_REGISTRY_IMAGE}/image-a:1` → `image-a`); `None` when
/// the segment is only a variable.
pub fn image_part(destination: &str) -> Option<String> {
    let repo = repository_of(destination.trim_matches('"'));
    safe_part(repo.rsplit('/').next()?)
}

/// Names for splitting `job` into the template `.<job>` and one
/// `<job>-<image>` job per call (the README's and KM002's rule). Calls
/// building the same image (or one only a variable names) add the first
/// suffix that tells them apart (`<job>-<image>-<target>`, or the
/// Dockerfile's or the context's directory); the call's number is the
/// last resort. Every name in `taken` is avoided.
pub fn names(job: &str, calls: &[CallName], taken: &HashSet<String>) -> SplitNames {
    let mut used: HashSet<String> = taken.iter().filter(|t| *t != job).cloned().collect();
    let unique = |base: String, used: &mut HashSet<String>| {
        let mut name = base.clone();
        let mut n = 2;
        while used.contains(&name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        used.insert(name.clone());
        name
    };
    let template = unique(format!(".{}", job.trim_start_matches('.')), &mut used);
    let bases: Vec<String> = calls
        .iter()
        .map(|c| match &c.image {
            Some(image) => format!("{job}-{image}"),
            None => job.to_string(),
        })
        .collect();
    let jobs = calls
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let base = &bases[i];
            let group: Vec<usize> = (0..calls.len()).filter(|j| bases[*j] == *base).collect();
            let alone = group.len() == 1 && c.image.is_some();
            let name = if alone {
                base.clone()
            } else {
                // The first kind of suffix every call of the group has, all
                // different.
                let kind = (0..3).find(|k| {
                    let parts: Vec<Option<&String>> = group
                        .iter()
                        .map(|j| calls[*j].suffixes[*k].as_ref())
                        .collect();
                    parts.iter().all(Option::is_some)
                        && parts
                            .iter()
                            .enumerate()
                            .all(|(a, x)| !parts[..a].contains(x))
                });
                match kind.and_then(|k| c.suffixes[k].as_ref()) {
                    Some(suffix) => format!("{base}-{suffix}"),
                    None => format!("{base}-{}", i + 1),
                }
            };
            unique(name, &mut used)
        })
        .collect();
    SplitNames { template, jobs }
}

/// The edits that split `k` into a template plus one job per call,
/// composed with the job's other fixes: `edits` (the rest of the job's
/// plan) are kept, except those inside the script, which move into the
/// new jobs' copies of the lines they edit; `call_edits` (one per call,
/// may be empty) are applied to each call's line in its new job, and
/// `prefix` lines start every new script.
pub fn split_job(
    p: &Pipeline,
    k: &KanikoJob,
    edits: Vec<FileEdit>,
    call_edits: &[FileEdit],
    prefix: &[String],
) -> Result<Vec<FileEdit>, String> {
    let job = k.job;
    check_separable(p, k)?;
    let Some((file, seq)) = super::rewrite::section_seq(p, job, Section::Script) else {
        return Err("its `script:` is not a list written in the job".into());
    };
    let f = &p.files[file];
    let Value::Seq(items) = &seq.value else {
        unreachable!("section_seq returns sequences")
    };
    let script = job.config.get("script").expect("section_seq found it");
    if file != job.file || script.origin.owner.as_deref() != Some(job.name.as_str()) {
        return Err("its `script:` is written in another job or template".into());
    }
    if job
        .script
        .iter()
        .any(|l| l.origin.owner.as_deref() != Some(job.name.as_str()) || l.origin.file != file)
    {
        return Err("its script splices lines from an anchor or `!reference`".into());
    }
    let call_items = call_items(k, items)?;
    let taken: HashSet<String> = p.jobs.iter().map(|j| j.name.clone()).collect();
    let parts: Vec<CallName> = k
        .calls
        .iter()
        .map(|c| CallName::of(&c.conversion.plan))
        .collect();
    let names = names(&job.name, &parts, &taken);

    let src = &f.text;
    let mut out: Vec<FileEdit> = Vec::new();
    // The job becomes the template, without its script.
    out.push((
        file,
        Edit::replace(job.key_span.clone(), key_text(&names.template)),
    ));
    let script_entry = yaml_edit::entry_of(f, &seq.span)
        .ok_or("script entry not found")?
        .1;
    if seq.as_seq().is_some_and(|s| s.flow)
        || !items.items.iter().all(|i| {
            src[line_start(src, i.span.start)..i.span.start]
                .trim()
                .is_empty()
        })
    {
        return Err("its script is not a block list with one item per line".into());
    }
    let deletion = yaml_edit::delete_lines(f, &script_entry.span);
    let script_range = deletion.range.clone();
    out.push((file, deletion));
    // The plan's edits inside the script go with the lines into the new
    // jobs; the others stay.
    let (in_script, kept): (Vec<FileEdit>, Vec<FileEdit>) = edits
        .into_iter()
        .partition(|(i, e)| *i == file && within(&e.range, &script_range));
    out.extend(kept);
    let mut copy = ScriptCopy {
        f,
        items: &items.items,
        call_items,
        placed: vec![false; in_script.len()],
        in_script,
        call_edits,
        script_range,
    };

    // New jobs after the template.
    let key_col = yaml_edit::column(src, job.key_span.start);
    let body_col = yaml_edit::column(src, script_entry.key.span.start);
    let text = copy.new_jobs(&names, prefix, key_col, body_col)?;
    out.push((file, insert_after(f, job.entry_span.end, text)));
    out.extend(retarget_users(p, k, &names.jobs)?);
    Ok(out)
}

/// Refuses a job whose builds cannot be told apart or moved: a template,
/// calls nested in a loop or conditional or outside `script`, or a job
/// another one extends.
fn check_separable(p: &Pipeline, k: &KanikoJob) -> Result<(), String> {
    let job = k.job;
    if job.hidden {
        return Err("it is a hidden template; split the jobs that use it".into());
    }
    if let Some(c) = k
        .calls
        .iter()
        .find(|c| c.exec.command.nesting != Nesting::TopLevel)
    {
        let what = if c.exec.command.nesting == Nesting::Loop {
            "a loop"
        } else {
            "a conditional"
        };
        return Err(format!(
            "a call sits inside {what}, so the builds cannot be separated automatically"
        ));
    }
    if k.calls.iter().any(|c| c.exec.section != Section::Script) {
        return Err("a call is in `before_script`/`after_script`".into());
    }
    if let Some(user) = p
        .jobs
        .iter()
        .find(|j| j.extends.iter().any(|e| e.value == job.name))
    {
        return Err(format!(
            "job `{}` extends it, and would lose its script",
            user.name
        ));
    }
    Ok(())
}

/// Which item of the script holds each call (one call per item).
fn call_items(k: &KanikoJob, items: &Seq) -> Result<Vec<usize>, String> {
    let mut call_items = Vec::new();
    for c in &k.calls {
        let item = items
            .items
            .iter()
            .position(|i| i.span.start <= c.span.start && c.span.end <= i.span.end)
            .ok_or("a call is not inside one script item")?;
        if call_items.contains(&item) {
            return Err("two calls share one script line".into());
        }
        call_items.push(item);
    }
    Ok(call_items)
}

/// A job name as a mapping key.
fn key_text(name: &str) -> String {
    if plain_safe(name, false) {
        name.to_string()
    } else {
        scalar(name, Quote::Double, false)
    }
}

/// Inserts `text` (new jobs, each opening with a line break) after the
/// line that ends at `end` and its line break.
fn insert_after(f: &SourceFile, end: usize, text: String) -> Edit {
    let (src, nl) = (&f.text, f.line_ending.as_str());
    let end = line_end(src, end);
    let (at, text) = if src[end..].starts_with(nl) || src[end..].starts_with('\n') {
        let brk = if src[end..].starts_with("\r\n") { 2 } else { 1 };
        (end + brk, text.trim_end_matches(nl).to_string() + nl)
    } else {
        (end, text.trim_end_matches(nl).to_string())
    };
    Edit::insert(at, text)
}

/// The script's items, copied into the new jobs with the edits in them.
struct ScriptCopy<'a> {
    f: &'a SourceFile,
    items: &'a [Item],
    /// Which item holds each call.
    call_items: Vec<usize>,
    /// The plan's edits inside the script, and whether each has a place
    /// in a new job.
    in_script: Vec<FileEdit>,
    placed: Vec<bool>,
    call_edits: &'a [FileEdit],
    /// What deleting the script removes.
    script_range: Span,
}

impl ScriptCopy<'_> {
    /// The text of the new jobs (keys at `key_col`, their bodies at
    /// `body_col`): each extends the template, and its script is `prefix`
    /// then the script's items, of its own call only.
    fn new_jobs(
        &mut self,
        names: &SplitNames,
        prefix: &[String],
        key_col: usize,
        body_col: usize,
    ) -> Result<String, String> {
        let f = self.f;
        let (src, nl) = (&f.text, f.line_ending.as_str());
        let item_pad = " ".repeat(yaml_edit::column(src, self.items[0].span.start));
        let (kpad, bpad) = (" ".repeat(key_col), " ".repeat(body_col));
        let mut text = String::new();
        for (ci, name) in names.jobs.iter().enumerate() {
            text.push_str(&format!(
                "{nl}{kpad}{}:{nl}{bpad}extends: {}{nl}{bpad}script:",
                key_text(name),
                scalar(&names.template, Quote::Plain, false)
            ));
            for line in prefix {
                text.push_str(&format!(
                    "{nl}{item_pad}- {}",
                    scalar(line, Quote::Plain, false)
                ));
            }
            for ii in 0..self.items.len() {
                if let Some(piece) = self.item_in_job(ii, ci)? {
                    text.push_str(nl);
                    text.push_str(&piece);
                }
            }
            text.push_str(nl);
        }
        if self.placed.contains(&false) {
            return Err("a fix edits the script between its lines".into());
        }
        Ok(text)
    }

    /// Item `ii` as written in the new job of call `ci`, its edits applied
    /// (`None`: another call's item, or one a fix deletes).
    fn item_in_job(&mut self, ii: usize, ci: usize) -> Result<Option<String>, String> {
        let (f, item) = (self.f, &self.items[ii]);
        let (src, nl) = (&f.text, f.line_ending.as_str());
        let call = self.call_items.iter().position(|x| *x == ii);
        if call.is_some_and(|owner| owner != ci) {
            return Ok(None);
        }
        let start = line_start(src, item.span.start);
        let end = line_end(src, item.span.end);
        // The item's lines with their line break: what deleting it takes.
        let lines = start..self.script_range.end.min(end + nl.len());
        let mut local = Vec::new();
        let mut deleted = false;
        for (n, (_, e)) in self.in_script.iter().enumerate() {
            let at_item_start = e.range.start == start && e.range.is_empty();
            if !(within(&e.range, &lines) || at_item_start) {
                continue;
            }
            self.placed[n] = true;
            if e.text.is_empty() && e.range.start <= start && e.range.end >= end {
                deleted = true;
            } else if e.range.end > end {
                return Err("an edit of a script line reaches past its item".into());
            } else {
                local.push(Edit::replace(
                    e.range.start - start..e.range.end - start,
                    e.text.clone(),
                ));
            }
        }
        if let Some((_, e)) = call.and_then(|owner| self.call_edits.get(owner)) {
            if e.range.start < start || e.range.end > end {
                return Err("a call's rewrite reaches outside its script item".into());
            }
            local.push(Edit::replace(
                e.range.start - start..e.range.end - start,
                e.text.clone(),
            ));
        }
        if deleted {
            return Ok(None);
        }
        let piece = apply(whole_lines(f, &item.span), &local)
            .map_err(|_| "two fixes edit one script line differently")?;
        Ok(Some(piece))
    }
}

/// Keeps the job graph valid: each `needs:`/`dependencies:` naming the
/// split job names every new job instead.
fn retarget_users(p: &Pipeline, k: &KanikoJob, jobs: &[String]) -> Result<Vec<FileEdit>, String> {
    let job = k.job;
    let mut out = Vec::new();
    for other in &p.jobs {
        for r in other.needs.iter().chain(&other.dependencies) {
            if r.value != job.name {
                continue;
            }
            let rf = &p.files[r.origin.file];
            out.push((
                r.origin.file,
                retarget(rf, &r.origin.span, jobs).ok_or_else(|| {
                    format!(
                        "job `{}` names it in a form kmigrate cannot update",
                        other.name
                    )
                })?,
            ));
        }
    }
    Ok(out)
}

/// Whether `inner` lies within `outer`; an insertion at either end of
/// `outer` lies outside it.
fn within(inner: &Span, outer: &Span) -> bool {
    outer.start <= inner.start
        && inner.end <= outer.end
        && !(inner.is_empty() && (inner.start == outer.start || inner.start == outer.end))
}

/// The edit that makes the `needs:`/`dependencies:` entry whose job name
/// is written at `name_span` name every job of `jobs` instead: `- a` becomes
/// one item per job, `{job: a, artifacts: true}` one copy per job.
fn retarget(f: &SourceFile, name_span: &Span, jobs: &[String]) -> Option<Edit> {
    let src = &f.text;
    let nl = f.line_ending.as_str();
    // The item is the name itself, or a mapping holding `job: name`.
    let (seq, idx) = yaml_edit::seq_of(f, name_span).or_else(|| {
        let (map, _) = yaml_edit::entry_of(f, name_span)?;
        yaml_edit::seq_of(f, &map.span)
    })?;
    let Value::Seq(s) = &seq.value else {
        return None;
    };
    let item = &s.items[idx];
    let (range, text) = if s.flow {
        (
            item.node.full_span.clone(),
            &src[item.node.full_span.clone()],
        )
    } else {
        let r = line_start(src, item.span.start)..line_end(src, item.span.end);
        (r.clone(), &src[r])
    };
    if name_span.start < range.start || name_span.end > range.end {
        return None;
    }
    let local = name_span.start - range.start..name_span.end - range.start;
    let copies: Vec<String> = jobs
        .iter()
        .map(|j| {
            let mut t = text.to_string();
            t.replace_range(local.clone(), j);
            t
        })
        .collect();
    let sep = if s.flow {
        ", ".to_string()
    } else {
        nl.to_string()
    };
    Some(Edit::replace(range, copies.join(&sep)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_in_every_form_name_the_new_jobs() {
        let src = "a:\n  needs:\n    - build\n    - job: build\n      artifacts: false\n  dependencies: [build, x]\n";
        let f = SourceFile::from_text(std::path::Path::new("t.yml"), src.into()).unwrap();
        let jobs = ["build-a".to_string(), "build-b".to_string()];
        let mut edits = Vec::new();
        for (at, _) in src.match_indices("build") {
            edits.push(retarget(&f, &(at..at + 5), &jobs).unwrap());
        }
        assert_eq!(
            apply(src, &edits).unwrap(),
            "a:\n  needs:\n    - build-a\n    - build-b\n    - job: build-a\n      artifacts: false\n    - job: build-b\n      artifacts: false\n  dependencies: [build-a, build-b, x]\n"
        );
    }

    fn call(image: Option<&str>, target: Option<&str>, dockerfile: Option<&str>) -> CallName {
        CallName {
            image: image.map(String::from),
            suffixes: [target.map(String::from), dockerfile.map(String::from), None],
        }
    }

    #[test]
    fn names_follow_the_documented_rule() {
        let taken: HashSet<String> = ["build-images", "build-images-image-b"]
            .map(String::from)
            .into();
        let n = names(
            "build-images",
            &[
                call(Some("image-a"), None, None),
                call(Some("image-b"), None, None),
                call(None, None, None),
            ],
            &taken,
        );
        assert_eq!(n.template, ".build-images");
        // A name an existing job has is avoided.
        assert_eq!(
            n.jobs,
            [
                "build-images-image-a",
                "build-images-image-b-2",
                "build-images-3"
            ]
        );
        // Two calls building one image: the target, else the Dockerfile's
        // directory tells them apart, not a number.
        let n = names(
            "images",
            &[
                call(Some("api"), Some("test"), Some("api")),
                call(Some("api"), Some("release"), Some("api")),
                call(Some("web"), None, None),
            ],
            &HashSet::new(),
        );
        assert_eq!(n.template, ".images");
        assert_eq!(
            n.jobs,
            ["images-api-test", "images-api-release", "images-web"]
        );
        let n = names(
            "images",
            &[
                call(Some("api"), Some("x"), Some("v1")),
                call(Some("api"), None, Some("v2")),
            ],
            &HashSet::new(),
        );
        assert_eq!(n.jobs, ["images-api-v1", "images-api-v2"]);
        assert_eq!(
            image_part("registry.example.com:5000/team/web@sha256:abc"),
            Some("web".into())
        );
    }

    #[test]
    fn call_names_read_the_plan() {
        let plan = crate::buildx::parse_build_args(
            &[
                "--tag",
                "$CI_REGISTRY_IMAGE/api:1",
                "--file",
                "docker/Dockerfile.prod",
                "--target",
                "runtime",
                "services/api",
            ]
            .map(String::from),
        )
        .unwrap();
        assert_eq!(
            CallName::of(&plan),
            CallName {
                image: Some("api".into()),
                suffixes: [
                    Some("runtime".into()),
                    Some("docker".into()),
                    Some("api".into())
                ],
            }
        );
    }
}
