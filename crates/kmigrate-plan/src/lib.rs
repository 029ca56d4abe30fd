//! `docker buildx build` as data: the [`BuildPlan`] every part of kmigrate
//! shares (the rewrite writes it, `verify` extracts it, the embedded builder
//! runs it) and its argv form.
//!
//! It is a crate of its own so the builder can take a plan without
//! depending on the linter.

#![forbid(unsafe_code)]
// A panic on hostile input is a bug: outside tests, failures are values
// (`expect` remains for invariants, with the reason it cannot fail).
#![deny(clippy::unwrap_used)]

pub mod argv;
pub mod buildah;
pub mod buildctl;
pub mod plan;
pub mod registry_config;
pub mod stand_in;

pub use argv::{BuildxArgs, parse_build_args};
pub use plan::{AttrList, BuildArg, BuildPlan};
