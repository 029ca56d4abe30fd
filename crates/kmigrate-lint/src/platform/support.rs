//! The one interface every platform module implements: how its files are
//! named and shaped, what it finds in one, and the builds it reads back.

use std::path::Path;

use crate::options::Options;
use crate::readback::extract::{Extracted, Inputs};
use crate::rules::Finding;
use crate::source::{Node, SourceError, SourceFile};

/// What the engine, `rewrite`, `report`, `verify` and the prefilter ask of
/// a platform. Implemented by a unit struct `Support` in each platform's
/// module and reached through [`super::Platform::support`].
pub trait PlatformSupport: Sync {
    /// How `--platform` spells it (`cloudbuild`).
    fn cli_name(&self) -> &'static str;
    /// How reports name it (`Cloud Build`).
    fn display_name(&self) -> &'static str;
    /// What one build unit is called in summaries (`step`, `job`).
    fn unit(&self) -> &'static str;
    /// Whether the file's path alone says it is this platform's.
    fn matches_path(&self, path: &Path) -> bool;
    /// Whether a file of no known name looks like this platform's (`root`
    /// is a mapping).
    fn matches_content(&self, root: &Node) -> bool;
    /// Whether a file a directory walk meets, whose name no platform
    /// claims, is this platform's by a cheap look at its first bytes (a
    /// platform without a naming convention: Tekton, Kubernetes).
    fn matches_text(&self, _path: &Path, _text: &[u8]) -> bool {
        false
    }
    /// Whether a file of this platform, found by a walk, holds its whole
    /// analysis in its own text, so the prefilter may skip it when no rule
    /// marker occurs in it (see [`crate::prefilter`]).
    fn self_contained(&self, path: &Path, text: &[u8]) -> bool;
    /// Every finding in one file, with fixes.
    fn findings(&self, source: &SourceFile, opts: &Options) -> Result<Vec<Finding>, SourceError>;
    /// Where each build unit (step, job) of the file is written: what
    /// `report` counts and groups findings by. GitLab returns none: its
    /// report reads the resolved pipeline instead (`report::migration`).
    fn unit_spans(&self, source: &SourceFile) -> Vec<std::ops::Range<usize>>;
    /// The flag of every Kaniko call written in the file, once per use
    /// (GitLab: none, as for [`Self::unit_spans`]).
    fn kaniko_flags(&self, source: &SourceFile) -> Vec<&'static crate::kaniko::FlagSpec>;
    /// Every image build of the config `text` at `path`, in order.
    fn extract(&self, path: &Path, text: &str, inputs: &Inputs) -> Result<Vec<Extracted>, String>;
}
