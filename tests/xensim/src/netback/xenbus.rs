//! The backend's side of the xenbus handshake, as Linux netback's
//! `frontend_changed` follows it (xenbus.c).

use xen_proto::iface::{EventChannels, GrantTable, SharedPage};
use xen_proto::xenbus::{read_state, switch_state, XenbusState};

use super::{Conn, FrontendFeatures, Inner, RSP_PROD};

impl Inner {
    fn set_state(&mut self, s: XenbusState) {
        let path = format!("{}/state", self.be_path);
        switch_state(&mut self.client, &path, s).unwrap();
        self.state = s;
    }

    pub(super) fn error(&mut self, msg: String) {
        self.stats.errors.push(msg);
    }

    pub(super) fn xenbus(&mut self) {
        use XenbusState::*;
        let fe_state_path = format!("{}/state", self.fe_path);
        let fs = match read_state(&mut self.client, &fe_state_path) {
            Ok(s) => s,
            Err(e) => {
                self.error(format!("reading frontend state: {e}"));
                return;
            }
        };
        match fs {
            Initialising => {
                if self.state != InitWait {
                    // Frontend restarted or reconnecting after Closed.
                    self.disconnect();
                    self.set_state(InitWait);
                }
            }
            Initialised => {}
            Connected => {
                if self.state == InitWait && !self.never_connect {
                    match self.connect() {
                        Ok(()) => self.set_state(Connected),
                        Err(e) => {
                            self.error(e);
                            self.set_state(Closing);
                        }
                    }
                }
            }
            Closing => {
                if self.state != Closing && self.state != Closed {
                    self.disconnect();
                    self.set_state(Closing);
                }
            }
            Closed => {
                if self.state != Closed {
                    self.disconnect();
                    self.set_state(Closed);
                }
            }
            Unknown => {}
            other => {
                if self.state != Closing && self.state != Closed {
                    self.error(format!("saw state {} at frontend", other.number()));
                    self.disconnect();
                    self.set_state(Closing);
                }
            }
        }
    }

    fn read_u32_node(&mut self, key: &str) -> Result<u32, String> {
        let p = format!("{}/{key}", self.fe_path);
        let v = self.client.read_string(&p).map_err(|e| format!("reading {p}: {e}"))?;
        v.parse().map_err(|_| format!("{p} = {v:?} is no number"))
    }

    fn read_flag(&mut self, key: &str) -> bool {
        self.read_u32_node(key).map(|v| v != 0).unwrap_or(false)
    }

    fn connect(&mut self) -> Result<(), String> {
        let tx_ref = self.read_u32_node("tx-ring-ref")?;
        let rx_ref = self.read_u32_node("rx-ring-ref")?;
        let evtchn = self.read_u32_node("event-channel")?;
        let fe = FrontendFeatures {
            rx_copy: self.read_flag("request-rx-copy"),
            rx_notify: self.read_flag("feature-rx-notify"),
            sg: self.read_flag("feature-sg"),
            gso_tcpv4: self.read_flag("feature-gso-tcpv4"),
            no_csum_offload: self.read_flag("feature-no-csum-offload"),
        };
        // Linux reads no other flag without it (see the protocol note).
        if !fe.rx_copy {
            return Err("frontend did not request rx-copy".into());
        }
        let dom = self.fe_dom;
        let tx = self.gnt.map(dom, tx_ref, false).map_err(|e| format!("mapping tx ring: {e:?}"))?;
        let rx = match self.gnt.map(dom, rx_ref, false) {
            Ok(m) => m,
            Err(e) => {
                self.gnt.unmap(tx).unwrap();
                return Err(format!("mapping rx ring: {e:?}"));
            }
        };
        let port = match self.evt.bind_interdomain(dom, evtchn) {
            Ok(p) => p,
            Err(e) => {
                self.gnt.unmap(tx).unwrap();
                self.gnt.unmap(rx).unwrap();
                return Err(format!("binding event channel: {e:?}"));
            }
        };
        // BACK_RING_ATTACH: continue from whatever the shared indices say.
        let tx_rsp = tx.read_u32(RSP_PROD);
        let rx_rsp = rx.read_u32(RSP_PROD);
        self.conn = Some(Conn {
            tx,
            rx,
            port,
            fe,
            tx_req_cons: tx_rsp,
            tx_rsp_prod_pvt: tx_rsp,
            rx_req_cons: rx_rsp,
            rx_rsp_prod_pvt: rx_rsp,
            last_tx_id: None,
            last_rx_id: None,
            tx_more: true,
            rx_stalled: false,
            disabled: false,
        });
        self.stats.connects += 1;
        // A new binding: a new irq, unmasked.
        self.deaf = false;
        Ok(())
    }

    fn disconnect(&mut self) {
        for m in self.held.drain(..) {
            self.gnt.unmap(m).unwrap();
        }
        if let Some(c) = self.conn.take() {
            self.gnt.unmap(c.tx).unwrap();
            self.gnt.unmap(c.rx).unwrap();
            self.evt.close(c.port).unwrap();
        }
    }
}
