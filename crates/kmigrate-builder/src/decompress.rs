//! A tar stream that may be compressed, told by its first bytes (never by
//! its name): gzip, zstd, bzip2 or xz, the formats Docker's `ADD` unpacks
//! and image layers come in. Every decoder streams in bounded memory: zstd
//! windows are capped by ruzstd (100 MiB), bzip2 blocks are at most 900 kB,
//! and xz gets [`XZ_MEMORY_MAX`].

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek};
use std::path::Path;

use super::limits::XZ_MEMORY_MAX;

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
        Compression::Xz => {
            let stream = liblzma::stream::Stream::new_stream_decoder(
                XZ_MEMORY_MAX,
                liblzma::stream::CONCATENATED,
            )
            .map_err(io::Error::other)?;
            Box::new(liblzma::bufread::XzDecoder::new_stream(f, stream))
        }
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
            let Some(mut frame) = self.frame.take() else {
                return Ok(0);
            };
            match frame.read(buf) {
                Ok(0) if !buf.is_empty() => {}
                done => {
                    self.frame = Some(frame);
                    return done;
                }
            }
            // The frame ended: another may follow.
            let (mut source, decoder) = frame.into_parts();
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
        liblzma::read::XzEncoder::new(data, 1)
            .read_to_end(&mut out)
            .unwrap();
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
        // `cat a.xz b.xz`, `cat a.zst b.zst` and pbzip2's output are several
        // streams.
        let mut two = xz(b"first\n");
        two.extend(xz(b"second\n"));
        assert_eq!(roundtrip(&two), b"first\nsecond\n");
        let mut two = zstd(b"first\n");
        two.extend(zstd(b"second\n"));
        assert_eq!(roundtrip(&two), b"first\nsecond\n");
        let mut two = bzip2(b"first\n");
        two.extend(bzip2(b"second\n"));
        assert_eq!(roundtrip(&two), b"first\nsecond\n");
    }

    #[test]
    fn an_xz_dictionary_past_the_memory_bound_is_refused() {
        // The first block's LZMA2 dictionary set to 512 MiB (property 34),
        // its header's CRC32 made right: the decoder refuses to allocate it.
        let mut x = xz(DATA);
        let header = 12;
        let header_len = (usize::from(x[header]) + 1) * 4;
        let props = (header..header + header_len - 5)
            .find(|&i| x[i] == 0x21 && x[i + 1] == 0x01)
            .expect("LZMA2 filter flags")
            + 2;
        x[props] = 34;
        let crc_at = header + header_len - 4;
        let mut crc = flate2::Crc::new();
        crc.update(&x[header..crc_at]);
        x[crc_at..crc_at + 4].copy_from_slice(&crc.sum().to_le_bytes());
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, &x).unwrap();
        let e = open(&p)
            .unwrap()
            .read_to_end(&mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(e.to_lowercase().contains("memory"), "{e}");
    }

    #[test]
    fn corrupt_streams_are_errors() {
        let mut bad = xz(DATA);
        bad.truncate(bad.len() - 8);
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, &bad).unwrap();
        let mut out = Vec::new();
        assert!(open(&p).unwrap().read_to_end(&mut out).is_err());
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
