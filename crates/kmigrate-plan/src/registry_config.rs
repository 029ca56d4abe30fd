//! Registry settings that buildx keeps in the builder's `buildkitd.toml`
//! (Kaniko took them as flags: `--insecure-registry`, `--registry-mirror`…).

use std::collections::BTreeMap;

/// Settings for one registry host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryHost {
    pub http: bool,
    pub insecure: bool,
    pub ca: Vec<String>,
    /// `(cert, key)` pairs for mutual TLS.
    pub keypairs: Vec<(String, String)>,
    pub mirrors: Vec<String>,
}

/// All hosts, sorted so the rendered file is stable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryConfig {
    pub hosts: BTreeMap<String, RegistryHost>,
}

impl RegistryConfig {
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    pub fn host(&mut self, name: &str) -> &mut RegistryHost {
        self.hosts.entry(name.to_string()).or_default()
    }

    /// Merges another step's settings into this one (one builder serves all
    /// steps of a file).
    pub fn merge(&mut self, other: &RegistryConfig) {
        for (name, h) in &other.hosts {
            let mine = self.host(name);
            mine.http |= h.http;
            mine.insecure |= h.insecure;
            for c in &h.ca {
                if !mine.ca.contains(c) {
                    mine.ca.push(c.clone());
                }
            }
            for k in &h.keypairs {
                if !mine.keypairs.contains(k) {
                    mine.keypairs.push(k.clone());
                }
            }
            for m in &h.mirrors {
                if !mine.mirrors.contains(m) {
                    mine.mirrors.push(m.clone());
                }
            }
        }
    }

    /// The `buildkitd.toml` text, one line per item.
    pub fn to_toml_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (name, h) in &self.hosts {
            lines.push(format!("[registry.\"{name}\"]"));
            if h.http {
                lines.push("  http = true".into());
            }
            if h.insecure {
                lines.push("  insecure = true".into());
            }
            if !h.mirrors.is_empty() {
                lines.push(format!("  mirrors = [{}]", quoted_list(&h.mirrors)));
            }
            if !h.ca.is_empty() {
                lines.push(format!("  ca = [{}]", quoted_list(&h.ca)));
            }
            for (cert, key) in &h.keypairs {
                lines.push(format!("  [[registry.\"{name}\".keypair]]"));
                lines.push(format!("    cert = \"{cert}\""));
                lines.push(format!("    key = \"{key}\""));
            }
        }
        lines
    }
}

fn quoted_list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("\"{i}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The registry host of an image reference (`docker.io` when none is named).
pub fn registry_host(reference: &str) -> String {
    match reference.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first.to_string()
        }
        _ => "docker.io".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_sorted_toml() {
        let mut c = RegistryConfig::default();
        c.host("registry.local:5000").http = true;
        c.host("docker.io").mirrors.push("mirror.gcr.io".into());
        c.host("corp.example")
            .keypairs
            .push(("/certs/c.pem".into(), "/certs/k.pem".into()));
        assert_eq!(
            c.to_toml_lines().join("\n"),
            "[registry.\"corp.example\"]\n  [[registry.\"corp.example\".keypair]]\n    cert = \"/certs/c.pem\"\n    key = \"/certs/k.pem\"\n[registry.\"docker.io\"]\n  mirrors = [\"mirror.gcr.io\"]\n[registry.\"registry.local:5000\"]\n  http = true"
        );
    }

    #[test]
    fn finds_the_registry_host() {
        assert_eq!(registry_host("gcr.io/p/app:1"), "gcr.io");
        assert_eq!(registry_host("localhost:5000/app"), "localhost:5000");
        assert_eq!(registry_host("library/busybox"), "docker.io");
        assert_eq!(registry_host("busybox"), "docker.io");
    }
}
