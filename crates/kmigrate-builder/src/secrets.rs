//! The build's `--secret`s (`id=…,src=<file>` or `id=…,env=<VAR>`, as
//! buildx takes them), read only when a `RUN --mount=type=secret` uses one.
//!
//! A secret's value goes to the RUN that mounts it and nowhere else: not in
//! a layer, a cache key, the image config or the build log (RUN output
//! that prints it shows `****`).

use std::collections::BTreeMap;
use std::path::PathBuf;

/// BuildKit's bound on one secret (500 KiB).
pub const SECRET_MAX: u64 = 500 * 1024;
/// Most `--secret` flags one build may have.
const SECRETS_MAX: usize = 256;

/// Where a secret's value is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
}

/// The build's secrets by id.
#[derive(Debug, Clone, Default)]
pub struct Secrets(BTreeMap<String, SecretSource>);

impl Secrets {
    /// Parses `--secret` values: `id=…` with `src=`/`source=` (a file),
    /// `env=` (a variable), `type=file|env`; `id` alone is the variable of
    /// that name, as buildx does.
    pub fn parse(specs: &[String]) -> Result<Self, String> {
        if specs.len() > SECRETS_MAX {
            return Err(format!("more than {SECRETS_MAX} --secret flags"));
        }
        let mut out = BTreeMap::new();
        for spec in specs {
            let (mut id, mut kind, mut src, mut env) = (None, None, None, None);
            for field in spec.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                let (k, v) = field.split_once('=').ok_or_else(|| {
                    format!("invalid --secret {spec:?}: expected key=value fields")
                })?;
                match k {
                    "id" => id = Some(v.to_string()),
                    "type" => kind = Some(v.to_string()),
                    "src" | "source" => src = Some(v.to_string()),
                    "env" => env = Some(v.to_string()),
                    o => {
                        return Err(format!(
                            "invalid --secret {spec:?}: unknown key {o:?} (use id, src, env, type)"
                        ));
                    }
                }
            }
            let id = id
                .filter(|i| !i.is_empty())
                .ok_or_else(|| format!("invalid --secret {spec:?}: id= is required"))?;
            let source = match (kind.as_deref(), src, env) {
                (Some("file") | None, Some(s), None) => SecretSource::File(PathBuf::from(s)),
                (Some("file"), None, None) => SecretSource::File(PathBuf::from(&id)),
                (Some("env") | None, None, Some(e)) => SecretSource::Env(e),
                (Some("env") | None, None, None) => SecretSource::Env(id.clone()),
                (Some(t), _, _) if t != "file" && t != "env" => {
                    return Err(format!(
                        "invalid --secret {spec:?}: type={t:?} (use file or env)"
                    ));
                }
                _ => {
                    return Err(format!(
                        "invalid --secret {spec:?}: give src= or env=, not both"
                    ));
                }
            };
            out.insert(id, source);
        }
        Ok(Secrets(out))
    }

    /// The value of secret `id`: `Ok(None)` when no `--secret` gives it or
    /// its variable is unset; an error when its file cannot be read or is
    /// over [`SECRET_MAX`].
    pub fn value(&self, id: &str) -> Result<Option<Vec<u8>>, String> {
        match self.0.get(id) {
            None => Ok(None),
            Some(SecretSource::Env(var)) => match std::env::var_os(var) {
                None => Ok(None),
                Some(v) if v.len() as u64 > SECRET_MAX => Err(format!(
                    "secret {id:?}: ${var} is over the {} limit for a secret",
                    super::limits::show(SECRET_MAX)
                )),
                Some(v) => Ok(Some(v.into_encoded_bytes())),
            },
            Some(SecretSource::File(p)) => {
                super::limits::read_regular_file(p, SECRET_MAX, "secret")
                    .map(Some)
                    .map_err(|e| format!("secret {id:?}: {}: {e}", p.display()))
            }
        }
    }
}

/// `text` with every secret value of at least 4 bytes shown as `****`
/// (shorter ones would hide ordinary words).
pub fn redact(text: &str, values: &[String]) -> String {
    let mut out = text.to_string();
    for v in values.iter().filter(|v| v.len() >= 4) {
        if out.contains(v.as_str()) {
            out = out.replace(v.as_str(), "****");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_name_files_or_variables() {
        let s = Secrets::parse(&[
            "id=a,src=/tmp/a".into(),
            "id=b,env=B_VAR".into(),
            "id=C".into(),
            "type=file,id=d,source=/d".into(),
        ])
        .unwrap();
        assert_eq!(s.0["a"], SecretSource::File("/tmp/a".into()));
        assert_eq!(s.0["b"], SecretSource::Env("B_VAR".into()));
        assert_eq!(s.0["C"], SecretSource::Env("C".into()));
        assert_eq!(s.0["d"], SecretSource::File("/d".into()));
        for (bad, msg) in [
            ("src=/x", "id= is required"),
            ("id=a,src=/x,env=Y", "not both"),
            ("id=a,type=ssh", "type=\"ssh\""),
            ("id=a,path=/x", "unknown key \"path\""),
            ("id", "key=value"),
        ] {
            let e = Secrets::parse(&[bad.to_string()]).unwrap_err();
            assert!(e.contains(msg), "{bad}: {e}");
        }
    }

    #[test]
    fn values_are_read_bounded_and_missing_ones_are_none() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("s");
        std::fs::write(&f, "hunter2").unwrap();
        let big = d.path().join("big");
        std::fs::write(&big, vec![b'x'; SECRET_MAX as usize + 1]).unwrap();
        let s = Secrets::parse(&[
            format!("id=f,src={}", f.display()),
            format!("id=big,src={}", big.display()),
            "id=unset,env=KMIGRATE_TEST_SURELY_UNSET_VAR".into(),
        ])
        .unwrap();
        assert_eq!(s.value("f").unwrap().unwrap(), b"hunter2");
        assert_eq!(s.value("nope").unwrap(), None);
        assert_eq!(s.value("unset").unwrap(), None);
        assert!(s.value("big").unwrap_err().contains("secret \"big\""));
    }

    #[test]
    fn redaction_hides_values_of_four_bytes_or_more() {
        let v = vec!["hunter2".to_string(), "ab".to_string()];
        assert_eq!(redact("pw=hunter2 ab", &v), "pw=**** ab");
    }
}
