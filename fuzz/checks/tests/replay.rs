//! Replays every committed input through its target's check, without
//! libFuzzer: `fuzz/seeds/<target>/` (hand-made valid examples),
//! `fuzz/corpus/<target>/` (the minimised corpora of the fuzz runs) and
//! `fuzz/regressions/<target>/` (inputs that once crashed a target). A
//! crash found later becomes a regression test by copying its file into
//! `fuzz/regressions/<target>/`.
//!
//! A regression input whose bug is known and not fixed yet is listed in
//! [`KNOWN_BUGS`] with the reason: it is skipped (and reported on stderr)
//! so `cargo test` stays green, until the fix lands and the entry goes.

use std::path::{Path, PathBuf};

/// `(target, file name, why)` of regression inputs that still crash.
const KNOWN_BUGS: &[(&str, &str, &str)] = &[];

fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for dir in ["seeds", "corpus", "regressions"] {
        let Ok(rd) = std::fs::read_dir(fuzz.join(dir).join(target)) else { continue };
        let mut these: Vec<PathBuf> = rd.map(|e| e.expect("dir entry").path()).filter(|p| p.is_file()).collect();
        these.sort();
        files.extend(these);
    }
    files
}

fn replay(target: &str) {
    let (_, check) = fuzz_checks::TARGETS.iter().find(|(t, _)| *t == target).expect("a target of that name");
    let files = inputs(target);
    for f in &files {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if let Some((_, _, why)) = KNOWN_BUGS.iter().find(|(t, n, _)| *t == target && *n == name) {
            eprintln!("replay {target}: SKIPPED {} (known bug: {why})", f.display());
            continue;
        }
        let data = std::fs::read(f).expect("read input");
        // Named in the output, so a failure says which file it was.
        eprintln!("replay {target}: {}", f.display());
        check(&data);
    }
    eprintln!("replay {target}: {} inputs", files.len());
}

/// Every target is replayed by a test of its own (below).
#[test]
fn every_target_has_a_replay_test() {
    let tests = ["channel_ring", "netif_responses", "xenstore_replies", "offers_adverts_peers", "discoveryd_store"];
    let names: Vec<&str> = fuzz_checks::TARGETS.iter().map(|(t, _)| *t).collect();
    assert_eq!(names, tests);
}

/// A few thousand deterministic pseudo-random inputs per target: a quick
/// smoke test that the checks hold on garbage too (the fuzz runs do the
/// real work).
#[test]
fn pseudo_random_inputs() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for (target, check) in fuzz_checks::TARGETS {
        for n in 0..500 {
            let len = (next() % 600) as usize;
            let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = n;
            let _ = target;
            check(&data);
        }
    }
}

#[test]
fn channel_ring() {
    replay("channel_ring");
}

#[test]
fn netif_responses() {
    replay("netif_responses");
}

#[test]
fn xenstore_replies() {
    replay("xenstore_replies");
}

#[test]
fn offers_adverts_peers() {
    replay("offers_adverts_peers");
}

#[test]
fn discoveryd_store() {
    replay("discoveryd_store");
}
