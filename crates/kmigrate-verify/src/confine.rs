//! `verify` builds only inside the repository (issue 13 item 9).
//!
//! A config is input like any other, often from a merge request: a context
//! of `/`, `../..` or a symlink to `$HOME`, a Dockerfile elsewhere on the
//! host, or a local cache or output directory outside the checkout would
//! make verify read host files into an image (and print them in its report)
//! or write over host directories. "The repository" is the checkout verify
//! was given: `--context`, by default the config file's directory. Every
//! host path of a build must resolve inside it, symlinks followed, unless
//! the user passes `--allow-outside-repo`.

use std::path::{Component, Path, PathBuf};

use kmigrate_lint::buildx::BuildPlan;

/// The flag that lifts the check, as the CLI spells it.
pub const FLAG: &str = "--allow-outside-repo";

/// Where `p` really is: its canonical form when it exists (symlinks
/// resolved), else the canonical form of its nearest existing ancestor
/// followed by the rest (so a symlinked parent of a new output counts).
fn resolve(p: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut cur = p.to_path_buf();
    loop {
        if let Ok(c) = cur.canonicalize() {
            return rest
                .iter()
                .rev()
                .fold(c, |acc: PathBuf, part| acc.join(part));
        }
        match (cur.file_name().map(|n| n.to_os_string()), cur.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                cur = parent.to_path_buf();
            }
            _ => return p.to_path_buf(),
        }
    }
}

/// True when `p` (absolute, without `..`) is `repo` or below it.
fn inside(p: &Path, repo: &Path) -> bool {
    !p.components().any(|c| c == Component::ParentDir) && p.starts_with(repo)
}

/// `Err` naming the first host path of `plan` that is outside `repo` (a
/// canonical directory), lexically or once symlinks are resolved.
pub fn check(plan: &BuildPlan, repo: &Path) -> Result<(), String> {
    let mut plan = plan.clone();
    let context = PathBuf::from(&plan.context);
    let dockerfile = plan
        .dockerfile
        .as_ref()
        .map(PathBuf::from)
        .unwrap_or_else(|| context.join("Dockerfile"));
    let mut paths: Vec<(&str, PathBuf)> = vec![
        ("build context", context.clone()),
        ("Dockerfile", dockerfile),
    ];
    for (what, v) in kmigrate_lint::buildx::plan::path_slots(&mut plan) {
        paths.push((what, PathBuf::from(v.as_str())));
    }
    for (what, p) in paths {
        let real = resolve(&p);
        if p.is_absolute() && inside(&p, repo) && inside(&real, repo) {
            continue;
        }
        let shown = if real != p {
            format!("{} (which resolves to {})", p.display(), real.display())
        } else {
            p.display().to_string()
        };
        return Err(format!(
            "the {what} {shown} is outside the repository {} (the --context directory; by default the config's directory): verify reads and writes only inside it; pass {FLAG} to build it anyway",
            repo.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmigrate_lint::buildx::AttrList;

    fn plan(context: &Path) -> BuildPlan {
        BuildPlan {
            context: context.display().to_string(),
            ..Default::default()
        }
    }

    #[test]
    fn paths_must_resolve_inside_the_repository() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("repo")).unwrap();
        let repo = d.path().join("repo").canonicalize().unwrap();
        std::fs::create_dir(repo.join("app")).unwrap();
        std::os::unix::fs::symlink("/etc", repo.join("out")).unwrap();
        assert!(check(&plan(&repo), &repo).is_ok());
        assert!(check(&plan(&repo.join("app")), &repo).is_ok());
        let e = check(&plan(Path::new("/etc")), &repo).unwrap_err();
        assert!(
            e.contains("build context /etc is outside the repository"),
            "{e}"
        );
        let e = check(&plan(&repo.join("out")), &repo).unwrap_err();
        assert!(e.contains("resolves to /etc"), "{e}");
        let mut p = plan(&repo);
        p.dockerfile = Some("/etc/passwd".into());
        assert!(check(&p, &repo).unwrap_err().contains("Dockerfile"));
        let mut p = plan(&repo);
        p.outputs = vec![AttrList::parse("type=local,dest=/var/tmp/x")];
        assert!(check(&p, &repo).unwrap_err().contains("output destination"));
        let mut p = plan(&repo);
        p.cache_to = vec![AttrList::parse(&format!(
            "type=local,dest={}/out/new/dir",
            repo.display()
        ))];
        let e = check(&p, &repo).unwrap_err();
        assert!(
            e.contains("local cache destination") && e.contains("/etc/new/dir"),
            "{e}"
        );
        let mut p = plan(&repo);
        p.cache_to = vec![AttrList::parse("type=registry,ref=/etc/x")];
        assert!(check(&p, &repo).is_ok(), "registry refs are not paths");
    }
}
