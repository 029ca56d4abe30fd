//! The verify report as text for people and JSON for CI.

use std::fmt::Write;

use super::{Report, Status};

/// JSON (`--format json`).
pub fn json(r: &Report) -> String {
    serde_json::to_string_pretty(r).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

fn size(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64)
    } else if n >= 1 << 10 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

/// Human text.
pub fn human(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "kmigrate verify {} ({}, engine {})",
        r.config,
        r.platform,
        match r.engine {
            super::EngineKind::Embedded => "embedded",
            super::EngineKind::Docker => "docker",
        }
    );
    if r.engine == super::EngineKind::Embedded {
        let _ = writeln!(s, "store: {}", r.store);
    }
    for n in &r.notes {
        let _ = writeln!(s, "note: {n}");
    }
    for b in &r.builds {
        let verdict = match b.status {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::NotRun => "NOT RUN",
        };
        let _ = writeln!(s, "\n{verdict}  {} ({})", b.unit, b.location);
        if !b.tags.is_empty() {
            let _ = writeln!(s, "  image: {}", b.tags.join(", "));
        }
        for m in &b.refs {
            let _ = writeln!(
                s,
                "  {} -> {}{}",
                m.original,
                m.target,
                if m.embedded { " (embedded store)" } else { "" }
            );
        }
        for (name, run) in [("cold", &b.cold), ("warm", &b.warm)] {
            if let Some(x) = run {
                if x.ok {
                    let _ = writeln!(
                        s,
                        "  {name}: {} executed, {} cached, {:.2}s, cache exported {}, {}",
                        x.executed,
                        x.cached,
                        x.seconds,
                        size(x.bytes_exported),
                        x.digest
                    );
                } else {
                    let _ = writeln!(s, "  {name}: failed after {:.2}s", x.seconds);
                }
            }
        }
        for why in &b.reasons {
            let mut lines = why.lines();
            if let Some(first) = lines.next() {
                let _ = writeln!(s, "  error: {first}");
            }
            for l in lines {
                let _ = writeln!(s, "    | {l}");
            }
        }
        for d in &b.differences {
            let _ = writeln!(
                s,
                "  differs: {}: original {} / rewritten {}",
                d.path, d.original, d.rewritten
            );
        }
        if let Some(c) = &b.compared_with
            && b.differences.is_empty()
        {
            let _ = writeln!(
                s,
                "  same image config and layer files as the Kaniko build at {c}"
            );
        }
        for n in &b.notes {
            let _ = writeln!(s, "  note: {n}");
        }
    }
    let count = |st: Status| r.builds.iter().filter(|b| b.status == st).count();
    let _ = writeln!(
        s,
        "\n{} build(s): {} passed, {} failed, {} not run",
        r.builds.len(),
        count(Status::Pass),
        count(Status::Fail),
        count(Status::NotRun)
    );
    s
}
