//! `kmigrate rewrite PATH…`: apply every fix, in place or as a diff.
//!
//! Directories are walked as `kmigrate check` walks them (see
//! [`crate::discover`]); `-` rewrites stdin to stdout.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::Args;

use super::ExitStatus;
use super::diagnostic;
use super::exit::exit_if_broken_pipe;
use crate::engine;
use crate::options::Options;
use crate::platform::Platform;
use crate::report::terminal::{escape, escape_inline};
use crate::rules::{Finding, Rule, Severity};
use crate::source::SourceFile;

/// Rewrite Kaniko steps to docker buildx.
#[derive(Debug, Args)]
pub struct RewriteArgs {
    /// Files or directories to rewrite; directories are walked like
    /// `kmigrate check` walks them. `-` reads stdin and prints the result.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Print a unified diff instead of writing.
    #[arg(long, conflicts_with_all = ["check", "stdout"])]
    pub diff: bool,
    /// Write nothing; exit 1 if a rewrite would change a file.
    #[arg(long, conflicts_with = "stdout")]
    pub check: bool,
    /// Print the rewritten text to stdout instead of writing.
    #[arg(long)]
    pub stdout: bool,
    /// Treat every file as this platform instead of detecting it.
    #[arg(long, value_enum)]
    pub platform: Option<Platform>,
    /// The file name stdin (`-`) is rewritten as and detected by.
    #[arg(long, value_name = "PATH")]
    pub stdin_filename: Option<PathBuf>,
    // The rules whose fixes are applied.
    #[command(flatten)]
    pub rules: super::check::RuleSelection,
    /// Errors only on stderr: no per-file summary or notes.
    #[arg(short, long)]
    pub quiet: bool,
    /// Name of the docker-container builder to create and use
    /// [default: `rewrite.builder` in kmigrate.toml, else kmigrate].
    #[arg(long)]
    pub builder: Option<String>,
    /// Tag of the registry cache (`<cache repo>:<tag>`)
    /// [default: `rewrite.cache_tag` in kmigrate.toml, else buildcache].
    #[arg(long)]
    pub cache_tag: Option<String>,
    /// GitLab target: buildx (docker-in-docker), buildkit (rootless), buildah (vfs, chroot), fork
    /// (a maintained Kaniko fork, no runner change) or split (keep Kaniko, split multi-build
    /// jobs) [default: `rewrite.gitlab_target` in kmigrate.toml, else buildx].
    #[arg(long, value_enum)]
    pub gitlab_target: Option<crate::platform::gitlab::target::Target>,
    /// Cloud Build target: buildx or fork (a maintained Kaniko fork, image and version from
    /// `rewrite.fork_image`/`fork_version`) [default: `rewrite.cloudbuild_target` in
    /// kmigrate.toml, else buildx].
    #[arg(long, value_enum)]
    pub cloudbuild_target: Option<crate::options::CloudbuildTarget>,
    /// GitHub Actions: where the rewritten build keeps its cache: registry (the Kaniko step's
    /// cache repository, `mode=max`) or gha (GitHub's cache service) [default:
    /// `rewrite.github_cache` in kmigrate.toml, else registry].
    #[arg(long, value_enum)]
    pub github_cache: Option<crate::options::GithubCache>,
    /// GitLab: do not split jobs that build several images (buildx/buildkit targets)
    /// [default: `rewrite.split` in kmigrate.toml, else split].
    #[arg(long)]
    pub no_split: bool,
    /// GitLab: Docker version of the `docker:<ver>-cli` / `docker:<ver>-dind` images
    /// [default: `rewrite.docker_version` in kmigrate.toml, else 28.5].
    #[arg(long)]
    pub docker_version: Option<String>,
    /// Configuration file (default: kmigrate.toml or .kmigrate.toml found
    /// upward from the first file).
    #[arg(long, value_name = "FILE", conflicts_with = "no_config")]
    pub config: Option<PathBuf>,
    /// Ignore any configuration file.
    #[arg(long)]
    pub no_config: bool,
    /// Rewrite steps even where `# kmigrate: ignore[KM001]` (or KM002/KM003)
    /// says to leave them.
    #[arg(long)]
    pub no_ignores: bool,
    /// Skip files that `paths.exclude` in kmigrate.toml excludes (for
    /// pre-commit, which passes every file).
    #[arg(long)]
    pub force_exclude: bool,
    /// Apply only the translations that keep each build's behaviour: a
    /// step or job whose rewrite changes it (KM011) stays as it is, with
    /// its finding.
    #[arg(long, alias = "only-safe")]
    pub only_exact: bool,
    /// Skip named files that are neither CI configs by name nor local
    /// includes of a GitLab pipeline (for pre-commit, which passes every
    /// YAML file).
    #[arg(long)]
    pub ci_files_only: bool,
}

