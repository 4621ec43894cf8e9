//! Connecting to netback and disconnecting (the xenbus life cycle), and
//! giving every grant, page and port back.

use alloc::format;

use xen_proto::iface::{EventChannels, GrantTable, XenstoreRing};
use xen_proto::xenbus::{read_state, switch_state, wait_for_state, XenbusState};
use xen_proto::xenstore::Client;

use crate::counters::Counters;
use crate::device::{Config, Netfront, Phase};
use crate::error::Error;
use crate::features::Negotiated;
use crate::pool::Link;
use crate::rx::Rx;
use crate::tx::Tx;
use crate::xenbus::{self as xb, Published};

impl<G: GrantTable, E: EventChannels> Netfront<G, E> {
    /// Connects to the backend of `vif_path` (e.g. `device/vif/0`,
    /// relative to our home, or absolute) with [`Config::default`].
    /// `timeout_ns` bounds each wait for the backend.
    pub fn connect<R: XenstoreRing>(
        client: &mut Client<R>,
        gnt: G,
        evt: E,
        vif_path: &str,
        timeout_ns: u64,
    ) -> Result<Self, Error> {
        Self::connect_with(client, gnt, evt, vif_path, Config::default(), timeout_ns)
    }

    /// [`connect`](Self::connect) with explicit buffer counts.
    ///
    /// Reads `backend`, `backend-id`, `mac`; waits for the backend's
    /// `InitWait`; checks `feature-rx-copy`; allocates and grants both
    /// rings and the rx buffers, allocates an unbound port; publishes the
    /// keys of [`PUBLISHED_KEYS`](crate::xenbus::PUBLISHED_KEYS) with
    /// `state = Connected` in one transaction; waits for the backend's
    /// `Connected`. On failure everything allocated is given back (and
    /// the published state walked back to `Initialising`).
    pub fn connect_with<R: XenstoreRing>(
        client: &mut Client<R>,
        gnt: G,
        evt: E,
        vif_path: &str,
        config: Config,
        timeout_ns: u64,
    ) -> Result<Self, Error> {
        if !config.valid() {
            return Err(Error::BadConfig);
        }
        let vif_path = vif_path.trim_end_matches('/');
        let nodes = xb::read_vif(client, vif_path)?;
        let fe_state = format!("{vif_path}/state");
        let be_state = format!("{}/state", nodes.backend);
        // A previous instance may have left its state behind.
        match read_state(client, &fe_state)? {
            XenbusState::Initialising | XenbusState::Unknown => {}
            _ => switch_state(client, &fe_state, XenbusState::Initialising)?,
        }
        wait_for_state(client, &be_state, &[XenbusState::InitWait], timeout_ns)?;
        if !xb::backend_has_rx_copy(client, &nodes.backend)? {
            return Err(Error::NoRxCopy);
        }
        let negotiated = Negotiated::new(config.offloads, xb::backend_offers(client, &nodes.backend)?);
        let mut nf = Netfront {
            link: Link { gnt, evt, port: None, backend_id: nodes.backend_id, up: false },
            tx: Tx::new(),
            rx: Rx::new(),
            negotiated,
            counters: Counters::default(),
            nodes,
            config,
            phase: Phase::Setup,
        };
        let published = match nf.setup() {
            Ok(p) => p,
            Err(e) => {
                nf.release();
                return Err(e);
            }
        };
        let result = xb::publish(client, vif_path, &published).and_then(|()| {
            nf.phase = Phase::Published;
            let wanted = [XenbusState::Connected, XenbusState::Closing, XenbusState::Closed];
            match wait_for_state(client, &be_state, &wanted, timeout_ns)? {
                XenbusState::Connected => Ok(()),
                other => Err(Error::BackendState(other)),
            }
        });
        if let Err(e) = result {
            if nf.phase == Phase::Published {
                // Best effort: the original error is what matters.
                let _ = nf.shutdown(client, timeout_ns);
            } else {
                nf.release();
            }
            return Err(e);
        }
        nf.link.up = true;
        // The backend maps the rx ring on connecting; kick it so it looks
        // at the buffers posted before it bound the port.
        nf.link.notify(&mut nf.counters);
        nf.poll();
        Ok(nf)
    }

