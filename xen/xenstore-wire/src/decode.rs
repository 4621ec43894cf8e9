//! Incremental decoding of the daemon-to-guest byte stream.
//!
//! Bytes arrive from the response ring in whatever pieces the ring's
//! wrap-around and the daemon's timing produce, so the decoder accepts
//! chunks of any size and keeps partial headers and payloads between calls.
//! The stream has no resynchronisation marker: once a header is bad there
//! is no way to find the next message, so the decoder poisons itself.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::error::Error;
use crate::header::{Header, MsgType, HEADER_LEN};

/// One complete message: a validated header and exactly `header.len`
/// payload bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Validated header.
    pub header: Header,
    /// Payload bytes.
    pub payload: Vec<u8>,
}

impl Message {
    /// The message type.
    pub fn msg_type(&self) -> MsgType {
        self.header.msg_type
    }

    /// The request id.
    pub fn req_id(&self) -> u32 {
        self.header.req_id
    }

    /// The transaction id.
    pub fn tx_id(&self) -> u32 {
        self.header.tx_id
    }
}

/// Streaming decoder for xenstore messages.
///
/// Either drive it with [`push`](Decoder::push) and collect finished
/// messages with [`next_message`](Decoder::next_message), or use the
/// lower-level [`decode`](Decoder::decode) which consumes at most one
/// message and never queues.
#[derive(Debug, Default)]
pub struct Decoder {
    header_buf: [u8; HEADER_LEN],
    header_fill: usize,
    /// Header of the message whose payload is being collected.
    current: Option<Header>,
    payload: Vec<u8>,
    ready: VecDeque<Message>,
    poison: Option<Error>,
}

