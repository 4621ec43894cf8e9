//! Finds which top-level modules of a crate each source file refers to,
//! for the kernel's layer check (`tests/layers.rs`).
//!
//! It reads `crate::x::...` paths (in `use` items, grouped or not, and in
//! expressions and types), `$crate::x` in macros, `super::` paths that climb
//! to the crate root, and invocations of the crate's own `macro_rules!`
//! macros (`println!` is the console's). Comments, strings and character
//! literals are skipped, so a doc comment naming `crate::x` is no edge.
//! It is a tokenizer, not a Rust parser: enough for the kernel's code, and
//! tested below on what it must get right.

use std::collections::BTreeMap;

/// One reference from a file to a top-level module (or to the crate root,
/// `main`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    /// 1-based line of the reference.
    pub line: usize,
    /// The top-level module referred to; `main` for items of the crate root.
    pub to: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Punct(char),
}

/// Tokens with their lines; comments, literals and whitespace dropped.
fn tokenize(src: &str) -> Vec<(Tok, usize)> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    let count_lines = |from: usize, to: usize| chars[from..to].iter().filter(|&&c| c == '\n').count();
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let start = i;
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            line += count_lines(start, i.min(chars.len()));
        } else if c == '"' {
            let start = i;
            i = skip_quoted(&chars, i + 1);
            line += count_lines(start, i.min(chars.len()));
        } else if let Some(end) = raw_string_end(&chars, i) {
            line += count_lines(i, end);
            i = end;
        } else if c == '\'' {
            i = skip_char_or_lifetime(&chars, i);
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            // A byte or C string prefix belongs to the literal that follows.
            if matches!(word.as_str(), "b" | "c") && chars.get(i) == Some(&'"') {
                continue;
            }
            out.push((Tok::Ident(word), line));
        } else {
            out.push((Tok::Punct(c), line));
            i += 1;
        }
    }
    out
}

/// Past the closing quote of a string whose body starts at `i`.
fn skip_quoted(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// If a raw string (`r"…"`, `r#"…"#`, `br#"…"#`) starts at `i`: past its end.
fn raw_string_end(chars: &[char], i: usize) -> Option<usize> {
    // Not the tail of an identifier such as `for`.
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return None;
    }
    let mut j = i;
    if chars.get(j) == Some(&'b') || chars.get(j) == Some(&'c') {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = chars[j..].iter().take_while(|&&c| c == '#').count();
    j += hashes;
    if chars.get(j) != Some(&'"') {
        return None;
    }
    j += 1;
    while j < chars.len() {
        if chars[j] == '"' && chars[j + 1..].iter().take(hashes).filter(|&&c| c == '#').count() == hashes {
            return Some(j + 1 + hashes);
        }
        j += 1;
    }
    Some(j)
}

/// Past a character literal (`'x'`, `'\n'`, `'\u{b5}'`) or a lifetime
/// (`'a`) starting at `i`.
fn skip_char_or_lifetime(chars: &[char], i: usize) -> usize {
    match (chars.get(i + 1), chars.get(i + 2)) {
        (Some('\\'), _) => {
            let mut j = i + 2;
            while j < chars.len() && chars[j] != '\'' {
                j += 1;
            }
            j + 1
        }
        (Some(_), Some('\'')) => i + 3,
        // A lifetime: the quote alone; the name is read as an identifier.
        _ => i + 1,
    }
}

/// The module path of a file under the crate's source folder
/// (`platform/xen/time.rs` → `[platform, xen, time]`, `arch/mod.rs` →
/// `[arch]`, `main.rs` → `[]`).
pub fn module_path(rel: &str) -> Vec<String> {
    let rel = rel.strip_suffix(".rs").unwrap_or(rel);
    let mut parts: Vec<String> = rel.split('/').map(String::from).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "main" | "lib")) {
        parts.pop();
    }
    parts
}

/// The names of the `macro_rules!` macros a file defines.
pub fn macros_defined(src: &str) -> Vec<String> {
    let toks = tokenize(src);
    toks.windows(3)
        .filter_map(|w| match w {
            [(Tok::Ident(m), _), (Tok::Punct('!'), _), (Tok::Ident(name), _)] if m == "macro_rules" => Some(name.clone()),
            _ => None,
        })
        .collect()
}

