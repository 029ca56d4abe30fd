//! Deterministic generator of synthetic monorepos for `scripts/bench.sh`.
//!
//! Not a timed benchmark: a helper run as
//! `cargo bench --bench gen -- OUT_DIR FILES VARIANT`, where VARIANT is
//! `kaniko` (every CI file uses Kaniko), `clean` (95% of the CI files have no
//! Kaniko, docker or includes at all) or `workflows` (a GitHub Actions
//! corpus for zizmor, `.github/workflows/*.yml`, whose total size is FILES
//! bytes). The same arguments always produce the same bytes: file contents
//! depend only on the file's index and a fixed-seed generator.
//!
//! The `shape-*` variants write one large valid pipeline of a shape that
//! once took quadratic time, FILES being its size (keys, aliases, steps or
//! included files): `shape-keys` (a `.gitlab-ci.yml` of many top-level
//! jobs), `shape-aliases` (many jobs each aliasing an anchor),
//! `shape-cb-alias-args` (Cloud Build steps sharing `args: *a`),
//! `shape-cb-flow` (a Cloud Build file of flow-mapping steps, each a fix)
//! and `shape-includes` (`include: 'ci/*.yml'` matching FILES files).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// SplitMix64: tiny, fixed-seed, good enough to vary the files.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const KANIKO_TAGS: &[&str] = &["v1.23.2", "v1.9.1", "latest", "v1.23.2-debug", "debug"];

fn cloudbuild_kaniko(i: usize, rng: &mut Rng) -> String {
    let tag = KANIKO_TAGS[rng.below(KANIKO_TAGS.len() as u64) as usize];
    let mut s = String::new();
    let _ = write!(
        s,
        "# service {i}: test, build two images, deploy\n\
         substitutions:\n  _REGION: europe-west{r}\n  _REPO: svc{i}\n\
         steps:\n\
         - id: test\n  name: golang:1.22\n  entrypoint: go\n  args: [test, ./services/svc{i}/...]\n\
         - id: build-app\n  name: gcr.io/kaniko-project/executor:{tag}\n  args:\n\
         \x20 - --destination=europe-docker.pkg.dev/$PROJECT_ID/$_REPO/app:$SHORT_SHA\n\
         \x20 - --context=dir://services/svc{i}\n\
         \x20 - --dockerfile=services/svc{i}/Dockerfile\n\
         \x20 - --cache=true\n\
         \x20 - --cache-ttl={ttl}h\n\
         \x20 - --build-arg=VERSION=$TAG_NAME\n",
        r = rng.below(4) + 1,
        ttl = 6 * (rng.below(4) + 1),
    );
    let workers = 1 + rng.below(3);
    for w in 0..workers {
        let _ = write!(
            s,
            "- id: build-worker-{w}\n  name: 'gcr.io/kaniko-project/executor:{tag}'\n  \
             waitFor: ['test']\n  \
             args: ['--destination=europe-docker.pkg.dev/$PROJECT_ID/$_REPO/worker{w}:$SHORT_SHA', \
             '--context=.', '--dockerfile=services/svc{i}/worker{w}.Dockerfile', '--snapshot-mode=redo']\n"
        );
    }
    let _ = write!(
        s,
        "- id: deploy\n  name: gcr.io/google.com/cloudsdktool/cloud-sdk:slim\n  entrypoint: gcloud\n  \
         args: [run, deploy, svc{i}, --image=europe-docker.pkg.dev/$PROJECT_ID/$_REPO/app:$SHORT_SHA, --region=$_REGION]\n\
         options:\n  machineType: E2_HIGHCPU_8\n  logging: CLOUD_LOGGING_ONLY\ntimeout: 1200s\n"
    );
    s
}

