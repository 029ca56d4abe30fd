//! One loaded CI file: its text, line index, line-ending style and spanned
//! YAML tree. Cloud Build JSON files are YAML flow documents, so they load the
//! same way. Edits to a source go through [`patch`].

pub mod fast;
mod glued;
pub mod libyaml;
pub mod patch;
pub mod render;
pub mod scalar;
pub mod tree;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use tree::{Entry, Item, Map, Node, Scalar, Seq, Span, Tree, Value};

/// The deepest `[`/`{` nesting in `text`, counting brackets in strings and
/// comments too (an over-estimate only costs a plainer error message).
fn max_bracket_depth(text: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for b in text.bytes() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Files larger than this are refused: no CI config comes near it, and a
/// stray multi-megabyte YAML file should not stall a lint run.
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// Whether a file is YAML or JSON text (the tree is the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    Yaml,
    Json,
}

/// The line terminator a file uses; new text is written with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEnding {
    Lf,
    CrLf,
    /// Lone `\r` (classic Mac OS). The loaded text holds `\n` in their
    /// place, byte for byte, so every offset and line count is the same as
    /// in the file; [`SourceFile::restore_line_endings`] turns text back.
    Cr,
}

impl LineEnding {
    /// The terminator new text uses inside the loaded text.
    pub fn as_str(self) -> &'static str {
        match self {
            LineEnding::Lf | LineEnding::Cr => "\n",
            LineEnding::CrLf => "\r\n",
        }
    }
}

/// A loaded, parsed file.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as the user gave it (used in messages).
    pub path: PathBuf,
    pub text: String,
    /// Shared, so a copy of the file (a GitLab pipeline keeps one of each
    /// file it loads) does not copy the tree.
    pub tree: Arc<Tree>,
    pub syntax: Syntax,
    pub line_ending: LineEnding,
    line_starts: Vec<usize>,
}

