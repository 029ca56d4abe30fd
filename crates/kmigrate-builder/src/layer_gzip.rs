//! The gzip stream of a layer: deflate at level 6, except for chunks that
//! do not compress, which are stored as they are.
//!
//! Layers often carry data that is already compressed (archives, jars,
//! images, fonts). Deflate at level 6 spends most of a layer's compression
//! time searching such data for matches it does not find, and its output is
//! a little larger than the input. Here each 64 KiB chunk with a byte
//! entropy near 8 bits has its first 8 KiB tried at level 1; when that
//! saves under 2%, the chunk goes out as stored deflate blocks. A chunk of repeated random data has a high byte
//! entropy too, but level 1 finds its repeats, so it is compressed. (Only
//! repeats more than 8 KiB apart go unseen by the trial: such a chunk is
//! stored, which costs size, never content. Trying the whole chunk took
//! more time than the level-6 search it saves.)
//!
//! The stream stays one gzip member with one deflate stream: before a stored
//! chunk the level-6 compressor is sync-flushed (its blocks end on a byte
//! boundary, not final) and starts afresh after it. The output depends on
//! the input bytes only, so a layer's digest is reproducible; input that
//! never has an incompressible chunk gives the same bytes as
//! `flate2::write::GzEncoder` at level 6.

use std::io::{self, Write};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// Input is judged in chunks of this size.
const CHUNK: usize = 64 * 1024;
/// How much of a chunk the level-1 trial compresses.
const TRIAL: usize = 8 * 1024;
/// A chunk below this byte entropy (bits per byte) is compressed untried.
const ENTROPY_TRY: f64 = 7.5;
/// A level-1 trial must save this share of its sample (in 1/100) for the
/// chunk to be compressed.
const MIN_SAVING_PERCENT: usize = 2;
/// The largest stored deflate block (its length field is 16 bits).
const STORED_MAX: usize = 65_535;

/// The gzip header `GzEncoder` writes at level 6: no name, mtime 0, no
/// extra flags, OS unknown.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// A gzip writer that stores the chunks that do not compress.
pub struct LayerGz<W: Write> {
    out: W,
    /// Input not judged yet (less than a chunk).
    pending: Vec<u8>,
    /// The level-6 raw deflate stream.
    deflate: Compress,
    /// Whether `deflate` took input since it last started afresh.
    deflating: bool,
    /// The level-1 compressor of the trial.
    trial: Compress,
    /// Output buffer of both compressors.
    buf: Vec<u8>,
    crc: Crc,
    header_written: bool,
}

impl<W: Write> LayerGz<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            pending: Vec::with_capacity(CHUNK),
            deflate: Compress::new(Compression::new(6), false),
            deflating: false,
            trial: Compress::new(Compression::new(1), false),
            buf: vec![0; CHUNK + CHUNK / 8 + 64],
            crc: Crc::new(),
            header_written: false,
        }
    }

    /// Ends the stream (final block, CRC and length) and returns the
    /// writer.
    pub fn finish(mut self) -> io::Result<W> {
        let rest = std::mem::take(&mut self.pending);
        self.chunk(&rest)?;
        self.write_header()?;
        // The final block: the rest of the level-6 stream, or an empty
        // block after stored ones.
        self.drive(&[], FlushCompress::Finish)?;
        self.out.write_all(&self.crc.sum().to_le_bytes())?;
        self.out.write_all(&self.crc.amount().to_le_bytes())?;
        Ok(self.out)
    }

    fn write_header(&mut self) -> io::Result<()> {
        if !self.header_written {
            self.out.write_all(&HEADER)?;
            self.header_written = true;
        }
        Ok(())
    }

    /// Compresses or stores one chunk.
    fn chunk(&mut self, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        self.write_header()?;
        self.crc.update(data);
        if self.does_not_compress(data)? {
            if self.deflating {
                self.drive(&[], FlushCompress::Sync)?;
                self.deflate.reset();
                self.deflating = false;
            }
            for block in data.chunks(STORED_MAX) {
                // BFINAL 0, BTYPE 00 (stored), padded to the byte; then
                // LEN and its complement, little-endian.
                let len = block.len() as u16;
                self.out.write_all(&[0])?;
                self.out.write_all(&len.to_le_bytes())?;
                self.out.write_all(&(!len).to_le_bytes())?;
                self.out.write_all(block)?;
            }
        } else {
            self.drive(data, FlushCompress::None)?;
            self.deflating = true;
        }
        Ok(())
    }

    /// Whether `data` saves too little to be worth deflating.
    fn does_not_compress(&mut self, data: &[u8]) -> io::Result<bool> {
        if data.len() < CHUNK / 4 || byte_entropy(data) < ENTROPY_TRY {
            return Ok(false);
        }
        self.trial.reset();
        let sample = &data[..TRIAL.min(data.len())];
        let status = self
            .trial
            .compress(sample, &mut self.buf, FlushCompress::Finish)
            .map_err(io::Error::other)?;
        // Output that does not fit the buffer (larger than the input by an
        // eighth) did not compress either.
        let out = match status {
            Status::StreamEnd => self.trial.total_out() as usize,
            Status::Ok | Status::BufError => return Ok(true),
        };
        Ok(out * 100 > sample.len() * (100 - MIN_SAVING_PERCENT))
    }

    /// Feeds `input` to the level-6 stream with `flush`, writing what it
    /// gives out.
    fn drive(&mut self, mut input: &[u8], flush: FlushCompress) -> io::Result<()> {
        loop {
            let (in0, out0) = (self.deflate.total_in(), self.deflate.total_out());
            let status = self
                .deflate
                .compress(input, &mut self.buf, flush)
                .map_err(io::Error::other)?;
            let read = (self.deflate.total_in() - in0) as usize;
            let written = (self.deflate.total_out() - out0) as usize;
            self.out.write_all(&self.buf[..written])?;
            input = &input[read..];
            let done = match flush {
                FlushCompress::Finish => status == Status::StreamEnd,
                // All taken, and the buffer was not filled (so nothing is
                // left to give out).
                _ => input.is_empty() && written < self.buf.len(),
            };
            if done {
                return Ok(());
            }
            if read == 0 && written == 0 && status == Status::BufError {
                return Err(io::Error::other("deflate made no progress"));
            }
        }
    }
}

