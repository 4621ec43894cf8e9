//! Misbehaviours the fake netback can be told to commit.

use super::Inner;

/// One misbehaviour, applied to the next response or packet it fits.
///
/// The hostile rx variants (`RxChainNeverEnds` and below) attach to the
/// next injected packet and skip the checks against what the frontend
/// negotiated: they exist to send what it did not ask for. Those that
/// leave a chain open publish nothing after it in the same push.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetbackFault {
    /// Next tx response carries this id instead of the request's.
    TxId(u16),
    /// Next tx response repeats the previous tx response's id (the
    /// request it should answer stays unanswered).
    TxDuplicate,
    /// Next tx response has this status.
    TxStatus(i16),
    /// After the next tx batch, one more tx response than requests.
    TxSpurious,
    /// Next rx packet's first response carries this id.
    RxId(u16),
    /// Next rx packet's first response repeats the previous rx id.
    RxDuplicate,
    /// Next rx packet's first response claims this status.
    RxStatus(i16),
    /// Next rx packet's first response claims this offset.
    RxOffset(u16),
    /// Next rx packet's first response has exactly these flags.
    RxFlags(u16),
    /// After the next rx batch, one more rx response than requests.
    RxSpurious,
    /// Exactly n data slots (data, then zero-filled pages), all with more_data.
    RxChainNeverEnds(u16),
    /// The last data slot also has more_data.
    RxMoreDataOnLast,
    /// A GSO extra (added if absent) with this size.
    RxGsoSize(u16),
    /// A GSO extra (added if absent; size 0 without gso_size) with this gso type.
    RxGsoType(u8),
    /// The extra slot (a GSO one added if absent) has this extra type.
    RxExtraType(u8),
    /// First data slot, then n GSO extras all with the MORE flag, then nothing.
    RxExtraMoreForever(u16),
    /// One slot flagged csum_blank, cut to Ethernet + IPv4 header + 10 bytes.
    RxCsumBlankShort,
    /// Data slot 1 of a packet of 3 or more claims offset 256 (256 + 4096 > 4096).
    RxSlotOutsidePage,
    /// Data slot 1 of a packet of 3 or more has this status (meant negative).
    RxStatusInChain(i16),
}

/// Where a fault is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Applies {
    TxResponse,
    TxBatch,
    RxResponse,
    RxBatch,
    RxPacket,
}

impl NetbackFault {
    fn applies(self) -> Applies {
        use NetbackFault::*;
        match self {
            TxId(_) | TxDuplicate | TxStatus(_) => Applies::TxResponse,
            TxSpurious => Applies::TxBatch,
            RxId(_) | RxDuplicate | RxStatus(_) | RxOffset(_) | RxFlags(_) => Applies::RxResponse,
            RxSpurious => Applies::RxBatch,
            RxChainNeverEnds(_)
            | RxMoreDataOnLast
            | RxGsoSize(_)
            | RxGsoType(_)
            | RxExtraType(_)
            | RxExtraMoreForever(_)
            | RxCsumBlankShort
            | RxSlotOutsidePage
            | RxStatusInChain(_) => Applies::RxPacket,
        }
    }
}

impl Inner {
    /// Removes and returns the oldest pending fault applied at `at`.
    pub(super) fn take_fault(&mut self, at: Applies) -> Option<NetbackFault> {
        let i = self.faults.iter().position(|f| f.applies() == at)?;
        self.faults.remove(i)
    }
}
