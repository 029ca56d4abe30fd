//! `USER` and `--chown` resolution from the image's own `/etc/passwd` and
//! `/etc/group` (never the host's), with numeric ids accepted as is.

use std::path::Path;

use super::fsutil;

fn read(root: &Path, file: &str) -> String {
    fsutil::secure_join(root, file, true)
        .ok()
        // The image's file: a FIFO or a huge file there must not hang or
        // exhaust the build.
        .and_then(|p| {
            super::limits::read_regular_text(&p, super::limits::ACCOUNTS_FILE_MAX, file).ok()
        })
        .unwrap_or_default()
}

fn lookup_user(root: &Path, name: &str) -> Option<(u32, u32, String)> {
    read(root, "/etc/passwd").lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && (f[0] == name || f[2] == name))
            .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?, f[5].to_string())))
            .flatten()
    })
}

fn lookup_group(root: &Path, name: &str) -> Option<u32> {
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    read(root, "/etc/group").lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 3 && f[0] == name)
            .then(|| f[2].parse().ok())
            .flatten()
    })
}

/// Resolves `user[:group]` to uid, gid and supplementary groups.
pub fn resolve(root: &Path, spec: &str) -> Result<(u32, u32, Vec<u32>), String> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let (uid, mut gid, name) = match lookup_user(root, u) {
        Some((uid, gid, _)) => (uid, gid, u.to_string()),
        None => match u.parse::<u32>() {
            Ok(n) => (n, 0, String::new()),
            Err(_) => {
                return Err(format!(
                    "unable to find user {u}: no matching entries in the image's /etc/passwd"
                ));
            }
        },
    };
    if let Some(g) = g {
        gid = lookup_group(root, g).ok_or_else(|| {
            format!("unable to find group {g}: no matching entries in the image's /etc/group")
        })?;
    }
    let mut groups = vec![gid];
    if g.is_none() && !name.is_empty() {
        for l in read(root, "/etc/group").lines() {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() >= 4
                && f[3].split(',').any(|m| m == name)
                && let Ok(id) = f[2].parse::<u32>()
                && !groups.contains(&id)
            {
                groups.push(id);
            }
        }
    }
    Ok((uid, gid, groups))
}

/// Resolves a `--chown` spec (group defaults to the user's primary group
/// when the user is a name, to the same id when numeric).
pub fn resolve_chown(root: &Path, spec: &str) -> Result<(u32, u32), String> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let (uid, pgid) = match u.parse::<u32>() {
        Ok(n) => (n, n),
        Err(_) => lookup_user(root, u)
            .map(|(a, b, _)| (a, b))
            .ok_or_else(|| format!("unable to find user {u} for --chown"))?,
    };
    let gid = match g {
        Some(g) => {
            lookup_group(root, g).ok_or_else(|| format!("unable to find group {g} for --chown"))?
        }
        None => pgid,
    };
    Ok((uid, gid))
}

/// The home directory of a uid, `/root` for root, `/` if unknown.
pub fn home(root: &Path, uid: u32) -> String {
    lookup_user(root, &uid.to_string())
        .map(|(_, _, h)| h)
        .unwrap_or_else(|| if uid == 0 { "/root".into() } else { "/".into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_files_that_are_fifos_or_huge_are_ignored() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        nix::unistd::mkfifo(&d.path().join("etc/passwd"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        std::fs::File::create(d.path().join("etc/group"))
            .unwrap()
            .set_len(64 << 20)
            .unwrap();
        assert_eq!(read(d.path(), "/etc/passwd"), "");
        assert_eq!(read(d.path(), "/etc/group"), "");
    }

    #[test]
    fn names_numbers_and_groups() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("etc/group"),
            "root:x:0:\napp:x:1001:\nextra:x:2000:app\n",
        )
        .unwrap();
        assert_eq!(
            resolve(d.path(), "app").unwrap(),
            (1000, 1001, vec![1001, 2000])
        );
        assert_eq!(resolve(d.path(), "app:root").unwrap(), (1000, 0, vec![0]));
        assert_eq!(resolve(d.path(), "4242").unwrap().0, 4242);
        assert!(resolve(d.path(), "nobody").is_err());
        assert_eq!(resolve_chown(d.path(), "app:extra").unwrap(), (1000, 2000));
        assert_eq!(resolve_chown(d.path(), "7").unwrap(), (7, 7));
        assert_eq!(home(d.path(), 1000), "/home/app");
    }
}
