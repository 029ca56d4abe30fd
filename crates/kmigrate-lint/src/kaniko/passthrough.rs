//! What to tell the user when a variable set outside the CI file is handed to
//! buildx unchanged (KM015).
//!
//! Kaniko and buildx spell a few flags the same way, so a variable holding
//! only those keeps working; every other Kaniko flag makes buildx stop with
//! `unknown flag`. The spellings come from the `passthrough` column of
//! `rules/kaniko-flags.yaml`.

use super::flags::{FlagSpec, FlagTable};

/// The flags buildx spells the same way, as users write them
/// (`--build-arg`, `--target`, …).
pub fn same_spellings() -> Vec<String> {
    spellings()
        .filter(|(f, _)| f.buildx_spells_it_the_same())
        .map(|(f, _)| f.display())
        .collect()
}

/// Kaniko-only spellings with what buildx writes instead.
pub fn kaniko_only_spellings() -> Vec<(String, &'static str)> {
    spellings()
        .filter(|(f, _)| !f.buildx_spells_it_the_same())
        .map(|(f, s)| (f.display(), s))
        .collect()
}

fn spellings() -> impl Iterator<Item = (&'static FlagSpec, &'static str)> {
    FlagTable::get()
        .flags
        .iter()
        .filter_map(|f| Some((f, f.passthrough.as_deref()?)))
}

/// The KM015 message for `variable` (as written, e.g. `$KANIKO_ARGS`) and
/// where its value is set, e.g. "in the project's CI/CD settings or by the
/// caller".
pub fn message(variable: &str, set_where: &str) -> String {
    format!(
        "`{variable}` is set {set_where}, outside the files kmigrate read: the migrated build passes it to `docker buildx build` unchanged"
    )
}

/// The KM015 help: which spellings keep working and how to write the others.
pub fn help(variable: &str) -> String {
    let mut out = format!(
        "buildx accepts {} as Kaniko wrote them; any other Kaniko flag in `{variable}` makes buildx stop with `unknown flag`. Rewrite its value:",
        same_spellings().join(", ")
    );
    for (kaniko, buildx) in kaniko_only_spellings() {
        out.push_str(&format!("\n  {kaniko} → {buildx}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_spellings_are_the_ones_buildx_shares() {
        let same = same_spellings();
        for flag in ["--build-arg", "--target", "--label"] {
            assert!(same.contains(&flag.to_string()), "{same:?}");
        }
        assert!(!same.contains(&"--destination".to_string()), "{same:?}");
    }

    #[test]
    fn the_help_names_every_kaniko_only_spelling_people_keep_in_variables() {
        let help = help("$KANIKO_ARGS");
        for flag in [
            "--destination",
            "--cache ",
            "--cache-repo",
            "--snapshot-mode",
            "--context",
            "--no-push",
            "--dockerfile",
            "--custom-platform",
        ] {
            assert!(
                help.contains(&format!("\n  {}", flag.trim())),
                "{flag}: {help}"
            );
        }
        assert!(help.contains("--tag IMAGE"), "{help}");
        assert!(help.contains("`$KANIKO_ARGS`"), "{help}");
    }

    #[test]
    fn every_passthrough_entry_names_a_flag_users_can_write() {
        for (flag, spelling) in spellings() {
            assert!(!spelling.trim().is_empty(), "{}", flag.name);
            assert!(
                FlagTable::get().long(&flag.name).is_some(),
                "{} is not in the table",
                flag.name
            );
        }
    }
}
