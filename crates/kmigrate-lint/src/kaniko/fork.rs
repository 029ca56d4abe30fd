//! What moving a Kaniko call to the maintained fork changes in its flags:
//! the spellings the fork renamed and the flags it made no-ops, both read
//! from `fork_target` in `rules/images.yaml`.

use std::ops::Range;

use super::call::Call;
use super::images::fork_target;

/// One change to a call's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlagChange {
    /// Arg `arg` starts with the old spelling `from` (with its dashes);
    /// the fork's name is `to`.
    Rename {
        arg: usize,
        from: String,
        to: String,
    },
    /// Args `args` are a flag the fork ignores: they go, for `reason`.
    Drop {
        args: Range<usize>,
        flag: String,
        reason: String,
    },
}

/// The changes `call` needs to run on the fork, in argument order.
pub fn flag_changes(call: &Call) -> Vec<FlagChange> {
    let fork = fork_target();
    let mut out = Vec::new();
    for u in &call.uses {
        let spelled = u.spelled.trim_start_matches('-');
        if let Some(d) = fork.dropped.iter().find(|d| d.flag == u.spec.name) {
            out.push(FlagChange::Drop {
                args: u.args.clone(),
                flag: u.spelled.clone(),
                reason: d.reason.clone(),
            });
        } else if let Some(r) = fork.renamed.iter().find(|r| r.from == spelled)
            && u.spelled.starts_with("--")
        {
            out.push(FlagChange::Rename {
                arg: u.args.start,
                from: u.spelled.clone(),
                to: format!("--{}", r.to),
            });
        }
    }
    out.sort_by_key(|c| match c {
        FlagChange::Rename { arg, .. } => *arg,
        FlagChange::Drop { args, .. } => args.start,
    });
    out
}

/// `word` (one arg as written, maybe quoted) with the old spelling `from`
/// at its start replaced by `to`: the byte range to replace in `word`.
pub fn spelling_range(word: &str, from: &str) -> Option<Range<usize>> {
    let start = word.find(from)?;
    // Only quotes may come before the flag name.
    if !word[..start].chars().all(|c| c == '"' || c == '\'') {
        return None;
    }
    let end = start + from.len();
    // The name ends there (`--tarPath=…`, `--tarPath"`, end of word).
    match word[end..].chars().next() {
        None | Some('=' | '"' | '\'') => Some(start..end),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kaniko::call::{Arg, parse};

    fn call(words: &[&str]) -> Call {
        parse(words.iter().map(|w| Arg::new(*w)).collect())
    }

    #[test]
    fn renamed_spellings_and_no_op_flags_are_found() {
        let c = call(&[
            "--destination=r/a",
            "--customPlatform=linux/arm64",
            "--skip-unused-stages",
            "--tarPath",
            "a.tar",
            "--force-build-metadata=true",
            "--cache=true",
        ]);
        let changes = flag_changes(&c);
        assert_eq!(
            changes,
            vec![
                FlagChange::Rename {
                    arg: 1,
                    from: "--customPlatform".into(),
                    to: "--custom-platform".into()
                },
                FlagChange::Drop {
                    args: 2..3,
                    flag: "--skip-unused-stages".into(),
                    reason: changes_reason(&changes, 1),
                },
                FlagChange::Rename {
                    arg: 3,
                    from: "--tarPath".into(),
                    to: "--tar-path".into()
                },
                FlagChange::Drop {
                    args: 5..6,
                    flag: "--force-build-metadata".into(),
                    reason: changes_reason(&changes, 3),
                },
            ]
        );
        // Current spellings need nothing.
        assert!(
            flag_changes(&call(&["--custom-platform=linux/arm64", "--tar-path", "a"])).is_empty()
        );
    }

    fn changes_reason(changes: &[FlagChange], i: usize) -> String {
        match &changes[i] {
            FlagChange::Drop { reason, .. } => {
                assert!(reason.contains("fork"), "{reason}");
                reason.clone()
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_spelling_is_found_behind_quotes_only() {
        assert_eq!(spelling_range("--tarPath=a", "--tarPath"), Some(0..9));
        assert_eq!(spelling_range("\"--tarPath\"", "--tarPath"), Some(1..10));
        assert_eq!(spelling_range("--tarPathX", "--tarPath"), None);
        assert_eq!(spelling_range("x--tarPath", "--tarPath"), None);
    }
}
