//! `docker buildx build` as data: the shared [`BuildPlan`] (from the
//! `kmigrate-plan` crate), how a Kaniko call becomes one, and the cache refs
//! assigned across the builds of one config.

pub mod cache_refs;
pub mod equivalence;
pub mod from_kaniko;
pub mod notes;

pub use kmigrate_plan::{
    AttrList, BuildArg, BuildPlan, BuildxArgs, argv, buildah, buildctl, parse_build_args, plan,
    registry_config,
};
