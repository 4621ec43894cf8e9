//! Transactions: explicit start/end, a scoped handle, and a retrying
//! helper.

use alloc::string::String;
use alloc::vec::Vec;

use xenstore_wire::{reply, Permission, Request, XsError};

use super::Client;
use crate::error::Error;
use crate::iface::XenstoreRing;

/// A transaction id handed out by xenstored (never 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxId(u32);

impl TxId {
    /// The id as sent in message headers.
    pub fn raw(self) -> u32 {
        self.0
    }
}

/// Operations inside one transaction.
pub struct Tx<'a, R: XenstoreRing> {
    client: &'a mut Client<R>,
    id: TxId,
}

impl<R: XenstoreRing> Tx<'_, R> {
    /// The transaction's id.
    pub fn id(&self) -> TxId {
        self.id
    }

    /// Reads a node as seen by this transaction.
    pub fn read(&mut self, path: &str) -> Result<Vec<u8>, Error> {
        self.client.read_in(self.id.0, path)
    }

    /// Reads a node as UTF-8.
    pub fn read_string(&mut self, path: &str) -> Result<String, Error> {
        self.client.read_string_in(self.id.0, path)
    }

    /// Writes a node; visible to others only after commit.
    pub fn write(&mut self, path: &str, value: &[u8]) -> Result<(), Error> {
        self.client.write_in(self.id.0, path, value)
    }

    /// Creates a node.
    pub fn mkdir(&mut self, path: &str) -> Result<(), Error> {
        self.client.mkdir_in(self.id.0, path)
    }

    /// Removes a node and its children.
    pub fn rm(&mut self, path: &str) -> Result<(), Error> {
        self.client.rm_in(self.id.0, path)
    }

    /// Lists children.
    pub fn directory(&mut self, path: &str) -> Result<Vec<String>, Error> {
        self.client.directory_in(self.id.0, path)
    }

    /// Sets a node's permissions (with the node's write, at commit).
    pub fn set_perms(&mut self, path: &str, perms: &[Permission]) -> Result<(), Error> {
        let req = Request::set_perms(path, perms).map_err(Error::Wire)?;
        self.client.call_ack(req, self.id.0)
    }
}

impl<R: XenstoreRing> Client<R> {
    /// Starts a transaction.
    pub fn transaction_start(&mut self) -> Result<TxId, Error> {
        let m = self.call(Request::transaction_start(), 0)?;
        reply::transaction_start(&m).map(TxId).map_err(Error::from_reply)
    }

    /// Commits (`commit`) or aborts a transaction. A conflicting commit
    /// fails with `Error::Xs(XsError::Eagain)`: redo the whole
    /// transaction.
    pub fn transaction_end(&mut self, tx: TxId, commit: bool) -> Result<(), Error> {
        let req = Request::transaction_end(tx.0, commit).map_err(Error::Wire)?;
        // The end request carries the tx id itself.
        self.call_ack(req, tx.0)
    }

    /// Scoped operations inside an explicitly started transaction.
    pub fn in_transaction(&mut self, tx: TxId) -> Tx<'_, R> {
        Tx { client: self, id: tx }
    }

    /// Runs `body` in a transaction and commits, redoing everything on
    /// `EAGAIN` (from the commit or from inside `body`) up to
    /// [`Config::tx_retries`](super::Config) times. Any other error from
    /// `body` aborts the transaction and is returned.
    pub fn transaction<T, F>(&mut self, mut body: F) -> Result<T, Error>
    where
        F: FnMut(&mut Tx<'_, R>) -> Result<T, Error>,
    {
        let tries = self.config.tx_retries.max(1);
        for _ in 0..tries {
            let id = self.transaction_start()?;
            let out = body(&mut Tx { client: self, id });
            match out {
                Ok(v) => match self.transaction_end(id, true) {
                    Ok(()) => return Ok(v),
                    Err(Error::Xs(XsError::Eagain)) => {}
                    Err(e) => return Err(e),
                },
                Err(e) => {
                    // Aborting is best effort: the body's error matters
                    // more, unless the ring itself died.
                    if let Err(end) = self.transaction_end(id, false) {
                        if end.is_fatal() {
                            return Err(end);
                        }
                    }
                    if e != Error::Xs(XsError::Eagain) {
                        return Err(e);
                    }
                }
            }
        }
        Err(Error::TransactionRetries(tries))
    }
}
