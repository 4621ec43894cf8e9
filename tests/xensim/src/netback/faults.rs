//! Misbehaviours the fake netback can be told to commit.

use super::Inner;

/// One misbehaviour, applied to the next response it fits.
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
    /// Next rx response carries this id.
    RxId(u16),
    /// Next rx response repeats the previous rx response's id.
    RxDuplicate,
    /// Next rx response claims this status (size, or negative error).
    RxStatus(i16),
    /// Next rx response claims this offset.
    RxOffset(u16),
    /// Next rx response has these flags.
    RxFlags(u16),
    /// After the next rx batch, one more rx response than requests.
    RxSpurious,
}

impl NetbackFault {
    pub(super) fn is_tx(self) -> bool {
        matches!(
            self,
            NetbackFault::TxId(_)
                | NetbackFault::TxDuplicate
                | NetbackFault::TxStatus(_)
                | NetbackFault::TxSpurious
        )
    }
}

impl Inner {
    pub(super) fn take_fault(
        &mut self,
        tx: bool,
        pred: impl Fn(NetbackFault) -> bool,
    ) -> Option<NetbackFault> {
        let i = self
            .faults
            .iter()
            .position(|f| f.is_tx() == tx && pred(*f))?;
        self.faults.remove(i)
    }
}
