//! Kaniko's digest files, written again after a buildx build so the steps
//! that read them keep working.
//!
//! buildx has no digest-file flags: the plan writes `--metadata-file`, a JSON
//! object whose top level holds `"containerimage.digest": "sha256:…"` and
//! `"image.name": "name:tag,name:tag"`. The shell line built here extracts
//! what Kaniko wrote:
//!
//! - `--digest-file F`: the digest, no newline;
//! - `--image-name-with-digest-file F`: `name@digest` per destination, one a line;
//! - `--image-name-tag-with-digest-file F`: `name:tag@digest`, one a line.
//!
//! It uses only `sed` and `tr` (Debian/Ubuntu's essential packages, so in
//! `gcr.io/cloud-builders/docker` as in any Ubuntu-based image; `jq` and
//! `python3` are not guaranteed there). Each value is matched as `"key":
//! "value"` with an unescaped quote right after the key, which a JSON string
//! nested elsewhere in the metadata (build-arg values in the provenance)
//! cannot contain, and it works on one-line and indented JSON alike.

use crate::kaniko::Call;

/// `sed` that prints the string value of top-level `key` in a metadata file.
fn value_of(key: &str, metadata: &str) -> String {
    let key = key.replace('.', "\\.");
    format!(
        "sed -n 's/.*\"{key}\":[ ]*\"\\([^\"]*\\)\".*/\\1/p' {}",
        crate::shell::render_word(&crate::shell::escape_dq(metadata))
    )
}

/// The flags this module writes files for.
pub const FLAGS: &[&str] = &[
    "digest-file",
    "image-name-with-digest-file",
    "image-name-tag-with-digest-file",
];

/// The shell commands (plain `$`, POSIX sh), one per file, that write every
/// digest file `call` asked for from `metadata`; empty when it asked for none.
pub fn extraction(call: &Call, metadata: &str) -> Vec<String> {
    let word = |s: &str| crate::shell::render_word(&crate::shell::escape_dq(s));
    let digest = value_of("containerimage.digest", metadata);
    // `echo "$(…)"` ends the list with a newline even when the JSON has none.
    let names = format!(
        "echo \"$({})\" | tr , '\\n'",
        value_of("image.name", metadata)
    );
    let mut lines = Vec::new();
    if let Some(f) = call.value("digest-file") {
        lines.push(format!("{digest} | tr -d '\\n' > {}", word(f)));
    }
    let pinned = |strip_tag: bool, file: &str| {
        // `name:tag` → `name` (a `:` followed by no `/`: not a registry port).
        let strip = if strip_tag { "s/:[^:/]*$//; " } else { "" };
        format!(
            "{names} | sed \"{strip}s/\\$/@$({digest})/\" > {}",
            word(file)
        )
    };
    if let Some(f) = call.value("image-name-with-digest-file") {
        lines.push(pinned(true, f));
    }
    if let Some(f) = call.value("image-name-tag-with-digest-file") {
        lines.push(pinned(false, f));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kaniko::call::{Arg, parse};

    const DIGEST: &str = "sha256:19ffeab6f8bc9293ac2c3fdf94ebe28396254c993aea0b5a542cfb02e0883fa3";

    /// A metadata file as `docker buildx build --metadata-file` writes it:
    /// Go's `json.MarshalIndent(…, "", "  ")` of the exporter response, keys
    /// sorted, JSON values (descriptor, provenance) decoded into objects. The
    /// provenance holds other digests and a build-arg that mentions the key.
    fn buildx_metadata(names: &str) -> String {
        format!(
            r#"{{
  "buildx.build.provenance": {{
    "buildType": "https://mobyproject.org/buildkit@v1",
    "invocation": {{
      "parameters": {{
        "args": {{
          "build-arg:NOTE": "\"containerimage.digest\": \"sha256:0000\""
        }},
        "frontend": "dockerfile.v0"
      }}
    }},
    "materials": [
      {{
        "digest": {{
          "sha256": "aaaa"
        }},
        "uri": "pkg:docker/busybox@latest"
      }}
    ]
  }},
  "buildx.build.ref": "kmigrate/kmigrate0/0fjb6ubs52xx3vygf6fgdl611",
  "containerimage.config.digest": "sha256:2937f66a9722f7f4a2df583de2f8cb97fc9196059a410e7f00072fc918930e66",
  "containerimage.descriptor": {{
    "digest": "{DIGEST}",
    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "size": 506
  }},
  "containerimage.digest": "{DIGEST}",
  "image.name": "{names}"
}}"#
        )
    }

    fn call(words: &[&str]) -> Call {
        parse(words.iter().map(|w| Arg::new(*w)).collect())
    }

    /// Runs the extraction with `shell` in a scratch directory holding
    /// `metadata` as `m.json`; returns the files it wrote.
    fn run(shell: &[&str], words: &[&str], metadata: &str, outputs: &[&str]) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m.json"), metadata).unwrap();
        let script = extraction(&call(words), "m.json").join(" && ");
        let o = std::process::Command::new(shell[0])
            .args(&shell[1..])
            .arg("-c")
            .arg(&script)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{script}: {o:?}");
        outputs
            .iter()
            .map(|f| std::fs::read_to_string(dir.path().join(f)).unwrap())
            .collect()
    }

    #[test]
    fn writes_what_kaniko_wrote_from_buildx_metadata() {
        let words = [
            "--digest-file=d.txt",
            "--image-name-with-digest-file=n.txt",
            "--image-name-tag-with-digest-file",
            "t.txt",
        ];
        let names = "gcr.io/p/app:v1,localhost:5000/app:latest,localhost:5000/plain";
        let pretty = buildx_metadata(names);
        let one_line: String =
            serde_json::to_string(&serde_json::from_str::<serde_json::Value>(&pretty).unwrap())
                .unwrap();
        let mut shells = vec![vec!["sh"]];
        if std::path::Path::new("/bin/busybox").exists() {
            shells.push(vec!["/bin/busybox", "sh"]);
        }
        for shell in &shells {
            for metadata in [&pretty, &one_line] {
                let got = run(shell, &words, metadata, &["d.txt", "n.txt", "t.txt"]);
                assert_eq!(got[0], DIGEST, "{shell:?}");
                assert_eq!(
                    got[1],
                    format!(
                        "gcr.io/p/app@{DIGEST}\nlocalhost:5000/app@{DIGEST}\nlocalhost:5000/plain@{DIGEST}\n"
                    ),
                    "{shell:?} {metadata}"
                );
                assert_eq!(
                    got[2],
                    format!(
                        "gcr.io/p/app:v1@{DIGEST}\nlocalhost:5000/app:latest@{DIGEST}\nlocalhost:5000/plain@{DIGEST}\n"
                    ),
                    "{shell:?}"
                );
            }
        }
    }

    #[test]
    fn no_digest_flags_no_extraction() {
        assert!(extraction(&call(&["--destination=x"]), "m.json").is_empty());
    }
}
