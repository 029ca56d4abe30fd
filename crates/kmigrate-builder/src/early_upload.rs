//! Uploads of new layers to the registry cache while the build still runs.
//!
//! `--cache-to type=registry,mode=max` exports every layer the build makes.
//! Each layer is uploaded to the cache's repository as soon as it is
//! written, on threads of their own, instead of one after the other once
//! the image is assembled: the export then finds its layers in place and
//! writes the cache's config and manifest. The transfer overlaps the steps
//! that follow (on the multi-stage reference, the 10 MB COPY layer goes up
//! while both stages' RUNs work).
//!
//! Only `mode=max`: which layers `mode=min` keeps is known at the end. A
//! failed upload is not an error here; the export uploads what is missing
//! and reports its own failure. A build that fails leaves the layers it
//! uploaded in the cache repository, unreferenced, for the registry's
//! garbage collection (as a push that fails before its manifest does).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use super::registry::{Client, Reference};

/// Uploads at once at most: the last steps' small layers, queued just
/// before the export, then go up together instead of one after another.
const SENDERS: usize = 4;

/// A layer to send: its digest and its file in the store.
type Job = (String, PathBuf);

/// Where the layers go and the threads that send them.
pub(crate) struct EarlyUploads {
    pub registry: String,
    pub repository: String,
    queue: Mutex<Option<mpsc::Sender<Job>>>,
    senders: Mutex<Vec<JoinHandle<HashMap<String, u64>>>>,
    cancel: Arc<AtomicBool>,
}

impl EarlyUploads {
    /// Starts the sending threads for the cache at `target`.
    pub(crate) fn start(client: Client, target: &Reference) -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let cancel = Arc::new(AtomicBool::new(false));
        let (registry, repository) = (target.registry.clone(), target.repository.clone());
        let senders = (0..SENDERS)
            .map(|_| {
                let (registry, repository) = (registry.clone(), repository.clone());
                let (rx, cancel, mut client) = (rx.clone(), cancel.clone(), client.clone());
                std::thread::spawn(move || {
                    let mut sent = HashMap::new();
                    loop {
                        // One sender waits on the queue at a time; the lock
                        // is released before the upload.
                        let job = rx.lock().map_err(drop).and_then(|q| q.recv().map_err(drop));
                        let Ok((digest, path)) = job else { break };
                        if cancel.load(Ordering::Relaxed) {
                            break;
                        }
                        if let Ok(n) = client.push_blob(&registry, &repository, &digest, &path) {
                            sent.insert(digest, n);
                        }
                    }
                    sent
                })
            })
            .collect();
        Self {
            registry,
            repository,
            queue: Mutex::new(Some(tx)),
            senders: Mutex::new(senders),
            cancel,
        }
    }

    /// Queues the layer `digest` stored at `path`.
    pub(crate) fn send(&self, digest: &str, path: PathBuf) {
        if let Ok(q) = self.queue.lock()
            && let Some(tx) = q.as_ref()
        {
            let _ = tx.send((digest.to_string(), path));
        }
    }

    /// Waits for every queued upload; returns the layers now in the
    /// cache's repository with the bytes each upload sent (0: it was there
    /// already). Later calls return nothing.
    pub(crate) fn finish(&self) -> HashMap<String, u64> {
        if let Ok(mut q) = self.queue.lock() {
            q.take();
        }
        let senders = self
            .senders
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default();
        senders
            .into_iter()
            .filter_map(|s| s.join().ok())
            .flatten()
            .collect()
    }
}

impl Drop for EarlyUploads {
    /// A build that ends without exporting (it failed) stops after the
    /// upload under way.
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};

    use super::*;

    /// What the stand-in registry saw: request lines, and PUTs served at
    /// once (now, most).
    #[derive(Default)]
    struct Seen {
        lines: Vec<String>,
        puts: (usize, usize),
    }

    /// A registry stand-in that answers HEAD with 404, POST with an upload
    /// location and PUT with 201 after 100 ms, one thread a connection.
    fn fake_registry() -> (String, Arc<Mutex<Seen>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let log = log.clone();
                std::thread::spawn(move || serve(s.unwrap(), &log));
            }
        });
        (addr, seen)
    }

    fn serve(mut s: TcpStream, seen: &Mutex<Seen>) {
        let mut r = BufReader::new(s.try_clone().unwrap());
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let mut len = 0;
            loop {
                let mut h = String::new();
                r.read_line(&mut h).unwrap();
                if h == "\r\n" {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            seen.lock()
                .unwrap()
                .lines
                .push(format!("{} {}", line.trim(), body.len()));
            let resp = if line.starts_with("HEAD") {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
            } else if line.starts_with("POST") {
                "HTTP/1.1 202 Accepted\r\nLocation: /v2/cache/blobs/uploads/u1\r\nContent-Length: 0\r\n\r\n"
            } else {
                {
                    let mut g = seen.lock().unwrap();
                    g.puts.0 += 1;
                    g.puts.1 = g.puts.1.max(g.puts.0);
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
                seen.lock().unwrap().puts.0 -= 1;
                "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
            };
            s.write_all(resp.as_bytes()).unwrap();
        }
    }

    fn uploads_to(addr: &str) -> EarlyUploads {
        let target = Reference::parse(&format!("{addr}/cache:c")).unwrap();
        let mut cfg = crate::registry::RegistryConfig::default();
        cfg.insecure.push(addr.to_string());
        EarlyUploads::start(Client::new(cfg), &target)
    }

    #[test]
    fn queued_layers_are_uploaded_before_finish_returns() {
        let (addr, seen) = fake_registry();
        let d = tempfile::tempdir().unwrap();
        let layer = d.path().join("l");
        std::fs::write(&layer, b"layer bytes").unwrap();
        let digest = crate::digest::sha256_digest(b"layer bytes");
        let up = uploads_to(&addr);
        up.send(&digest, layer);
        let sent = up.finish();
        assert_eq!(sent.get(&digest), Some(&11));
        let lines = seen.lock().unwrap().lines.join("\n");
        assert!(
            lines.contains(&format!("HEAD /v2/cache/blobs/{digest}")),
            "{lines}"
        );
        assert!(lines.contains("PUT /v2/cache/blobs/uploads/u1"), "{lines}");
        assert!(lines.contains(" 11"), "the layer's bytes went: {lines}");
        assert!(up.finish().is_empty(), "a second finish has nothing");
    }

    #[test]
    fn layers_queued_together_go_up_together() {
        let (addr, seen) = fake_registry();
        let d = tempfile::tempdir().unwrap();
        let up = uploads_to(&addr);
        let mut digests = Vec::new();
        for i in 0..SENDERS {
            let bytes = format!("layer {i}");
            let layer = d.path().join(i.to_string());
            std::fs::write(&layer, &bytes).unwrap();
            let digest = crate::digest::sha256_digest(bytes.as_bytes());
            up.send(&digest, layer);
            digests.push(digest);
        }
        let sent = up.finish();
        assert!(digests.iter().all(|d| sent.contains_key(d)), "{sent:?}");
        assert!(
            seen.lock().unwrap().puts.1 >= 2,
            "uploads went one at a time"
        );
    }

    #[test]
    fn an_upload_that_fails_is_not_reported_sent() {
        // Nothing listens on the port of a listener just dropped.
        let addr = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        let d = tempfile::tempdir().unwrap();
        let layer = d.path().join("l");
        std::fs::write(&layer, b"x").unwrap();
        let up = uploads_to(&addr);
        up.send("sha256:00", layer);
        assert!(up.finish().is_empty());
    }
}
