//! A tar stream that may be compressed, told by its first bytes (never by
//! its name): gzip, zstd, bzip2 or xz, the formats Docker's `ADD` unpacks
//! and image layers come in. Every decoder is pure Rust.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek};
use std::path::Path;

/// How a stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Bzip2,
    Xz,
}

impl Compression {
    /// The compression whose magic number `head` starts with.
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if head.starts_with(b"BZh") {
            Compression::Bzip2
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Compression::Xz
        } else {
            Compression::None
        }
    }
}

/// The file at `path`, decompressed as its first bytes say.
pub fn open(path: &Path) -> io::Result<Box<dyn Read + Send>> {
    let mut f = File::open(path)?;
    let mut head = [0u8; 6];
    let n = read_up_to(&mut f, &mut head)?;
    f.rewind()?;
    let f = BufReader::new(f);
    Ok(match Compression::sniff(&head[..n]) {
        Compression::None => Box::new(f),
        Compression::Gzip => Box::new(flate2::bufread::GzDecoder::new(f)),
        Compression::Zstd => Box::new(ZstdFrames::new(f)?),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(f)),
        Compression::Xz => Box::new(XzReader::spawn(f)?),
    })
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Every zstd frame of a stream, one after the other (`zstd` and
/// `pzstd` may write several; ruzstd's decoder reads one).
struct ZstdFrames<R: BufRead> {
    frame: Option<ruzstd::decoding::StreamingDecoder<R, ruzstd::decoding::FrameDecoder>>,
}

impl<R: BufRead> ZstdFrames<R> {
    fn new(source: R) -> io::Result<Self> {
        let frame = ruzstd::decoding::StreamingDecoder::new(source).map_err(io::Error::other)?;
        Ok(ZstdFrames { frame: Some(frame) })
    }
}

impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(frame) = self.frame.as_mut() else {
                return Ok(0);
            };
            let n = frame.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            // The frame ended: another may follow.
            let (mut source, decoder) = self.frame.take().expect("checked above").into_parts();
            if source.fill_buf()?.is_empty() {
                return Ok(0);
            }
            self.frame = Some(
                ruzstd::decoding::StreamingDecoder::new_with_decoder(source, decoder)
                    .map_err(io::Error::other)?,
            );
        }
    }
}

/// An xz stream decoded on a thread of its own into a pipe (lzma-rs
/// decodes into a writer only). The thread's error is this reader's at the
/// end of the stream; dropping the reader closes the pipe, which stops the
/// thread, and waits for it.
struct XzReader {
    pipe: Option<io::PipeReader>,
    worker: Option<std::thread::JoinHandle<io::Result<()>>>,
}

impl XzReader {
    fn spawn<R: BufRead + Send + 'static>(mut source: R) -> io::Result<Self> {
        let (pipe, mut sink) = io::pipe()?;
        let worker = std::thread::Builder::new()
            .name("xz".into())
            .spawn(move || {
                lzma_rs::xz_decompress(&mut source, &mut sink)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("xz: {e}")))
            })?;
        Ok(XzReader {
            pipe: Some(pipe),
            worker: Some(worker),
        })
    }

    fn finish(&mut self) -> io::Result<()> {
        drop(self.pipe.take());
        match self.worker.take().map(|w| w.join()) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("xz: the decoding thread panicked")),
            None => Ok(()),
        }
    }
}

impl Read for XzReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(pipe) = self.pipe.as_mut() else {
            return Ok(0);
        };
        match pipe.read(buf)? {
            0 if !buf.is_empty() => self.finish().map(|()| 0),
            n => Ok(n),
        }
    }
}

impl Drop for XzReader {
    fn drop(&mut self) {
        // A reader dropped early leaves the thread a closed pipe: it stops.
        let _ = self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATA: &[u8] = b"the same bytes, compressed four ways and read back\n";

    fn roundtrip(compressed: &[u8]) -> Vec<u8> {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, compressed).unwrap();
        let mut out = Vec::new();
        open(&p).unwrap().read_to_end(&mut out).unwrap();
        out
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut e, data).unwrap();
        e.finish().unwrap()
    }

    fn zstd(data: &[u8]) -> Vec<u8> {
        ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
    }

    fn bzip2(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        bzip2::read::BzEncoder::new(data, bzip2::Compression::fast())
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn xz(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        lzma_rs::xz_compress(&mut std::io::BufReader::new(data), &mut out).unwrap();
        out
    }

    #[test]
    fn each_format_is_told_by_its_magic_and_read_back() {
        for (name, c, want) in [
            ("gzip", gzip(DATA), Compression::Gzip),
            ("zstd", zstd(DATA), Compression::Zstd),
            ("bzip2", bzip2(DATA), Compression::Bzip2),
            ("xz", xz(DATA), Compression::Xz),
            ("plain", DATA.to_vec(), Compression::None),
        ] {
            assert_eq!(Compression::sniff(&c), want, "{name}");
            assert_eq!(roundtrip(&c), DATA, "{name}");
        }
        assert_eq!(roundtrip(b""), b"");
    }

    #[test]
    fn concatenated_streams_are_read_whole() {
        // `cat a.zst b.zst` and pbzip2's output are several streams.
        let mut two = zstd(b"first\n");
        two.extend(zstd(b"second\n"));
        assert_eq!(roundtrip(&two), b"first\nsecond\n");
        let mut two = bzip2(b"first\n");
        two.extend(bzip2(b"second\n"));
        assert_eq!(roundtrip(&two), b"first\nsecond\n");
    }

    #[test]
    fn corrupt_streams_are_errors_and_an_early_drop_stops_the_thread() {
        let mut bad = xz(DATA);
        bad.truncate(bad.len() - 8);
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, &bad).unwrap();
        let mut out = Vec::new();
        assert!(open(&p).unwrap().read_to_end(&mut out).is_err());
        // A stream larger than the pipe read for one byte, then dropped:
        // the thread stops instead of blocking.
        let big = xz(&vec![7u8; 1 << 20]);
        std::fs::write(&p, &big).unwrap();
        let mut r = open(&p).unwrap();
        let mut one = [0u8; 1];
        r.read_exact(&mut one).unwrap();
        drop(r);
        let mut zst = zstd(DATA);
        zst.truncate(zst.len() - 3);
        std::fs::write(&p, &zst).unwrap();
        let failed = match open(&p) {
            Err(_) => true,
            Ok(mut r) => r.read_to_end(&mut Vec::new()).is_err(),
        };
        assert!(failed, "a truncated zstd stream read as whole");
    }
}