fn gitlab_kaniko(i: usize, rng: &mut Rng) -> String {
    let tag = KANIKO_TAGS[rng.below(KANIKO_TAGS.len() as u64) as usize];
    let mut s = String::new();
    let _ = write!(
        s,
        "# service {i}\nstages: [test, build, deploy]\n\
         variables:\n  KANIKO_IMAGE: gcr.io/kaniko-project/executor:{tag}\n  SERVICE: svc{i}\n\
         .kaniko: &kaniko\n  stage: build\n  image:\n    name: $KANIKO_IMAGE\n    entrypoint: [\"\"]\n  \
         before_script:\n    - mkdir -p /kaniko/.docker\n    \
         - echo \"{{\\\"auths\\\":{{\\\"$CI_REGISTRY\\\":{{\\\"auth\\\":\\\"$AUTH\\\"}}}}}}\" > /kaniko/.docker/config.json\n\
         test:\n  stage: test\n  image: golang:1.22\n  script:\n    - go vet ./...\n    - go test ./...\n\
         build-app:\n  <<: *kaniko\n  script:\n    - >\n      /kaniko/executor\n      \
         --context \"$CI_PROJECT_DIR/services/$SERVICE\"\n      \
         --dockerfile \"$CI_PROJECT_DIR/services/$SERVICE/Dockerfile\"\n      \
         --destination \"$CI_REGISTRY_IMAGE/$SERVICE:$CI_COMMIT_SHA\"\n      \
         --cache=true\n      --cache-ttl={ttl}h\n",
        ttl = 6 * (rng.below(4) + 1),
    );
    let workers = 1 + rng.below(3);
    for w in 0..workers {
        let _ = write!(
            s,
            "build-worker-{w}:\n  extends: .kaniko\n  needs: [test]\n  script:\n    \
             - /kaniko/executor --context $CI_PROJECT_DIR --dockerfile $CI_PROJECT_DIR/worker{w}.Dockerfile \
             --destination $CI_REGISTRY_IMAGE/worker{w}:$CI_COMMIT_SHA --build-arg VERSION=$CI_COMMIT_TAG\n"
        );
    }
    let _ = write!(
        s,
        "deploy:\n  stage: deploy\n  image: alpine:3.20\n  script:\n    - ./deploy.sh svc{i}\n  \
         rules:\n    - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH\n"
    );
    s
}

fn cloudbuild_clean(i: usize, rng: &mut Rng) -> String {
    let mut s = format!(
        "# service {i}: test and deploy\nsubstitutions:\n  _REGION: europe-west{}\nsteps:\n",
        rng.below(4) + 1
    );
    for k in 0..(2 + rng.below(4)) {
        let _ = write!(
            s,
            "- id: step-{k}\n  name: golang:1.22\n  entrypoint: go\n  \
             args: [test, -run, 'Test{k}', ./services/svc{i}/...]\n  env: ['CGO_ENABLED=0', 'GOFLAGS=-mod=vendor']\n"
        );
    }
    let _ = write!(
        s,
        "- id: deploy\n  name: gcr.io/google.com/cloudsdktool/cloud-sdk:slim\n  entrypoint: gcloud\n  \
         args: [functions, deploy, svc{i}, --region=$_REGION, --runtime=go122]\ntimeout: 600s\n"
    );
    s
}

fn gitlab_clean(i: usize, rng: &mut Rng) -> String {
    let mut s = format!(
        "# service {i}\nstages: [lint, test]\n.base: &base\n  image: python:3.12\n  \
         before_script:\n    - pip install -r requirements.txt\n"
    );
    for k in 0..(2 + rng.below(4)) {
        let _ = write!(
            s,
            "test-{k}:\n  <<: *base\n  stage: test\n  script:\n    - pytest -k shard{k} services/svc{i}\n  \
             artifacts:\n    reports:\n      junit: report.xml\n"
        );
    }
    s.push_str("lint:\n  extends: .base\n  stage: lint\n  script: [ruff check .]\n");
    s
}

fn workflow(i: usize) -> String {
    format!(
        "name: service {i}\non:\n  push:\n    branches: [main]\n  pull_request:\npermissions:\n  contents: read\n\
         jobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      \
         - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2\n        \
         with:\n          persist-credentials: false\n      \
         - uses: actions/setup-go@3041bf56c941b39c61721a86cd11f3bb1338122a # v5.2.0\n        with:\n          go-version: '1.22'\n      \
         - run: go test ./services/svc{i}/...\n  build:\n    runs-on: ubuntu-latest\n    needs: [test]\n    steps:\n      \
         - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2\n        \
         with:\n          persist-credentials: false\n      \
         - run: docker build -t svc{i} services/svc{i}\n"
    )
}

