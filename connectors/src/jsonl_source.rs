//! JSON Lines input: a file split across workers by byte ranges, or standard input.
//!
//! A file is cut into blocks of [`BLOCK_BYTES`]; worker `i` of `n` reads blocks `i, i + n,
//! i + 2n, ...` in order. Interleaving blocks, rather than giving each worker one contiguous
//! half, keeps the workers at about the same event time, so the dataflow's watermark (the least
//! of theirs) advances steadily and state stays small. A line belongs to the block holding its
//! first byte: a reader starts at the first line that begins at or after its block's offset and
//! reads past the block's end to finish its last line.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::line_pump::{LinePump, Polled};

/// Size of the blocks a file is split into.
pub const BLOCK_BYTES: u64 = 1 << 20;

/// Where input lines come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineSource {
    /// A file, split across workers.
    File(PathBuf),
    /// Standard input, read by worker 0 alone, on a thread of its own (see
    /// [`crate::line_pump`]): a pause of the producer never blocks the worker.
    Stdin,
}

/// Errors while reading input.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: io::Error,
    },
}

/// Reads the lines of one worker's share of the input, with their byte offsets.
pub struct LineReader {
    reader: Option<Box<dyn BufRead>>,
    name: String,
    /// Blocks still to read (ascending start offsets) and the file length.
    blocks: std::vec::IntoIter<u64>,
    block_bytes: u64,
    /// Offset of the next byte to read, and the end of the current block.
    position: u64,
    block_end: u64,
    file: Option<PathBuf>,
    /// Standard input's lines (worker 0 of a stdin source).
    pump: Option<LinePump>,
}

/// What [`LineReader::poll_line`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinePoll {
    /// A line, at this byte offset.
    Line(u64),
    /// Standard input has no whole line yet (a file never says this).
    Pending,
    /// This worker's share has ended.
    End,
}

impl LineReader {
    /// Opens worker `index`'s share of `source` among `peers` workers.
    pub fn open(source: &LineSource, index: usize, peers: usize) -> Result<Self, SourceError> {
        Self::open_with_blocks(source, index, peers, BLOCK_BYTES)
    }

    /// As [`LineReader::open`], with a chosen block size (tests use small blocks).
    pub fn open_with_blocks(
        source: &LineSource,
        index: usize,
        peers: usize,
        block_bytes: u64,
    ) -> Result<Self, SourceError> {
        match source {
            LineSource::Stdin => Ok(LineReader {
                reader: None,
                pump: (index == 0).then(|| LinePump::spawn(io::stdin())),
                name: "stdin".to_string(),
                blocks: Vec::new().into_iter(),
                block_bytes: u64::MAX,
                position: 0,
                block_end: u64::MAX,
                file: None,
            }),
            LineSource::File(path) => {
                let io_error = |source| SourceError::Io {
                    path: path.display().to_string(),
                    source,
                };
                let length = std::fs::metadata(path).map_err(io_error)?.len();
                let block_bytes = block_bytes.max(1);
                let blocks: Vec<u64> = (0..length.div_ceil(block_bytes))
                    .filter(|block| (*block as usize) % peers.max(1) == index)
                    .map(|block| block * block_bytes)
                    .collect();
                // Open now so that a missing or unreadable file fails at start, on every worker.
                File::open(path).map_err(io_error)?;
                Ok(LineReader {
                    reader: None,
                    name: path.display().to_string(),
                    blocks: blocks.into_iter(),
                    block_bytes,
                    position: 0,
                    block_end: 0,
                    file: Some(path.clone()),
                    pump: None,
                })
            }
        }
    }

    /// A name for the source, used in dead letters ("stdin" or the file's path).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads the next line into `line` (without its `\n`) and returns its byte offset, or
    /// `None` at the end of this worker's share.
    pub fn next_line(&mut self, line: &mut Vec<u8>) -> Result<Option<u64>, SourceError> {
        if self.pump.is_some() {
            return match self.poll_pump(line, true)? {
                LinePoll::Line(offset) => Ok(Some(offset)),
                LinePoll::Pending | LinePoll::End => Ok(None),
            };
        }
        loop {
            if self.file.is_some() && (self.reader.is_none() || self.position >= self.block_end) {
                if !self.start_next_block()? {
                    return Ok(None);
                }
                continue;
            }
            let Some(reader) = self.reader.as_mut() else {
                return Ok(None);
            };
            line.clear();
            let read = reader
                .read_until(b'\n', line)
                .map_err(|source| SourceError::Io {
                    path: self.name.clone(),
                    source,
                })?;
            if read == 0 {
                if self.file.is_none() {
                    self.reader = None;
                    return Ok(None);
                }
                self.block_end = self.position; // end of file inside this block
                continue;
            }
            let offset = self.position;
            self.position += read as u64;
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            return Ok(Some(offset));
        }
    }

