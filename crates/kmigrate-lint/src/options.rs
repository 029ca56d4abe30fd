//! Options that shape a rewrite; set by flags or `kmigrate.toml`.

/// Rewrite options with kmigrate's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Name of the `docker-container` builder the setup step creates.
    pub builder: String,
    /// Tag of the registry cache (`<cache repo>:<tag>`).
    pub cache_tag: String,
    /// GitLab rewrite target (`buildx` by default).
    pub gitlab_target: GitlabTarget,
    /// Docker version pinned in GitLab `docker:<ver>-cli` / `-dind` images.
    pub docker_version: String,
    /// Split GitLab jobs that build several images into one job per image.
    pub split: bool,
    /// Cloud Build rewrite target (`buildx` by default).
    pub cloudbuild_target: CloudbuildTarget,
    /// The maintained Kaniko fork the fork targets run (repository).
    pub fork_image: String,
    /// The fork's release they pin.
    pub fork_version: String,
    /// Where rewritten GitHub Actions steps keep the build cache.
    pub github_cache: GithubCache,
}

/// The name of the docker-container builder the buildx targets create.
pub const DEFAULT_BUILDER: &str = "kmigrate";

/// The tag of the registry cache next to each image (`<repo>:buildcache`),
/// as GitLab's and Docker's docs name it.
pub const DEFAULT_CACHE_TAG: &str = "buildcache";

/// Docker release the buildx targets pin by default (major.minor; GitLab's
/// docs pin a version the same way).
pub const DEFAULT_DOCKER_VERSION: &str = "28.5";

impl Default for Options {
    fn default() -> Self {
        Options {
            builder: DEFAULT_BUILDER.into(),
            cache_tag: DEFAULT_CACHE_TAG.into(),
            gitlab_target: Default::default(),
            docker_version: DEFAULT_DOCKER_VERSION.into(),
            split: true,
            cloudbuild_target: Default::default(),
            fork_image: crate::kaniko::fork_target().image.clone(),
            fork_version: crate::kaniko::fork_target().version.clone(),
            github_cache: Default::default(),
        }
    }
}

/// Where the GitHub Actions rewrite keeps the build cache: one list for
/// `--github-cache`, `rewrite.github_cache` and the engine.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum GithubCache {
    /// The registry cache the Kaniko step used
    /// (`type=registry,ref=…,mode=max`).
    #[default]
    Registry,
    /// GitHub Actions' own cache service (`type=gha`): nothing written to
    /// the registry; GitHub scopes it per branch and evicts it.
    Gha,
}

/// Where `kmigrate rewrite` takes a GitLab Kaniko job.
/// The one list of GitLab targets: `--gitlab-target` (clap), the
/// `rewrite.gitlab_target` key of kmigrate.toml (serde) and the engine's
/// options all read this type.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum GitlabTarget {
    /// `docker buildx build` with a docker-container builder on
    /// docker-in-docker (GitLab's documented "Docker Buildx" method).
    #[default]
    Buildx,
    /// Rootless BuildKit (`buildctl-daemonless.sh`), no privileged runner.
    Buildkit,
    /// Buildah (`quay.io/buildah/stable`, vfs storage, chroot isolation):
    /// no privileged runner, GitLab's documented replacement.
    Buildah,
    /// Keep Kaniko; only split jobs that build several images.
    Split,
    /// Keep the executor call on a pinned, maintained Kaniko fork (no runner
    /// change); still split jobs that build several images.
    Fork,
}

impl GitlabTarget {
    /// Every target, as users write them.
    pub const ALL: [GitlabTarget; 5] = [
        GitlabTarget::Buildx,
        GitlabTarget::Buildkit,
        GitlabTarget::Buildah,
        GitlabTarget::Split,
        GitlabTarget::Fork,
    ];

    pub fn parse(s: &str) -> Option<GitlabTarget> {
        GitlabTarget::ALL.into_iter().find(|t| t.name() == s)
    }

    pub fn name(self) -> &'static str {
        match self {
            GitlabTarget::Buildx => "buildx",
            GitlabTarget::Buildkit => "buildkit",
            GitlabTarget::Buildah => "buildah",
            GitlabTarget::Split => "split",
            GitlabTarget::Fork => "fork",
        }
    }
}

/// Where `kmigrate rewrite` takes a Cloud Build Kaniko step: one list for
/// `--cloudbuild-target`, `rewrite.cloudbuild_target` and the engine.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum CloudbuildTarget {
    /// `docker buildx build` on a docker-container builder (Cloud Build
    /// workers run Docker).
    #[default]
    Buildx,
    /// Keep the executor call on a pinned, maintained Kaniko fork.
    Fork,
}

impl CloudbuildTarget {
    pub fn name(self) -> &'static str {
        match self {
            CloudbuildTarget::Buildx => "buildx",
            CloudbuildTarget::Fork => "fork",
        }
    }
}
