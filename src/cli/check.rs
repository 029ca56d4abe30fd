//! `kmigrate check [PATH…]`: the lint as users and CI run it.
//!
//! Paths are files or directories (walked, see [`crate::discover`]); `-`
//! reads stdin. Files are checked in parallel on every core; the report is
//! sorted by path, then position, so output never depends on scheduling.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use clap::Args;

use super::ExitStatus;
use super::exit::exit_if_broken_pipe;
use crate::batch;
use crate::config::{ConfigError, Loaded};
use crate::discover::{self, Target};
use crate::engine;
use crate::ignores;
use crate::platform::Platform;
use crate::report::terminal::{escape, escape_inline};
use crate::report::{self, FileResult, Format, Run, Tally, human, statistics};
use crate::rules::{Finding, Rule, RuleKind, Severity};
use crate::source::{SourceError, SourceFile};

const EXIT_CODES: &str = "\
Exit codes:
  0  no finding at or above --fail-on (or --exit-zero)
  1  at least one finding at or above --fail-on
  2  usage, configuration, read or parse error (the other files are still checked and reported)";

/// Lint CI files for archived-Kaniko usage.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct CheckArgs {
    /// Files or directories to check; `-` reads stdin. Directories are
    /// walked for cloudbuild*.yaml|yml|json and .gitlab-ci.yml, honouring
    /// .gitignore. Default: the current directory.
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
    /// Print how many findings each rule has instead of the findings (a
    /// table, or JSON with `--format json`).
    #[arg(long)]
    pub statistics: bool,
    /// Write the report to this file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Lowest severity that makes the exit code 1.
    #[arg(long, value_enum, default_value = "error", value_name = "SEVERITY")]
    pub fail_on: FailOn,
    /// Exit 0 even with findings (errors reading or parsing files still exit 2).
    #[arg(long)]
    pub exit_zero: bool,
    /// Treat every file as this platform instead of detecting it.
    #[arg(long, value_enum)]
    pub platform: Option<Platform>,
    /// The file name stdin (`-`) is reported under and detected by.
    #[arg(long, value_name = "PATH")]
    pub stdin_filename: Option<PathBuf>,
    /// Configuration file (default: kmigrate.toml or .kmigrate.toml found
    /// upward from the first path).
    #[arg(long, value_name = "FILE", conflicts_with = "no_config")]
    pub config: Option<PathBuf>,
    /// Ignore any configuration file.
    #[arg(long)]
    pub no_config: bool,
    /// Disregard `# kmigrate: ignore[...]` comments.
    #[arg(long)]
    pub no_ignores: bool,
    #[command(flatten)]
    pub rules: RuleSelection,
    /// No summary line on stderr (printed after human and concise output,
    /// and with `--output`).
    #[arg(short, long)]
    pub quiet: bool,
    /// Apply `paths.exclude` to files named on the command line too (for
    /// pre-commit and editors, which pass every file). When that leaves no
    /// file, a warning names the pattern (not with --ci-files-only).
    #[arg(long)]
    pub force_exclude: bool,
    /// Skip named files that are neither CI configs by name nor local
    /// includes of a GitLab pipeline (for pre-commit, which passes every
    /// YAML file).
    #[arg(long)]
    pub ci_files_only: bool,
}

/// `--select` and `--ignore`, shared by `check` (the findings reported) and
/// `rewrite` (the fixes applied).
#[derive(Debug, Args)]
pub struct RuleSelection {
    /// Only these rules (comma-separated; replaces `rules.select`).
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    pub select: Vec<String>,
    /// Never these rules (comma-separated; added to `rules.ignore`).
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    pub ignore: Vec<String>,
}

/// `--fail-on` levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    Error,
    Warning,
    Info,
}

impl From<FailOn> for Severity {
    fn from(f: FailOn) -> Severity {
        match f {
            FailOn::Error => Severity::Error,
            FailOn::Warning => Severity::Warning,
            FailOn::Info => Severity::Info,
        }
    }
}

