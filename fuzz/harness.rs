//! The fuzz targets' bodies, as plain `fn(&[u8])` so that the same code runs
//! under cargo-fuzz (`fuzz_targets/*.rs`, nightly) and in the stable test
//! suite (`tests/fuzz_regressions.rs` replays every saved input in
//! `fuzz/regressions/<target>/` and a bounded batch of generated ones).
//! Each body panics only when an invariant breaks; any error the code under
//! test returns is a clean outcome.

// Each target binary uses one body; the rest is dead code there.
#![allow(dead_code)]

use std::path::Path;

use kmigrate::builder::{dockerfile, layer};
use kmigrate::kaniko::call::{self, Arg};
use kmigrate::source::SourceFile;
use kmigrate::source::patch::{self, Edit};
use kmigrate::source::{fast::parse as fast_parse, libyaml, tree};

/// A target's name and body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, by name: the names of `fuzz_targets/*.rs` and of the
/// folders under `regressions/`.
pub const TARGETS: &[Target] = &[
    ("source_patch", source_patch),
    ("shell_lexer", shell_lexer),
    ("kaniko_argv", kaniko_argv),
    ("dockerfile", dockerfile),
    ("layer_tar", layer_tar),
    ("fast_tree", fast_tree),
];

/// A cursor over the fuzzer's bytes for choosing edits.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }
    fn below(&mut self, n: usize) -> Option<usize> {
        let hi = self.byte()? as usize;
        let lo = self.byte()? as usize;
        Some(if n == 0 { 0 } else { (hi << 8 | lo) % n })
    }
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The YAML source and patch layer: a document (the bytes after the first
/// `\0`, lossily decoded) is loaded; the bytes before it choose edits on it,
/// either at node and comment spans or anywhere. Loading must give a tree
/// or a located error; applying edits must keep every byte outside them and
/// the result must load again or fail cleanly.
pub fn source_patch(data: &[u8]) {
    let (ops, doc) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&[][..], data),
    };
    let path = Path::new("cloudbuild.yaml");
    // Loading from bytes covers the NUL, UTF-8 and BOM paths too.
    let _ = SourceFile::from_bytes(path, doc.to_vec());
    let text = String::from_utf8_lossy(doc).replace('\0', " ");
    let source = match SourceFile::from_text(path, text.clone()) {
        Ok(s) => s,
        Err(e) => {
            assert_eq!(e.path, path);
            if let Some((line, col)) = e.position {
                assert!(line >= 1 && col >= 1, "{e}");
            }
            return;
        }
    };
    let mut spans: Vec<std::ops::Range<usize>> = source.tree.comments.clone();
    spans.extend(source.tree.documents.iter().map(|d| d.span.clone()));
    for s in &spans {
        assert!(
            s.start <= s.end && s.end <= text.len(),
            "span {s:?} outside the text"
        );
    }
    let mut ops = Bytes(ops);
    let mut edits = Vec::new();
    while let (Some(kind), Some(len)) = (ops.byte(), ops.byte()) {
        let range = if kind & 1 == 0 && !spans.is_empty() {
            let Some(i) = ops.below(spans.len()) else {
                break;
            };
            spans[i].clone()
        } else {
            let (Some(a), Some(b)) = (ops.below(text.len() + 1), ops.below(16)) else {
                break;
            };
            let a = floor_boundary(&text, a);
            a..floor_boundary(&text, a + b)
        };
        let replacement: String = ["\"x\"", "- a\n", "k: v\n", "#c\n", "", "{", "]", "\r\n"]
            [len as usize % 8]
            .repeat(1 + (len as usize >> 3) % 3);
        edits.push(Edit::replace(range, replacement));
    }
    match patch::apply(&text, &edits) {
        Ok(out) => {
            // Identical edits count once, wherever they are in the list.
            let mut sorted: Vec<&Edit> = Vec::new();
            for e in &edits {
                if !sorted.contains(&e) {
                    sorted.push(e);
                }
            }
            sorted.sort_by_key(|e| (e.range.start, e.range.end));
            let removed: usize = sorted.iter().map(|e| e.range.len()).sum();
            let added: usize = sorted.iter().map(|e| e.text.len()).sum();
            if sorted
                .windows(2)
                .all(|w| w[0].range.end <= w[1].range.start)
            {
                assert_eq!(
                    out.len(),
                    text.len() - removed + added,
                    "lost or doubled bytes"
                );
            }
            let _ = SourceFile::from_text(path, out);
        }
        Err(c) => assert!(c.first.start <= text.len() && c.second.start <= text.len()),
    }
}

