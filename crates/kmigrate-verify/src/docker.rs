//! The Docker Engine backend (bollard): the same plans through a Docker
//! Engine's `/build` API.
//!
//! What it cannot prove, said in the report: a Docker Engine's default
//! `docker` driver cannot export a registry cache ("Cache export is not
//! supported for the docker driver"), so the plan's `--cache-to` is not
//! exported here. The warm check instead uses the pushed image itself as the
//! cache (inline cache): the image and the engine's build cache are
//! removed, the image is pulled back from the mapped registry and the build
//! runs again with `cachefrom` = that image.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bollard::Docker;
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateImageOptionsBuilder, PushImageOptionsBuilder,
    RemoveImageOptionsBuilder, TagImageOptionsBuilder,
};
use futures_util::StreamExt;

use super::mapping::MappedPlan;
use super::{Backend, RunStats, VerifyError, VerifyOptions, secs};
use kmigrate_lint::buildx::BuildPlan;

/// A connected Docker Engine.
pub struct DockerEngine {
    rt: tokio::runtime::Runtime,
    docker: Docker,
    host: String,
    network: Option<String>,
    /// Verify's store, never part of a build context.
    store: Option<PathBuf>,
}

const DEFAULT_SOCKET: &str = "unix:///var/run/docker.sock";

impl DockerEngine {
    /// Connects to `--docker-host`, `DOCKER_HOST` or the default socket.
    pub fn connect(opts: &VerifyOptions) -> Result<Self, VerifyError> {
        if opts.maps.is_empty() {
            return Err(VerifyError::DockerNeedsRegistry);
        }
        let host = opts
            .docker_host
            .clone()
            .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| DEFAULT_SOCKET.to_string());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(VerifyError::Runtime)?;
        let connect = || -> Result<Docker, bollard::errors::Error> {
            if let Some(addr) = host.strip_prefix("tcp://") {
                Docker::connect_with_http(
                    &format!("http://{addr}"),
                    600,
                    bollard::API_DEFAULT_VERSION,
                )
            } else {
                Docker::connect_with_unix(&host, 600, bollard::API_DEFAULT_VERSION)
            }
        };
        let cannot = |source| VerifyError::DockerUnreachable {
            host: host.clone(),
            source,
        };
        let docker = connect().map_err(cannot)?;
        let docker = rt
            .block_on(async {
                let d = docker.negotiate_version().await?;
                d.ping().await?;
                Ok::<_, bollard::errors::Error>(d)
            })
            .map_err(cannot)?;
        Ok(DockerEngine {
            store: opts.store.clone(),
            rt,
            docker,
            host,
            network: opts.docker_network.clone(),
        })
    }

    fn run(&mut self, m: &MappedPlan, warm: bool) -> RunStats {
        let t0 = Instant::now();
        let res = self.rt.block_on(run_build(
            &self.docker,
            &m.plan,
            self.network.as_deref(),
            warm,
            self.store.as_deref(),
        ));
        let mut s = match res {
            Ok(s) => s,
            Err(e) => RunStats {
                error: Some(e),
                ..Default::default()
            },
        };
        s.seconds = secs(t0.elapsed());
        s
    }
}

impl Backend for DockerEngine {
    fn cold(&mut self, _unit: usize, m: &MappedPlan) -> RunStats {
        self.run(m, false)
    }

    fn warm(&mut self, _unit: usize, m: &MappedPlan) -> RunStats {
        self.run(m, true)
    }

    fn caveats(&self) -> Vec<String> {
        vec![
            format!("engine: Docker Engine at {} (classic /build API)", self.host),
            "the docker driver cannot export a registry cache (\"Cache export is not supported for the docker driver\"): --cache-to was not exported; the warm check pulls the pushed image back and uses it as the cache (--cache-from IMAGE, inline cache). Like inline cache (mode=min) it covers the final stage only: steps of other stages run again and fail the warm check. Use the embedded engine to prove the registry cache itself".into(),
        ]
    }
}

