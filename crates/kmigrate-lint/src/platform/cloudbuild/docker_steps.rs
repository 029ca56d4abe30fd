//! Steps that already run the Docker CLI: builder setups and buildx builds
//! (for KM003, a cache export on the default `docker` driver).

use super::{Build, Step};
use crate::buildx::AttrList;
use crate::shell;
use crate::source::Item;

/// A step that runs `docker buildx create`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuilderSetup {
    pub step: usize,
    pub name: Option<String>,
    pub container_driver: bool,
}

/// A step that runs `docker buildx build` or `docker build`.
#[derive(Debug)]
pub struct DockerBuild<'a> {
    pub step: usize,
    /// The `args` items.
    pub items: &'a [Item],
    /// Index of the `build` item.
    pub build_item: usize,
    /// `docker build` rather than `docker buildx build`.
    pub classic: bool,
    pub builder: Option<String>,
    /// `--cache-to` exporters the docker driver cannot run.
    pub cache_exports: Vec<String>,
}

fn is_docker_cli(build: &Build, step: &Step) -> bool {
    if let Some(e) = step.entrypoint.and_then(|e| e.value.as_str()) {
        return e == "docker" || e.ends_with("/docker");
    }
    let Some(name) = step.name.and_then(|e| e.value.as_str()) else {
        return false;
    };
    let name = build.substitute(name);
    let repo = crate::buildx::from_kaniko::repository_of(&name);
    let last = repo.rsplit('/').next().unwrap_or(repo);
    last == "docker"
}

fn strings(items: &[Item]) -> Vec<Option<&str>> {
    items.iter().map(|i| i.node.as_str()).collect()
}

/// The value of `--flag X` or `--flag=X` in `args`, last one wins.
fn flag_values<'s>(args: &[Option<&'s str>], flag: &str) -> Vec<&'s str> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        if let Some(a) = args[i] {
            if a == flag {
                if let Some(Some(v)) = args.get(i + 1) {
                    out.push(*v);
                }
                i += 1;
            } else if let Some(v) = a.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
                out.push(v);
            }
        }
        i += 1;
    }
    out
}

/// Builder setups, in step order.
pub fn setups(build: &Build) -> Vec<BuilderSetup> {
    let mut out = Vec::new();
    for step in &build.steps {
        let Some(items) = step.arg_nodes(build.source) else {
            continue;
        };
        let args = strings(items);
        if is_docker_cli(build, step) {
            if args.len() >= 2 && args[0] == Some("buildx") && args[1] == Some("create") {
                out.push(setup_from(step.index, &args));
            }
            continue;
        }
        // `sh -c '… docker buildx create …'` (the setup kmigrate writes when
        // registry settings need a buildkitd.toml).
        let Some(c) = args.iter().position(|a| *a == Some("-c")) else {
            continue;
        };
        let Some(Some(script)) = args.get(c + 1) else {
            continue;
        };
        for cmd in shell::parse(script).commands {
            let words: Vec<String> = cmd.words.iter().filter_map(|w| w.literal()).collect();
            if words.len() == cmd.words.len()
                && words.len() >= 3
                && words[0] == "docker"
                && words[1] == "buildx"
                && words[2] == "create"
            {
                let rest: Vec<Option<&str>> = words[1..].iter().map(|w| Some(w.as_str())).collect();
                out.push(setup_from(step.index, &rest));
            }
        }
    }
    out
}

fn setup_from(step: usize, args: &[Option<&str>]) -> BuilderSetup {
    BuilderSetup {
        step,
        name: flag_values(args, "--name").last().map(|s| s.to_string()),
        container_driver: flag_values(args, "--driver").last() == Some(&"docker-container"),
    }
}

/// A `docker build`/`docker buildx build` inside a step's shell script that
/// exports cache with no docker-container builder created before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptCacheExport {
    pub step: usize,
    /// Source range of the command.
    pub span: std::ops::Range<usize>,
    pub cache_export: String,
}

