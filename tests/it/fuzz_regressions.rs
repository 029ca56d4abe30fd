//! Keeps the fuzz targets (`fuzz/`) compiling and passing on stable: every
//! saved input under `fuzz/regressions/<target>/` (each one once crashed or
//! hung a target) is replayed, then a bounded, fixed-seed batch of mutated
//! inputs per target. The long runs use cargo-fuzz; see README "Fuzzing".

use crate::harness;

use std::path::Path;
use std::time::{Duration, Instant};

/// Every input runs on its own thread with this much time: a hang fails.
const LIMIT: Duration = Duration::from_secs(20);

fn run_bounded(target: &str, what: &str, work: impl FnOnce() + Send + 'static) {
    let started = Instant::now();
    let handle = std::thread::spawn(work);
    while !handle.is_finished() {
        assert!(
            started.elapsed() < LIMIT,
            "{target}: {what} did not finish in {LIMIT:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    if let Err(e) = handle.join() {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn saved_inputs_replay_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    for (name, f) in harness::TARGETS {
        let dir = root.join(name);
        assert!(dir.is_dir(), "{} is missing", dir.display());
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let input = std::fs::read(&path).unwrap();
            let f = *f;
            run_bounded(name, &path.display().to_string(), move || f(&input));
        }
    }
}

/// Seeds: small valid inputs of each kind, mutated by a fixed-seed
/// generator (byte flips, insertions of interesting tokens, truncation).
fn seeds(target: &str) -> Vec<Vec<u8>> {
    let texts: &[&str] = match target {
        "source_patch" => &[
            "\x01\x02\x00\x03\x04\x00steps:\n- name: gcr.io/kaniko-project/executor\n  args: [--context=., '--destination=x']\n",
            "\x00b: &a\n  script:\n    - >\n      /kaniko/executor\n      --context .\nc:\n  <<: *a\n",
            "\x00{\"steps\": [{\"name\": \"a\", \"args\": [\"b\"]}]}\n",
        ],
        "shell_lexer" => &[
            "/kaniko/executor --context \"$CI_PROJECT_DIR\" --destination ${IMG}:$TAG && echo 'ok' | tee x <<EOF\nbody\nEOF\n",
            "if [ -n \"$A\" ]; then exec executor $(cat args) `x`; fi # c\n",
        ],
        "kaniko_argv" => &[
            "--context=.\n--destination\nimg:1\n-f\nDockerfile\n--cache=true\n$EXTRA\n--build-arg=A=b\n--no-push\n",
            "-c\ndir://x\n--snapshot-mode=redo\n--cache-ttl=6h\n--insecure-registry\nr:5000\n",
        ],
        "dockerfile" => &[
            "# syntax=docker/dockerfile:1\nARG B=alpine\nFROM $B AS base\nRUN --mount=type=cache,target=/c echo \\\n  hi\nCOPY --from=base --chown=1:1 a b\nENV A=1 B=\"2 3\"\nHEALTHCHECK CMD [\"x\"]\nONBUILD RUN x\n",
            "FROM scratch\nADD <<EOF /x\nheredoc\nEOF\nUSER 1\nENTRYPOINT [\"/x\"\n",
        ],
        "layer_tar" => &[],
        "fast_tree" => &[
            "# c\n.t: &tpl\n  image:\n    name: gcr.io/kaniko-project/executor:debug\n    entrypoint: [\"\"]\nbuild:\n  <<: *tpl\n  script:\n    - /kaniko/executor\n      --context \"$CI_PROJECT_DIR\"\n    - >\n      a\n      b\n  needs: [test, {job: x}]\n---\nx: 'y' # t\n",
            "steps:\n- name: 'gcr.io/kaniko-project/executor:latest'\n  args:\n  - --destination=r/app:$SHORT_SHA\n  - \"--cache=true\"\n  waitFor: ['-']\n  env: !!seq [A=1]\ntimeout: 1200s\n",
        ],
        _ => unreachable!(),
    };
    let mut out: Vec<Vec<u8>> = texts.iter().map(|t| t.as_bytes().to_vec()).collect();
    if target == "layer_tar" {
        out.push(sample_tar());
    }
    out
}

fn sample_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "a/b.txt", &b"abc"[..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_cksum();
    b.append_link(&mut h, "a/link", "../../etc").unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(0);
    h.set_cksum();
    b.append_data(&mut h, "a/.wh.b.txt", &b""[..]).unwrap();
    b.into_inner().unwrap()
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: &[&[u8]] = &[
    b"\n",
    b"\r\n",
    b" ",
    b"\t",
    b"'",
    b"\"",
    b"\\",
    b"$",
    b"${",
    b"&a",
    b"*a",
    b"<<: *a",
    b"- ",
    b": ",
    b"[",
    b"]",
    b"{",
    b"}",
    b"#",
    b"|",
    b">",
    b"--",
    b"=",
    b"\x00",
    b"\xff",
    b"\xef\xbb\xbf",
    b"<<EOF\n",
    b"`",
    b"$(",
    b"..",
    b"/",
    b".wh.",
];

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(6) {
        let at = rng.below(v.len() + 1);
        match rng.below(4) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            1 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                v.splice(at..at, t.iter().copied());
            }
            2 if at < v.len() => {
                let end = (at + rng.below(8)).min(v.len());
                v.drain(at..end);
            }
            _ => v.truncate(at),
        }
    }
    v
}

#[test]
fn mutated_inputs_run_cleanly() {
    let per_target = if cfg!(debug_assertions) { 300 } else { 3000 };
    for (name, f) in harness::TARGETS {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ name.len() as u64);
        let seeds = seeds(name);
        let inputs: Vec<Vec<u8>> = (0..per_target)
            .map(|_| {
                let seed = &seeds[rng.below(seeds.len())];
                mutate(&mut rng, seed)
            })
            .collect();
        let f = *f;
        run_bounded(name, "the empty input", move || f(&[]));
        run_bounded(name, "a batch of mutated inputs", move || {
            for input in &inputs {
                f(input);
            }
        });
    }
}