impl<W: Write> Write for LayerGz<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut rest = data;
        while !rest.is_empty() {
            let take = (CHUNK - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() == CHUNK {
                // The buffer goes back, emptied, for the next chunk.
                let full = std::mem::take(&mut self.pending);
                self.chunk(&full)?;
                self.pending = full;
                self.pending.clear();
            }
        }
        Ok(data.len())
    }

    /// Chunks are judged whole, so a flush writes out only what was
    /// judged already.
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Shannon entropy of the bytes of `data`, in bits per byte.
fn byte_entropy(data: &[u8]) -> f64 {
    let mut counts = [0u32; 256];
    for &b in data {
        counts[b as usize] += 1;
    }
    let n = data.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use flate2::read::GzDecoder;
    use flate2::write::GzEncoder;

    use super::*;

    /// Deterministic bytes that no compressor shrinks (xorshift).
    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    fn text(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| format!("line {i} of a text that compresses\n"))
            .collect::<String>()
            .into_bytes()[..n]
            .to_vec()
    }

    fn ours(data: &[u8], write_size: usize) -> Vec<u8> {
        let mut gz = LayerGz::new(Vec::new());
        for part in data.chunks(write_size.max(1)) {
            gz.write_all(part).unwrap();
        }
        gz.finish().unwrap()
    }

    fn gunzip(gz: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        GzDecoder::new(gz).read_to_end(&mut out).unwrap();
        out
    }

    fn flate2_level6(data: &[u8]) -> Vec<u8> {
        let mut gz = GzEncoder::new(Vec::new(), Compression::new(6));
        gz.write_all(data).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn compressible_input_gives_gzencoders_bytes() {
        for data in [vec![], b"x".to_vec(), text(1000), text(300_000)] {
            assert_eq!(
                ours(&data, 4096),
                flate2_level6(&data),
                "{} bytes",
                data.len()
            );
        }
    }

    #[test]
    fn incompressible_chunks_are_stored_and_the_stream_round_trips() {
        let data = noise(300_000, 7);
        let gz = ours(&data, 10_000);
        assert_eq!(gunzip(&gz), data);
        // Stored: the input plus 5 bytes a block, the header and trailer.
        let blocks = data.len().div_ceil(CHUNK) * 2;
        assert!(
            gz.len() <= data.len() + 5 * blocks + 10 + 8 + 2,
            "{}",
            gz.len()
        );
        // Ours is no larger than deflate's own try at it.
        assert!(gz.len() <= flate2_level6(&data).len());
        // The first chunk is stored whole: a stored block header (BFINAL 0,
        // BTYPE 00), LEN 65535 and its complement, then the bytes as they
        // are (deflate's own stored blocks are cut by its symbol buffer).
        assert_eq!(&gz[10..15], &[0, 0xff, 0xff, 0, 0]);
        assert_eq!(&gz[15..15 + STORED_MAX], &data[..STORED_MAX]);
    }

    #[test]
    fn mixed_input_round_trips_at_every_write_size() {
        let mut data = text(100_000);
        data.extend(noise(200_000, 3));
        data.extend(text(70_000));
        data.extend(noise(CHUNK, 5));
        data.extend(text(10));
        for write_size in [1, 511, CHUNK, 1 << 20] {
            let gz = ours(&data, write_size);
            assert_eq!(gunzip(&gz), data, "write size {write_size}");
            assert_eq!(gz, ours(&data, 4096), "the bytes depend on the input only");
        }
        // The text parts still compress.
        assert!(ours(&data, 4096).len() < data.len() - 100_000);
    }

    #[test]
    fn repeated_random_data_is_compressed_not_stored() {
        let block = noise(4096, 11);
        let data: Vec<u8> = block.iter().copied().cycle().take(4 * CHUNK).collect();
        assert!(byte_entropy(&data[..CHUNK]) > ENTROPY_TRY);
        let gz = ours(&data, 8192);
        assert_eq!(gunzip(&gz), data);
        assert!(gz.len() < data.len() / 10, "{}", gz.len());
    }

    #[test]
    fn a_stream_that_ends_on_a_stored_chunk_is_finished() {
        let data = noise(2 * CHUNK, 13);
        let gz = ours(&data, CHUNK);
        assert_eq!(gunzip(&gz), data);
        // flate2's reader checks the trailer; so does a strict second read
        // with the member's length.
        assert_eq!(
            u32::from_le_bytes(gz[gz.len() - 4..].try_into().unwrap()),
            data.len() as u32
        );
    }

    #[test]
    fn entropy_of_known_inputs() {
        assert_eq!(byte_entropy(&[0; 100]), 0.0);
        let all: Vec<u8> = (0..=255).collect();
        assert!((byte_entropy(&all) - 8.0).abs() < 1e-9);
    }
}