fn is_path_sep(toks: &[(Tok, usize)], i: usize) -> bool {
    matches!((toks.get(i), toks.get(i + 1)), (Some((Tok::Punct(':'), _)), Some((Tok::Punct(':'), _))))
}

fn ident(toks: &[(Tok, usize)], i: usize) -> Option<&str> {
    match toks.get(i) {
        Some((Tok::Ident(s), _)) => Some(s),
        _ => None,
    }
}

/// The first segment of every item of a `{...}` group opening at `i`.
fn group_heads(toks: &[(Tok, usize)], i: usize) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut expect_head = true;
    for (tok, _) in &toks[i..] {
        match tok {
            Tok::Punct('{') => {
                depth += 1;
                if depth > 1 {
                    expect_head = false;
                }
            }
            Tok::Punct('}') => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            Tok::Punct(',') if depth == 1 => expect_head = true,
            Tok::Ident(name) if depth == 1 && expect_head => {
                heads.push(name.clone());
                expect_head = false;
            }
            _ => {}
        }
    }
    heads
}

/// Every reference in `src` (the file at `rel` under the source folder) to
/// a top-level module: `modules` are the crate's top-level modules,
/// `macros` maps each of the crate's macros to the module defining it.
/// Names after `crate::` that are neither are items of the crate root
/// (`main`). References within the file's own top-level module are left
/// out.
pub fn references(rel: &str, src: &str, modules: &[String], macros: &BTreeMap<String, String>) -> Vec<Edge> {
    let toks = tokenize(src);
    let file_path = module_path(rel);
    let own = file_path.first().cloned().unwrap_or_else(|| "main".into());
    let resolve = |name: &str| -> String {
        if modules.iter().any(|m| m == name) {
            name.to_string()
        } else if let Some(m) = macros.get(name) {
            m.clone()
        } else {
            "main".to_string()
        }
    };
    // Inline modules (`mod tests { ... }`) open at a brace depth.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut edges = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let (tok, line) = &toks[i];
        let after_sep = i >= 2 && is_path_sep(&toks, i - 2);
        match tok {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth = depth.saturating_sub(1);
                while inline.last().is_some_and(|(_, d)| *d > depth) {
                    inline.pop();
                }
            }
            Tok::Ident(kw) if kw == "mod" => {
                if let (Some(name), Some((Tok::Punct('{'), _))) = (ident(&toks, i + 1), toks.get(i + 2)) {
                    inline.push((name.to_string(), depth + 1));
                }
            }
            // `crate::` (also `$crate::`), not `pub(crate)` or `extern crate`.
            Tok::Ident(kw) if kw == "crate" && !after_sep && is_path_sep(&toks, i + 1) => {
                edges.extend(heads_at(&toks, i + 3).into_iter().map(|name| Edge { line: *line, to: resolve(&name) }));
            }
            // `super::super::x`: an edge only when it climbs to the root.
            Tok::Ident(kw) if kw == "super" && !after_sep && is_path_sep(&toks, i + 1) => {
                let mut ups = 1;
                let mut j = i + 3;
                while ident(&toks, j) == Some("super") && is_path_sep(&toks, j + 1) {
                    ups += 1;
                    j += 3;
                }
                let here = file_path.len() + inline.len();
                if ups >= here {
                    edges.extend(heads_at(&toks, j).into_iter().map(|name| Edge { line: *line, to: resolve(&name) }));
                }
                i = j;
                continue;
            }
            // A bare invocation of one of the crate's macros.
            Tok::Ident(name) if !after_sep && matches!(toks.get(i + 1), Some((Tok::Punct('!'), _))) => {
                if let Some(module) = macros.get(name) {
                    edges.push(Edge { line: *line, to: module.clone() });
                }
            }
            _ => {}
        }
        i += 1;
    }
    edges.retain(|e| e.to != own);
    edges
}

