//! A stable, seeded fuzz loop for the layer extractor with whiteout-heavy
//! inputs (issue 13: "fuzz the layer extractor with whiteout-heavy inputs
//! for >= 10 minutes"), for machines without a nightly toolchain for
//! cargo-fuzz. The body is `fuzz/harness.rs`'s `layer_tar` (nothing outside
//! the root written, removed or re-permissioned). A short batch runs with
//! the suite; the long run is ignored by default:
//!
//! ```sh
//! FUZZ_SECS=600 FUZZ_SEED=1 nice cargo test --test it security_builder_fs_fuzz:: \
//!     -- --ignored --nocapture
//! ```
//!
//! A failing input is written to `$FUZZ_OUT` (default the system temp
//! dir) as `layer_tar-crash-<n>`; copy it to `fuzz/regressions/layer_tar/`.

use crate::harness;

use std::time::{Duration, Instant};

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

/// One input: mostly a `W` recipe (whiteout-heavy entries), sometimes the
/// tar such a recipe gives with bytes flipped, cut or `.wh.` tokens spliced
/// in, so the tar reader's own paths are exercised too.
fn input(rng: &mut Rng) -> Vec<u8> {
    let ops = 1 + rng.below(24);
    let mut recipe: Vec<u8> = (0..ops * 3).map(|_| rng.next() as u8).collect();
    if rng.below(10) < 7 {
        recipe.insert(0, b'W');
        return recipe;
    }
    let mut tar = harness::whiteout_tar(&recipe, std::path::Path::new("/sibling"));
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(tar.len());
        match rng.below(3) {
            0 => tar[at] = rng.next() as u8,
            1 => {
                let tok: &[u8] =
                    [&b".wh."[..], b".wh..", b"/..", b"\0", b".wh..wh..opq"][rng.below(5)];
                let end = (at + tok.len()).min(tar.len());
                tar[at..end].copy_from_slice(&tok[..end - at]);
            }
            _ => tar.truncate(at.max(1)),
        }
    }
    tar
}

/// Runs inputs until `budget` is spent or `max` inputs ran; returns
/// (executions, crashing inputs).
fn run(seed: u64, budget: Duration, max: u64) -> (u64, Vec<Vec<u8>>) {
    let mut rng = Rng(seed | 1);
    let started = Instant::now();
    let mut execs = 0;
    let mut crashes = Vec::new();
    std::panic::set_hook(Box::new(|_| {}));
    while execs < max && started.elapsed() < budget {
        let data = input(&mut rng);
        let d = data.clone();
        if std::panic::catch_unwind(move || harness::layer_tar(&d)).is_err() {
            crashes.push(data);
        }
        execs += 1;
    }
    let _ = std::panic::take_hook();
    (execs, crashes)
}

fn report(execs: u64, crashes: &[Vec<u8>], elapsed: Duration) {
    let dir = std::env::var_os("FUZZ_OUT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    for (i, c) in crashes.iter().enumerate().take(20) {
        let p = dir.join(format!("layer_tar-crash-{i}"));
        std::fs::write(&p, c).unwrap();
        eprintln!("crashing input saved to {}", p.display());
    }
    eprintln!(
        "layer_tar whiteout fuzz: {execs} executions in {:.0} s, {} crashes",
        elapsed.as_secs_f64(),
        crashes.len()
    );
    assert!(crashes.is_empty(), "{} crashing inputs", crashes.len());
}

#[test]
fn whiteout_heavy_layers_stay_inside_the_root() {
    let t0 = Instant::now();
    let (execs, crashes) = run(0x5eed, Duration::from_secs(60), 400);
    report(execs, &crashes, t0.elapsed());
}

#[test]
#[ignore = "long run: FUZZ_SECS=600 cargo test --test it security_builder_fs_fuzz:: -- --ignored --nocapture"]
fn whiteout_heavy_layers_long_run() {
    let secs = std::env::var("FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let t0 = Instant::now();
    let (execs, crashes) = run(seed, Duration::from_secs(secs), u64::MAX);
    report(execs, &crashes, t0.elapsed());
}
