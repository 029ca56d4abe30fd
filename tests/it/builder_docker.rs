//! `--output type=docker,dest=x.tar` loads into a real Docker Engine (a
//! private `dockerd` on its own socket) and `docker run` prints what the RUN
//! steps wrote, whiteouts included.

use crate::support;

use support::*;

#[test]
fn docker_tarball_loads_and_runs_in_a_real_dockerd() {
    if !(have("docker-registry") && have("busybox") && have("root") && have("dockerd")) {
        return;
    }
    let reg = Registry::start();
    let base = push_busybox(&reg);
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[
            (
                "Dockerfile",
                &format!(
                    "FROM {base} AS build\nRUN echo from-build-stage > /artifact\n\
             FROM {base}\nARG GREETING=hello\nCOPY msg.txt /msg.txt\nCOPY --from=build /artifact /artifact\n\
             RUN echo \"$GREETING from RUN\" > /run.txt && rm /msg.txt && echo deleted > /status\n\
             ENV SHOWN=env-ok\nWORKDIR /work\nCMD [\"sh\", \"-c\", \"cat /run.txt /artifact /status; echo $SHOWN; pwd; test -e /msg.txt && echo msg-present || echo msg-gone\"]\n"
                ),
            ),
            ("msg.txt", "should be whited out"),
        ],
    );
    let state = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let tarball = out_dir.path().join("image.tar");
    let o = ok(&kmigrate_build(
        state.path(),
        &[
            "-t",
            "kmigrate-test/app:1",
            "--build-arg",
            "GREETING=hi",
            "--output",
            &format!("type=docker,dest={}", tarball.display()),
            ctx.path().to_str().unwrap(),
        ],
    ));
    let digest = image_digest(&o);
    let d = Dockerd::start();
    let load = d.docker(&["load", "-i", tarball.to_str().unwrap()]);
    assert!(
        load.status.success(),
        "docker load: {}",
        String::from_utf8_lossy(&load.stderr)
    );
    let run = d.docker(&["run", "--rm", "--network", "none", "kmigrate-test/app:1"]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "docker run: {}{}",
        stdout,
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        stdout,
        "hi from RUN\nfrom-build-stage\ndeleted\nenv-ok\n/work\nmsg-gone\n"
    );
    // The config digest docker computed is ours.
    let inspect = d.docker(&["image", "inspect", "-f", "{{.Id}}", "kmigrate-test/app:1"]);
    let id = String::from_utf8_lossy(&inspect.stdout).trim().to_string();
    let m: kmigrate::builder::image::Manifest = serde_json::from_slice(
        &std::fs::read(
            state
                .path()
                .join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:")),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(id, m.config.digest);
}
