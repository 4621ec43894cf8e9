//! Runs one input file through one target's check (what libFuzzer's
//! binary does, without libFuzzer): `cargo run -p fuzz-checks --example
//! replay_one -- TARGET FILE`.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, target, file] = &args[..] else {
        eprintln!("usage: replay_one TARGET FILE");
        std::process::exit(2);
    };
    let (_, check) = fuzz_checks::TARGETS.iter().find(|(t, _)| t == target).expect("no such target");
    check(&std::fs::read(file).expect("read the input"));
    eprintln!("{target}: {file}: ok");
}