/// The build context as a tar, with the Dockerfile at a known name;
/// `store` (verify's own state) is left out when it lies inside.
fn context_tar(plan: &BuildPlan, store: Option<&Path>) -> Result<(Vec<u8>, String), String> {
    let ctx = PathBuf::from(&plan.context);
    if !ctx.is_dir() {
        return Err(format!("context {} is not a directory", ctx.display()));
    }
    let dockerfile = plan
        .dockerfile
        .as_ref()
        .map(PathBuf::from)
        .unwrap_or_else(|| ctx.join("Dockerfile"));
    // `.dockerignore` is applied here, as the Docker CLI does before upload.
    let (mut rules, _) = kmigrate_builder::ignore::IgnoreRules::load(&ctx, &dockerfile)
        .map_err(|e| format!("reading .dockerignore in {}: {e}", ctx.display()))?;
    if let Some(rel) = store.and_then(|s| s.strip_prefix(&ctx).ok()) {
        rules.exclude_always(&rel.to_string_lossy());
    }
    let keep_always = |rel: &str| {
        rel == ".dockerignore"
            || dockerfile
                .strip_prefix(&ctx)
                .is_ok_and(|d| d.to_str() == Some(rel))
    };
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    let mut walk = walkdir::WalkDir::new(&ctx)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(1)
        .into_iter();
    while let Some(entry) = walk.next() {
        let entry = entry.map_err(|e| format!("reading context {}: {e}", ctx.display()))?;
        let rel = entry
            .path()
            .strip_prefix(&ctx)
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .replace('\\', "/");
        if rules.excluded(&rel) && !keep_always(&rel) {
            if entry.file_type().is_dir() && !rules.has_exceptions() {
                walk.skip_current_dir();
            }
            continue;
        }
        b.append_path_with_name(entry.path(), &rel)
            .map_err(|e| format!("adding {} to the context: {e}", entry.path().display()))?;
    }
    let name = match dockerfile.strip_prefix(&ctx) {
        Ok(rel) => rel.display().to_string(),
        Err(_) => {
            let name = ".kmigrate-verify.Dockerfile".to_string();
            let data = kmigrate_builder::limits::read_regular_file(
                &dockerfile,
                kmigrate_builder::limits::DOCKERFILE_MAX,
                "Dockerfile",
            )
            .map_err(|e| format!("Dockerfile {}: {e}", dockerfile.display()))?;
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, &name, data.as_slice())
                .map_err(|e| e.to_string())?;
            name
        }
    };
    let bytes = b.into_inner().map_err(|e| e.to_string())?;
    Ok((bytes, name))
}

/// Steps of the classic builder's output: (instruction, cached?) for
/// RUN/COPY/ADD.
pub fn count_steps(output: &str) -> (usize, usize) {
    let mut executed = 0;
    let mut cached = 0;
    let mut current: Option<(bool, bool)> = None; // (layer step, cached)
    let mut close = |c: &mut Option<(bool, bool)>| {
        if let Some((layer, hit)) = c.take()
            && layer
        {
            if hit {
                cached += 1;
            } else {
                executed += 1;
            }
        }
    };
    for line in output.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("Step ") {
            close(&mut current);
            let instr = rest
                .split_once(" : ")
                .map(|(_, i)| i.trim_start())
                .unwrap_or("");
            let word = instr
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            current = Some((matches!(word.as_str(), "RUN" | "COPY" | "ADD"), false));
        } else if t.contains("Using cache")
            && let Some(c) = current.as_mut()
        {
            c.1 = true;
        }
    }
    close(&mut current);
    (executed, cached)
}

async fn run_build(
    docker: &Docker,
    plan: &BuildPlan,
    network: Option<&str>,
    warm: bool,
    store: Option<&Path>,
) -> Result<RunStats, String> {
    let Some(first) = plan.tags.first().cloned() else {
        return Err("no image name is mapped to a registry: the Docker Engine can only push to a registry (add a --registry-map for this image's registry)".into());
    };
    if warm {
        // Wipe the engine's state for this image, then pull it back.
        for t in &plan.tags {
            let _ = docker
                .remove_image(
                    t,
                    Some(RemoveImageOptionsBuilder::default().force(true).build()),
                    None,
                )
                .await;
        }
        let _ = docker
            .prune_build(None::<bollard::query_parameters::PruneBuildOptions>)
            .await;
        let (repo, tag) = split_tag(&first);
        let mut pull = docker.create_image(
            Some(
                CreateImageOptionsBuilder::default()
                    .from_image(&repo)
                    .tag(&tag)
                    .build(),
            ),
            None,
            None,
        );
        while let Some(r) = pull.next().await {
            r.map_err(|e| format!("pulling {first} back for the warm run: {e}"))?;
        }
    }
    let (body, dockerfile) = context_tar(plan, store)?;
    let mut args: HashMap<String, String> = HashMap::new();
    for a in &plan.build_args {
        let v = match &a.value {
            Some(v) => v.clone(),
            None => std::env::var(&a.name).unwrap_or_default(),
        };
        args.insert(a.name.clone(), v);
    }
    args.insert("BUILDKIT_INLINE_CACHE".into(), "1".into());
    let labels: HashMap<String, String> = plan.labels.iter().cloned().collect();
    let cachefrom: Vec<String> = if warm {
        vec![first.clone()]
    } else {
        Vec::new()
    };
    let mut b = BuildImageOptionsBuilder::default()
        .dockerfile(&dockerfile)
        .t(&first)
        .rm(true)
        .forcerm(true)
        .nocache(plan.no_cache)
        .buildargs(&args)
        .labels(&labels)
        .cachefrom(&cachefrom);
    if let Some(t) = &plan.target {
        b = b.target(t);
    }
    if let Some(n) = network {
        b = b.networkmode(n);
    }
    let mut stream = docker.build_image(b.build(), None, Some(bollard::body_full(body.into())));
    let mut output = String::new();
    let mut image_id = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(s) = &info.stream {
                    output.push_str(s);
                }
                if let Some(e) = info.error_detail.and_then(|d| d.message) {
                    return Err(format!("{}\n{e}", tail(&output, 30)));
                }
                if let Some(id) = info.aux.and_then(|a| a.id) {
                    image_id = Some(id);
                }
            }
            Err(e) => return Err(format!("{}\n{e}", tail(&output, 30))),
        }
    }
    let inspect = docker
        .inspect_image(&first)
        .await
        .map_err(|e| format!("inspecting {first}: {e}"))?;
    let id = image_id.or(inspect.id).unwrap_or_default();
    let (executed, cached) = count_steps(&output);
    let mut stats = RunStats {
        ok: true,
        executed,
        cached,
        digest: id,
        ..Default::default()
    };
    if !warm {
        for t in &plan.tags {
            let (repo, tag) = split_tag(t);
            if t != &first {
                docker
                    .tag_image(
                        &first,
                        Some(
                            TagImageOptionsBuilder::default()
                                .repo(&repo)
                                .tag(&tag)
                                .build(),
                        ),
                    )
                    .await
                    .map_err(|e| format!("tagging {t}: {e}"))?;
            }
            let mut push = docker.push_image(
                &repo,
                Some(PushImageOptionsBuilder::default().tag(&tag).build()),
                None,
            );
            while let Some(r) = push.next().await {
                r.map_err(|e| format!("pushing {t}: {e}"))?;
            }
        }
        if let Ok(i) = docker.inspect_image(&first).await {
            stats.pushed = i.repo_digests.unwrap_or_default();
        }
    }
    Ok(stats)
}