    /// Allocates, grants and posts everything; the caller releases on
    /// error.
    fn setup(&mut self) -> Result<Published, Error> {
        let be = self.link.backend_id;
        self.tx.offloads = self.negotiated.tx;
        self.rx.bufs.offloads = self.negotiated.rx;
        let gnt = &mut self.link.gnt;
        let tx_ring_ref = self.tx.ring.setup(gnt, be)?;
        let rx_ring_ref = self.rx.ring.setup(gnt, be)?;
        self.tx.setup(gnt, self.config.tx_buffers)?;
        self.rx.setup(gnt, self.config.rx_buffers)?;
        let port = self.link.evt.alloc_unbound(be)?;
        self.link.port = Some(port);
        // Post receive buffers now: the backend sees them when it maps
        // the ring.
        self.link.up = true;
        let posted = self.rx.refill(&mut self.link, &mut self.counters);
        self.link.up = false;
        posted?;
        Ok(Published { tx_ring_ref, rx_ring_ref, event_channel: port, rx: self.negotiated.rx })
    }

    /// Disconnects and connects the same vif again, as configured before:
    /// for a backend that left our transmits unanswered
    /// ([`TxWatchdog`](crate::TxWatchdog)). Frames in flight are lost (TCP
    /// sends them again); the counters carry over, `restarts` one more.
    /// On error the device stays down: a disconnect that left grants
    /// mapped ([`Error::GrantsBusy`]) keeps them, and a reconnect that
    /// failed has given back what it took.
    pub fn restart<R: XenstoreRing>(&mut self, client: &mut Client<R>, timeout_ns: u64) -> Result<(), Error>
    where
        G: Clone,
        E: Clone,
    {
        self.shutdown(client, timeout_ns)?;
        let (gnt, evt) = (self.link.gnt.clone(), self.link.evt.clone());
        let mut fresh = Self::connect_with(client, gnt, evt, &self.nodes.frontend.clone(), self.config, timeout_ns)?;
        let mut counters = self.counters;
        counters.add(&fresh.counters);
        counters.restarts += 1;
        fresh.counters = counters;
        *self = fresh;
        Ok(())
    }

    /// Gives back every grant, page and the port; returns how many grants
    /// the backend still maps (kept for a later retry).
    fn release(&mut self) -> usize {
        let c = &mut self.counters;
        let gnt = &mut self.link.gnt;
        self.link.up = false;
        let mut busy = 0;
        busy += self.tx.bufs.pool.release(gnt, c);
        busy += self.rx.bufs.pool.release(gnt, c);
        busy += usize::from(!self.tx.ring.release(gnt, c));
        busy += usize::from(!self.rx.ring.release(gnt, c));
        self.tx.clear();
        self.rx.clear();
        if let Some(port) = self.link.port.take() {
            // Closing fails only for a port that is not open: nothing
            // left to give back either way.
            let _ = self.link.evt.close(port);
        }
        busy
    }

    /// Disconnects: frontend `Closing`, wait (bounded) for the backend's
    /// `Closing`/`Closed`, frontend `Closed`, wait for the backend's
    /// `Closed`, then revoke every grant (rings and buffers), free the
    /// pages, close the port, remove the published keys and walk `state`
    /// back to `Initialising` so the vif can be connected again.
    ///
    /// Every step is attempted even if an earlier one failed; the first
    /// error is returned. Grants the backend still maps are kept, never
    /// freed: the result is then [`Error::GrantsBusy`] and calling
    /// `shutdown` again retries them.
    pub fn shutdown<R: XenstoreRing>(&mut self, client: &mut Client<R>, timeout_ns: u64) -> Result<(), Error> {
        self.teardown(client, timeout_ns, true)
    }

    /// Like [`Netfront::shutdown`], for a guest that is going away: the
    /// frontend stays Closed (no walk back to Initialising), so the backend
    /// stays Closed too and the toolstack sees a finished device.
    pub fn close<R: XenstoreRing>(&mut self, client: &mut Client<R>, timeout_ns: u64) -> Result<(), Error> {
        self.teardown(client, timeout_ns, false)
    }

