//! Uploads of new layers to the registry cache while the build still runs.
//!
//! `--cache-to type=registry,mode=max` exports every layer the build makes.
//! Each layer is uploaded to the cache's repository as soon as it is
//! written, on a thread of its own, instead of one after the other once
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

/// Where the layers go and the thread that sends them.
pub(crate) struct EarlyUploads {
    pub registry: String,
    pub repository: String,
    queue: Mutex<Option<mpsc::Sender<(String, PathBuf)>>>,
    worker: Mutex<Option<JoinHandle<HashMap<String, u64>>>>,
    cancel: Arc<AtomicBool>,
}

impl EarlyUploads {
    /// Starts the sending thread for the cache at `target`.
    pub(crate) fn start(client: Client, target: &Reference) -> Self {
        let (tx, rx) = mpsc::channel::<(String, PathBuf)>();
        let cancel = Arc::new(AtomicBool::new(false));
        let (registry, repository) = (target.registry.clone(), target.repository.clone());
        let worker = {
            let (registry, repository, cancel) =
                (registry.clone(), repository.clone(), cancel.clone());
            let mut client = client;
            std::thread::spawn(move || {
                let mut sent = HashMap::new();
                for (digest, path) in rx {
                    if cancel.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Ok(n) = client.push_blob(&registry, &repository, &digest, &path) {
                        sent.insert(digest, n);
                    }
                }
                sent
            })
        };
        Self {
            registry,
            repository,
            queue: Mutex::new(Some(tx)),
            worker: Mutex::new(Some(worker)),
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
        let worker = self.worker.lock().ok().and_then(|mut w| w.take());
        worker.and_then(|w| w.join().ok()).unwrap_or_default()
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
    use std::net::TcpListener;

    use super::*;

    /// A registry stand-in that answers HEAD with 404, POST with an upload
    /// location and PUT with 201, and records the request lines.
    fn fake_registry() -> (String, Arc<Mutex<Vec<String>>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let mut s = s.unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
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
                    log.lock()
                        .unwrap()
                        .push(format!("{} {}", line.trim(), body.len()));
                    let resp = if line.starts_with("HEAD") {
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_string()
                    } else if line.starts_with("POST") {
                        "HTTP/1.1 202 Accepted\r\nLocation: /v2/cache/blobs/uploads/u1\r\nContent-Length: 0\r\n\r\n".to_string()
                    } else {
                        "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n".to_string()
                    };
                    s.write_all(resp.as_bytes()).unwrap();
                }
            }
        });
        (addr, seen)
    }

    #[test]
    fn queued_layers_are_uploaded_before_finish_returns() {
        let (addr, seen) = fake_registry();
        let d = tempfile::tempdir().unwrap();
        let layer = d.path().join("l");
        std::fs::write(&layer, b"layer bytes").unwrap();
        let digest = crate::digest::sha256_digest(b"layer bytes");
        let target = Reference::parse(&format!("{addr}/cache:c")).unwrap();
        let mut cfg = crate::registry::RegistryConfig::default();
        cfg.insecure.push(addr.clone());
        let up = EarlyUploads::start(Client::new(cfg), &target);
        up.send(&digest, layer);
        let sent = up.finish();
        assert_eq!(sent.get(&digest), Some(&11));
        let seen = seen.lock().unwrap().join("\n");
        assert!(
            seen.contains(&format!("HEAD /v2/cache/blobs/{digest}")),
            "{seen}"
        );
        assert!(seen.contains("PUT /v2/cache/blobs/uploads/u1"), "{seen}");
        assert!(seen.contains(" 11"), "the layer's bytes went: {seen}");
        assert!(up.finish().is_empty(), "a second finish has nothing");
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
        let target = Reference::parse(&format!("{addr}/cache:c")).unwrap();
        let mut cfg = crate::registry::RegistryConfig::default();
        cfg.insecure.push(addr.clone());
        let up = EarlyUploads::start(Client::new(cfg), &target);
        up.send("sha256:00", layer);
        assert!(up.finish().is_empty());
    }
}