/// Loads the configuration `--config` / `--no-config` / the upward search
/// select, then applies the command-line rule selection.
pub fn load_config(
    config: Option<&Path>,
    no_config: bool,
    first_path: Option<&Path>,
) -> Result<Loaded, ConfigError> {
    if no_config {
        return Ok(Loaded::default());
    }
    match config {
        Some(p) => Loaded::from_file(p),
        None => {
            let start = match first_path {
                Some(p) if p != Path::new("-") => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            Loaded::discover(&start)
        }
    }
}

/// Applies `--select` (replacing `rules.select`) and `--ignore` (added to
/// `rules.ignore`) to the configuration; an unknown id is a usage error.
pub fn select_rules(loaded: &mut Loaded, rules: &RuleSelection) -> Result<(), ExitStatus> {
    let parse = |ids: &[String]| -> Result<Vec<String>, String> {
        ids.iter()
            .map(|id| match id.parse::<Rule>() {
                Ok(rule) => Ok(rule.id().to_string()),
                // The id as the user wrote it, minus blanks and case.
                Err(_) => Err(id.trim().to_ascii_uppercase()),
            })
            .collect()
    };
    let (select, ignore) = match (parse(&rules.select), parse(&rules.ignore)) {
        (Ok(select), Ok(ignore)) => (select, ignore),
        (Err(id), _) | (_, Err(id)) => {
            eprintln!(
                "kmigrate: {}",
                crate::rules::UnknownRule(escape_inline(&id).into_owned())
            );
            return Err(ExitStatus::Error);
        }
    };
    if !select.is_empty() {
        loaded.config.rules.select = Some(select);
    }
    loaded.config.rules.ignore.extend(ignore);
    Ok(())
}

/// What a check run needs besides the files.
pub struct Settings {
    pub config: Loaded,
    pub platform: Option<Platform>,
    pub no_ignores: bool,
    /// Skip parsing files that [`crate::prefilter`] shows cannot have a
    /// finding (off where every file's tree is needed, as for `report`).
    pub prefilter: bool,
}

/// Checks one loaded file: engine findings, then [`select`].
pub fn check_source(
    source: &SourceFile,
    platform: Option<Platform>,
    settings: &Settings,
) -> Result<Vec<Finding>, SourceError> {
    let platform = engine::platform_of(source, settings.platform.or(platform))?;
    let opts = settings.config.options();
    let findings = engine::analyze(source, platform, &opts)?;
    Ok(select(source, findings, settings))
}

/// Rule selection, inline ignores (with KM020 for unused ones) and severity
/// overrides applied to a file's engine findings; sorted by position. This is
/// what both `check` reports and `rewrite` applies.
///
/// Silencing a build finding (an ignored or deselected KM001/KM002/KM003
/// with a fix) withholds its edits from every other fix, except the edits a
/// surviving build also needs (the shared builder setup), and drops the
/// fixable notes tied to it (a "flag removed" note about a step that stays
/// as it is). So `# kmigrate: ignore[KM001]` above a step keeps `rewrite`
/// away from that step even though its flag notes carry the same rewrite.
pub fn select(source: &SourceFile, findings: Vec<Finding>, settings: &Settings) -> Vec<Finding> {
    let config = &settings.config.config;
    let enabled = |rule: Rule| config.rule_enabled(rule);
    let (findings, mut dropped): (Vec<Finding>, Vec<Finding>) =
        findings.into_iter().partition(|f| enabled(f.rule));
    let mut findings = if settings.no_ignores {
        findings
    } else {
        let applied = ignores::apply(source, findings, &enabled);
        dropped.extend(applied.silenced);
        let mut kept = applied.kept;
        if enabled(ignores::UNUSED_IGNORE) {
            kept.extend(applied.unused);
        }
        kept
    };

    if dropped.iter().any(is_build) {
        withhold_edits(&mut findings, &dropped);
    }

    for f in &mut findings {
        f.severity = config.severity_of(f.rule, f.severity);
    }
    findings.sort_by(|a, b| {
        (a.span.start, a.span.end, a.rule).cmp(&(b.span.start, b.span.end, b.rule))
    });
    findings
}

/// A build finding (KM001-KM003) with its rewrite.
fn is_build(f: &Finding) -> bool {
    f.rule.is_build() && f.fix.is_some()
}

/// Withholds from `findings` the edits of the silenced build findings in
/// `dropped` that no surviving build needs (see [`select`]).
fn withhold_edits(findings: &mut Vec<Finding>, dropped: &[Finding]) {
    use std::collections::HashSet;

    use crate::source::patch::Edit;

    // A silenced finding with a surviving twin (same rule, place and
    // message) is not silenced.
    let key = |f: &Finding| (f.rule, f.span.clone(), f.message.clone());
    let surviving: HashSet<_> = findings.iter().map(key).collect();
    let needed: HashSet<&Edit> = findings
        .iter()
        .filter(|f| is_build(f))
        .flat_map(|f| f.fix.iter().flat_map(|x| &x.edits))
        .collect();
    let withheld: HashSet<Edit> = dropped
        .iter()
        .filter(|f| is_build(f) && !surviving.contains(&key(f)))
        .flat_map(|f| f.fix.iter().flat_map(|x| &x.edits))
        .filter(|e| !needed.contains(e))
        .cloned()
        .collect();
    if withheld.is_empty() {
        return;
    }
    let tied = |f: &Finding| {
        f.fix
            .as_ref()
            .is_some_and(|x| x.edits.iter().any(|e| withheld.contains(e)))
    };
    // A note that only describes the withheld rewrite is moot; one about the
    // call as written (kind `call-note`: KM013, Kaniko itself fails on the
    // word) stays, without the rewrite as its fix.
    findings.retain(|f| is_build(f) || !tied(f) || f.rule.kind() == RuleKind::CallNote);
    for f in findings.iter_mut() {
        if !is_build(f) && tied(f) {
            f.fix = None;
        }
        if let Some(fix) = &mut f.fix {
            fix.edits.retain(|e| !withheld.contains(e));
            if fix.edits.is_empty() {
                f.fix = None;
            }
        }
    }
}

fn check_target(target: &Target, settings: &Settings) -> Result<FileResult, SourceError> {
    let bytes = match target.bytes.take() {
        Some(read) => read,
        None => SourceFile::read(&target.path)?,
    };
    // Files named on the command line are always parsed, so their syntax and
    // structure errors are reported; walked files pass the prefilter first.
    if settings.prefilter
        && !target.explicit
        && !crate::prefilter::must_parse(&target.path, settings.platform.or(target.kind), &bytes)
    {
        // No rule can fire: only the encoding is checked (a binary or
        // non-UTF-8 file is still an error), and nothing is kept.
        SourceFile::check_bytes(&target.path, &bytes)?;
        return Ok(FileResult {
            path: target.path.clone(),
            source: None,
            findings: Vec::new(),
        });
    }
    let mut source = SourceFile::from_bytes(&target.path, bytes)?;
    let findings = check_source(&source, target.kind, settings)?;
    // Reports need a file's text and line index only when it has findings;
    // `report` (no prefilter) re-reads trees, so they are kept there.
    let source = if !settings.prefilter {
        Some(Arc::new(source))
    } else if findings.is_empty() {
        None
    } else {
        source.drop_tree();
        Some(Arc::new(source))
    };
    Ok(FileResult {
        path: target.path.clone(),
        source,
        findings,
    })
}

/// Checks every target in parallel; the result is sorted.
pub fn check_targets(
    targets: &[Target],
    settings: &Settings,
) -> (Vec<FileResult>, Vec<SourceError>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    batch::in_order(
        targets,
        true,
        |t| check_target(t, settings),
        |r| match r {
            Ok(f) => files.push(f),
            Err(e) => errors.push(e),
        },
    );
    files.sort_by(|a, b| a.path.cmp(&b.path));
    (files, errors)
}

/// A human report written as files are checked: each file's diagnostics go
/// out as soon as its batch is done, and only the counts are kept.
fn stream_human(
    targets: &[Target],
    settings: &Settings,
    color: bool,
    out: &mut dyn Write,
) -> std::io::Result<(Tally, Vec<SourceError>)> {
    let renderer = human::Renderer::new(color);
    let mut tally = Tally::default();
    let mut errors = Vec::new();
    let mut written = Ok(());
    batch::in_order(
        targets,
        true,
        // The file is counted and dropped on the worker that checked it:
        // freeing memory on the thread that allocated it is cheapest.
        |t| {
            check_target(t, settings).map(|f| {
                let mut counted = Tally::default();
                counted.add(&f);
                (renderer.file(&f), counted)
            })
        },
        |r| match r {
            Ok((text, counted)) => {
                tally.merge(counted);
                if written.is_ok() {
                    written = out.write_all(text.as_bytes());
                }
                if let Err(e) = &written {
                    exit_if_broken_pipe(e);
                }
            }
            Err(e) => errors.push(e),
        },
    );
    written.and_then(|_| out.flush())?;
    Ok((tally, errors))
}

pub fn run(args: CheckArgs) -> ExitStatus {
    let started = Instant::now();
    // `check` writes nothing: a pipeline checked for one of its included
    // files serves the others.
    crate::platform::gitlab::cache::enable();
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    if args.stdin_filename.is_some() && !paths.iter().any(|p| p == Path::new("-")) {
        eprintln!("kmigrate: --stdin-filename needs `-` among the paths");
        return ExitStatus::Error;
    }
    // Stdin's configuration is looked up from the name it is checked under.
    let config_start = match (paths.first(), &args.stdin_filename) {
        (Some(p), Some(name)) if p == Path::new("-") => Some(name.as_path()),
        (p, _) => p.map(PathBuf::as_path),
    };
    let mut loaded = match load_config(args.config.as_deref(), args.no_config, config_start) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kmigrate: {}", escape(&e.to_string()));
            return ExitStatus::Error;
        }
    };
    if let Err(status) = select_rules(&mut loaded, &args.rules) {
        return status;
    }

    let settings = Settings {
        config: loaded,
        platform: args.platform,
        no_ignores: args.no_ignores,
        prefilter: true,
    };

    let mut file_paths: Vec<PathBuf> = paths
        .iter()
        .filter(|p| *p != Path::new("-"))
        .cloned()
        .collect();
    if args.ci_files_only {
        file_paths = discover::ci_files_only(file_paths);
    }
    let mut found = discover::discover(&file_paths, &settings.config);
    let mut force_excluded = Vec::new();
    if args.force_exclude {
        found.targets.retain(|t| {
            let pattern = settings.config.excluded_by(&t.path);
            if let Some(pattern) = pattern {
                force_excluded.push((t.path.clone(), pattern.to_string()));
            }
            pattern.is_none()
        });
    }
    // A parse error's line is shown only from files found by name (named,
    // or walked as a CI file) and stdin: a file that only a pipeline's
    // `include:` reaches may be any file of the checkout, and a hostile
    // pipeline must not get its content into the log (positions only).
    let named: std::collections::HashSet<PathBuf> =
        found.targets.iter().map(|t| t.path.clone()).collect();
    discover::add_included(
        &mut found,
        &settings.config,
        &discover::gitlab_local_includes,
    );
    let reads_stdin = paths.iter().any(|p| p == Path::new("-"));
    // A tool passing its files (pre-commit, an editor) names files that
    // are not CI configs as a matter of course: no warning for those.
    let passed_by_a_tool = args.force_exclude || args.ci_files_only;
    // Said to a person; hooks (which also pass --ci-files-only) name
    // excluded files as a matter of course.
    if found.targets.is_empty() && !reads_stdin && !args.quiet && !args.ci_files_only {
        warn_all_excluded(&force_excluded, &settings.config);
    }
    if found.targets.is_empty() && found.errors.is_empty() && !reads_stdin && !passed_by_a_tool {
        eprintln!(
            "kmigrate: warning: no CI files (cloudbuild*.yaml|yml|json, .gitlab-ci.yml) under {}",
            file_paths
                .iter()
                .map(|p| escape_inline(&p.display().to_string()).into_owned())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if args.statistics && !matches!(args.format, Format::Human | Format::Concise | Format::Json) {
        eprintln!("kmigrate: --statistics prints a table or, with --format json, JSON");
        return ExitStatus::Error;
    }
    let to_file = args.output.is_some();
    let color = !to_file && super::rules::stdout_color();
    // Errors on stderr, the summary, and the exit code: the end of every run.
    let stdin_name = args
        .stdin_filename
        .clone()
        .unwrap_or_else(|| PathBuf::from("-"));
    // What stdin held, for the line a parse error in it points at.
    let mut stdin_bytes: Option<Vec<u8>> = None;
    // The summary is for people: after a report for them, or when the
    // report went to a file (a CI job's log then still says what failed).
    let summarise =
        !args.quiet && (matches!(args.format, Format::Human | Format::Concise) || to_file);
    let conclude = |errors: &[SourceError], tally: Tally, stdin_bytes: Option<&[u8]>| {
        // Files that could not be checked always go to stderr too: not every
        // format shows them to the person running the check.
        let line_of = |e: &SourceError| {
            let (line, _) = e.position?;
            match stdin_bytes {
                Some(bytes) if e.path == stdin_name => human::line_of_bytes(bytes, line),
                _ if named.contains(&e.path) => {
                    human::line_of_bytes(&SourceFile::read(&e.path).ok()?, line)
                }
                _ => None,
            }
        };
        eprint!("{}", human::render_errors_with(errors, &line_of));
        if summarise {
            eprintln!("{}", tally.summary(errors.len(), started.elapsed()));
        }
        if !errors.is_empty() {
            ExitStatus::Error
        } else if !args.exit_zero
            && tally
                .max_severity()
                .is_some_and(|s| s >= Severity::from(args.fail_on))
        {
            ExitStatus::Failure
        } else {
            ExitStatus::Success
        }
    };

    // The human report of a directory scan is written while files are being
    // checked, so memory holds one batch of files, not the whole report.
    if args.format == Format::Human && !reads_stdin && !args.statistics {
        let streamed = match open_output(args.output.as_deref()) {
            Ok(mut out) => stream_human(&found.targets, &settings, color, &mut out)
                .map_err(|e| report_write_error(args.output.as_deref(), &e)),
            Err(e) => Err(e),
        };
        return match streamed {
            Ok((tally, mut errors)) => {
                errors.extend(found.errors);
                sort_errors(&mut errors);
                conclude(&errors, tally, None)
            }
            Err(e) => {
                eprintln!("kmigrate: {}", escape(&e));
                ExitStatus::Error
            }
        };
    }

    let (mut files, mut errors) = check_targets(&found.targets, &settings);
    errors.extend(found.errors);

    if reads_stdin {
        let name = stdin_name.clone();
        let result = SourceFile::read_stream(&name, std::io::stdin().lock())
            .and_then(|bytes| {
                stdin_bytes = Some(bytes.clone());
                SourceFile::from_bytes(&name, bytes)
            })
            .and_then(|source| {
                let findings = check_source(&source, Platform::from_path(&name), &settings)?;
                Ok(FileResult {
                    path: name.clone(),
                    source: Some(Arc::new(source)),
                    findings,
                })
            });
        match result {
            Ok(f) => files.push(f),
            Err(e) => errors.push(e),
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
    }

    sort_errors(&mut errors);
    let run = Run {
        files,
        errors,
        elapsed: started.elapsed(),
    };
    let text = match (args.statistics, args.format) {
        (true, Format::Json) => crate::report::terminal::escape_json(statistics::render_json(&run)),
        (true, _) => statistics::render_text(&run),
        (false, format) => report::render(format, &run, color),
    };
    let written = open_output(args.output.as_deref()).and_then(|mut out| {
        out.write_all(text.as_bytes())
            .and_then(|_| out.flush())
            .map_err(|e| report_write_error(args.output.as_deref(), &e))
    });
    if let Err(e) = written {
        eprintln!("kmigrate: {}", escape(&e));
        return ExitStatus::Error;
    }
    conclude(&run.errors, run.tally(), stdin_bytes.as_deref())
}

/// Says why nothing is checked when `--force-exclude` dropped every file
/// named: each file (the first few) and the `paths.exclude` pattern that
/// excludes it.
pub fn warn_all_excluded(excluded: &[(PathBuf, String)], config: &Loaded) {
    const SHOWN: usize = 5;
    let from = config
        .path
        .as_ref()
        .map(|p| format!(" in {}", escape_inline(&p.display().to_string())))
        .unwrap_or_default();
    for (path, pattern) in excluded.iter().take(SHOWN) {
        eprintln!(
            "kmigrate: warning: {} is excluded by paths.exclude `{}`{from} (--force-exclude)",
            escape_inline(&path.display().to_string()),
            escape_inline(pattern)
        );
    }
    if excluded.len() > SHOWN {
        eprintln!(
            "kmigrate: warning: and {} more files excluded",
            excluded.len() - SHOWN
        );
    }
}

/// Errors in path, then position, order, as every format lists them.
fn sort_errors(errors: &mut [SourceError]) {
    errors.sort_by(|a, b| (&a.path, a.position).cmp(&(&b.path, b.position)));
}

/// Where the report goes: `--output FILE` or stdout.
fn open_output(path: Option<&Path>) -> Result<Box<dyn Write>, String> {
    match path {
        Some(p) => std::fs::File::create(p)
            .map(|f| Box::new(std::io::BufWriter::new(f)) as Box<dyn Write>)
            .map_err(|e| report_write_error(Some(p), &e)),
        None => Ok(Box::new(std::io::BufWriter::new(std::io::stdout().lock()))),
    }
}

/// Why the report could not be written; a reader that stopped reading ends
/// the run quietly instead (see [`exit_if_broken_pipe`]).
fn report_write_error(path: Option<&Path>, e: &std::io::Error) -> String {
    exit_if_broken_pipe(e);
    match path {
        Some(p) => format!("cannot write {}: {e}", p.display()),
        None => format!("cannot write the report: {e}"),
    }
}