/// One large pipeline of a shape `scripts/bench.sh` times at two sizes.
/// Every shape holds Kaniko usage, so the whole analysis runs.
fn shape(out: &Path, variant: &str, n: usize) -> Option<(usize, usize)> {
    const KANIKO_JOB: &str = "build:\n  image: {name: gcr.io/kaniko-project/executor:debug, entrypoint: [\"\"]}\n  \
        script: [/kaniko/executor --context . --destination registry.example/app:1]\n";
    let mut s = String::new();
    let mut included = 0;
    let name = match variant {
        "shape-keys" => {
            s.push_str(KANIKO_JOB);
            for i in 0..n {
                let _ = writeln!(s, "job-{i}: {{script: [make test-{i}]}}");
            }
            ".gitlab-ci.yml"
        }
        "shape-aliases" => {
            s.push_str(KANIKO_JOB);
            s.push_str(".vars: &vars {GOFLAGS: -mod=vendor}\n");
            for i in 0..n {
                let _ = writeln!(s, "job-{i}: {{variables: *vars, script: [make test-{i}]}}");
            }
            ".gitlab-ci.yml"
        }
        "shape-cb-alias-args" => {
            s.push_str(
                "steps:\n- id: build\n  name: gcr.io/kaniko-project/executor:latest\n  \
                 args: &a ['--destination=gcr.io/p/app:1', '--context=.']\n",
            );
            for i in 0..n {
                let _ = writeln!(s, "- id: test-{i}\n  name: golang:1.22\n  args: *a");
            }
            "cloudbuild.yaml"
        }
        "shape-cb-flow" => {
            // Each step is a fix (KM003: its cache export needs the
            // docker-container builder), whose edit asks whether the step
            // is written in flow style.
            s.push_str("steps:\n");
            for i in 0..n {
                let _ = writeln!(
                    s,
                    "- {{name: docker, args: [build, --cache-to=ref=c{i}, .]}}"
                );
            }
            "cloudbuild.yaml"
        }
        "shape-includes" => {
            s.push_str("include: 'ci/*.yml'\n");
            s.push_str(KANIKO_JOB);
            for i in 0..n {
                let t = format!("job-{i}:\n  script: [make test-{i}]\n");
                write(&out.join(format!("ci/job{i:06}.yml")), &t);
                included += t.len();
            }
            ".gitlab-ci.yml"
        }
        _ => return None,
    };
    write(&out.join(name), &s);
    let files = if variant == "shape-includes" {
        n + 1
    } else {
        1
    };
    Some((files, s.len() + included))
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("create the directory");
    std::fs::write(path, text).expect("write the file");
}

fn main() {
    // `cargo bench` appends `--bench`; ignore flags.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let [out, count, variant] = args.as_slice() else {
        eprintln!("usage: cargo bench --bench gen -- OUT_DIR FILES kaniko|clean|workflows");
        std::process::exit(2);
    };
    let out = PathBuf::from(out);
    let count: usize = count.parse().expect("FILES is a number");
    let mut rng = Rng(0x6b6d_6967_7261_7465);
    let mut bytes = 0usize;
    let mut files = 0usize;
    match variant.as_str() {
        "kaniko" | "clean" => {
            for i in 0..count {
                let clean = variant == "clean" && i % 20 != 0;
                let (name, text) = match (i % 2 == 0, clean) {
                    (true, false) => ("cloudbuild.yaml", cloudbuild_kaniko(i, &mut rng)),
                    (false, false) => (".gitlab-ci.yml", gitlab_kaniko(i, &mut rng)),
                    (true, true) => ("cloudbuild.yaml", cloudbuild_clean(i, &mut rng)),
                    (false, true) => (".gitlab-ci.yml", gitlab_clean(i, &mut rng)),
                };
                let path = out.join(format!("g{:02}/svc{i:05}/{name}", i % 50));
                write(&path, &text);
                bytes += text.len();
                files += 1;
            }
        }
        "workflows" => {
            // FILES is a byte budget here.
            let mut i = 0;
            while bytes < count {
                let text = workflow(i);
                write(&out.join(format!(".github/workflows/svc{i:05}.yml")), &text);
                bytes += text.len();
                files += 1;
                i += 1;
            }
        }
        other => match shape(&out, other, count) {
            Some((f, b)) => {
                files = f;
                bytes = b;
            }
            None => {
                eprintln!("unknown variant {other}");
                std::process::exit(2);
            }
        },
    }
    println!("{files} files, {bytes} bytes");
}
