//! Each CI system's view of a source file.

pub mod cloudbuild;
pub mod gitlab;
pub mod script_edit;

use std::path::Path;

use crate::source::SourceFile;

/// The CI systems kmigrate understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Platform {
    /// Google Cloud Build (`cloudbuild.yaml`, `.yml`, `.json`).
    #[value(name = "cloudbuild")]
    CloudBuild,
    /// GitLab CI (`.gitlab-ci.yml` and its local includes).
    #[value(name = "gitlab")]
    GitLab,
}

impl Platform {
    /// The platform a file name implies, if any.
    pub fn from_path(path: &Path) -> Option<Platform> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        if name.starts_with("cloudbuild")
            && (name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json"))
        {
            Some(Platform::CloudBuild)
        } else if name == ".gitlab-ci.yml" || name == ".gitlab-ci.yaml" {
            Some(Platform::GitLab)
        } else {
            None
        }
    }

    /// The platform the file's content looks like: Cloud Build has a
    /// top-level `steps` list of mappings with `name`; anything else with
    /// job-like mappings is GitLab.
    pub fn from_content(source: &SourceFile) -> Option<Platform> {
        let root = source.root()?;
        let map = root.as_map()?;
        if let Some(steps) = root.get("steps").and_then(|s| s.as_seq())
            && steps.items.iter().any(|i| i.node.get("name").is_some())
        {
            return Some(Platform::CloudBuild);
        }
        let gitlab_keys = ["stages", "include", "variables", "default", "workflow"];
        let has_job = map.entries.iter().any(|e| {
            e.value.get("script").is_some()
                || e.value.get("extends").is_some()
                || e.value.get("image").is_some()
        });
        if has_job
            || map
                .entries
                .iter()
                .any(|e| gitlab_keys.contains(&e.key.as_str().unwrap_or("")))
        {
            return Some(Platform::GitLab);
        }
        None
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