/// What rewriting one file did, and what it has to say, printed by the
/// caller in the order the files were named.
#[derive(Default)]
struct Done {
    changed: bool,
    stdout: String,
    stderr: String,
}

/// Where the files' texts come from.
#[derive(Default)]
struct Inputs {
    /// Stdin's bytes (`-`), under the name they are rewritten as.
    stdin: Option<(PathBuf, Vec<u8>)>,
    /// Files a directory walk found (not named): like `check`, a walked
    /// file that cannot hold a finding is left alone unparsed, so a broken
    /// YAML file without Kaniko words is not an error.
    walked: HashSet<PathBuf>,
}

impl Inputs {
    /// The file to rewrite, or `None` for a walked file with nothing to do.
    fn load(&self, path: &Path, platform: Option<Platform>) -> Result<Option<SourceFile>, String> {
        let bytes = match &self.stdin {
            Some((name, bytes)) if name == path => bytes.clone(),
            _ => SourceFile::read(path).map_err(|e| e.to_string())?,
        };
        if self.walked.contains(path)
            && !crate::prefilter::must_parse(path, platform.or(Platform::from_path(path)), &bytes)
        {
            SourceFile::check_bytes(path, &bytes).map_err(|e| e.to_string())?;
            return Ok(None);
        }
        SourceFile::from_bytes(path, bytes)
            .map(Some)
            .map_err(|e| e.to_string())
    }
}

