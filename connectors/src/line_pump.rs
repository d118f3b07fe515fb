//! Lines from a blocking reader (standard input), read on their own thread so that the worker
//! never blocks on them.
//!
//! A worker that blocked in `read` while a producer paused (a `tail -F` pipe at night) would
//! stop stepping its dataflow: windows whose watermark had passed would not be emitted, outputs
//! would not be flushed, and metrics would not move. The pump's thread reads whatever bytes
//! are available, cuts them after their last newline and hands the whole lines over a bounded
//! channel; the worker takes a line if one is there ([`LinePump::poll_line`]) and otherwise
//! goes on with its dataflow.
//!
//! # Examples
//! ```
//! use tidewatch_connectors::line_pump::{LinePump, Polled};
//!
//! let mut pump = LinePump::spawn(std::io::Cursor::new(b"a\nbc\nlast".to_vec()));
//! let mut line = Vec::new();
//! let mut lines = Vec::new();
//! loop {
//!     match pump.poll_line(&mut line, true).unwrap() {
//!         Polled::Line(_) => lines.push(String::from_utf8(line.clone()).unwrap()),
//!         Polled::Pending => unreachable!("a blocking poll waits"),
//!         Polled::End => break,
//!     }
//! }
//! assert_eq!(lines, ["a", "bc", "last"]);
//! ```

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, TryRecvError};

/// Bytes read at a time.
const READ_BYTES: usize = 1 << 20;
/// Chunks in flight between the thread and the worker (bounds memory at about 8 MB).
const CHUNKS_IN_FLIGHT: usize = 8;

/// What [`LinePump::poll_line`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polled {
    /// A line, which took this many bytes of the input (its newline included).
    Line(u64),
    /// No whole line has arrived yet.
    Pending,
    /// The input has ended.
    End,
}

/// Whole lines read from a reader on a thread of their own.
pub struct LinePump {
    chunks: Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    cursor: usize,
    ended: bool,
}

impl LinePump {
    /// Starts reading `source` on a new thread.
    pub fn spawn<R: Read + Send + 'static>(mut source: R) -> Self {
        let (sender, chunks) = sync_channel(CHUNKS_IN_FLIGHT);
        let spawned = std::thread::Builder::new()
            .name("tidewatch-stdin".into())
            .spawn(move || {
                let mut carry: Vec<u8> = Vec::new();
                let mut buffer = vec![0u8; READ_BYTES];
                loop {
                    let read = match source.read(&mut buffer) {
                        Ok(0) => break,
                        Ok(read) => read,
                        Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                        Err(error) => {
                            let _ = sender.send(Err(error));
                            return;
                        }
                    };
                    carry.extend_from_slice(&buffer[..read]);
                    if let Some(last) = carry.iter().rposition(|b| *b == b'\n') {
                        let rest = carry.split_off(last + 1);
                        if sender
                            .send(Ok(std::mem::replace(&mut carry, rest)))
                            .is_err()
                        {
                            return; // the reader is gone
                        }
                    }
                }
                // A last line without a newline.
                if !carry.is_empty() {
                    let _ = sender.send(Ok(carry));
                }
            });
        if let Err(error) = spawned {
            // Reported at the first poll, as a read error.
            let (sender, failed) = sync_channel(1);
            let _ = sender.send(Err(error));
            return LinePump {
                chunks: failed,
                chunk: Vec::new(),
                cursor: 0,
                ended: false,
            };
        }
        LinePump {
            chunks,
            chunk: Vec::new(),
            cursor: 0,
            ended: false,
        }
    }

    /// Puts the next line (without its newline) in `line`; with `block`, waits for one.
    pub fn poll_line(&mut self, line: &mut Vec<u8>, block: bool) -> io::Result<Polled> {
        loop {
            if self.cursor < self.chunk.len() {
                let rest = &self.chunk[self.cursor..];
                let (length, taken) = match rest.iter().position(|b| *b == b'\n') {
                    Some(newline) => (newline, newline + 1),
                    None => (rest.len(), rest.len()),
                };
                line.clear();
                line.extend_from_slice(&rest[..length]);
                self.cursor += taken;
                return Ok(Polled::Line(taken as u64));
            }
            if self.ended {
                return Ok(Polled::End);
            }
            let received = if block {
                self.chunks.recv().map_err(|_| TryRecvError::Disconnected)
            } else {
                self.chunks.try_recv()
            };
            match received {
                Ok(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.cursor = 0;
                }
                Ok(Err(error)) => return Err(error),
                Err(TryRecvError::Empty) => return Ok(Polled::Pending),
                Err(TryRecvError::Disconnected) => self.ended = true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A line written in two pieces arrives whole, and only once complete; the pump reports
    /// pending in between instead of blocking.
    #[test]
    fn lines_arrive_whole_without_blocking_the_poller() {
        let (reader, mut writer) = std::io::pipe().expect("pipe");
        let mut pump = LinePump::spawn(reader);
        let mut line = Vec::new();
        assert_eq!(pump.poll_line(&mut line, false).unwrap(), Polled::Pending);
        writer.write_all(b"{\"a\":").unwrap();
        writer.flush().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(pump.poll_line(&mut line, false).unwrap(), Polled::Pending);
        writer.write_all(b"1}\n\nxyz").unwrap();
        drop(writer);
        assert_eq!(pump.poll_line(&mut line, true).unwrap(), Polled::Line(8));
        assert_eq!(line, b"{\"a\":1}");
        assert_eq!(pump.poll_line(&mut line, true).unwrap(), Polled::Line(1));
        assert!(line.is_empty());
        assert_eq!(pump.poll_line(&mut line, true).unwrap(), Polled::Line(3));
        assert_eq!(line, b"xyz");
        assert_eq!(pump.poll_line(&mut line, true).unwrap(), Polled::End);
        assert_eq!(pump.poll_line(&mut line, false).unwrap(), Polled::End);
    }
}
