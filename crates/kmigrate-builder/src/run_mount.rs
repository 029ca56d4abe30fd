//! `RUN --mount=…`: the typed form of one mount option, parsed from the
//! BuildKit CSV syntax (`type=cache,target=/root/.cache,sharing=locked`).
//!
//! Everything here is pure: values come from a hostile Dockerfile, so every
//! key is known, every number bounded, every target a clean absolute path
//! outside `/proc` and `/dev`. Preparing the mount (directories, copies,
//! secret files) is `mount_prep`'s job; mounting it is the sandbox's.

use super::dockerfile::unquote;
use super::fsutil;

/// Most `--mount` flags one RUN may have.
pub const MOUNTS_MAX: usize = 16;
/// Longest mount option text (one `--mount=` value).
const OPTION_MAX: usize = 4096;
/// Largest `type=tmpfs,size=`.
pub const TMPFS_SIZE_MAX: u64 = 64 << 30;

/// One `--mount` of a RUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMount {
    pub kind: MountKind,
    /// Where it appears in the RUN, absolute and clean (`/a/b`); `None` only
    /// for a secret given to the RUN as an environment variable alone.
    pub target: Option<String>,
}

/// What is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// Files of the context (`from` unset), of an earlier stage or of an
    /// image; read-only unless `rw`, and writes are discarded after the step.
    Bind {
        from: Option<String>,
        source: String,
        rw: bool,
    },
    /// A directory kept in the builder's state across steps and builds;
    /// with `seed`, it starts as a copy of that stage's, image's or the
    /// context's directory (and is another cache than the same id without).
    Cache {
        id: String,
        seed: Option<CacheSeed>,
        sharing: Sharing,
        readonly: bool,
        uid: u32,
        gid: u32,
        mode: u32,
    },
    /// An empty tmpfs, at most `size` bytes (the kernel's default if unset).
    Tmpfs { size: Option<u64> },
    /// A `--secret` of the build, as a file at the target and/or an
    /// environment variable.
    Secret {
        id: String,
        env: Option<String>,
        required: bool,
        uid: u32,
        gid: u32,
        mode: u32,
    },
}

/// Where a cache mount's first content comes from: `from=` (a stage or an
/// image) and `source=` in it (its root by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSeed {
    pub from: String,
    pub source: String,
}

/// How concurrent steps share one cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// Every step uses the directory at once.
    Shared,
    /// A step that finds the directory in use gets a fresh, throw-away one.
    Private,
    /// A step waits until no other step uses the directory.
    Locked,
}

impl Sharing {
    fn parse(s: &str) -> Result<Self, String> {
        match s {
            "shared" => Ok(Sharing::Shared),
            "private" => Ok(Sharing::Private),
            "locked" => Ok(Sharing::Locked),
            o => Err(format!(
                "invalid sharing={o:?}: use shared, private or locked"
            )),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Sharing::Shared => "shared",
            Sharing::Private => "private",
            Sharing::Locked => "locked",
        }
    }
}

/// The refusal of `type=ssh`, with what to do instead.
pub const SSH_REFUSED: &str = "RUN --mount=type=ssh is not supported by the embedded builder: no SSH agent is forwarded into a RUN";
pub const SSH_HELP: &str = "pass a token with --secret and RUN --mount=type=secret, or build this Dockerfile with BuildKit";

/// Why a `--mount` value cannot be used: a plain problem, or `type=ssh`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountError {
    Invalid(String),
    Ssh,
}

impl std::fmt::Display for MountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MountError::Invalid(m) => f.write_str(m),
            MountError::Ssh => f.write_str(SSH_REFUSED),
        }
    }
}

impl From<String> for MountError {
    fn from(m: String) -> Self {
        MountError::Invalid(m)
    }
}