/// Exit codes: 0 done (or nothing to do), 1 with `--check` when a file
/// would change, 2 when a file could not be read, parsed or written, or a
/// named directory holds no CI file.
pub fn run(mut args: RewriteArgs) -> ExitStatus {
    let reads_stdin = args.files.iter().any(|p| p == Path::new("-"));
    if reads_stdin && args.files.len() > 1 {
        eprintln!("error: `-` (stdin) is rewritten alone; name the files in another run");
        return ExitStatus::Error;
    }
    if args.stdin_filename.is_some() && !reads_stdin {
        eprintln!("error: --stdin-filename needs `-` as the path");
        return ExitStatus::Error;
    }
    // Stdin is never written back: its result goes to stdout.
    if reads_stdin && !(args.diff || args.check) {
        args.stdout = true;
    }
    if args.check || args.diff || args.stdout {
        // Nothing is written: a pipeline checked for one of its included
        // files serves the others.
        crate::platform::gitlab::cache::enable();
    }
    let stdin_name = args
        .stdin_filename
        .clone()
        .unwrap_or_else(|| PathBuf::from("-"));
    // Stdin's configuration is looked up from the name it is rewritten as.
    let config_start = if reads_stdin {
        Some(stdin_name.as_path())
    } else {
        args.files.first().map(PathBuf::as_path)
    };
    let mut loaded =
        match super::check::load_config(args.config.as_deref(), args.no_config, config_start) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: {}", escape(&e.to_string()));
                return ExitStatus::Error;
            }
        };
    if let Err(status) = super::check::select_rules(&mut loaded, &args.rules) {
        return status;
    }
    let defaults = loaded.options();
    let opts = Options {
        builder: args.builder.clone().unwrap_or(defaults.builder.clone()),
        cache_tag: args.cache_tag.clone().unwrap_or(defaults.cache_tag.clone()),
        gitlab_target: args.gitlab_target.unwrap_or(defaults.gitlab_target),
        docker_version: args
            .docker_version
            .clone()
            .unwrap_or(defaults.docker_version.clone()),
        split: defaults.split && !args.no_split,
        cloudbuild_target: args.cloudbuild_target.unwrap_or(defaults.cloudbuild_target),
        github_cache: args.github_cache.unwrap_or(defaults.github_cache),
        ..defaults
    };
    let settings = super::check::Settings {
        config: loaded,
        platform: args.platform,
        no_ignores: args.no_ignores,
        // Every named file is analysed in full.
        prefilter: false,
    };
    let mut inputs = Inputs::default();
    let mut errored = false;
    let named: Vec<PathBuf> = if reads_stdin {
        match SourceFile::read_stream(&stdin_name, std::io::stdin().lock()) {
            Ok(bytes) => inputs.stdin = Some((stdin_name.clone(), bytes)),
            Err(e) => {
                eprintln!("error: {}", escape(&e.to_string()));
                return ExitStatus::Error;
            }
        }
        vec![stdin_name]
    } else {
        let mut named = args.files.clone();
        if args.force_exclude {
            let mut excluded = Vec::new();
            named.retain(|p| {
                let pattern = settings.config.excluded_by(p);
                if let Some(pattern) = pattern {
                    excluded.push((p.clone(), pattern.to_string()));
                }
                pattern.is_none()
            });
            if named.is_empty() && !args.quiet && !args.ci_files_only {
                super::check::warn_all_excluded(&excluded, &settings.config);
            }
        }
        if args.ci_files_only {
            named = crate::discover::ci_files_only(named);
        }
        let found = walk_directories(named, &args, &settings, &mut inputs);
        for e in &found.errors {
            eprintln!("error: {}", escape(&e.to_string()));
        }
        errored |= !found.errors.is_empty();
        match found.files {
            Some(files) => files,
            None => return ExitStatus::Error,
        }
    };
    let named: Vec<&PathBuf> = named.iter().collect();
    // Stdin is rewritten alone, whatever a pipeline read from it includes.
    let (files, covered) = if reads_stdin {
        (
            named.iter().map(|p| p.to_path_buf()).collect(),
            HashSet::new(),
        )
    } else {
        with_included(&named, &args, &settings)
    };
    let files: Vec<&PathBuf> = files.iter().collect();
    if let Err(refused) = preflight(&files, &args, &opts, &settings, &inputs) {
        for msg in refused {
            eprintln!("error: {}", escape(&msg));
        }
        return ExitStatus::Error;
    }
    let mut changed = false;
    let mut stdout = std::io::stdout().lock();
    let mut stdout_ok = true;
    crate::batch::in_order(
        &files,
        parallel_is_safe(&args, &files),
        |path| {
            let covered = covered.contains(*path);
            rewrite_one(
                path,
                &args,
                &opts,
                &settings,
                &inputs,
                covered,
                writes(&args),
            )
        },
        |result| match result {
            Ok(done) => {
                changed |= done.changed;
                if stdout_ok && let Err(e) = stdout.write_all(done.stdout.as_bytes()) {
                    exit_if_broken_pipe(&e);
                    eprintln!("error: cannot write to stdout: {e}");
                    (stdout_ok, errored) = (false, true);
                }
                if !args.quiet {
                    eprint!("{}", done.stderr);
                }
            }
            Err(msg) => {
                errored = true;
                eprintln!("error: {}", escape(&msg));
            }
        },
    );
    if stdout_ok && let Err(e) = stdout.flush() {
        exit_if_broken_pipe(&e);
        eprintln!("error: cannot write to stdout: {e}");
        errored = true;
    }
    if errored {
        ExitStatus::Error
    } else if args.check && changed {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    }
}

