//! A guest with a vif on the simulated Xen, and its fake netback: what the
//! netfront tests share.

use netfront::{Config, Netfront};
use xen_proto::iface::EventChannels;
use xen_proto::xenstore::Client;
use xensim::{Domain, DomainConfig, Netback, NetbackFeatures, Sim, SimEvtchn, SimGnttab, SimXsRing};

pub const MS: u64 = 1_000_000;
pub const MAC: [u8; 6] = [0x00, 0x16, 0x3e, 0x12, 0x34, 0x56];
pub const VIF: &str = "device/vif/0";

pub type Nf = Netfront<SimGnttab, SimEvtchn>;

/// A guest big enough for full rings (2 ring pages + 512 buffers).
pub fn guest(sim: &Sim) -> Domain {
    sim.create_domain_with(1, DomainConfig { grant_refs: 1024, max_ports: 64, max_pages: 1024 })
}

pub struct World {
    pub sim: Sim,
    pub nb: Netback,
    pub dom: Domain,
    pub xs: Client<SimXsRing>,
}

/// A guest and a netback offering what Linux 6.1's does.
pub fn world() -> World {
    world_with(NetbackFeatures::default())
}

pub fn world_with(features: NetbackFeatures) -> World {
    let sim = Sim::new();
    let dom = guest(&sim);
    let nb = Netback::new_with(&sim, 1, 0, MAC, features);
    nb.install_hook();
    let xs = dom.xenstore_client();
    World { sim, nb, dom, xs }
}

impl World {
    pub fn connect(&mut self) -> Nf {
        self.connect_with(Config::default())
    }

    pub fn connect_with(&mut self, config: Config) -> Nf {
        Netfront::connect_with(&mut self.xs, self.dom.gnttab(), self.dom.evtchn(), VIF, config, 100 * MS).expect("connect")
    }

    /// One round of simulated time: the backend runs (via the hook),
    /// then the driver handles its event.
    pub fn pump(&self, nf: &mut Nf) {
        self.dom.evtchn().wait(MS);
        nf.handle_event();
    }

    pub fn shutdown(&mut self, mut nf: Nf) {
        nf.shutdown(&mut self.xs, 100 * MS).expect("shutdown");
        assert!(nf.into_handles().is_ok(), "everything released");
    }

    pub fn finish(self) {
        self.sim.clear_step_hook();
        self.sim.assert_no_leaks();
    }
}
