//! The word that stands for a variable whose value is not known where a
//! build is read back (the rewrite's safety net reads a CI file with no
//! CI variables set).
//!
//! `%NAME%` holds no `$`, quote or blank, so every reader takes it as one
//! literal word, the same on the Kaniko side and the buildx side. Where it
//! stands in a flag's place (a positional word Kaniko never takes, or a
//! word beside buildx's context), it is a variable passed through to the
//! build as flags: [`BuildPlan::passthrough`](crate::BuildPlan::passthrough).

/// The stand-in of variable `name`.
pub fn word(name: &str) -> String {
    format!("%{name}%")
}

/// Whether `w` is a stand-in (`%NAME%`, NAME a shell variable name).
pub fn is_word(w: &str) -> bool {
    w.strip_prefix('%')
        .and_then(|w| w.strip_suffix('%'))
        .is_some_and(|name| {
            name.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stand_ins_are_told_from_other_words() {
        assert!(is_word(&word("KANIKO_ARGS")));
        assert!(is_word("%_EXTRA%"));
        for w in ["%", "%%", "%1A%", "%A B%", "50%", ".", "$X", "%A%B%"] {
            assert!(!is_word(w), "{w}");
        }
    }
}
