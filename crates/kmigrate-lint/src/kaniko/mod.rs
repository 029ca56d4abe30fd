//! Kaniko knowledge: which images are Kaniko, its flag table, and parsing one
//! executor call's argv against that table.
//!
//! The data lives in `rules/images.yaml` and `rules/kaniko-flags.yaml`; this
//! module only loads and applies it.

pub mod call;
pub mod flags;
pub mod fork;
pub mod images;
pub mod passthrough;

pub use call::{Arg, Call, CallProblem, FlagUse, ProblemKind};
pub use flags::{Action, Arity, FlagSpec, FlagTable};
pub use images::{
    ForkTarget, ImageKind, ImageMatch, RUNS_EXECUTOR, fork_target, match_image, runs_image,
};

#[cfg(test)]
mod tests {
    #[test]
    fn the_binary_reads_the_same_tables_as_the_yaml() {
        for (name, yaml, json) in [
            (
                "images",
                super::images::IMAGES_YAML,
                super::images::IMAGES_JSON,
            ),
            (
                "kaniko-flags",
                super::flags::FLAGS_YAML,
                super::flags::FLAGS_JSON,
            ),
        ] {
            let yaml: serde_json::Value = yaml_serde::from_str(yaml).unwrap();
            let json: serde_json::Value = serde_json::from_str(json).unwrap();
            assert_eq!(
                yaml, json,
                "build.rs's {name}.json differs from rules/{name}.yaml"
            );
        }
    }
}