/// What a walk of the named directories gives: the files to rewrite, or
/// `None` after a usage error was reported; and the paths that could not be
/// read.
struct Walked {
    files: Option<Vec<PathBuf>>,
    errors: Vec<crate::source::SourceError>,
}

/// The named paths with each directory replaced by the CI files found in it
/// as `kmigrate check` finds them (`.gitignore`, `paths.exclude`, CI file
/// names; sorted), files in the order named. The walked files are noted in
/// `inputs`.
fn walk_directories(
    named: Vec<PathBuf>,
    args: &RewriteArgs,
    settings: &super::check::Settings,
    inputs: &mut Inputs,
) -> Walked {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for path in named {
        if !path.is_dir() {
            files.push(path);
            continue;
        }
        if args.stdout {
            eprintln!(
                "error: {} is a directory: --stdout prints one file; name the file, or use --diff",
                escape_inline(&path.display().to_string())
            );
            return Walked {
                files: None,
                errors,
            };
        }
        let found = crate::discover::discover(std::slice::from_ref(&path), &settings.config);
        // Asked to change files, finding none is most often a wrong path.
        if found.targets.is_empty() && found.errors.is_empty() {
            errors.push(
                crate::source::SourceError::new(&path, "is a directory with no CI file to rewrite")
                    .with_help(
                        "name the CI file itself, or a directory holding cloudbuild*.yaml|yml|json \
                         or .gitlab-ci.yml (.gitignore and paths.exclude apply)",
                    ),
            );
        }
        errors.extend(found.errors);
        for t in found.targets {
            inputs.walked.insert(t.path.clone());
            files.push(t.path);
        }
    }
    // A file reached twice (named and walked, or by two directories) is
    // rewritten once, under the name the user gave when they named it.
    let mut seen: HashSet<_> = files
        .iter()
        .filter(|p| !inputs.walked.contains(*p))
        .map(|p| crate::discover::file_key(p))
        .collect();
    files.retain(|p| !inputs.walked.contains(p) || seen.insert(crate::discover::file_key(p)));
    Walked {
        files: Some(files),
        errors,
    }
}

/// Whether this run writes files (not `--check`, `--diff` or `--stdout`).
fn writes(args: &RewriteArgs) -> bool {
    !(args.check || args.diff || args.stdout)
}

/// Before the first of several files is written, checks that every file
/// the rewrite would change can be replaced (see
/// [`crate::write::check_writable`]): a pipeline is migrated whole or not
/// at all, never left with its root file rewritten and an included file
/// not. Returns the message for each file that cannot be written.
///
/// The changes are found by a dry pass over the files as they are; a file
/// that cannot be read or parsed is reported by the real pass, as before.
fn preflight(
    files: &[&PathBuf],
    args: &RewriteArgs,
    opts: &Options,
    settings: &super::check::Settings,
    inputs: &Inputs,
) -> Result<(), Vec<String>> {
    if !writes(args) || files.len() < 2 {
        return Ok(());
    }
    let mut refused = Vec::new();
    crate::batch::in_order(
        files,
        true,
        |path| {
            let done = rewrite_one(path, args, opts, settings, inputs, false, false).ok()?;
            let blocked = done
                .changed
                .then(|| crate::write::check_writable(path).err())
                .flatten()?;
            Some(format!(
                "{}: cannot write: {blocked}; nothing was rewritten (every file is checked before \
                 the first is written)",
                path.display()
            ))
        },
        |msg| refused.extend(msg),
    );
    if refused.is_empty() {
        Ok(())
    } else {
        Err(refused)
    }
}

