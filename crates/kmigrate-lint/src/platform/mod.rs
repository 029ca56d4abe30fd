//! Each CI system's view of a source file.

pub mod cloudbuild;
pub mod container;
pub mod drone;
pub mod github;
pub mod gitlab;
pub mod jenkins;
pub mod kubernetes;
pub mod script_edit;
pub mod skaffold;
mod support;
pub mod tekton;

use std::path::Path;

use crate::source::SourceFile;
pub use support::PlatformSupport;

/// The CI systems kmigrate understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Platform {
    /// Google Cloud Build (`cloudbuild.yaml`, `.yml`, `.json`).
    #[value(name = "cloudbuild")]
    CloudBuild,
    /// Drone and Woodpecker CI (`.drone.yml`, `.woodpecker.yml`, `.woodpecker/*.yml`).
    #[value(name = "drone", alias = "woodpecker")]
    Drone,
    /// GitHub Actions (`.github/workflows/*.yml`).
    #[value(name = "github")]
    GitHub,
    /// GitLab CI (`.gitlab-ci.yml` and its local includes).
    #[value(name = "gitlab")]
    GitLab,
    /// Jenkins pipelines (`Jenkinsfile`, `*.jenkinsfile`, `*.groovy` under a
    /// `jenkins` directory): detection only.
    #[value(name = "jenkins")]
    Jenkins,
    /// Kubernetes manifests (Pod, Job, CronJob, Deployment, StatefulSet,
    /// DaemonSet; Jenkins pod templates), found by content.
    #[value(name = "kubernetes", alias = "k8s")]
    Kubernetes,
    /// Skaffold (`skaffold.yaml`, `apiVersion: skaffold/…`).
    #[value(name = "skaffold")]
    Skaffold,
    /// Tekton (Task, ClusterTask, Pipeline, PipelineRun, TaskRun), found by
    /// content.
    #[value(name = "tekton")]
    Tekton,
}

impl Platform {
    /// Every platform, in the order detection by content tries them (the
    /// most specific shape first).
    pub const ALL: &'static [Platform] = &[
        // Both name an `apiVersion` at the root, which no CI file has.
        Platform::Tekton,
        Platform::Kubernetes,
        // Drone's shape (`kind: pipeline`, steps with `image:`) is never a
        // Cloud Build file's, whose plain `steps` list it would also match.
        Platform::Skaffold,
        Platform::Drone,
        Platform::CloudBuild,
        Platform::GitHub,
        Platform::GitLab,
        Platform::Jenkins,
    ];

    /// The platform's module: everything the engine, `rewrite`, `report`
    /// and the read-back ask of a platform goes through it, so a new
    /// platform is one module implementing [`PlatformSupport`] and one
    /// line here.
    pub fn support(self) -> &'static dyn PlatformSupport {
        match self {
            Platform::CloudBuild => &cloudbuild::Support,
            Platform::Drone => &drone::Support,
            Platform::GitHub => &github::Support,
            Platform::GitLab => &gitlab::Support,
            Platform::Jenkins => &jenkins::Support,
            Platform::Kubernetes => &kubernetes::Support,
            Platform::Skaffold => &skaffold::Support,
            Platform::Tekton => &tekton::Support,
        }
    }

    /// The platform a file name implies, if any.
    pub fn from_path(path: &Path) -> Option<Platform> {
        Platform::ALL
            .iter()
            .copied()
            .find(|p| p.support().matches_path(path))
    }

    /// The platform of a file a directory walk meets: its name, else, for
    /// a YAML file, a look at its first [`SNIFF_BYTES`] bytes (platforms
    /// with no naming convention, see [`PlatformSupport::matches_text`]).
    pub fn from_walked(path: &Path) -> Option<Platform> {
        if let Some(p) = Platform::from_path(path) {
            return Some(p);
        }
        if !is_yaml_name(path) {
            return None;
        }
        let text = sniff(path)?;
        Platform::ALL
            .iter()
            .copied()
            .find(|p| p.support().matches_text(path, &text))
    }

    /// The platform the file's content looks like (see each platform's
    /// [`PlatformSupport::matches_content`]).
    pub fn from_content(source: &SourceFile) -> Option<Platform> {
        let root = source.root()?;
        root.as_map()?;
        Platform::ALL
            .iter()
            .copied()
            .find(|p| p.support().matches_content(root))
    }

    /// Name first, then content.
    pub fn detect(source: &SourceFile) -> Option<Platform> {
        Platform::from_path(&source.path).or_else(|| Platform::from_content(source))
    }
}

/// How much of an unnamed YAML file a walk reads to judge its platform.
pub const SNIFF_BYTES: u64 = 256 * 1024;

/// The first [`SNIFF_BYTES`] of a regular file (`None` when unreadable).
fn sniff(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut out = Vec::new();
    file.take(SNIFF_BYTES).read_to_end(&mut out).ok()?;
    Some(out)
}

/// The values of every top-level-looking `key:` line in `text` (a cheap
/// look, no parse: indentation ignored, quotes around the value removed),
/// for platforms found by content in a walk.
pub fn key_values<'t>(text: &'t [u8], key: &'t str) -> impl Iterator<Item = &'t str> + 't {
    text.split(|b| *b == b'\n').filter_map(move |line| {
        let line = std::str::from_utf8(line).ok()?.trim();
        let line = line.strip_prefix("- ").unwrap_or(line).trim_start();
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        Some(rest.trim().trim_matches(['"', '\'']))
    })
}

/// `*.yml` / `*.yaml`, any case.
pub fn is_yaml_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yml") || e.eq_ignore_ascii_case("yaml"))
}

/// A path's file name in lower case (empty when it has none), as the
/// platforms' name conventions compare it.
pub(crate) fn lowercase_file_name(path: &Path) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_name_then_content() {
        assert_eq!(
            Platform::from_path(Path::new("ci/cloudbuild-prod.yaml")),
            Some(Platform::CloudBuild)
        );
        assert_eq!(
            Platform::from_path(Path::new("cloudbuild.json")),
            Some(Platform::CloudBuild)
        );
        assert_eq!(
            Platform::from_path(Path::new(".gitlab-ci.yml")),
            Some(Platform::GitLab)
        );
        assert_eq!(Platform::from_path(Path::new("build.yaml")), None);
        let cb = SourceFile::from_text(Path::new("x.yaml"), "steps:\n- name: a\n".into()).unwrap();
        assert_eq!(Platform::detect(&cb), Some(Platform::CloudBuild));
        let gl = SourceFile::from_text(Path::new("x.yaml"), "build:\n  script: [make]\n".into())
            .unwrap();
        assert_eq!(Platform::detect(&gl), Some(Platform::GitLab));
        let other = SourceFile::from_text(Path::new("x.yaml"), "a: 1\n".into()).unwrap();
        assert_eq!(Platform::detect(&other), None);
    }
}
