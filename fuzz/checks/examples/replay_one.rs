//! Runs input files (or every file of a directory) through one target's
//! check, as libFuzzer's binary would but without libFuzzer:
//! `cargo run -p fuzz-checks --example replay_one -- TARGET FILE|DIR...`.
use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, target, paths @ ..] = &args[..] else {
        eprintln!("usage: replay_one TARGET FILE|DIR...");
        std::process::exit(2);
    };
    let (_, check) = fuzz_checks::TARGETS.iter().find(|(t, _)| t == target).expect("no such target");
    let mut files: Vec<PathBuf> = Vec::new();
    for p in paths {
        let p = PathBuf::from(p);
        match std::fs::read_dir(&p) {
            Ok(rd) => files.extend(rd.map(|e| e.expect("dir entry").path())),
            Err(_) => files.push(p),
        }
    }
    files.sort();
    for f in &files {
        eprintln!("{target}: {}", f.display());
        check(&std::fs::read(f).expect("read the input"));
    }
    eprintln!("{target}: {} inputs ok", files.len());
}
