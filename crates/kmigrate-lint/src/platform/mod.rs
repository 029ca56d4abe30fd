//! Each CI system's view of a source file.

pub mod cloudbuild;
pub mod drone;
pub mod github;
pub mod gitlab;
pub mod script_edit;
pub mod skaffold;
mod support;

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
    /// Skaffold (`skaffold.yaml`, `apiVersion: skaffold/…`).
    #[value(name = "skaffold")]
    Skaffold,
}

impl Platform {
    /// Every platform, in the order detection by content tries them (the
    /// most specific shape first).
    pub const ALL: &'static [Platform] = &[
        // Drone's shape (`kind: pipeline`, steps with `image:`) is never a
        // Cloud Build file's, whose plain `steps` list it would also match.
        Platform::Skaffold,
        Platform::Drone,
        Platform::CloudBuild,
        Platform::GitHub,
        Platform::GitLab,
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
            Platform::Skaffold => &skaffold::Support,
        }
    }

    /// The platform a file name implies, if any.
    pub fn from_path(path: &Path) -> Option<Platform> {
        Platform::ALL
            .iter()
            .copied()
            .find(|p| p.support().matches_path(path))
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