/// The fast YAML reader against tree-sitter: for any text it reads, the
/// tree must be exactly the one tree-sitter's builder makes (and tree-sitter
/// must accept the text); giving up is always allowed. Like `tree::parse`,
/// it only sees text within the block indentation limit.
pub fn fast_tree(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if tree::check_block_indent(&text).is_err() {
        return;
    }
    if let Some(fast) = fast_parse(&text) {
        match tree::parse_with_tree_sitter(&text) {
            Ok(reference) => assert!(fast == reference, "different trees for {text:?}"),
            // tree-sitter-yaml refuses some layouts libyaml reads (a flow
            // list continued at its key's column); there `fast` reads what
            // libyaml reads.
            Err(e) => assert!(
                libyaml::holds_same_values(&text, &fast)
                    || libyaml::refuses_what_kmigrate_checks_later(&text),
                "read a text tree-sitter refuses ({e:?}) otherwise than libyaml: {text:?}"
            ),
        }
    }
}

/// The spanned reader against libyaml: every text libyaml (yaml_serde)
/// reads, `tree::parse` reads with the same values, or refuses on purpose
/// (`libyaml::refused_on_purpose`: an anchor name libyaml splits). Not in
/// [`TARGETS`] yet: a mutation that adds a carriage return or a tab sends
/// the text past `fast` to tree-sitter-yaml, which lacks libyaml's
/// leniencies (a block scalar header at its key's column, continuation
/// lines at the key's column, glued comments inside flow collections).
pub fn reader_vs_libyaml(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if tree::check_block_indent(&text).is_err() {
        return;
    }
    let Some(docs) = libyaml::documents(&text) else {
        return;
    };
    let tree = match tree::parse(&text) {
        Ok(tree) => tree,
        Err(e) if libyaml::refused_on_purpose(&e) => return,
        Err(e) => panic!("libyaml reads, kmigrate refuses ({e:?}): {text:?}"),
    };
    assert!(
        docs.len() == tree.documents.len()
            && docs
                .iter()
                .zip(&tree.documents)
                .all(|(v, n)| libyaml::same_value(n, v)),
        "different values: {text:?}"
    );
}

/// The shell lexer: any text gives a script whose word spans lie inside it.
pub fn shell_lexer(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let script = kmigrate::shell::parse(&text);
    for c in &script.commands {
        assert!(
            c.span.start <= c.span.end && c.span.end <= text.len(),
            "{c:?}"
        );
        let _ = c.program();
    }
    for (at, _) in &script.problems {
        assert!(*at <= text.len());
    }
}

/// The Kaniko argv parser: words split on NUL/newline, `$`-words dynamic.
pub fn kaniko_argv(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let args: Vec<Arg> = text
        .split(['\0', '\n'])
        .map(|w| Arg {
            dynamic: w.starts_with('$'),
            ..Arg::new(w)
        })
        .collect();
    let n = args.len();
    let parsed = call::parse(args);
    assert_eq!(parsed.args.len(), n, "the call keeps every word");
    let _ = parsed.value("destination");
    let _ = parsed.values("build-arg");
    let _ = parsed.enabled("cache");
    let _ = parsed.is_unknowable();
}

/// The Dockerfile parser: any text parses or gives an error.
pub fn dockerfile(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(df) = dockerfile::parse("Dockerfile", &text) {
        let _ = format!("{df:?}");
    }
}

/// Layer extraction: any bytes as a (gzip or plain) tar extract or fail,
/// and nothing outside the root is ever written, removed or re-permissioned:
/// a sibling directory with a canary must come out exactly as it went in.
///
/// Input starting with `W` is not a tar but a recipe for one (see
/// [`whiteout_tar`]): entries built from a small vocabulary of names that
/// is mostly whiteouts (`.wh.`, `.wh..`, `.wh...`, `.wh..wh..opq`, ...),
/// `..` and symlinks up and out, so a byte-level fuzzer reaches whiteout
/// handling on most inputs instead of rarely.
pub fn layer_tar(data: &[u8]) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let sibling = dir.path().join("sibling");
    std::fs::create_dir(&sibling).expect("create the sibling");
    std::fs::write(sibling.join("canary"), "canary").expect("write the canary");
    let root = dir.path().join("root");
    for d in ["sub/deeper", "b"] {
        std::fs::create_dir_all(root.join(d)).expect("create the root");
    }
    for f in ["a", "sub/a", "sub/deeper/x"] {
        std::fs::write(root.join(f), f).expect("populate the root");
    }
    let bytes = match data.split_first() {
        Some((b'W', recipe)) => whiteout_tar(recipe, &sibling),
        _ => data.to_vec(),
    };
    let tar = dir.path().join("layer.tar");
    std::fs::write(&tar, &bytes).expect("write the layer");
    let modes = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        [p.to_path_buf(), p.join("canary")]
            .map(|f| std::fs::metadata(f).map(|m| m.permissions().mode()).ok())
    };
    let modes_before = modes(&sibling);
    let _ = layer::extract(&tar, &root);
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("the work directory was removed")
        .map(|e| e.expect("an entry").file_name())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["layer.tar", "root", "sibling"],
        "extraction escaped its root"
    );
    assert!(
        std::fs::symlink_metadata(&root).is_ok_and(|m| m.is_dir()),
        "the root itself was replaced"
    );
    let sib: Vec<_> = std::fs::read_dir(&sibling)
        .expect("the sibling was removed")
        .map(|e| e.expect("an entry").file_name())
        .collect();
    assert_eq!(sib, ["canary"], "something was written next to the root");
    assert_eq!(
        std::fs::read_to_string(sibling.join("canary"))
            .ok()
            .as_deref(),
        Some("canary"),
        "the canary outside the root changed"
    );
    assert_eq!(
        modes(&sibling),
        modes_before,
        "a mode outside the root changed"
    );
    // A read-only directory the layer made would stop the clean-up.
    make_writable(&root);
}