/// The segment at `i` after `crate::`: one name, or the heads of a group.
fn heads_at(toks: &[(Tok, usize)], i: usize) -> Vec<String> {
    match toks.get(i) {
        Some((Tok::Ident(name), _)) => vec![name.clone()],
        Some((Tok::Punct('{'), _)) => group_heads(toks, i),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(rel: &str, src: &str) -> Vec<(usize, String)> {
        let modules: Vec<String> = ["arch", "clock", "console", "platform", "testing", "net"].map(String::from).to_vec();
        let macros = BTreeMap::from([("println".to_string(), "console".to_string())]);
        references(rel, src, &modules, &macros).into_iter().map(|e| (e.line, e.to)).collect()
    }

    #[test]
    fn module_paths_of_files() {
        assert_eq!(module_path("main.rs"), Vec::<String>::new());
        assert_eq!(module_path("arch/mod.rs"), ["arch"]);
        assert_eq!(module_path("platform/xen/time.rs"), ["platform", "xen", "time"]);
        assert_eq!(module_path("clock.rs"), ["clock"]);
    }

    #[test]
    fn use_items_plain_and_grouped() {
        let src = "use crate::clock::now_ns;\nuse crate::{console, platform::{exit, ExitStatus}};\nuse crate::arch::{self};\n";
        assert_eq!(
            refs("fault.rs", src),
            [(1, "clock".into()), (2, "console".into()), (2, "platform".into()), (3, "arch".into())]
        );
    }

    #[test]
    fn paths_in_code_macros_and_root_items() {
        let src = "fn f() {\n    crate::testing::on_fault(x);\n    crate::println!(\"a\");\n    println!(\"b\");\n    let v = crate::VERSION;\n}\n";
        assert_eq!(
            refs("fault.rs", src),
            [(2, "testing".into()), (3, "console".into()), (4, "console".into()), (5, "main".into())]
        );
    }

    #[test]
    fn dollar_crate_and_multi_line_use() {
        let src = "macro_rules! p { () => { $crate::console::print() } }\nuse crate::{\n    clock,\n    net::Stack,\n};\n";
        assert_eq!(refs("arch/cpu.rs", src), [(1, "console".into()), (2, "clock".into()), (2, "net".into())]);
    }

    #[test]
    fn comments_strings_and_chars_are_skipped() {
        let src = "//! see crate::net::app\n/* crate::testing:: /* nested */ crate::net */\nconst S: &str = \"crate::net::x \\\" crate::net\";\n\
                   const R: &str = r#\"crate::net \" crate::net\"#;\nconst C: char = '\"';\nfn f<'a>(x: &'a u8) { crate::clock::now_ns(); }\n";
        assert_eq!(refs("arch/mod.rs", src), [(6, "clock".into())]);
    }

    #[test]
    fn own_module_visibility_and_extern_crate_are_no_edges() {
        let src = "extern crate alloc;\npub(crate) fn f() {}\npub(super) fn g() {}\nuse crate::arch::cpu;\nuse self::x::y;\n";
        assert!(refs("arch/idt.rs", src).is_empty());
    }

    #[test]
    fn super_paths_resolve_from_the_file_and_inline_modules() {
        // platform/xen/time.rs is platform::xen::time: two supers reach
        // platform, three the root.
        let src = "use super::events;\nuse super::super::exit;\nfn f() { super::super::super::clock::now_ns(); }\n";
        assert_eq!(refs("platform/xen/time.rs", src), [(3, "clock".into())]);
        // Inside `mod tests { }` of clock.rs, `super::` is clock itself,
        // `super::super::` the root.
        let src = "mod tests {\n    use super::now_ns;\n    use super::super::net::Stack;\n}\nuse super::testing;\n";
        assert_eq!(refs("clock.rs", src), [(3, "net".into()), (5, "testing".into())]);
    }

    #[test]
    fn macro_definitions_are_found() {
        let src = "#[macro_export]\nmacro_rules! println { () => {} }\nmacro_rules! ensure { () => {} }\nfn println() {}\n";
        assert_eq!(macros_defined(src), ["println", "ensure"]);
        // Defining a macro is not using it.
        assert!(refs("arch/mod.rs", "macro_rules! println { () => {} }").is_empty());
    }
}