/// Script builds that export cache on the default driver. A builder created
/// earlier in the same script, or by an earlier step, serves them.
pub fn script_cache_exports(build: &Build) -> Vec<ScriptCacheExport> {
    let earlier_setup = |step: usize| {
        setups(build)
            .iter()
            .any(|s| s.step < step && s.container_driver)
    };
    let mut out = Vec::new();
    for step in &build.steps {
        let Some(node) = script_node(build, step) else {
            continue;
        };
        let crate::source::Value::Scalar(scalar) = &node.value else {
            continue;
        };
        let mut builder_ready = earlier_setup(step.index);
        for cmd in shell::parse(&scalar.text).commands {
            let words: Vec<Option<String>> = cmd.words.iter().map(|w| w.literal()).collect();
            let word = |i: usize| words.get(i).cloned().flatten();
            if word(0).as_deref() != Some("docker") {
                continue;
            }
            let args: Vec<Option<&str>> = words.iter().map(|w| w.as_deref()).collect();
            match (word(1).as_deref(), word(2).as_deref()) {
                (Some("buildx"), Some("create")) => {
                    builder_ready |=
                        flag_values(&args, "--driver").last() == Some(&"docker-container");
                }
                (Some("buildx"), Some("build")) | (Some("build"), _) => {
                    if builder_ready {
                        continue;
                    }
                    let export = flag_values(&args, "--cache-to")
                        .into_iter()
                        .find(|v| AttrList::parse(v).kind().unwrap_or("registry") != "inline");
                    if let Some(export) = export {
                        out.push(ScriptCacheExport {
                            step: step.index,
                            span: scalar.source_range(&node.span, cmd.span.clone()),
                            cache_export: export.to_string(),
                        });
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// The script a step runs through a shell (`sh -c SCRIPT` or `script:`).
fn script_node<'a>(build: &'a Build<'a>, step: &'a Step<'a>) -> Option<&'a crate::source::Node> {
    if let Some(s) = step.script {
        return Some(&s.value);
    }
    let entrypoint = step.entrypoint?.value.as_str()?;
    if !(entrypoint.ends_with("sh") || entrypoint.ends_with("bash")) {
        return None;
    }
    let items = step.arg_nodes(build.source)?;
    let c = items.iter().position(|i| i.node.as_str() == Some("-c"))?;
    items.get(c + 1).map(|i| &i.node)
}

/// Docker builds, in step order.
pub fn builds<'a>(build: &'a Build<'a>) -> Vec<DockerBuild<'a>> {
    let mut out = Vec::new();
    for step in &build.steps {
        if !is_docker_cli(build, step) {
            continue;
        }
        let Some(items) = step.arg_nodes(build.source) else {
            continue;
        };
        let args = strings(items);
        let (build_item, classic) = match (
            args.first().copied().flatten(),
            args.get(1).copied().flatten(),
        ) {
            (Some("buildx"), Some("build")) => (1, false),
            (Some("build"), _) => (0, true),
            _ => continue,
        };
        let cache_exports = flag_values(&args, "--cache-to")
            .into_iter()
            .filter(|v| {
                let attrs = AttrList::parse(v);
                // A bare ref means type=registry; inline cache works everywhere.
                attrs.kind().unwrap_or("registry") != "inline"
            })
            .map(String::from)
            .collect();
        out.push(DockerBuild {
            step: step.index,
            items,
            build_item,
            classic,
            builder: flag_values(&args, "--builder")
                .last()
                .map(|s| s.to_string()),
            cache_exports,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceFile;
    use std::path::Path;

    #[test]
    fn reads_setups_and_builds() {
        let s = SourceFile::from_text(
            Path::new("cloudbuild.yaml"),
            concat!(
                "steps:\n",
                "- name: gcr.io/cloud-builders/docker\n  args: [buildx, create, --name=b1, --driver, docker-container, --use]\n",
                "- name: gcr.io/cloud-builders/docker\n  args: [buildx, build, --builder, b1, --cache-to, 'type=registry,ref=x,mode=max', .]\n",
                "- name: docker\n  args: [build, --cache-to=type=inline, .]\n",
                "- name: gcr.io/cloud-builders/gcloud\n  args: [build]\n",
            )
            .into(),
        )
        .unwrap();
        let b = Build::parse(&s).unwrap();
        assert_eq!(
            setups(&b),
            [BuilderSetup {
                step: 0,
                name: Some("b1".into()),
                container_driver: true
            }]
        );
        let builds = builds(&b);
        assert_eq!(builds.len(), 2);
        assert_eq!(builds[0].builder.as_deref(), Some("b1"));
        assert_eq!(builds[0].cache_exports, ["type=registry,ref=x,mode=max"]);
        assert!(builds[1].classic);
        assert!(
            builds[1].cache_exports.is_empty(),
            "inline cache works on the docker driver"
        );
    }

    #[test]
    fn finds_cache_exports_in_scripts() {
        let text = concat!(
            "steps:\n",
            "- name: gcr.io/cloud-builders/docker\n  entrypoint: bash\n  args:\n  - -c\n  - |\n    docker buildx build --cache-to type=registry,ref=x,mode=max -t x .\n    docker buildx create --driver docker-container --use\n    docker buildx build --cache-to type=registry,ref=y -t y .\n",
            "- name: gcr.io/cloud-builders/docker\n  entrypoint: sh\n  args: [-c, 'docker build --cache-to=type=inline -t z .']\n",
        );
        let s = SourceFile::from_text(Path::new("cloudbuild.yaml"), text.into()).unwrap();
        let b = Build::parse(&s).unwrap();
        let found = script_cache_exports(&b);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].cache_export, "type=registry,ref=x,mode=max");
        assert!(
            s.text[found[0].span.clone()]
                .starts_with("docker buildx build --cache-to type=registry,ref=x")
        );
    }
}