/// The mount type named by a `--mount` value as written, when no variable
/// stands in for it (`type=bind` when the key is absent, as BuildKit does).
pub fn written_type(option: &str) -> Option<&str> {
    let t = split_fields(option)
        .into_iter()
        .find_map(|f| f.strip_prefix("type="))
        .unwrap_or("bind");
    (!t.contains('$')).then_some(t)
}

/// The `from=` of a `--mount` value, if any (a stage or image name).
pub fn from_field(option: &str) -> Option<&str> {
    split_fields(option)
        .into_iter()
        .filter_map(|f| f.strip_prefix("from="))
        .next_back()
}

fn split_fields(option: &str) -> Vec<&str> {
    option
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .collect()
}

/// Parses one `--mount` value (variables already expanded); `workdir` is
/// the RUN's working directory, which relative targets are under.
pub fn parse(option: &str, workdir: &str) -> Result<RunMount, MountError> {
    if option.len() > OPTION_MAX {
        return Err(format!("--mount value longer than {OPTION_MAX} bytes").into());
    }
    let mut kind = "bind".to_string();
    let mut fields: Vec<(String, Option<String>)> = Vec::new();
    for f in split_fields(option) {
        let (k, v) = match f.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(unquote(v.trim()))),
            None => (f.to_ascii_lowercase(), None),
        };
        if k == "type" {
            kind = v.unwrap_or_default();
        } else {
            fields.push((k, v));
        }
    }
    let mut f = Fields { fields };
    let target = f.take_any(&["target", "dst", "destination"]);
    let kind = match kind.as_str() {
        "ssh" => return Err(MountError::Ssh),
        "bind" => {
            let rw = f.flag(&["rw", "readwrite"])?;
            let ro = f.flag(&["ro", "readonly"])?;
            MountKind::Bind {
                from: f.take("from"),
                source: f.take_any(&["source", "src"]).unwrap_or_else(|| "/".into()),
                rw: rw && !ro,
            }
        }
        "cache" => {
            let seed = match (f.take("from"), f.take_any(&["source", "src"])) {
                (None, None) => None,
                (None, Some(_)) => {
                    return Err("type=cache with source= needs from=<stage or image>"
                        .to_string()
                        .into());
                }
                (Some(from), source) => Some(CacheSeed {
                    from,
                    source: source.unwrap_or_else(|| "/".into()),
                }),
            };
            let t = target.as_deref().unwrap_or_default();
            MountKind::Cache {
                seed,
                id: f.take("id").filter(|i| !i.is_empty()).unwrap_or_else(|| {
                    // BuildKit's default id is the target as written.
                    t.to_string()
                }),
                sharing: Sharing::parse(&f.take("sharing").unwrap_or_else(|| "shared".into()))?,
                readonly: f.flag(&["ro", "readonly"])?,
                uid: f.number("uid", 10, 0)?,
                gid: f.number("gid", 10, 0)?,
                mode: f.number("mode", 8, 0o755)?,
            }
        }
        "tmpfs" => MountKind::Tmpfs {
            size: match f.take("size") {
                Some(s) => Some(parse_size(&s)?),
                None => None,
            },
        },
        "secret" => {
            let id = match (f.take("id"), &target) {
                (Some(id), _) if !id.is_empty() => id,
                // BuildKit: the id defaults to the target's base name.
                (_, Some(t)) => t.rsplit('/').next().unwrap_or_default().to_string(),
                _ => String::new(),
            };
            check_secret_id(&id)?;
            MountKind::Secret {
                id,
                env: f.take("env").filter(|e| !e.is_empty()),
                required: f.flag(&["required"])?,
                uid: f.number("uid", 10, 0)?,
                gid: f.number("gid", 10, 0)?,
                mode: f.number("mode", 8, 0o400)?,
            }
        }
        o => {
            return Err(
                format!("unknown mount type={o:?}: use bind, cache, tmpfs or secret").into(),
            );
        }
    };
    if let Some((k, _)) = f.fields.first() {
        return Err(format!("unknown --mount option {k:?} for this mount type").into());
    }
    let target = match (&kind, target) {
        (MountKind::Secret { id, env, .. }, None) => match env {
            Some(_) => None,
            None => Some(format!("/run/secrets/{id}")),
        },
        (_, None) => return Err("--mount needs target=<path in the RUN>".to_string().into()),
        (_, Some(t)) => Some(clean_target(&t, workdir)?),
    };
    if let MountKind::Secret { env: Some(e), .. } = &kind
        && !is_env_name(e)
    {
        return Err(format!("invalid secret env={e:?}: use a variable name").into());
    }
    Ok(RunMount { kind, target })
}