/// Whether the files can be rewritten in parallel with the same result as
/// one after another. Without writes they always can. With writes, a GitLab
/// file's analysis reads the files of its pipeline, which an earlier file's
/// rewrite may have changed, and a file named twice is rewritten twice; so
/// only distinct files that are Cloud Build configs by name (each
/// self-contained) are.
fn parallel_is_safe(args: &RewriteArgs, files: &[&PathBuf]) -> bool {
    if args.check || args.diff || args.stdout {
        return true;
    }
    let all_cloud_build = files
        .iter()
        .all(|p| args.platform.or(Platform::from_path(p)) == Some(Platform::CloudBuild));
    let mut seen = std::collections::HashSet::new();
    all_cloud_build
        && files
            .iter()
            .all(|p| seen.insert(crate::discover::file_key(p)))
}

/// The files to rewrite: the named ones, each GitLab pipeline
/// (`.gitlab-ci.yml`) followed by the files it includes locally (its jobs
/// are often defined there), each file once. Also the pipelines whose
/// every included file is in the list. With `--stdout` (one text out) only
/// the named files.
fn with_included(
    named: &[&PathBuf],
    args: &RewriteArgs,
    settings: &super::check::Settings,
) -> (Vec<PathBuf>, std::collections::HashSet<PathBuf>) {
    use crate::discover::{file_key, gitlab_local_includes, relative_to_cwd};
    use crate::platform::gitlab::include::is_pipeline_name;

    let mut seen: std::collections::HashSet<_> = named.iter().map(|p| file_key(p)).collect();
    let mut files = Vec::new();
    let mut covered = std::collections::HashSet::new();
    for path in named {
        files.push(path.to_path_buf());
        let gitlab = args.platform.or(Platform::from_path(path)) == Some(Platform::GitLab);
        if args.stdout || !gitlab || !is_pipeline_name(path) {
            continue;
        }
        let mut all_in = true;
        for included in gitlab_local_includes(path).files {
            if settings.config.is_excluded(&included) {
                all_in = false;
                continue;
            }
            if seen.insert(file_key(&included)) {
                files.push(relative_to_cwd(&included));
            }
        }
        if all_in {
            covered.insert(path.to_path_buf());
        }
    }
    (files, covered)
}

fn rewrite_one(
    path: &Path,
    args: &RewriteArgs,
    opts: &Options,
    settings: &super::check::Settings,
    inputs: &Inputs,
    includes_covered: bool,
    write: bool,
) -> Result<Done, String> {
    let Some(source) = inputs.load(path, args.platform)? else {
        return Ok(Done::default());
    };
    let platform = engine::platform_of(&source, args.platform).map_err(|e| e.to_string())?;
    let mut findings = engine::analyze(&source, platform, opts).map_err(|e| e.to_string())?;
    if includes_covered {
        // Its included files are rewritten in the same run.
        findings.retain(|f| {
            !(f.rule == Rule::Km014 && f.message.contains(crate::platform::gitlab::SHARED_FIX_NOTE))
        });
    }
    // Rule selection and inline ignores keep rewrite away from silenced builds.
    let mut findings = super::check::select(&source, findings, settings);
    if args.only_exact {
        engine::keep_exact_fixes(&mut findings);
    }
    let new_text = engine::apply_fixes(&source, &findings).map_err(|e| e.to_string())?;
    let display = path.display();

    // `--stdout` prints the file's own text (data for a pipe); everything
    // else on stdout and stderr is for people and is escaped.
    let mut stdout = String::new();
    if args.stdout {
        stdout = source.restore_line_endings(new_text.as_deref().unwrap_or(&source.text));
    } else if args.diff {
        if let Some(text) = &new_text {
            stdout = unified_diff(&source.text, text, &escape_inline(&display.to_string()));
        }
    } else if write && let Some(text) = &new_text {
        crate::write::replace_file(path, &source.restore_line_endings(text))
            .map_err(|e| format!("{display}: cannot write: {e}; the file is unchanged"))?;
    }
    Ok(Done {
        changed: new_text.is_some(),
        stderr: report(&source, platform, &findings, new_text.is_some(), args),
        stdout,
    })
}