/// Path components a recipe picks from: whiteouts of every shape, `..`,
/// names that exist in the pre-populated root, and links' names.
const COMPONENTS: &[&str] = &[
    ".wh.",
    ".wh..",
    ".wh...",
    ".wh..wh..opq",
    ".wh..wh.plnk",
    ".wh.a",
    ".wh.b",
    ".wh.sub",
    ".wh.root",
    ".wh.sibling",
    ".wh.lnk",
    "..",
    ".",
    "",
    "a",
    "b",
    "sub",
    "deeper",
    "lnk",
    "up",
    "root",
    "sibling",
    "x",
];

/// Symlink and hard-link targets: up, out, absolute, and `@` for the
/// sibling directory's absolute host path.
const LINK_TARGETS: &[&str] = &[
    "..",
    "../..",
    "../../..",
    "/",
    "/..",
    "a",
    "sub",
    "sub/deeper",
    "lnk",
    "up",
    "@",
    "@/canary",
    "../sibling",
    "../sibling/canary",
    "/a",
    ".wh...",
    "",
];

/// Builds a tar from a recipe: each entry takes three bytes (kind and
/// depth, then two choosers for components and the link target). Headers
/// are written by hand so names reach the tar exactly as chosen.
pub fn whiteout_tar(recipe: &[u8], sibling: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for op in recipe.chunks(3) {
        let k = op[0];
        let c = *op.get(1).unwrap_or(&0) as usize;
        let t = *op.get(2).unwrap_or(&0) as usize;
        let depth = 1 + (k as usize >> 3) % 3;
        let mut parts: Vec<&str> = (0..depth)
            .map(|i| COMPONENTS[(c + i * 7 + i * c / 5) % COMPONENTS.len()])
            .collect();
        let kind = k % 5;
        if kind == 4 {
            // A whiteout-shaped last component most of the time.
            let last = parts.len() - 1;
            parts[last] = COMPONENTS[c % 13];
        }
        let mut name = parts.join("/");
        if k & 0x80 != 0 {
            name.insert(0, '/');
        }
        let target =
            LINK_TARGETS[t % LINK_TARGETS.len()].replacen('@', &sibling.display().to_string(), 1);
        let (flag, link, body): (u8, &str, &[u8]) = match kind {
            1 => (b'5', "", b""),
            2 => (b'2', &target, b""),
            3 => (b'1', &target, b""),
            _ => (b'0', "", b"data"),
        };
        tar_entry(&mut out, &name, flag, link, body);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// One ustar header (names cut at 100 bytes) plus the padded body.
fn tar_entry(out: &mut Vec<u8>, name: &str, flag: u8, link: &str, body: &[u8]) {
    let mut h = [0u8; 512];
    let put = |h: &mut [u8; 512], at: usize, len: usize, v: &[u8]| {
        let n = v.len().min(len);
        h[at..at + n].copy_from_slice(&v[..n]);
    };
    put(&mut h, 0, 100, name.as_bytes());
    put(
        &mut h,
        100,
        8,
        format!("{:07o}\0", if flag == b'5' { 0o755 } else { 0o644 }).as_bytes(),
    );
    put(&mut h, 108, 8, b"0000000\0");
    put(&mut h, 116, 8, b"0000000\0");
    put(&mut h, 124, 12, format!("{:011o}\0", body.len()).as_bytes());
    put(&mut h, 136, 12, b"00000000000\0");
    h[156] = flag;
    put(&mut h, 157, 100, link.as_bytes());
    put(&mut h, 257, 8, b"ustar\x0000");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| *b as u32).sum();
    put(&mut h, 148, 8, format!("{sum:06o}\0 ").as_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(body);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for e in walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .flatten()
    {
        if e.file_type().is_dir() {
            let _ = std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o755));
        }
    }
}
