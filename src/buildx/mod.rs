//! `docker buildx build` as data: the shared [`BuildPlan`] and its argv form.

pub mod argv;
pub mod buildctl;
pub mod cache_refs;
pub mod equivalence;
pub mod from_kaniko;
pub mod plan;
pub mod registry_config;

pub use argv::{BuildxArgs, parse_build_args};
pub use plan::{AttrList, BuildArg, BuildPlan};