/// The remaining `key=value` fields of a mount, taken one key at a time.
struct Fields {
    fields: Vec<(String, Option<String>)>,
}

impl Fields {
    fn take(&mut self, key: &str) -> Option<String> {
        self.take_any(&[key])
    }

    /// The last value of any of `keys` (all of them removed).
    fn take_any(&mut self, keys: &[&str]) -> Option<String> {
        let mut found = None;
        self.fields.retain(|(k, v)| {
            if keys.contains(&k.as_str()) {
                found = Some(v.clone().unwrap_or_default());
                false
            } else {
                true
            }
        });
        found
    }

    /// A boolean option: bare (`ro`) is true, else `true`/`false`.
    fn flag(&mut self, keys: &[&str]) -> Result<bool, String> {
        let mut value = false;
        let mut i = 0;
        while i < self.fields.len() {
            if keys.contains(&self.fields[i].0.as_str()) {
                let (k, v) = self.fields.remove(i);
                value = match v.as_deref() {
                    None | Some("true") | Some("1") => true,
                    Some("false") | Some("0") => false,
                    Some(o) => return Err(format!("invalid {k}={o:?}: use true or false")),
                };
            } else {
                i += 1;
            }
        }
        Ok(value)
    }

    fn number(&mut self, key: &str, radix: u32, default: u32) -> Result<u32, String> {
        match self.take(key) {
            None => Ok(default),
            Some(v) => u32::from_str_radix(&v, radix)
                .ok()
                .filter(|n| radix != 8 || *n <= 0o7777)
                .ok_or_else(|| {
                    let what = if radix == 8 {
                        "an octal mode"
                    } else {
                        "a number"
                    };
                    format!("invalid {key}={v:?}: use {what}")
                }),
        }
    }
}

/// A target as an absolute, clean path; relative ones are under `workdir`.
/// `/`, `/proc` and `/dev` are the sandbox's own and refused.
fn clean_target(t: &str, workdir: &str) -> Result<String, String> {
    if t.is_empty() {
        return Err("--mount target= is empty".into());
    }
    let joined = if t.starts_with('/') {
        t.to_string()
    } else {
        format!("{}/{t}", workdir.trim_end_matches('/'))
    };
    let comps = fsutil::clean_components(&joined);
    match comps.first().map(String::as_str) {
        None => Err(format!("--mount target={t:?} is the root directory")),
        Some("proc" | "dev") => Err(format!(
            "--mount target={t:?} is under /{}, which the sandbox provides",
            comps[0]
        )),
        _ => Ok(format!("/{}", comps.join("/"))),
    }
}

/// A secret id is a file name under `/run/secrets`.
fn check_secret_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 255
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid secret id={id:?}: use letters, digits, '.', '_' and '-'"
        ))
    }
}

