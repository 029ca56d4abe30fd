//! Jenkins pipelines (`Jenkinsfile`, `Jenkinsfile.*`, `*.jenkinsfile`, and
//! `*.groovy` under a `jenkins` directory): executor calls in `sh` steps
//! (read by the shell lexer, so comments and `echo` never count) and Kaniko
//! images in `containerTemplate(image: …)` or a pod template's YAML string.
//! Detection and manual tasks only: a Groovy file is not rewritten. A
//! Jenkinsfile is Groovy, not YAML: it is read as text (its source has no
//! tree), and `// kmigrate: ignore[KM001]` on the line or the line above
//! silences a finding.

use std::ops::Range;
use std::path::Path;

use super::container::findings::ROOTLESS_SETUP;
use super::container::{BUILDKIT_ROOTLESS, ScriptCall};
use crate::buildx::from_kaniko::{self, ConvertOptions};
use crate::buildx::notes::note_findings;
use crate::kaniko::call::{self, Arg};
use crate::kaniko::{ImageKind, match_image};
use crate::options::Options;
use crate::platform::gitlab::target::buildctl_words;
use crate::readback::extract::{Extracted, Inputs, Kind};
use crate::rules::{Finding, Rule};
use crate::shell;
use crate::source::{Node, SourceError, SourceFile};

/// Whether `path` is named like a Jenkins pipeline.
pub fn is_jenkins_name(path: &Path) -> bool {
    let name = crate::platform::lowercase_file_name(path);
    let yaml = name.ends_with(".yml") || name.ends_with(".yaml");
    name == "jenkinsfile"
        || (name.starts_with("jenkinsfile.") && !yaml)
        || name.ends_with(".jenkinsfile")
        || (name.ends_with(".groovy") && {
            let cwd = std::env::current_dir().unwrap_or_default();
            under_jenkins_dir(path, &cwd)
        })
}

/// Whether a directory of `path` has `jenkins` in its name, counting only
/// the directories below `cwd` when the path lies under it: a checkout in
/// a Jenkins agent's workspace (`/var/lib/jenkins/workspace/app`) does not
/// make every Groovy file of the project a pipeline.
fn under_jenkins_dir(path: &Path, cwd: &Path) -> bool {
    let path = if path.is_absolute() {
        path.strip_prefix(cwd).unwrap_or(path)
    } else {
        path
    };
    path.ancestors().skip(1).any(|a| {
        a.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.to_ascii_lowercase().contains("jenkins"))
    })
}

/// A Groovy string literal: its content and where the content is.
struct Literal<'t> {
    text: &'t str,
    span: Range<usize>,
    /// The literal is the script of an `sh` step.
    sh: bool,
}

/// Every string literal of a Groovy text, comments skipped; `sh` marks
/// the ones an `sh` step runs (`sh '…'`, `sh """…"""`, `sh(script: '…')`).
fn literals(text: &str) -> Vec<Literal<'_>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            i = text[i..].find('\n').map_or(b.len(), |n| i + n);
            continue;
        }
        if b[i..].starts_with(b"/*") {
            i = text[i + 2..].find("*/").map_or(b.len(), |n| i + 2 + n + 2);
            continue;
        }
        if b[i] == b'\'' || b[i] == b'"' {
            let quote = b[i];
            let triple = b[i..].starts_with(&[quote; 3]);
            let open = if triple { 3 } else { 1 };
            let start = i + open;
            let mut j = start;
            let end = loop {
                if j >= b.len() {
                    break b.len();
                }
                if b[j] == b'\\' {
                    j += 2;
                    continue;
                }
                if triple && b[j..].starts_with(&[quote; 3]) {
                    break j;
                }
                if !triple && (b[j] == quote || b[j] == b'\n') {
                    break j;
                }
                j += 1;
            };
            let end = end.min(b.len());
            out.push(Literal {
                text: &text[start..end],
                span: start..end,
                sh: is_sh_argument(&text[..i]),
            });
            i = (end + open).min(b.len());
            continue;
        }
        i += 1;
    }
    out
}

/// Whether the text before a literal ends with `sh`, `sh(` or
/// `sh(script:` (spaces allowed).
fn is_sh_argument(before: &str) -> bool {
    let t = before.trim_end();
    let t = t.strip_suffix("script:").map_or(t, str::trim_end);
    let t = t.strip_suffix('(').map_or(t, str::trim_end);
    t.strip_suffix("sh").is_some_and(|r| {
        r.chars()
            .last()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.'))
    })
}

/// The executor calls in the file's `sh` steps.
pub fn calls(text: &str) -> Vec<ScriptCall> {
    let mut out = Vec::new();
    for lit in literals(text).into_iter().filter(|l| l.sh) {
        for cmd in shell::parse(lit.text).commands {
            let Some((at, program)) = cmd.program() else {
                continue;
            };
            if program.literal().as_deref() != Some("/kaniko/executor") {
                continue;
            }
            let to_file = |r: &Range<usize>| lit.span.start + r.start..lit.span.start + r.end;
            let args = cmd.words[at + 1..]
                .iter()
                .map(|w| Arg::from_word(w, to_file(&w.span)))
                .collect();
            out.push(ScriptCall {
                call: call::parse(args),
                span: to_file(&cmd.span),
            });
        }
    }
    out
}

