//! Incremental reader for the control connection: the next item is a cookie,
//! a state byte, a length-prefixed JSON document or the 8 bytes after
//! SERVER_ERROR. Bytes may arrive split or coalesced in any way.

use alloc::vec::Vec;

use crate::proto::COOKIE_LEN;

/// What the reader is waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The 37-byte cookie.
    Cookie,
    /// One state byte.
    State,
    /// A 4-byte big-endian length, then that many bytes of JSON, at most `max`.
    Json {
        /// Largest accepted length.
        max: u32,
    },
    /// Two big-endian i32 (after SERVER_ERROR).
    ErrorCodes,
    /// Nothing: input is discarded.
    Nothing,
}

/// One complete item.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// The raw cookie bytes (not yet validated).
    Cookie([u8; COOKIE_LEN]),
    /// A state byte.
    State(u8),
    /// A JSON document's bytes.
    Json(Vec<u8>),
    /// i_errno and errno.
    ErrorCodes(i32, i32),
    /// The announced JSON length exceeds the cap (or is 0).
    JsonLength(u32),
}

/// One end of a control connection, as [`feed_control`] drives it.
pub(crate) trait ControlEnd {
    /// The reader while the connection still reads; `None` once it is
    /// done (closing or finished), when whatever comes is consumed unread.
    fn control_reader(&mut self) -> Option<&mut Reader>;
    /// Acts on one complete item.
    fn control_frame(&mut self, f: Frame, now: u64);
}

/// Feeds `data` to `end`'s reader item by item; returns the bytes used
/// (all of them once `end` is done).
pub(crate) fn feed_control(end: &mut impl ControlEnd, data: &[u8], now: u64) -> usize {
    let mut used = 0;
    // Each round consumes at least one byte or ends the loop.
    for _ in 0..=data.len() {
        let Some(reader) = end.control_reader() else {
            return data.len();
        };
        let (n, frame) = reader.feed(&data[used..]);
        used += n;
        match frame {
            Some(f) => end.control_frame(f, now),
            None => break,
        }
        if used >= data.len() {
            break;
        }
    }
    if end.control_reader().is_none() {
        return data.len();
    }
    used
}

/// See the module doc.
#[derive(Debug)]
pub struct Reader {
    expect: Expect,
    head: [u8; COOKIE_LEN],
    head_len: usize,
    json_len: Option<u32>,
    body: Vec<u8>,
}

impl Reader {
    /// A reader waiting for `expect`.
    pub fn new(expect: Expect) -> Self {
        Reader { expect, head: [0; COOKIE_LEN], head_len: 0, json_len: None, body: Vec::new() }
    }

    /// Changes what comes next; any partial item is dropped.
    pub fn expect(&mut self, expect: Expect) {
        *self = Reader::new(expect);
    }

    /// What the reader waits for.
    pub fn expecting(&self) -> Expect {
        self.expect
    }

    /// Bytes of an unfinished item held.
    pub fn partial(&self) -> usize {
        self.head_len + self.body.len()
    }

    /// Consumes from `data` until one item is complete or `data` is used up.
    /// Returns the bytes consumed and the item, if one completed. After an
    /// item the reader expects `Nothing` until told otherwise.
    pub fn feed(&mut self, data: &[u8]) -> (usize, Option<Frame>) {
        let head_need = match self.expect {
            Expect::Nothing => return (data.len(), None),
            Expect::Cookie => COOKIE_LEN,
            Expect::State => 1,
            Expect::ErrorCodes => 8,
            Expect::Json { .. } if self.json_len.is_none() => 4,
            Expect::Json { .. } => 0,
        };
        let mut used = 0;
        if head_need > 0 {
            let take = (head_need - self.head_len).min(data.len());
            self.head[self.head_len..self.head_len + take].copy_from_slice(&data[..take]);
            self.head_len += take;
            used = take;
            if self.head_len < head_need {
                return (used, None);
            }
            let h = self.head;
            let frame = match self.expect {
                Expect::Cookie => Some(Frame::Cookie(h)),
                Expect::State => Some(Frame::State(h[0])),
                Expect::ErrorCodes => Some(Frame::ErrorCodes(
                    i32::from_be_bytes([h[0], h[1], h[2], h[3]]),
                    i32::from_be_bytes([h[4], h[5], h[6], h[7]]),
                )),
                Expect::Json { max } => {
                    let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
                    if len == 0 || len > max {
                        Some(Frame::JsonLength(len))
                    } else {
                        self.json_len = Some(len);
                        None
                    }
                }
                Expect::Nothing => None,
            };
            if let Some(f) = frame {
                self.expect(Expect::Nothing);
                return (used, Some(f));
            }
        }
        let Some(len) = self.json_len else {
            return (used, None);
        };
        // The length is capped, so `len as usize` is small.
        let want = len as usize - self.body.len();
        let take = want.min(data.len() - used);
        self.body.extend_from_slice(&data[used..used + take]);
        used += take;
        if self.body.len() == len as usize {
            let body = core::mem::take(&mut self.body);
            self.expect(Expect::Nothing);
            return (used, Some(Frame::Json(body)));
        }
        (used, None)
    }
}

/// Appends a length-prefixed JSON document.
pub fn push_json(out: &mut Vec<u8>, json: &[u8]) {
    let len = u32::try_from(json.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(json);
}
