//! kmigrate: find and fix archived-Kaniko usage in CI configs.
//!
//! The work lives in the workspace's crates, from the bottom up:
//! `kmigrate-plan` (a `docker buildx build` as data), `kmigrate-lint` (read
//! CI files, find Kaniko, rewrite it; no `unsafe`), `kmigrate-builder` (the
//! daemonless image builder; the only home of `unsafe`) and `kmigrate-verify`
//! (prove a rewritten config builds and hits its cache). This crate is the
//! command line; it re-exports the others under the paths the tests, benches
//! and fuzz targets use (`kmigrate::source`, `kmigrate::builder`, …).

// Outside tests, failures are values (see the crates' lib.rs).
#![deny(clippy::unwrap_used)]

pub mod cli;

pub use kmigrate_builder as builder;
pub use kmigrate_lint::{
    batch, buildx, config, discover, engine, ignores, kaniko, options, platform, prefilter, report,
    rules, shell, source, write,
};
pub use kmigrate_verify as verify;