/// `repo[:tag]` → (repo, tag); `latest` when there is no tag.
fn split_tag(r: &str) -> (String, String) {
    let name = r.split('@').next().unwrap_or(r);
    let slash = name.rfind('/').map(|i| i + 1).unwrap_or(0);
    match name[slash..].rfind(':') {
        Some(i) => (
            name[..slash + i].to_string(),
            name[slash + i + 1..].to_string(),
        ),
        None => (name.to_string(), "latest".to_string()),
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_builder_output_counts_layer_steps() {
        let out = "Step 1/5 : FROM busybox\n ---> abc\nStep 2/5 : COPY a /a\n ---> Using cache\n ---> def\nStep 3/5 : RUN echo hi\n ---> Running in 123\nhi\n ---> 456\nStep 4/5 : ENV A=1\n ---> Running in 789\nStep 5/5 : ADD b /b\n ---> 999\n";
        assert_eq!(count_steps(out), (2, 1));
    }

    #[test]
    fn context_tar_honours_dockerignore_but_keeps_the_dockerfile() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("Dockerfile"), "FROM x\n").unwrap();
        std::fs::write(
            d.path().join(".dockerignore"),
            "secret*\nDockerfile\nbuild/\n",
        )
        .unwrap();
        std::fs::write(d.path().join("secret.txt"), "no").unwrap();
        std::fs::write(d.path().join("keep.txt"), "yes").unwrap();
        std::fs::create_dir(d.path().join("build")).unwrap();
        std::fs::write(d.path().join("build/out"), "no").unwrap();
        let plan = BuildPlan {
            context: d.path().display().to_string(),
            ..Default::default()
        };
        let (bytes, name) = context_tar(&plan, Some(&d.path().join("build"))).unwrap();
        assert_eq!(name, "Dockerfile");
        let mut ar = tar::Archive::new(bytes.as_slice());
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, vec![".dockerignore", "Dockerfile", "keep.txt"]);
    }

    #[test]
    fn context_tar_refuses_a_dockerfile_outside_that_is_not_a_regular_file() {
        let d = tempfile::tempdir().unwrap();
        let plan = BuildPlan {
            context: d.path().display().to_string(),
            dockerfile: Some("/dev/zero".into()),
            ..Default::default()
        };
        let e = context_tar(&plan, None).unwrap_err();
        assert!(e.contains("/dev/zero: not a regular file"), "{e}");
    }

    #[test]
    fn tags_split_after_the_last_slash() {
        assert_eq!(
            split_tag("127.0.0.1:5000/a/b:1"),
            ("127.0.0.1:5000/a/b".into(), "1".into())
        );
        assert_eq!(
            split_tag("127.0.0.1:5000/a"),
            ("127.0.0.1:5000/a".into(), "latest".into())
        );
    }
}