/// The per-file summary and every finding the rewrite did not resolve, or
/// that the user must know about, for stderr.
fn report(
    source: &SourceFile,
    platform: Platform,
    findings: &[Finding],
    changed: bool,
    args: &RewriteArgs,
) -> String {
    let display = source.path.display().to_string();
    let display = escape_inline(&display);
    // Jobs are counted where their own finding is, as `check` names them
    // and `report` counts them; the part of a job's fix written in this
    // file for a job counted elsewhere is said apart.
    let (shared, fixed) = {
        let km001 = findings
            .iter()
            .filter(|f| f.rule == Rule::Km001 && f.fix.is_some());
        let shared = km001
            .clone()
            .filter(|f| crate::platform::gitlab::findings::is_part(f))
            .count();
        (shared, km001.count() - shared)
    };
    let driver = findings
        .iter()
        .filter(|f| f.rule == Rule::Km003 && f.fix.is_some())
        .count();
    let split = findings
        .iter()
        .filter(|f| {
            f.rule == Rule::Km002
                && f.fix.is_some()
                && !crate::platform::gitlab::findings::is_part(f)
        })
        .count();
    let unit = platform.support().unit();
    let verb = if args.check || args.diff || args.stdout {
        "would rewrite"
    } else {
        "rewrote"
    };
    let mut parts = Vec::new();
    if fixed > 0 {
        parts.push(format!(
            "{verb} {fixed} Kaniko {unit}{}",
            if fixed == 1 { "" } else { "s" }
        ));
    }
    if shared > 0 {
        parts.push(format!(
            "{verb} the part of {shared} Kaniko job{} written in this file",
            if shared == 1 { "" } else { "s" }
        ));
    }
    if split > 0 {
        parts.push(format!(
            "split {split} multi-build job{} into one job per image",
            if split == 1 { "" } else { "s" }
        ));
    }
    if driver > 0 {
        parts.push(format!(
            "moved {driver} cache export{} to a docker-container builder",
            if driver == 1 { "" } else { "s" }
        ));
    }
    let notes: Vec<&Finding> = findings
        .iter()
        // Findings the rewrite resolved are summarised above, not repeated.
        .filter(|f| !(f.rule.is_build() && f.fix.is_some()))
        .collect();
    let warnings = notes
        .iter()
        .filter(|f| f.severity >= Severity::Warning)
        .count();
    if !changed && parts.is_empty() {
        parts.push("nothing to rewrite".into());
    }
    if !notes.is_empty() {
        parts.push(format!(
            "{warnings} warning{}, {} note{}",
            if warnings == 1 { "" } else { "s" },
            notes.len() - warnings,
            if notes.len() - warnings == 1 { "" } else { "s" }
        ));
    }
    let mut out = format!("{display}: {}\n", parts.join("; "));
    if !notes.is_empty() {
        let owned: Vec<Finding> = notes.into_iter().cloned().collect();
        out.push_str(&diagnostic::render(
            source,
            &owned,
            diagnostic::use_color(std::io::stderr().is_terminal()),
            false,
        ));
    }
    out
}

fn unified_diff(old: &str, new: &str, name: &str) -> String {
    let (old_name, new_name) = crate::report::diff_headers(name);
    let diff = similar::TextDiff::from_lines(old, new);
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header(&old_name, &new_name)
        .to_string();
    // A comment may hold raw escape sequences: a diff is for reading, and
    // `--stdout` gives the exact text.
    let text = escape(&text).into_owned();
    if !diagnostic::use_color(std::io::stdout().is_terminal()) {
        return text;
    }
    text.lines()
        .map(|l| {
            if l.starts_with("+++") || l.starts_with("---") {
                format!("\x1b[1m{l}\x1b[0m\n")
            } else if l.starts_with('+') {
                format!("\x1b[32m{l}\x1b[0m\n")
            } else if l.starts_with('-') {
                format!("\x1b[31m{l}\x1b[0m\n")
            } else if l.starts_with("@@") {
                format!("\x1b[36m{l}\x1b[0m\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect()
}
