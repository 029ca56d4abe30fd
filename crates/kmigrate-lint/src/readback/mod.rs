//! Reading builds back out of CI text: every `docker buildx build`,
//! `docker build`, `buildctl build` and Kaniko executor call of a Cloud
//! Build config or GitLab pipeline as a [`BuildPlan`](crate::buildx::BuildPlan)
//! ([`extract`], with CI variables from [`vars`]), and the comparison of a
//! rewritten file's builds with the original's ([`equivalence`]).
//!
//! `verify` runs the builds it reads; the rewrite reads its own output back
//! before offering it, so a translation that does not reproduce a build is
//! never written.

pub mod equivalence;
pub mod extract;
pub mod vars;
