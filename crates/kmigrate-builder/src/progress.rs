//! Build progress: plain `#N` lines, a live spinner per step on a TTY, and
//! warnings collected into the report.

use super::api::Progress;
use super::engine::Engine;

impl Engine<'_> {
    pub(crate) fn log(&self, line: &str) {
        if self.opts.progress == Progress::Quiet {
            return;
        }
        if let Some(m) = &self.multi {
            let _ = m.println(line);
            return;
        }
        if let Some((pb, _)) = &self.bar {
            pb.println(line);
            return;
        }
        if let Ok(mut w) = self.opts.log.lock() {
            let _ = writeln!(w, "{line}");
        }
    }

    /// Starts a step: a spinner on a TTY, a line otherwise.
    pub(crate) fn begin(&mut self, n: usize, title: &str) {
        let line = format!("#{n} {title}");
        if self.opts.progress == Progress::Tty {
            let mut pb = indicatif::ProgressBar::new_spinner();
            if let Some(m) = &self.multi {
                pb = m.add(pb);
            }
            if let Ok(st) =
                indicatif::ProgressStyle::with_template("{spinner} {wide_msg} {elapsed}")
            {
                pb.set_style(st);
            }
            pb.set_message(format!("{line} running"));
            pb.enable_steady_tick(std::time::Duration::from_millis(120));
            self.bar = Some((pb, line));
        } else {
            self.log(&line);
        }
    }

    /// Ends the current step with a status (`CACHED`, `DONE 1.2s (layer 3 MB)`).
    pub(crate) fn end(&mut self, n: usize, status: &str) {
        match self.bar.take() {
            Some((pb, line)) => {
                if let Ok(st) = indicatif::ProgressStyle::with_template("{msg}") {
                    pb.set_style(st);
                }
                pb.finish_with_message(format!("{line} {status}"));
            }
            None => self.log(&format!("#{n} {status}")),
        }
    }

    /// A step that has nothing to run (metadata instructions).
    pub(crate) fn line_step(&mut self, n: usize, title: &str) {
        self.begin(n, title);
        if self.bar.is_some() {
            self.end(n, "");
        }
    }

    pub(crate) fn warn(&mut self, msg: String) {
        if let Ok(mut w) = self.opts.log.lock() {
            let _ = writeln!(w, "WARNING: {msg}");
        }
        self.report.warnings.push(msg);
    }
}

/// Bytes for humans.
pub(crate) fn human(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MB", n as f64 / (1 << 20) as f64)
    } else if n >= 1 << 10 {
        format!("{:.1} kB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}
