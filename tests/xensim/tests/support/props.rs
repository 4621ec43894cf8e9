//! proptest settings for the property tests of this kit.

use proptest::test_runner::{Config, FileFailurePersistence, RngAlgorithm};

/// `cases` cases from proptest's XorShift generator (in these unoptimised
/// test builds its default, ChaCha, costs ten times as much). A failing
/// case is shrunk and its seed saved beside the test file, in
/// `<test>.proptest-regressions`: commit that file, and the case is
/// replayed first from then on, here and in CI. (A test that drives a
/// `TestRunner` itself sets `source_file: Some(file!())`, which
/// `proptest!` does for its tests.)
///
/// Check with `assert!`, not `prop_assert!`, in a case that holds a `Sim`:
/// `prop_assert!` returns early, the `Sim` is dropped without a panic under
/// way, and its leak check then panics with the resources the case left
/// behind instead of the failure.
pub fn config(cases: u32) -> Config {
    Config {
        rng_algorithm: RngAlgorithm::XorShift,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..Config::with_cases(cases)
    }
}
