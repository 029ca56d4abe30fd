//! Parse throughput of the two YAML readers, for `scripts/bench.sh`.
//!
//! Not a timed test: run as `cargo bench --bench parse -- DIR`. Reads every
//! file under DIR once, then prints, per reader, the median of five passes
//! over all of them on one thread: the fast reader (`source::fast`), and
//! tree-sitter-yaml with kmigrate's tree builder. Also prints how many files
//! the fast reader accepted (the rest fall back to tree-sitter).

use std::time::Instant;

use kmigrate::source::{fast, tree};

fn median_secs(mut pass: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            pass();
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[2]
}

fn main() {
    let Some(dir) = std::env::args().nth(1).filter(|a| a != "--bench") else {
        eprintln!("usage: cargo bench --bench parse -- DIR");
        std::process::exit(2);
    };
    let texts: Vec<String> = walkdir::WalkDir::new(&dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .collect();
    let bytes: usize = texts.iter().map(String::len).sum();
    let accepted = texts.iter().filter(|t| fast::parse(t).is_some()).count();
    let fast_secs = median_secs(|| {
        for t in &texts {
            std::hint::black_box(fast::parse(t));
        }
    });
    let ts_secs = median_secs(|| {
        for t in &texts {
            std::hint::black_box(tree::parse_with_tree_sitter(t).ok());
        }
    });
    let mbps = |secs: f64| bytes as f64 / secs / 1e6;
    println!(
        "parse, {} files ({bytes} bytes), one thread: fast reader {:.1} MB/s ({accepted} files read, the rest left to tree-sitter); tree-sitter {:.1} MB/s; {:.1}x",
        texts.len(),
        mbps(fast_secs),
        mbps(ts_secs),
        ts_secs / fast_secs
    );
}
