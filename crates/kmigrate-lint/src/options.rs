//! Options that shape a rewrite; set by flags or `kmigrate.toml`.

/// Rewrite options with kmigrate's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Name of the `docker-container` builder the setup step creates.
    pub builder: String,
    /// Tag of the registry cache (`<cache repo>:<tag>`).
    pub cache_tag: String,
    /// GitLab rewrite target (`buildx` by default).
    pub gitlab_target: crate::platform::gitlab::target::Target,
    /// Docker version pinned in GitLab `docker:<ver>-cli` / `-dind` images.
    pub docker_version: String,
    /// Split GitLab jobs that build several images into one job per image.
    pub split: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            builder: "kmigrate".into(),
            cache_tag: "buildcache".into(),
            gitlab_target: Default::default(),
            docker_version: "28.5".into(),
            split: true,
        }
    }
}
