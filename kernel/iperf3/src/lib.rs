//! iperf3, the network measurement tool, as seen from the wire: the control
//! protocol of iperf3 3.12 (esnet/iperf) as sans-IO state machines, for
//! Cohort's `app=iperf3` server and `app=iperf3-client`.
//!
//! Nothing here touches a socket or a clock. The kernel's smoltcp loop feeds
//! received bytes and datagrams in, takes bytes and datagrams to send out,
//! and passes the time (µs on any monotonic clock) to every call.
//!
//! * [`proto`]: states, error codes, cookie, limits.
//! * [`framing`]: the control-connection reader (cookie, state byte,
//!   length-prefixed JSON, SERVER_ERROR codes).
//! * [`json`]: the parameters and results documents.
//! * [`stats`]: per-stream counters, UDP header, jitter and loss, pacing.
//! * [`server`]: the server ([`Server`]).
//! * [`client`]: the client ([`Client`]).
//!
//! Everything the peer sends is bounded and checked: a malformed, oversized
//! or out-of-place message ends the test with a SERVER_ERROR the iperf3
//! client prints, and the server is ready for the next client.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod client;
pub mod framing;
pub mod json;
pub mod proto;
pub mod server;
pub mod stats;

pub use client::{Client, ClientAction, ClientConfig, ClientFailure, ClientPhase, Report};
pub use json::{Params, Protocol, Results};
pub use server::{Accept, Action, Event, Failure, Phase, Role, Server, ServerConfig};
pub use stats::Micros;
