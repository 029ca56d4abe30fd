//! kmigrate's integration tests, one binary: each module runs the real
//! `kmigrate` binary (or the library) on fixtures under `tests/fixtures`;
//! `support` starts the servers they need (a registry, a private dockerd)
//! on 127.0.0.1. One binary links the workspace once instead of once per
//! test file. Run one area with `cargo test --test it lint_check::`.

#[macro_use]
mod support;

// The fuzz targets' bodies, replayed on stable by `fuzz_regressions` and
// `security_builder_fs_fuzz`.
#[path = "../../fuzz/harness.rs"]
mod harness;

mod adversarial_table;
mod bad_input;
mod bmount_add_url;
mod bmount_network;
mod bmount_parallel;
mod bmount_run;
mod buildah_differential;
mod buildah_env;
mod buildah_target_run;
mod builder_cov_dockerfile;
mod builder_docker;
mod builder_e2e;
mod builder_features;
mod builder_overlay;
mod builder_rootless;
mod builder_security;
mod builder_state_gc;
mod cache_refs;
mod cache_refs_verify;
mod cli_habits_cli;
mod cli_messages_wording;
mod cloudbuild_everyday;
mod cloudbuild_rewrite;
mod drone_rewrite;
mod fork_report_targets;
mod fork_target;
mod fuzz_regressions;
mod gha_drone;
mod gha_workflows;
mod gitlab_everyday_plan;
mod gitlab_everyday_scope;
mod gitlab_fragments;
mod gitlab_rewrite;
mod k8s_platforms;
mod lint_check;
mod lint_precommit;
mod lint_report;
mod lint_rewrite;
mod lint_rules;
mod opaque_words;
mod plan_equiv_broken;
mod plan_equiv_common;
mod plan_equiv_figure;
mod plan_equiv_property;
mod readme;
mod rule_enum_only_exact;
mod rule_fixtures;
mod security_builder_fs;
mod security_builder_fs_fuzz;
mod security_fetch;
mod security_lint_io;
mod security_lint_perf;
mod security_sandbox;
mod ship;
mod skaffold_detect;
mod skaffold_rewrite;
mod vars_cloudbuild_substitutions;
mod vars_gitlab_flags;
mod verify_compare;
mod verify_docker;
mod verify_e2e;
