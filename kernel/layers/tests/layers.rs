//! The kernel's layers (README, "The kernel's layers"): each module of
//! kernel/cohort/src uses only modules of its own layer or of layers below
//! it, and the modules of one layer do not use each other in a cycle.
//! main.rs alone wires the layers together (hooks, callbacks, devices).

use layers::{macros_defined, module_path, references, Edge};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lowest first. A new top-level module must be placed here.
const LAYERS: &[(&str, &[&str])] = &[
    ("arch and rt", &["arch", "rt"]),
    // bootinfo copies hvm_start_info; pci is the configuration space the
    // platform's devices are found in.
    ("memory, console, clock, fault", &["memory", "console", "clock", "fault", "bootinfo", "pci"]),
    ("platform and timer", &["platform", "timer"]),
    ("net", &["net"]),
    ("bench and testing", &["bench", "testing"]),
    ("main.rs", &["main"]),
];

const SRC: &str = "kernel/cohort/src";

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../cohort/src")
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, modules)| modules.contains(&module))
}

fn describe(module: &str) -> String {
    match layer_of(module) {
        Some(n) => format!("{module} (layer {}: {})", n + 1, LAYERS[n].0),
        None => format!("{module} (no layer)"),
    }
}

struct File {
    /// Relative to the source folder, with `/`.
    rel: String,
    text: String,
}

impl File {
    fn module(&self) -> String {
        module_path(&self.rel).into_iter().next().unwrap_or_else(|| "main".into())
    }

    fn line(&self, n: usize) -> &str {
        self.text.lines().nth(n - 1).unwrap_or("").trim()
    }
}

fn collect(dir: &Path, base: &Path, out: &mut Vec<File>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).expect("reading the kernel's sources").map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(&path, base, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(base).unwrap().to_string_lossy().replace('\\', "/");
            out.push(File { text: std::fs::read_to_string(&path).unwrap(), rel });
        }
    }
}

/// Every file and every reference it makes to another top-level module.
fn graph() -> Vec<(File, Vec<Edge>)> {
    let base = src_dir();
    let mut files = Vec::new();
    collect(&base, &base, &mut files);
    assert!(files.iter().any(|f| f.rel == "main.rs"), "no main.rs under {}", base.display());
    let modules: Vec<String> =
        files.iter().map(File::module).filter(|m| m != "main").collect::<BTreeSet<_>>().into_iter().collect();
    let macros: BTreeMap<String, String> =
        files.iter().flat_map(|f| macros_defined(&f.text).into_iter().map(move |name| (name, f.module()))).collect();
    files
        .into_iter()
        .map(|f| {
            let mut edges = references(&f.rel, &f.text, &modules, &macros);
            edges.dedup();
            (f, edges)
        })
        .collect()
}

#[test]
fn every_module_has_a_layer() {
    let unplaced: BTreeSet<String> = graph().iter().map(|(f, _)| f.module()).filter(|m| layer_of(m).is_none()).collect();
    assert!(unplaced.is_empty(), "modules of {SRC} missing from the layer table in {}: {unplaced:?}", file!());
}

#[test]
fn no_use_of_a_higher_layer() {
    let mut violations = Vec::new();
    for (file, edges) in &graph() {
        let from = file.module();
        for edge in edges {
            if let (Some(a), Some(b)) = (layer_of(&from), layer_of(&edge.to)) {
                if b > a {
                    violations.push(format!(
                        "{SRC}/{}:{}: {} -> {}\n    {}",
                        file.rel,
                        edge.line,
                        describe(&from),
                        describe(&edge.to),
                        file.line(edge.line)
                    ));
                }
            }
        }
    }
    for v in &violations {
        println!("{v}");
    }
    assert!(violations.is_empty(), "{} uses of a higher layer (listed above)", violations.len());
}

/// Modules of one layer may use each other, in one direction only.
#[test]
fn no_cycle_between_modules() {
    let graph = graph();
    let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, edges) in &graph {
        for edge in edges {
            uses.entry(file.module()).or_default().insert(edge.to.clone());
        }
    }
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(m) = todo.pop() {
            for next in uses.get(&m).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let mut cycles: BTreeSet<BTreeSet<String>> = BTreeSet::new();
    for module in uses.keys() {
        let from_here = reach(module);
        if from_here.contains(module) {
            cycles.insert(from_here.into_iter().filter(|m| reach(m).contains(module)).collect());
        }
    }
    for cycle in &cycles {
        println!("cycle between {cycle:?}:");
        for (file, edges) in &graph {
            for edge in edges.iter().filter(|e| cycle.contains(&file.module()) && cycle.contains(&e.to)) {
                println!("  {SRC}/{}:{}: {} -> {}", file.rel, edge.line, file.module(), edge.to);
            }
        }
    }
    assert!(cycles.is_empty(), "{} cycles between the kernel's modules (listed above)", cycles.len());
}