fn is_env_name(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `512m`, `1g`, `4096`: a tmpfs size in bytes (see
/// [`limits::parse_byte_size`](super::limits::parse_byte_size)), at most
/// [`TMPFS_SIZE_MAX`].
fn parse_size(s: &str) -> Result<u64, String> {
    super::limits::parse_byte_size(s)
        .ok()
        .filter(|n| (1..=TMPFS_SIZE_MAX).contains(n))
        .ok_or_else(|| {
            format!(
                "invalid size={s:?}: use bytes with an optional k, m or g suffix, at most {}",
                super::limits::show(TMPFS_SIZE_MAX)
            )
        })
}

impl RunMount {
    /// The canonical text of the mount, for the step's cache key: the spec
    /// only, never a cache's contents or a secret's value.
    pub fn key_text(&self) -> String {
        let target = self.target.as_deref().unwrap_or_default();
        match &self.kind {
            MountKind::Bind { from, source, rw } => format!(
                "bind|target={target}|from={}|source={source}|rw={rw}",
                from.as_deref().unwrap_or_default()
            ),
            MountKind::Cache {
                id,
                seed,
                sharing,
                readonly,
                uid,
                gid,
                mode,
            } => {
                let mut text = format!(
                    "cache|target={target}|id={id}|sharing={}|ro={readonly}|uid={uid}|gid={gid}|mode={mode:o}",
                    sharing.as_str()
                );
                // Only seeded caches say so: keys of the others stay as they were.
                if let Some(s) = seed {
                    text.push_str(&format!("|from={}|source={}", s.from, s.source));
                }
                text
            }
            MountKind::Tmpfs { size } => {
                format!("tmpfs|target={target}|size={}", size.unwrap_or(0))
            }
            MountKind::Secret {
                id,
                env,
                required,
                uid,
                gid,
                mode,
            } => format!(
                "secret|target={target}|id={id}|env={}|required={required}|uid={uid}|gid={gid}|mode={mode:o}",
                env.as_deref().unwrap_or_default()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> RunMount {
        parse(s, "/work").unwrap()
    }

    fn err(s: &str) -> String {
        parse(s, "/work").unwrap_err().to_string()
    }

    #[test]
    fn a_cache_seed_is_a_stage_or_image_and_a_path_in_it() {
        let seeded = |s: &str| match ok(s).kind {
            MountKind::Cache { seed, .. } => seed,
            k => panic!("{k:?}"),
        };
        assert_eq!(
            seeded("type=cache,target=/c,from=deps,source=/root/.m2"),
            Some(CacheSeed {
                from: "deps".into(),
                source: "/root/.m2".into()
            })
        );
        assert_eq!(
            seeded("type=cache,target=/c,from=deps").map(|s| s.source),
            Some("/".into())
        );
        assert_eq!(seeded("type=cache,target=/c"), None);
        // Seeded or not, with another seed: three keys.
        let keys = [
            "type=cache,target=/c",
            "type=cache,target=/c,from=a",
            "type=cache,target=/c,from=a,source=/x",
        ]
        .map(|s| ok(s).key_text());
        assert!(keys[0] != keys[1] && keys[1] != keys[2], "{keys:?}");
        assert_eq!(
            keys[0],
            "cache|target=/c|id=/c|sharing=shared|ro=false|uid=0|gid=0|mode=755"
        );
    }

    #[test]
    fn cache_mounts_take_buildkit_defaults_and_options() {
        assert_eq!(
            ok("type=cache,target=/root/.cache"),
            RunMount {
                kind: MountKind::Cache {
                    id: "/root/.cache".into(),
                    seed: None,
                    sharing: Sharing::Shared,
                    readonly: false,
                    uid: 0,
                    gid: 0,
                    mode: 0o755,
                },
                target: Some("/root/.cache".into()),
            }
        );
        assert_eq!(
            ok("type=cache,id=go,dst=cache/../go,sharing=locked,uid=1000,gid=1000,mode=0700,ro"),
            RunMount {
                kind: MountKind::Cache {
                    id: "go".into(),
                    seed: None,
                    sharing: Sharing::Locked,
                    readonly: true,
                    uid: 1000,
                    gid: 1000,
                    mode: 0o700,
                },
                target: Some("/work/go".into()),
            }
        );
    }

    #[test]
    fn bind_is_the_default_type_and_read_only_unless_rw() {
        assert_eq!(
            ok("target=/src"),
            RunMount {
                kind: MountKind::Bind {
                    from: None,
                    source: "/".into(),
                    rw: false
                },
                target: Some("/src".into()),
            }
        );
        assert_eq!(
            ok("type=bind,from=build,source=/out,target=.,rw"),
            RunMount {
                kind: MountKind::Bind {
                    from: Some("build".into()),
                    source: "/out".into(),
                    rw: true
                },
                target: Some("/work".into()),
            }
        );
    }

    #[test]
    fn secrets_default_to_run_secrets_and_may_be_env_only() {
        let m = ok("type=secret,id=npm");
        assert_eq!(m.target.as_deref(), Some("/run/secrets/npm"));
        assert!(matches!(
            m.kind,
            MountKind::Secret {
                required: false,
                mode: 0o400,
                ..
            }
        ));
        let m = ok("type=secret,id=tok,env=TOKEN,required=true");
        assert_eq!(m.target, None);
        assert!(
            matches!(&m.kind, MountKind::Secret { env: Some(e), required: true, .. } if e == "TOKEN")
        );
        let m = ok("type=secret,target=/etc/app/key");
        assert!(matches!(&m.kind, MountKind::Secret { id, .. } if id == "key"));
        assert!(err("type=secret,id=../../etc/passwd").contains("invalid secret id"));
        assert!(err("type=secret,id=a,env=A-B").contains("invalid secret env"));
    }

    #[test]
    fn ssh_is_refused_and_hostile_values_are_named() {
        assert_eq!(parse("type=ssh", "/"), Err(MountError::Ssh));
        assert!(err("type=ssh,id=default").contains("type=ssh is not supported"));
        for (option, message) in [
            ("type=cache", "needs target="),
            ("type=volume,target=/x", "unknown mount type=\"volume\""),
            (
                "type=cache,target=/x,sharing=all",
                "invalid sharing=\"all\"",
            ),
            ("type=cache,target=/x,mode=999", "invalid mode=\"999\""),
            ("type=cache,target=/x,uid=-1", "invalid uid=\"-1\""),
            (
                "type=cache,target=/x,bogus=1",
                "unknown --mount option \"bogus\"",
            ),
            ("type=cache,target=/x,source=/a", "source= needs from="),
            ("type=bind,target=/x,ro=maybe", "invalid ro=\"maybe\""),
            ("type=tmpfs,target=/x,size=1t", "invalid size=\"1t\""),
            ("type=tmpfs,target=/x,size=0", "invalid size=\"0\""),
            ("type=tmpfs,target=/", "root directory"),
            ("type=tmpfs,target=/a/../..", "root directory"),
            ("type=tmpfs,target=../../proc/sys", "under /proc"),
            ("type=bind,target=/dev/shm", "under /dev"),
        ] {
            let e = err(option);
            assert!(e.contains(message), "{option}: {e}");
        }
        assert!(err(&format!("target=/{}", "a".repeat(5000))).contains("longer than"));
    }

    #[test]
    fn tmpfs_sizes_and_written_types() {
        assert_eq!(
            ok("type=tmpfs,target=/t,size=64m").kind,
            MountKind::Tmpfs {
                size: Some(64 << 20)
            }
        );
        assert_eq!(written_type("target=/x"), Some("bind"));
        assert_eq!(written_type("type=ssh"), Some("ssh"));
        assert_eq!(written_type("type=$T,target=/x"), None);
        assert_eq!(from_field("type=bind,from=build,target=/x"), Some("build"));
        assert_eq!(from_field("type=cache,target=/x"), None);
    }

    #[test]
    fn key_text_has_the_spec_and_no_secret_value() {
        let a = ok("type=cache,target=/c");
        let b = ok("type=cache,target=/c,sharing=locked");
        assert_ne!(a.key_text(), b.key_text());
        assert_eq!(
            ok("type=secret,id=s").key_text(),
            "secret|target=/run/secrets/s|id=s|env=|required=false|uid=0|gid=0|mode=400"
        );
    }
}
