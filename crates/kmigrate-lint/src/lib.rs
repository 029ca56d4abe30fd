//! The linter and rewriter: find archived-Kaniko usage in CI configs and fix
//! it, without running anything.
//!
//! The pipeline reads left to right: `discover` finds files, `source` loads
//! one file into a spanned tree, `platform` gives each CI system's view of it,
//! `kaniko` parses executor calls against the flag table, `rules` turn those
//! into findings with fixes, `report` prints findings and `write` applies
//! fixes. `buildx` holds the shared `BuildPlan`.

#![deny(unsafe_code)]
// A panic on hostile input is a bug: outside tests, failures are values
// (`expect` remains for invariants, with the reason it cannot fail).
#![deny(clippy::unwrap_used)]

pub mod batch;
pub mod buildx;
pub mod config;
pub mod discover;
pub mod engine;
pub mod ignores;
pub mod kaniko;
pub mod options;
pub mod platform;
pub mod prefilter;
pub mod readback;
pub mod report;
pub mod rules;
pub mod shell;
pub mod source;
pub mod targets;
#[cfg(test)]
mod test_rng;
pub mod write;