/// A problem with a file, located as precisely as known. Displayed as
/// `path:line:col: message` followed by what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError {
    pub path: PathBuf,
    /// 1-based line and column, when the problem has a place in the text.
    pub position: Option<(usize, usize)>,
    pub message: String,
    pub help: Option<String>,
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some((line, col)) = self.position {
            write!(f, ":{line}:{col}")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SourceError {}

impl SourceError {
    pub fn new(path: &Path, message: impl Into<String>) -> Self {
        Self {
            path: path.to_path_buf(),
            position: None,
            message: message.into(),
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl SourceFile {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Self, SourceError> {
        Self::from_bytes(path, Self::read(path)?)
    }

    /// Reads `path` as [`load`](Self::load) does (refusing directories and
    /// files over the size limit), without parsing it.
    pub fn read(path: &Path) -> Result<Vec<u8>, SourceError> {
        use std::io::Read as _;
        use std::os::unix::fs::OpenOptionsExt as _;

        // One open and one `fstat` on the open file: a `stat` by path first
        // walked the path again, for each of the thousands of files a
        // check reads. Non-blocking, so a FIFO does not wait for a writer
        // (it is refused below; regular files read as usual).
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| io_error(path, &e))?;
        let meta = file.metadata().map_err(|e| io_error(path, &e))?;
        if meta.is_dir() {
            return Err(
                SourceError::new(path, "is a directory, not a file").with_help(
                    "name the CI file itself, or run `kmigrate check DIR` to scan a directory",
                ),
            );
        }
        if !meta.is_file() {
            return Err(
                SourceError::new(path, "is not a regular file (a FIFO, socket or device)")
                    .with_help("name the CI file itself"),
            );
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(too_large(path, meta.len()));
        }
        // One byte more than the size, so reading to the end needs no
        // second allocation. Through `take`, because `File::read_to_end`
        // asks the kernel for the size again; the limit also stops a file
        // that grows while it is read.
        let mut bytes = Vec::with_capacity(meta.len() as usize + 1);
        file.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| io_error(path, &e))?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(too_large(path, bytes.len() as u64));
        }
        Ok(bytes)
    }

    /// Reads a stream (stdin) shown as `name`, with the same size limit as
    /// [`read`](Self::read): at most one byte past the limit is read, so an
    /// endless stream is refused instead of filling memory.
    pub fn read_stream(name: &Path, stream: impl std::io::Read) -> Result<Vec<u8>, SourceError> {
        use std::io::Read as _;
        let mut bytes = Vec::new();
        stream
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| SourceError::new(name, format!("cannot read stdin: {e}")))?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(SourceError::new(
                name,
                format!("(stdin) is larger than the {MAX_FILE_BYTES} byte limit for a CI config"),
            )
            .with_help("pass the CI file itself; kmigrate stopped reading at the limit"));
        }
        Ok(bytes)
    }

    /// Parses `bytes` read from `path` (or from stdin under that name).
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Self, SourceError> {
        Self::check_bytes(path, &bytes)?;
        let text = String::from_utf8(bytes).expect("checked to be UTF-8 above");
        Self::from_text(path, text)
    }

    /// The errors [`from_bytes`](Self::from_bytes) gives before parsing: a
    /// NUL byte (a binary file) or invalid UTF-8, located by line and column.
    pub fn check_bytes(path: &Path, bytes: &[u8]) -> Result<(), SourceError> {
        if let Some(nul) = bytes.iter().position(|b| *b == 0) {
            let (line, col) = position_in(&bytes[..nul]);
            return Err(SourceError {
                path: path.to_path_buf(),
                position: Some((line, col)),
                message: "contains a NUL byte: this is a binary file, not YAML or JSON".into(),
                help: Some("exclude it from the scan, or restore the text file".into()),
            });
        }
        if let Err(e) = std::str::from_utf8(bytes) {
            let (line, col) = position_in(&bytes[..e.valid_up_to()]);
            return Err(SourceError {
                path: path.to_path_buf(),
                position: Some((line, col)),
                message: "is not valid UTF-8".into(),
                help: Some(
                    "YAML and JSON files must be UTF-8; re-encode the file (e.g. `iconv -t UTF-8`)"
                        .into(),
                ),
            });
        }
        Ok(())
    }

    /// Parses `text` as the content of `path`.
    pub fn from_text(path: &Path, text: String) -> Result<Self, SourceError> {
        // A file whose lines end in lone CRs reads as LF: YAML treats both as
        // line breaks, and one byte for one keeps every offset.
        let (text, cr_only) = if text.contains('\r') && !text.contains('\n') {
            (text.replace('\r', "\n"), true)
        } else {
            (text, false)
        };
        let line_starts = line_starts(&text);
        let syntax = if path.extension().is_some_and(|e| e == "json")
            || text
                .trim_start_matches('\u{feff}')
                .trim_start()
                .starts_with('{')
        {
            Syntax::Json
        } else {
            Syntax::Yaml
        };
        let line_ending = if cr_only {
            LineEnding::Cr
        } else if text.contains("\r\n") {
            LineEnding::CrLf
        } else {
            LineEnding::Lf
        };
        // A Jenkinsfile is Groovy: its platform reads the text alone.
        let tree = if crate::platform::jenkins::is_jenkins_name(path) {
            Ok(Tree::new(Vec::new(), Vec::new()))
        } else {
            tree::parse(&text)
        };
        let tree = match tree {
            Ok(t) => t,
            Err(e) => {
                let mut pos = position_with(&line_starts, &text, e.offset);
                // libyaml-based yaml_serde explains most syntax errors better
                // than "this is not valid YAML"; prefer its wording, and its
                // position (the span-keeping grammar often stops at the start
                // of the block it could not finish).
                // libyaml's scanner is quadratic in flow nesting (100,000
                // nested `[` took minutes): past the depth guard, or with
                // deep brackets anywhere, give the tree's own message.
                let lenient = if e.message.starts_with("nesting is deeper")
                    || max_bracket_depth(&text) > tree::MAX_DEPTH
                {
                    Err(e.message.clone())
                } else {
                    yaml_serde::from_str::<yaml_serde::Value>(&text).map_err(|ye| {
                        if let Some(at) = ye.location() {
                            pos = position_with(&line_starts, &text, at.index());
                        }
                        ye.to_string()
                    })
                };
                let (message, help) = match lenient {
                    Err(why) => (
                        format!("cannot be parsed: {why}"),
                        "fix the syntax error first; kmigrate leaves the file untouched",
                    ),
                    // Lenient readers accept some layouts the span-keeping
                    // grammar does not; say so rather than call it invalid.
                    Ok(_) => (
                        format!(
                            "kmigrate cannot map this file's layout to source positions ({})",
                            e.message
                        ),
                        "most often a flow list `[...]` or quoted string continues on lines indented no deeper than its key; indent the continuation lines past the key and run again (the file is untouched)",
                    ),
                };
                return Err(SourceError {
                    path: path.to_path_buf(),
                    position: Some(pos),
                    message,
                    help: Some(help.into()),
                });
            }
        };
        Ok(Self {
            path: path.to_path_buf(),
            text,
            tree: Arc::new(tree),
            syntax,
            line_ending,
            line_starts,
        })
    }

    /// `text` (this file's text, or a rewrite of it) with the file's own
    /// line endings, for writing: lone CRs again in a CR-only file.
    pub fn restore_line_endings(&self, text: &str) -> String {
        match self.line_ending {
            LineEnding::Cr => text.replace('\n', "\r"),
            LineEnding::Lf | LineEnding::CrLf => text.to_string(),
        }
    }

    /// Frees the parsed tree once nothing will read it again (the text and
    /// line index stay, for reports). A large walk would otherwise hold every
    /// file's tree until the report is written.
    pub fn drop_tree(&mut self) {
        self.tree = Arc::new(Tree::new(Vec::new(), Vec::new()));
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        position_with(&self.line_starts, &self.text, offset)
    }

    /// 0-based index of the line holding byte `offset` (lines end at `\n`;
    /// an offset past the end is on the last line).
    pub fn line_index(&self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        self.line_starts.partition_point(|s| *s <= offset).max(1) - 1
    }

    /// Byte offset where 1-based `line` starts.
    pub fn line_start(&self, line: usize) -> usize {
        self.line_starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(self.text.len())
    }

    /// Number of lines in the file.
    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }

    /// The first document's root node, if the file has one.
    pub fn root(&self) -> Option<&Node> {
        // A GitLab component file's first document is its `spec:` header.
        self.tree.documents.last()
    }

    /// An error located at `offset` in this file.
    pub fn error_at(&self, offset: usize, message: impl Into<String>) -> SourceError {
        SourceError {
            path: self.path.clone(),
            position: Some(self.position(offset)),
            message: message.into(),
            help: None,
        }
    }
}

