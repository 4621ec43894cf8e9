//! Interdomain event channels.

use xen_proto::iface::{DomId, EventChannels, Port, XenError};

use crate::xen::{Chan, ChanState, Xen};

const EINVAL: i32 = -22;
const ESRCH: i32 = -3;

/// One domain's event channels.
#[derive(Clone)]
pub struct SimEvtchn {
    pub(crate) xen: Xen,
    pub(crate) domid: DomId,
}

impl SimEvtchn {
    /// Lowest free port (port 0 is never valid in Xen), or `Exhausted`.
    fn free_port(&self, st: &crate::xen::State) -> Result<Port, XenError> {
        let dom = &st.domains[&self.domid];
        if dom.ports.len() >= dom.config.max_ports as usize {
            return Err(XenError::Exhausted);
        }
        Ok((1..).find(|p| !dom.ports.contains_key(p)).unwrap_or(1))
    }

    /// Whether `port` is open.
    pub fn is_open(&self, port: Port) -> bool {
        self.xen.state.borrow().domains[&self.domid].ports.contains_key(&port)
    }

    /// Reads `port`'s pending flag without clearing it.
    pub fn is_pending(&self, port: Port) -> bool {
        self.xen.state.borrow().domains[&self.domid].ports.get(&port).is_some_and(|c| c.pending)
    }
}

impl EventChannels for SimEvtchn {
    fn alloc_unbound(&mut self, remote: DomId) -> Result<Port, XenError> {
        let mut st = self.xen.state.borrow_mut();
        let port = self.free_port(&st)?;
        let chan = Chan { state: ChanState::Unbound { remote }, pending: false };
        st.domains.get_mut(&self.domid).map(|d| d.ports.insert(port, chan));
        Ok(port)
    }

    fn bind_interdomain(&mut self, remote: DomId, remote_port: Port) -> Result<Port, XenError> {
        let mut st = self.xen.state.borrow_mut();
        let me = self.domid;
        let rchan =
            st.domains.get(&remote).ok_or(XenError::Errno(ESRCH))?.ports.get(&remote_port).ok_or(XenError::Errno(EINVAL))?;
        if rchan.state != (ChanState::Unbound { remote: me }) {
            return Err(XenError::Errno(EINVAL));
        }
        let port = self.free_port(&st)?;
        let local = Chan { state: ChanState::Interdomain { remote, remote_port }, pending: false };
        st.domains.get_mut(&me).map(|d| d.ports.insert(port, local));
        if let Some(c) = st.domains.get_mut(&remote).and_then(|d| d.ports.get_mut(&remote_port)) {
            c.state = ChanState::Interdomain { remote: me, remote_port: port };
        }
        Ok(port)
    }

    fn notify(&mut self, port: Port) -> Result<(), XenError> {
        let mut st = self.xen.state.borrow_mut();
        let chan = st.domains[&self.domid].ports.get(&port).ok_or(XenError::Errno(EINVAL))?;
        if let ChanState::Interdomain { remote, remote_port } = chan.state {
            if let Some(c) = st.domains.get_mut(&remote).and_then(|d| d.ports.get_mut(&remote_port)) {
                c.pending = true;
            }
        }
        Ok(())
    }

    fn close(&mut self, port: Port) -> Result<(), XenError> {
        let mut st = self.xen.state.borrow_mut();
        let me = self.domid;
        let chan = st.domains.get_mut(&me).and_then(|d| d.ports.remove(&port)).ok_or(XenError::Errno(EINVAL))?;
        // The peer's end reverts to unbound, waiting for a new binding.
        if let ChanState::Interdomain { remote, remote_port } = chan.state {
            if let Some(c) = st.domains.get_mut(&remote).and_then(|d| d.ports.get_mut(&remote_port)) {
                c.state = ChanState::Unbound { remote: me };
            }
        }
        Ok(())
    }

    fn take_pending(&mut self, port: Port) -> bool {
        let mut st = self.xen.state.borrow_mut();
        st.domains.get_mut(&self.domid).and_then(|d| d.ports.get_mut(&port)).is_some_and(|c| std::mem::take(&mut c.pending))
    }

    /// Runs simulated daemons, then reports whether any of our ports is
    /// pending; if none, the clock advances by `timeout_ns`.
    fn wait(&mut self, timeout_ns: u64) -> bool {
        self.xen.progress();
        let any = self.xen.state.borrow().domains[&self.domid].ports.values().any(|c| c.pending);
        if !any {
            self.xen.advance_clock(timeout_ns);
        }
        any
    }
}