/// A Kaniko image named in the file: `image: '…'` (a `containerTemplate`
/// argument) or an `image:` line of a pod template's YAML string.
pub struct ImageUse {
    pub reference: String,
    pub span: Range<usize>,
    pub name: &'static str,
}

/// Every Kaniko executor image the file names.
pub fn images(text: &str) -> Vec<ImageUse> {
    let mut out = Vec::new();
    let lits = literals(text);
    let mut push = |reference: &str, span: Range<usize>| {
        if let Some(m) = match_image(reference).filter(|m| m.kind == ImageKind::Executor) {
            out.push(ImageUse {
                reference: reference.to_string(),
                span,
                name: m.name,
            });
        }
    };
    for (k, lit) in lits.iter().enumerate() {
        if lit.sh {
            continue;
        }
        // `image: 'ref'` as a Groovy named argument.
        let prev_end = k.checked_sub(1).map_or(0, |p| lits[p].span.end);
        let quote_at = lit.span.start.saturating_sub(1);
        let before = text[prev_end.min(quote_at)..quote_at].trim_end();
        if before.ends_with("image:") && !lit.text.contains('\n') {
            push(lit.text.trim(), lit.span.clone());
            continue;
        }
        // `image: ref` lines of a YAML string.
        let mut offset = lit.span.start;
        for line in lit.text.split_inclusive('\n') {
            let body = line.trim_end_matches(['\n', '\r']);
            let t = body.trim_start();
            let t = t.strip_prefix("- ").map_or(t, str::trim_start);
            if let Some(v) = t.strip_prefix("image:") {
                let v = v.trim().trim_matches(['"', '\'']);
                if let Some(at) = body.find(v).filter(|_| !v.is_empty()) {
                    push(v, offset + at..offset + at + v.len());
                }
            }
            offset += line.len();
        }
    }
    out
}

/// Whether a `// kmigrate: ignore[…RULE…]` comment is on `line` (1-based)
/// or the line above.
fn ignored(source: &SourceFile, offset: usize, rule: Rule) -> bool {
    let (line, _) = source.position(offset);
    let id = rule.to_string();
    (line.saturating_sub(1).max(1)..=line).any(|l| {
        let start = source.line_start(l);
        let end = source.text[start..]
            .find('\n')
            .map_or(source.text.len(), |n| start + n);
        let t = &source.text[start..end];
        t.find("// kmigrate: ignore[").is_some_and(|at| {
            let rest = &t[at + "// kmigrate: ignore[".len()..];
            rest.split(']')
                .next()
                .is_some_and(|ids| ids.split(',').any(|r| r.trim() == id))
        })
    })
}

fn convert_options(opts: &Options) -> ConvertOptions<'_> {
    ConvertOptions {
        cache_tag: &opts.cache_tag,
        workdir: "/workspace",
        default_context: "/workspace",
        local_workdir: None,
    }
}

/// Every Jenkins finding in `source`.
pub fn findings(source: &SourceFile, opts: &Options) -> Vec<Finding> {
    let mut out = Vec::new();
    for img in images(&source.text) {
        out.push(
            Finding::new(
                Rule::Km001,
                img.span.clone(),
                format!(
                    "the pod template {}",
                    crate::kaniko::runs_image(&img.reference, img.name)
                ),
            )
            .with_help(format!(
                "not rewritten automatically (a Jenkinsfile is not rewritten): give the pod template a container of image `{BUILDKIT_ROOTLESS}` instead, with {ROOTLESS_SETUP}, and run `buildctl-daemonless.sh build` in its `container(…)` block where the executor was called"
            )),
        );
    }
    for c in calls(&source.text) {
        let conversion = from_kaniko::convert(&c.call, &convert_options(opts));
        let translated = if conversion.is_blocked() {
            "(a flag has no translation: see the KM012 finding)".to_string()
        } else {
            match buildctl_words(&conversion.plan) {
                Ok(w) => format!("`{}`", w.join(" ")),
                Err(why) => format!("(no buildctl form: {why})"),
            }
        };
        out.push(
            Finding::new(Rule::Km001, c.span.clone(), format!("an `sh` step {}", crate::kaniko::RUNS_EXECUTOR))
                .with_help(format!(
                    "not rewritten automatically (a Jenkinsfile is not rewritten): run the build in a container of image `{BUILDKIT_ROOTLESS}` (with {ROOTLESS_SETUP} in the pod template) as {translated}"
                )),
        );
        out.extend(note_findings(&c.call.args, &conversion, &c.span, None));
    }
    // `// kmigrate: ignore[KM001]`: YAML-comment ignores do not apply to
    // Groovy, so the platform honours its own (an ignored build takes its
    // flag notes with it).
    let silenced: Vec<Range<usize>> = out
        .iter()
        .filter(|f| f.rule == Rule::Km001 && ignored(source, f.span.start, Rule::Km001))
        .map(|f| f.span.clone())
        .collect();
    out.retain(|f| {
        !silenced
            .iter()
            .any(|s| s.start <= f.span.start && f.span.end <= s.end)
            && !ignored(source, f.span.start, f.rule)
    });
    out
}