fn too_large(path: &Path, len: u64) -> SourceError {
    SourceError::new(
        path,
        format!("is {len} bytes, larger than the {MAX_FILE_BYTES} byte limit for a CI config"),
    )
    .with_help("check that this is the CI file you meant; exclude it from the scan otherwise")
}

fn io_error(path: &Path, e: &std::io::Error) -> SourceError {
    let help = match e.kind() {
        std::io::ErrorKind::NotFound => "check the path",
        std::io::ErrorKind::PermissionDenied => "check the file's permissions",
        _ => "check that the file is readable",
    };
    SourceError::new(path, format!("cannot be read: {e}")).with_help(help)
}

fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect()
}

fn position_with(line_starts: &[usize], text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let line = line_starts.partition_point(|s| *s <= offset).max(1);
    let start = line_starts[line - 1];
    let col = text
        .get(start..offset)
        .map(|s| s.chars().count())
        .unwrap_or(offset - start)
        + 1;
    (line, col)
}

fn position_in(bytes: &[u8]) -> (usize, usize) {
    let line = bytes.iter().filter(|b| **b == b'\n').count() + 1;
    let col = bytes.len()
        - bytes
            .iter()
            .rposition(|b| *b == b'\n')
            .map(|i| i + 1)
            .unwrap_or(0)
        + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let f = SourceFile::from_text(Path::new("x.yaml"), "a: é\nb: c\n".into()).unwrap();
        assert_eq!(f.position(0), (1, 1));
        assert_eq!(f.position(f.text.find('c').unwrap()), (2, 4));
        assert_eq!(f.position(f.text.find('é').unwrap() + 2), (1, 5));
    }

    #[test]
    fn detects_json_and_crlf() {
        let f = SourceFile::from_text(
            Path::new("cloudbuild.json"),
            "{\r\n  \"steps\": []\r\n}\r\n".into(),
        )
        .unwrap();
        assert_eq!(f.syntax, Syntax::Json);
        assert_eq!(f.line_ending, LineEnding::CrLf);
    }

    #[test]
    fn invalid_utf8_and_binary_are_located() {
        let e =
            SourceFile::from_bytes(Path::new("c.yaml"), b"a: b\nc: \xff\n".to_vec()).unwrap_err();
        assert_eq!(e.position, Some((2, 4)));
        let e = SourceFile::from_bytes(Path::new("c.yaml"), b"a\0".to_vec()).unwrap_err();
        assert!(e.message.contains("binary"));
    }

    #[test]
    fn reads_files_and_refuses_directories_and_fifos_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cloudbuild.yaml");
        std::fs::write(&file, "steps: []\n").unwrap();
        assert_eq!(SourceFile::read(&file).unwrap(), b"steps: []\n");
        let e = SourceFile::read(dir.path()).unwrap_err();
        assert!(e.message.contains("is a directory"), "{e}");
        let fifo = dir.path().join(".gitlab-ci.yml");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let e = SourceFile::read(&fifo).unwrap_err();
        assert!(e.message.contains("not a regular file"), "{e}");
        let e = SourceFile::read(&dir.path().join("missing.yaml")).unwrap_err();
        assert!(e.message.contains("cannot be read"), "{e}");
    }

    #[test]
    fn syntax_error_names_the_line() {
        let e = SourceFile::from_text(Path::new("c.yaml"), "steps:\n  - name: [a\n".into())
            .unwrap_err();
        assert!(e.to_string().starts_with("c.yaml:"), "{e}");
        assert!(e.position.is_some());
    }
}
