//! The properties Cohort's fuzz targets check, as plain functions over the
//! raw input bytes: `fuzz/targets` hands libFuzzer's inputs to them, and
//! `tests/replay.rs` replays the committed corpora and crash inputs through
//! them on every `cargo test` (no libFuzzer, no coverage flags needed).
//!
//! Each target decodes its bytes into a structured input with `arbitrary`
//! (the mapping libfuzzer-sys's `fuzz_target!(|x: T| ..)` uses,
//! `arbitrary_take_rest`), so a saved input replays identically here.

use arbitrary::{Arbitrary, Unstructured};

pub mod channel_ring;
pub mod discoveryd_store;
pub mod netif_responses;
pub mod offers_adverts_peers;
pub mod xenstore_replies;

pub use channel_ring::check as check_channel_ring;
pub use discoveryd_store::check as check_discoveryd_store;
pub use netif_responses::check as check_netif_responses;
pub use offers_adverts_peers::check as check_offers_adverts_peers;
pub use xenstore_replies::check as check_xenstore_replies;

/// A target's check: panics if a property does not hold.
pub type Check = fn(&[u8]);

/// Every target: its name (the libFuzzer binary and the corpus folders)
/// and its check.
pub const TARGETS: &[(&str, Check)] = &[
    ("channel_ring", check_channel_ring),
    ("netif_responses", check_netif_responses),
    ("xenstore_replies", check_xenstore_replies),
    ("offers_adverts_peers", check_offers_adverts_peers),
    ("discoveryd_store", check_discoveryd_store),
];

/// The structured value in `data`, decoded as libfuzzer-sys does; None
/// when the bytes are too few for it.
pub fn from_bytes<'a, T: Arbitrary<'a>>(data: &'a [u8]) -> Option<T> {
    T::arbitrary_take_rest(Unstructured::new(data)).ok()
}