    fn teardown<R: XenstoreRing>(&mut self, client: &mut Client<R>, timeout_ns: u64, reopen: bool) -> Result<(), Error> {
        self.link.up = false;
        let mut first: Option<Error> = None;
        let mut note = |r: Result<(), Error>| {
            if let Err(e) = r {
                first.get_or_insert(e);
            }
        };
        if self.phase != Phase::Closed {
            let fe = self.nodes.frontend.clone();
            let fe_state = format!("{fe}/state");
            let be_state = format!("{}/state", self.nodes.backend);
            use XenbusState::*;
            note(switch_state(client, &fe_state, Closing).map_err(Error::from));
            note(wait_for_state(client, &be_state, &[Closing, Closed, Unknown], timeout_ns).map(drop).map_err(Error::from));
            note(switch_state(client, &fe_state, Closed).map_err(Error::from));
            note(wait_for_state(client, &be_state, &[Closed, Unknown], timeout_ns).map(drop).map_err(Error::from));
            let busy = self.release();
            note(xb::unpublish(client, &fe));
            if reopen {
                note(switch_state(client, &fe_state, Initialising).map_err(Error::from));
            }
            self.phase = Phase::Closed;
            if busy > 0 {
                return Err(Error::GrantsBusy(busy));
            }
        } else {
            let busy = self.release();
            if busy > 0 {
                return Err(Error::GrantsBusy(busy));
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// For the fuzz targets (`fuzz/checks`) only: what
    /// [`connect_with`](Self::connect_with) sets up, without xenstore
    /// (the backend's `offers` are given, nothing is published or waited
    /// for): rings, buffers, grants to `backend_id`, the unbound port, rx
    /// buffers posted; then up. Returns what would be published. Undo with
    /// [`release_unpublished`](Self::release_unpublished).
    #[doc(hidden)]
    pub fn connect_unpublished(
        gnt: G,
        evt: E,
        backend_id: xen_proto::iface::DomId,
        config: Config,
        offers: crate::features::BackendOffers,
    ) -> Result<(Self, Published), Error> {
        if !config.valid() {
            return Err(Error::BadConfig);
        }
        let nodes = crate::xenbus::VifNodes {
            frontend: alloc::string::String::new(),
            backend: alloc::string::String::new(),
            backend_id,
            mac: [0; 6],
        };
        let link = Link { gnt, evt, port: None, backend_id, up: false };
        let negotiated = Negotiated::new(config.offloads, offers);
        let counters = Counters::default();
        let mut nf = Netfront { link, tx: Tx::new(), rx: Rx::new(), negotiated, counters, nodes, config, phase: Phase::Setup };
        match nf.setup() {
            Ok(published) => {
                nf.link.up = true;
                nf.link.notify(&mut nf.counters);
                nf.poll();
                Ok((nf, published))
            }
            Err(e) => {
                nf.release();
                Err(e)
            }
        }
    }

    /// For the fuzz targets only: gives back what
    /// [`connect_unpublished`](Self::connect_unpublished) took (no
    /// xenstore); returns how many grants the backend still maps.
    #[doc(hidden)]
    pub fn release_unpublished(&mut self) -> usize {
        self.phase = Phase::Closed;
        self.release()
    }

    /// The grant table and event-channel handles back, once
    /// [`shutdown`](Self::shutdown) released everything (for a
    /// reconnect). A device still holding grants is returned unchanged.
    pub fn into_handles(self) -> Result<(G, E), alloc::boxed::Box<Self>> {
        let holds = !self.tx.bufs.pool.pages.is_empty()
            || !self.rx.bufs.pool.pages.is_empty()
            || self.tx.ring.page.is_some()
            || self.rx.ring.page.is_some()
            || self.link.port.is_some();
        if holds {
            return Err(alloc::boxed::Box::new(self));
        }
        Ok((self.link.gnt, self.link.evt))
    }
}