impl Decoder {
    /// A fresh decoder at a message boundary.
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Consumes bytes from `input` until one message completes or the
    /// input runs out.
    ///
    /// Returns how many bytes were consumed and the completed message, if
    /// any. When a message is returned, unconsumed bytes belong to the
    /// next message and should be passed in again.
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Option<Message>), Error> {
        if self.poison.is_some() {
            return Err(Error::Poisoned);
        }
        let mut used = 0;
        let header = match self.current {
            Some(h) => h,
            None => {
                let want = HEADER_LEN - self.header_fill;
                let take = want.min(input.len());
                let (src, _) = input.split_at(take);
                if let Some(dst) = self.header_buf.get_mut(self.header_fill..self.header_fill + take) {
                    dst.copy_from_slice(src);
                }
                self.header_fill += take;
                used += take;
                if self.header_fill < HEADER_LEN {
                    return Ok((used, None));
                }
                let h = match Header::parse(&self.header_buf) {
                    Ok(h) => h,
                    Err(e) => {
                        self.poison = Some(e);
                        return Err(e);
                    }
                };
                self.current = Some(h);
                self.payload = Vec::with_capacity(h.payload_len());
                h
            }
        };
        let rest = input.get(used..).unwrap_or_default();
        let want = header.payload_len() - self.payload.len();
        let take = want.min(rest.len());
        self.payload.extend_from_slice(rest.get(..take).unwrap_or_default());
        used += take;
        if self.payload.len() < header.payload_len() {
            return Ok((used, None));
        }
        self.current = None;
        self.header_fill = 0;
        let msg = Message { header, payload: core::mem::take(&mut self.payload) };
        Ok((used, Some(msg)))
    }

    /// Feeds a chunk of any size; completed messages are queued for
    /// [`next_message`](Decoder::next_message).
    ///
    /// On error, messages completed earlier in the same chunk stay queued
    /// (they were valid), the rest of the chunk is discarded and the
    /// decoder is poisoned.
    pub fn push(&mut self, mut chunk: &[u8]) -> Result<(), Error> {
        if self.poison.is_some() {
            return Err(Error::Poisoned);
        }
        while !chunk.is_empty() {
            let (used, msg) = self.decode(chunk)?;
            if let Some(m) = msg {
                self.ready.push_back(m);
            }
            chunk = chunk.get(used..).unwrap_or_default();
        }
        Ok(())
    }

    /// Takes the oldest completed message.
    pub fn next_message(&mut self) -> Option<Message> {
        self.ready.pop_front()
    }

    /// Number of completed messages waiting.
    pub fn ready_len(&self) -> usize {
        self.ready.len()
    }

    /// Whether a message is partially received (the decoder is mid-frame).
    pub fn has_partial(&self) -> bool {
        self.header_fill > 0
    }

    /// Whether an earlier error made the stream unusable.
    pub fn is_poisoned(&self) -> bool {
        self.poison.is_some()
    }

    /// The error that poisoned the decoder, if any.
    pub fn poison_error(&self) -> Option<Error> {
        self.poison
    }

    /// Forgets all state, including poisoning and queued messages. Only
    /// meaningful once the ring itself has been reset (reconnection).
    pub fn reset(&mut self) {
        *self = Decoder::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn golden_stream() -> Vec<u8> {
        let mut s = vec![];
        // XS_WRITE reply, req 1: "OK\0"
        s.extend_from_slice(&[11, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0]);
        s.extend_from_slice(b"OK\0");
        // XS_TRANSACTION_END reply with empty payload, req 2, tx 9
        s.extend_from_slice(&[7, 0, 0, 0, 2, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
        // XS_WATCH_EVENT: "/a\0tok\0" (7 bytes)
        s.extend_from_slice(&[15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0]);
        s.extend_from_slice(b"/a\0tok\0");
        s
    }

    fn check_golden(msgs: &[Message]) {
        assert_eq!(msgs.len(), 3);
        assert_eq!(msgs[0].msg_type(), MsgType::Write);
        assert_eq!(msgs[0].req_id(), 1);
        assert_eq!(msgs[0].payload, b"OK\0");
        assert_eq!(msgs[1].msg_type(), MsgType::TransactionEnd);
        assert_eq!(msgs[1].req_id(), 2);
        assert_eq!(msgs[1].tx_id(), 9);
        assert!(msgs[1].payload.is_empty());
        assert_eq!(msgs[2].msg_type(), MsgType::WatchEvent);
        assert_eq!(msgs[2].payload, b"/a\0tok\0");
    }

    #[test]
    fn every_chunk_size() {
        let stream = golden_stream();
        for size in 1..=stream.len() {
            let mut d = Decoder::new();
            let mut msgs = vec![];
            for chunk in stream.chunks(size) {
                d.push(chunk).unwrap();
                while let Some(m) = d.next_message() {
                    msgs.push(m);
                }
            }
            check_golden(&msgs);
            assert!(!d.has_partial(), "size {size}");
            assert!(!d.is_poisoned());
        }
    }

    #[test]
    fn decode_stops_at_message_boundary() {
        let stream = golden_stream();
        let mut d = Decoder::new();
        let (used, msg) = d.decode(&stream).unwrap();
        assert_eq!(used, 19);
        assert_eq!(msg.unwrap().payload, b"OK\0");
        // Zero-length payload completes as soon as its header does.
        let (used, msg) = d.decode(&stream[19..]).unwrap();
        assert_eq!(used, 16);
        assert_eq!(msg.unwrap().tx_id(), 9);
        assert_eq!(d.decode(&[]).unwrap(), (0, None));
        assert_eq!(d.ready_len(), 0);
    }

    #[test]
    fn truncated_payload_stays_pending() {
        let stream = golden_stream();
        let mut d = Decoder::new();
        d.push(&stream[..17]).unwrap();
        assert!(d.next_message().is_none());
        assert!(d.has_partial());
        d.push(&stream[17..19]).unwrap();
        assert_eq!(d.next_message().unwrap().payload, b"OK\0");
        assert!(!d.has_partial());
    }

    #[test]
    fn oversized_len_poisons() {
        let mut d = Decoder::new();
        let mut bad = vec![2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        bad.extend_from_slice(&4097u32.to_le_bytes());
        // Valid message first, then the bad header in the same chunk.
        let mut chunk = golden_stream()[..19].to_vec();
        chunk.extend_from_slice(&bad);
        assert_eq!(d.push(&chunk), Err(Error::PayloadTooLarge(4097)));
        assert!(d.is_poisoned());
        assert_eq!(d.poison_error(), Some(Error::PayloadTooLarge(4097)));
        // The message before the corruption is still delivered.
        assert_eq!(d.next_message().unwrap().payload, b"OK\0");
        assert_eq!(d.push(b"x"), Err(Error::Poisoned));
        assert_eq!(d.decode(b"x"), Err(Error::Poisoned));
        d.reset();
        assert!(!d.is_poisoned());
        d.push(&golden_stream()).unwrap();
        assert_eq!(d.ready_len(), 3);
    }

    #[test]
    fn unknown_type_poisons_even_bytewise() {
        let mut d = Decoder::new();
        let bad = [20u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        for b in &bad[..15] {
            d.push(core::slice::from_ref(b)).unwrap();
        }
        assert_eq!(d.push(&bad[15..]), Err(Error::UnknownType(20)));
        assert!(d.is_poisoned());
    }

    #[test]
    fn max_payload_accepted() {
        let mut s = vec![2u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        s.extend_from_slice(&4096u32.to_le_bytes());
        s.extend(core::iter::repeat_n(0xab, 4096));
        let mut d = Decoder::new();
        d.push(&s).unwrap();
        let m = d.next_message().unwrap();
        assert_eq!(m.payload.len(), 4096);
        assert!(m.payload.iter().all(|&b| b == 0xab));
    }
}
