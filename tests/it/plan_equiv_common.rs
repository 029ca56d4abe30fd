//! What the plan-equivalence tests share: where the corpus is.

use std::path::{Path, PathBuf};

/// `$KMIGRATE_CORPUS`, else `../shared/corpus` next to the checkout (or
/// next to the worktree's parent, for a git worktree); `None` where there
/// is none (a fresh clone in CI): the corpus is never part of the project.
pub fn corpus_dir() -> Option<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::env::var_os("KMIGRATE_CORPUS")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            manifest.join("../shared/corpus"),
            manifest.join("../../shared/corpus"),
        ])
        .find(|d| d.is_dir())
}