    /// As [`LineReader::next_line`], but standard input answers [`LinePoll::Pending`] instead
    /// of waiting for a line.
    pub fn poll_line(&mut self, line: &mut Vec<u8>) -> Result<LinePoll, SourceError> {
        if self.pump.is_some() {
            return self.poll_pump(line, false);
        }
        Ok(match self.next_line(line)? {
            Some(offset) => LinePoll::Line(offset),
            None => LinePoll::End,
        })
    }

    fn poll_pump(&mut self, line: &mut Vec<u8>, block: bool) -> Result<LinePoll, SourceError> {
        let Some(pump) = self.pump.as_mut() else {
            return Ok(LinePoll::End);
        };
        match pump.poll_line(line, block) {
            Ok(Polled::Line(taken)) => {
                let offset = self.position;
                self.position += taken;
                Ok(LinePoll::Line(offset))
            }
            Ok(Polled::Pending) => Ok(LinePoll::Pending),
            Ok(Polled::End) => {
                self.pump = None;
                Ok(LinePoll::End)
            }
            Err(source) => Err(SourceError::Io {
                path: self.name.clone(),
                source,
            }),
        }
    }

    /// Positions the reader at the first line starting in the next block; `false` if none left.
    fn start_next_block(&mut self) -> Result<bool, SourceError> {
        let Some(path) = self.file.clone() else {
            return Ok(false);
        };
        let io_error = |source| SourceError::Io {
            path: path.display().to_string(),
            source,
        };
        let Some(start) = self.blocks.next() else {
            self.reader = None;
            return Ok(false);
        };
        let mut file = File::open(&path).map_err(io_error)?;
        let mut position = start;
        if start > 0 {
            // Skip the tail of a line that began in the previous block: read from start - 1
            // through the next newline (just that newline if the previous byte ends a line).
            file.seek(SeekFrom::Start(start - 1)).map_err(io_error)?;
            let mut reader = BufReader::with_capacity(1 << 20, file);
            let mut skipped = Vec::new();
            let read = reader.read_until(b'\n', &mut skipped).map_err(io_error)?;
            position = start - 1 + read as u64;
            self.reader = Some(Box::new(reader));
        } else {
            file.seek(SeekFrom::Start(0)).map_err(io_error)?;
            self.reader = Some(Box::new(BufReader::with_capacity(1 << 20, file)));
        }
        self.position = position;
        self.block_end = start + self.block_bytes;
        Ok(true)
    }
}

/// Reads a whole file's lines (test and tool helper).
pub fn read_all_lines(path: &Path) -> io::Result<Vec<Vec<u8>>> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    let mut lines: Vec<Vec<u8>> = bytes.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    if bytes.last() == Some(&b'\n') || bytes.is_empty() {
        lines.pop();
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Every line is read exactly once, whatever the block size and worker count, including a
    /// last line without a newline and empty lines.
    #[test]
    fn splits_cover_every_line_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("input.jsonl");
        let mut content = Vec::new();
        for i in 0..200 {
            let line = "x".repeat(i % 13);
            content.extend_from_slice(format!("{i}:{line}\n").as_bytes());
            if i % 17 == 0 {
                content.push(b'\n');
            }
        }
        content.extend_from_slice(b"last-without-newline");
        File::create(&path)
            .and_then(|mut f| f.write_all(&content))
            .expect("write");
        let expected = read_all_lines(&path).expect("read");
        for block_bytes in [1, 2, 7, 64, 1000, 1 << 20] {
            for peers in [1, 2, 3, 4] {
                let mut got = Vec::new();
                for index in 0..peers {
                    let source = LineSource::File(path.clone());
                    let mut reader =
                        LineReader::open_with_blocks(&source, index, peers, block_bytes)
                            .expect("open");
                    let mut line = Vec::new();
                    while let Some(offset) = reader.next_line(&mut line).expect("read") {
                        assert!(content[offset as usize..].starts_with(&line));
                        got.push((offset, line.clone()));
                    }
                }
                got.sort();
                let lines: Vec<Vec<u8>> = got.into_iter().map(|(_, l)| l).collect();
                assert_eq!(lines, expected, "block {block_bytes} peers {peers}");
            }
        }
    }

    #[test]
    fn missing_file_is_an_error() {
        let source = LineSource::File(PathBuf::from("/nonexistent/tidewatch-input.jsonl"));
        assert!(LineReader::open(&source, 0, 1).is_err());
    }
}
