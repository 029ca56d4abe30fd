//! Kaniko knowledge: which images are Kaniko, its flag table, and parsing one
//! executor call's argv against that table.
//!
//! The data lives in `rules/images.yaml` and `rules/kaniko-flags.yaml`; this
//! module only loads and applies it.

pub mod call;
pub mod flags;
pub mod images;

pub use call::{Arg, Call, CallProblem, FlagUse, ProblemKind};
pub use flags::{Action, Arity, FlagSpec, FlagTable};
pub use images::{ImageKind, ImageMatch, match_image};
