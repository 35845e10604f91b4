//! Reading a shell task's stdout and stderr with bounded memory.
//!
//! Both pipes are read to the end whatever their size, so that a chatty process never
//! blocks on a full pipe; only a bounded part is kept: the start of stdout (the result;
//! more than the limit is reported, not cut silently) and the end of stderr (where the
//! reason for a failure usually is).

use std::collections::VecDeque;

use tokio::io::{AsyncRead, AsyncReadExt};

/// What a reader kept of one pipe.
#[derive(Debug, Default)]
pub(super) struct Captured {
    pub(super) bytes: Vec<u8>,
    /// More was written than was kept.
    pub(super) overflowed: bool,
}

/// Reads `pipe` to its end, keeping its first `limit` bytes.
pub(super) async fn read_bounded(mut pipe: impl AsyncRead + Unpin, limit: usize) -> Captured {
    let mut captured = Captured::default();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => return captured,
            Ok(n) => {
                let room = limit.saturating_sub(captured.bytes.len());
                captured.bytes.extend_from_slice(&chunk[..n.min(room)]);
                captured.overflowed |= n > room;
            }
        }
    }
}

/// Reads `pipe` to its end, keeping its last `limit` bytes.
pub(super) async fn read_tail(mut pipe: impl AsyncRead + Unpin, limit: usize) -> Captured {
    let mut kept: VecDeque<u8> = VecDeque::with_capacity(limit);
    let mut overflowed = false;
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => return Captured { bytes: kept.into(), overflowed },
            Ok(n) => {
                kept.extend(&chunk[..n]);
                if kept.len() > limit {
                    overflowed = true;
                    kept.drain(..kept.len() - limit);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stdout_keeps_its_start_and_says_when_there_was_more() {
        let small = read_bounded(&b"hello"[..], 10).await;
        assert_eq!((small.bytes.as_slice(), small.overflowed), (&b"hello"[..], false));
        let big = read_bounded(&b"hello world"[..], 5).await;
        assert_eq!((big.bytes.as_slice(), big.overflowed), (&b"hello"[..], true));
    }

    #[tokio::test]
    async fn stderr_keeps_its_end() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let tail = read_tail(&data[..], 4096).await;
        assert_eq!(tail.bytes, data[data.len() - 4096..]);
        assert!(tail.overflowed);
    }
}
