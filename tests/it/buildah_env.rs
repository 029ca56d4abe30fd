//! A private Buildah for the tests that run the real tool: its own local
//! storage (vfs, as the Buildah target's jobs use) under a temp dir, chroot
//! isolation, and a registries.conf that lets it talk plain HTTP to the
//! test's loopback registry (a runner's registries.conf would say the same
//! for an HTTP registry; the job itself carries no such flag).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::have;

/// Buildah's environment for one "runner": a fresh, empty local storage.
pub struct BuildahEnv {
    dir: tempfile::TempDir,
}

impl BuildahEnv {
    /// `None` where the test must skip (see [`have`]; fails under CI=true).
    pub fn new(registry: &str) -> Option<Self> {
        if !(have("buildah") && have("root")) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(
            p.join("registries.conf"),
            format!(
                "unqualified-search-registries = []\n[[registry]]\nlocation = \"{registry}\"\ninsecure = true\n"
            ),
        )
        .unwrap();
        std::fs::write(
            p.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = \"{0}/graph\"\nrunroot = \"{0}/run\"\n",
                p.display()
            ),
        )
        .unwrap();
        std::fs::create_dir_all(p.join("home")).unwrap();
        std::fs::create_dir_all(p.join("run")).unwrap();
        Some(BuildahEnv { dir })
    }

    /// The job's `$HOME`.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// The variables every Buildah command of the test runs with.
    pub fn vars(&self) -> Vec<(String, String)> {
        let p = self.dir.path();
        [
            ("CONTAINERS_REGISTRIES_CONF", p.join("registries.conf")),
            ("CONTAINERS_STORAGE_CONF", p.join("storage.conf")),
            ("HOME", self.home()),
            // Buildah keeps auth and temp files here otherwise.
            ("XDG_RUNTIME_DIR", p.join("run")),
            ("TMPDIR", p.to_path_buf()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.display().to_string()))
        .chain(
            [("STORAGE_DRIVER", "vfs"), ("BUILDAH_ISOLATION", "chroot")]
                .map(|(k, v)| (k.to_string(), v.to_string())),
        )
        .collect()
    }

    /// A command with this environment (the rest of the test's own
    /// environment is cleared but PATH).
    pub fn command(&self, program: &str, cwd: &Path) -> Command {
        let mut c = Command::new(program);
        c.current_dir(cwd)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(self.vars());
        c
    }

    /// `buildah ARGS`.
    pub fn buildah(&self, cwd: &Path, args: &[&str]) -> Output {
        self.command("buildah", cwd).args(args).output().unwrap()
    }

    /// Tidies Buildah's storage (vfs layers are plain directories, but
    /// containers may leave mounts behind).
    fn cleanup(&self) {
        let _ = self.buildah(self.dir.path(), &["rm", "--all"]);
        let _ = self.buildah(self.dir.path(), &["rmi", "--all", "--force"]);
    }
}

impl Drop for BuildahEnv {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// A process's stdout then stderr, as text.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