/// Jenkins behind the platform interface.
pub struct Support;

impl crate::platform::PlatformSupport for Support {
    fn cli_name(&self) -> &'static str {
        "jenkins"
    }

    fn display_name(&self) -> &'static str {
        "Jenkins"
    }

    fn unit(&self) -> &'static str {
        "step"
    }

    fn matches_path(&self, path: &Path) -> bool {
        is_jenkins_name(path)
    }

    /// A Jenkinsfile has no YAML tree to recognise.
    fn matches_content(&self, _root: &Node) -> bool {
        false
    }

    fn self_contained(&self, _path: &Path, _text: &[u8]) -> bool {
        true
    }

    fn findings(&self, source: &SourceFile, opts: &Options) -> Result<Vec<Finding>, SourceError> {
        Ok(findings(source, opts))
    }

    fn unit_spans(&self, source: &SourceFile) -> Vec<Range<usize>> {
        let mut spans: Vec<Range<usize>> =
            images(&source.text).into_iter().map(|i| i.span).collect();
        spans.extend(calls(&source.text).into_iter().map(|c| c.span));
        spans
    }

    fn kaniko_flags(&self, source: &SourceFile) -> Vec<&'static crate::kaniko::FlagSpec> {
        calls(&source.text)
            .into_iter()
            .flat_map(|c| c.call.uses.into_iter().map(|u| u.spec))
            .collect()
    }

    fn extract(&self, path: &Path, text: &str, inputs: &Inputs) -> Result<Vec<Extracted>, String> {
        let source = SourceFile::from_text(path, text.to_string()).map_err(|e| e.message)?;
        let opts = Options::default();
        let mut out = Vec::new();
        for c in calls(text) {
            let mut conv = from_kaniko::convert(&c.call, &convert_options(&opts));
            if let Some(rest) = conv.plan.context.strip_prefix("/workspace") {
                conv.plan.context = inputs
                    .context_dir
                    .join(rest.trim_start_matches('/'))
                    .display()
                    .to_string();
            }
            let (line, _) = source.position(c.span.start);
            out.push(Extracted::read(
                format!("`sh` step at line {line}"),
                format!("{}:{line}", path.display()),
                Kind::Kaniko,
                Some(conv.plan),
                None,
                conv.notes.into_iter().map(|n| n.message).collect(),
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for (p, yes) in [
            ("Jenkinsfile", true),
            ("ci/Jenkinsfile.release", true),
            ("build.jenkinsfile", true),
            ("jenkins/pipelines/build.groovy", true),
            ("src/main/Foo.groovy", false),
            ("Jenkinsfile.yaml", false),
        ] {
            assert_eq!(is_jenkins_name(Path::new(p)), yes, "{p}");
        }
    }

    #[test]
    fn a_jenkins_directory_above_the_current_one_does_not_count() {
        let cwd = Path::new("/var/lib/jenkins/workspace/app");
        for (p, yes) in [
            ("/var/lib/jenkins/workspace/app/src/main/Foo.groovy", false),
            ("/var/lib/jenkins/workspace/app/jenkins/build.groovy", true),
            ("src/main/Foo.groovy", false),
            ("jenkins/build.groovy", true),
            // Outside the current directory every name counts.
            ("/srv/jenkins-lib/vars/build.groovy", true),
        ] {
            assert_eq!(under_jenkins_dir(Path::new(p), cwd), yes, "{p}");
        }
    }

    #[test]
    fn sh_steps_only_and_never_comments_or_echo() {
        let text = "// sh '/kaniko/executor --destination=a'\n/* sh \"/kaniko/executor\" */\nsh 'echo /kaniko/executor'\necho '/kaniko/executor --x'\nsh '''\n  /kaniko/executor --destination=r/a:1 \\\n    --cache=true\n'''\nsh(script: \"/kaniko/executor --destination=r/b:1\")\n";
        let found: Vec<String> = calls(text)
            .iter()
            .map(|c| c.call.values("destination").join(","))
            .collect();
        assert_eq!(found, ["r/a:1", "r/b:1"]);
    }

    #[test]
    fn images_in_container_templates_and_pod_yaml() {
        let text = "podTemplate(containers: [containerTemplate(name: 'kaniko', image: 'gcr.io/kaniko-project/executor:v1.23.2-debug', command: 'sleep')], yaml: '''\nspec:\n  containers:\n  - name: k\n    image: gcr.io/kaniko-project/executor:debug\n  - name: git\n    image: alpine/git\n''')\n";
        let found: Vec<String> = images(text).into_iter().map(|i| i.reference).collect();
        assert_eq!(
            found,
            [
                "gcr.io/kaniko-project/executor:v1.23.2-debug",
                "gcr.io/kaniko-project/executor:debug"
            ]
        );
    }
}
