//! Offloads: what we ask for, what the backend offers, what is used.
//!
//! Xenstore keys mean different things by directory (netif.h): a key in
//! the backend's directory says what the backend accepts from us on the
//! transmit ring; the same key in ours says what we accept on the receive
//! ring. A feature is used only when both sides agree.

/// The offloads this frontend is willing to use (all on by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offloads {
    /// Packets of several slots (`feature-sg`).
    pub sg: bool,
    /// TCP/UDP checksums left for the other side to complete, and trusted
    /// when the backend vouches for them (no `feature-no-csum-offload`).
    pub csum: bool,
    /// TCPv4 segmentation offload both ways (`feature-gso-tcpv4`); needs
    /// `sg` and `csum`.
    pub gso: bool,
}

impl Offloads {
    /// Everything on.
    pub const ALL: Offloads = Offloads { sg: true, csum: true, gso: true };
    /// Single-slot frames of at most 1514 bytes with full checksums.
    pub const NONE: Offloads = Offloads { sg: false, csum: false, gso: false };

    /// What we advertise for the receive ring: GSO only with both of the
    /// others (netback sends GSO only to a frontend with SG and checksum
    /// offload).
    pub fn rx(self) -> Offloads {
        Offloads { gso: self.gso && self.sg && self.csum, ..self }
    }
}

impl Default for Offloads {
    fn default() -> Self {
        Offloads::ALL
    }
}

/// What the backend's directory says it accepts from us.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackendOffers {
    /// `feature-sg = 1`.
    pub sg: bool,
    /// `feature-gso-tcpv4 = 1`.
    pub gso_tcpv4: bool,
    /// `feature-no-csum-offload = 1` (absent: checksum offload is on).
    pub no_csum_offload: bool,
}

/// The offloads in use, per direction, once connected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Negotiated {
    /// What we may send.
    pub tx: Offloads,
    /// What the backend may send us.
    pub rx: Offloads,
}

impl Negotiated {
    /// Both sides' wishes combined.
    pub fn new(ours: Offloads, backend: BackendOffers) -> Negotiated {
        let sg = ours.sg && backend.sg;
        let csum = ours.csum && !backend.no_csum_offload;
        let gso = ours.gso && sg && csum && backend.gso_tcpv4;
        Negotiated { tx: Offloads { sg, csum, gso }, rx: ours.rx() }
    }

    /// The largest frame we may send.
    pub fn max_tx_frame(&self) -> usize {
        if self.tx.sg {
            crate::wire::MAX_PACKET
        } else {
            crate::wire::MAX_FRAME
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_feature_is_used_only_when_both_sides_agree() {
        let linux = BackendOffers { sg: true, gso_tcpv4: true, no_csum_offload: false };
        assert_eq!(Negotiated::new(Offloads::ALL, linux).tx, Offloads::ALL);
        assert_eq!(Negotiated::new(Offloads::NONE, linux).tx, Offloads::NONE);
        assert_eq!(Negotiated::new(Offloads::ALL, BackendOffers::default()).tx, Offloads { sg: false, csum: true, gso: false });
        let no_csum = BackendOffers { no_csum_offload: true, ..linux };
        assert_eq!(Negotiated::new(Offloads::ALL, no_csum).tx, Offloads { sg: true, csum: false, gso: false });
        let no_sg = Offloads { sg: false, ..Offloads::ALL };
        assert!(!Negotiated::new(no_sg, linux).tx.gso, "GSO needs SG");
        assert!(!no_sg.rx().gso);
        assert!(!Offloads { csum: false, ..Offloads::ALL }.rx().gso, "GSO needs checksum offload");
        assert_eq!(Negotiated::new(Offloads::ALL, linux).max_tx_frame(), 0xffff);
        assert_eq!(Negotiated::new(no_sg, linux).max_tx_frame(), 1514);
    }
}
