//! The tree shows the stack: every module of `src/` and every file of
//! `csrc/` belongs to a layer (the tables below), imports only from its own
//! layer or those below, and no two modules that sit side by side (children
//! of one folder) import each other, directly or round a circle.
//!
//! Read from the sources, not the compiler: `crate::` and `super::` paths
//! outside comments in Rust; `#include "..."` and calls of a `pim_` function
//! defined in another file in C. A parent and its own children (a folder's
//! `mod.rs` re-exporting its files, a file using what its `mod.rs` holds)
//! are one module's inside, and not checked against each other.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The layers of `src/`, bottom up, by top-level module. A module may import
/// its own layer and those below it. `lib` is the crate root.
const RUST_LAYERS: &[(&str, u32)] = &[
    ("error", 0),
    ("raw", 0),
    ("runtime", 1),
    ("array", 2),
    ("object", 2),
    ("serve", 2),
    ("convert", 3),
    ("function", 4),
    ("scope", 4),
    ("outliers", 5),
    ("lib", 6),
];

/// The layers of `csrc/`, bottom up, by file stem (`x.c` and `x.h` are one
/// unit). `glue` is glue.h, the interface Rust calls.
const C_LAYERS: &[(&str, u32)] = &[
    ("glue", 0),
    ("internal", 0),
    ("errors", 1),
    ("layout", 1),
    ("deadline", 1),
    ("holds", 1),
    ("guards", 1),
    ("arrays", 2),
    ("call", 3),
    ("retention", 3),
    ("start", 4),
];

/// One import: where it is, and what it names.
#[derive(Clone, Debug)]
struct Import {
    file: String,
    line: usize,
    text: String,
}

/// A module's path in the crate (`["runtime", "gil"]`; empty for lib.rs).
type ModPath = Vec<String>;

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/runtime/gil.rs` → `["runtime", "gil"]`; `mod.rs` is its folder.
fn module_path(src: &Path, file: &Path) -> ModPath {
    let relative = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_owned());
    }
    parts
}

/// The code of each line, without its comment: `//` comments (doc comments
/// included) and `/* */` blocks, outside string and char literals (which
/// are kept).
fn strip_comments(source: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut in_block = 0u32;
    for line in source.lines() {
        let chars: Vec<char> = line.chars().collect();
        let mut code = String::new();
        let mut i = 0;
        let mut in_string = false;
        while i < chars.len() {
            let c = chars[i];
            let next = chars.get(i + 1).copied();
            if in_block > 0 {
                if c == '*' && next == Some('/') {
                    in_block -= 1;
                    i += 2;
                } else if c == '/' && next == Some('*') {
                    in_block += 1;
                    i += 2;
                } else {
                    i += 1;
                }
                continue;
            }
            if in_string {
                // Kept: an #include's file name is a string.
                code.push(c);
                if c == '\\' {
                    code.extend(next);
                    i += 2;
                    continue;
                }
                if c == '"' {
                    in_string = false;
                }
                i += 1;
                continue;
            }
            match (c, next) {
                ('/', Some('/')) => break,
                ('/', Some('*')) => {
                    in_block += 1;
                    i += 2;
                    continue;
                }
                ('"', _) => in_string = true,
                // A char literal ('"', '{'), not a lifetime: skip it whole.
                ('\'', _) if chars.get(i + 2) == Some(&'\'') => {
                    code.push_str("' '");
                    i += 3;
                    continue;
                }
                ('\'', Some('\\')) => {
                    let end = (i + 2..chars.len()).find(|&j| chars[j] == '\'');
                    code.push_str("' '");
                    i = end.map_or(chars.len(), |j| j + 1);
                    continue;
                }
                _ => {}
            }
            code.push(c);
            i += 1;
        }
        lines.push(code);
    }
    lines
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The module paths one `crate::...` or `super::...` path (starting at
/// `start` in `code`) names: a path, or each item of a `{...}` group.
fn paths_at(code: &[char], mut i: usize) -> Vec<Vec<String>> {
    let mut prefix = Vec::new();
    loop {
        while i < code.len() && code[i].is_whitespace() {
            i += 1;
        }
        if i < code.len() && code[i] == '{' {
            // A group: split at top-level commas, take each item's path.
            let mut depth = 0;
            let mut item = String::new();
            let mut items = Vec::new();
            while i < code.len() {
                let c = code[i];
                match c {
                    '{' => {
                        depth += 1;
                        if depth > 1 {
                            item.push(c);
                        }
                    }
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            items.push(std::mem::take(&mut item));
                            break;
                        }
                        item.push(c);
                    }
                    ',' if depth == 1 => items.push(std::mem::take(&mut item)),
                    _ => item.push(c),
                }
                i += 1;
            }
            return items
                .iter()
                .filter(|item| !item.trim().is_empty())
                .map(|item| {
                    let mut path = prefix.clone();
                    path.extend(
                        item.trim()
                            .split("::")
                            .map(|s| s.trim().chars().take_while(|&c| is_ident(c)).collect())
                            .take_while(|s: &String| !s.is_empty()),
                    );
                    path
                })
                .collect();
        }
        let word: String = code[i..].iter().take_while(|&&c| is_ident(c)).collect();
        if word.is_empty() {
            return vec![prefix];
        }
        i += word.len();
        prefix.push(word);
        if code.get(i) == Some(&':') && code.get(i + 1) == Some(&':') {
            i += 2;
        } else {
            return vec![prefix];
        }
    }
}

/// Every `crate::` and `super::` import of one Rust file, resolved to the
/// path it names from the crate root (not yet to a module).
fn rust_imports(module: &ModPath, file: &str, source: &str) -> Vec<(ModPath, Import)> {
    let lines = strip_comments(source);
    let mut out = Vec::new();
    // Inline modules (`mod tests {`) open at these brace depths: `super::`
    // inside one first leaves it.
    let mut inline_mods: Vec<i32> = Vec::new();
    let mut depth = 0i32;
    for (n, line) in lines.iter().enumerate() {
        let code: Vec<char> = line.chars().collect();
        let trimmed = line.trim_start();
        let opens_mod = {
            let rest = trimmed
                .strip_prefix("pub(crate) ")
                .or_else(|| trimmed.strip_prefix("pub(super) "))
                .or_else(|| trimmed.strip_prefix("pub "))
                .unwrap_or(trimmed);
            rest.starts_with("mod ") && rest.trim_end().ends_with('{')
        };
        let mut i = 0;
        while i < code.len() {
            let at = |word: &str| {
                code[i..].starts_with(&word.chars().collect::<Vec<_>>())
                    && (i == 0 || !(is_ident(code[i - 1]) || code[i - 1] == '$'))
            };
            let base = if at("crate::") {
                // `pub(in crate::x)` is a visibility, not an import.
                let before: String = code[..i].iter().collect();
                if before.trim_end().ends_with("(in") {
                    i += 1;
                    continue;
                }
                i += "crate::".len();
                Some(Vec::new())
            } else if at("super::") {
                let mut ups = 0;
                while code[i..].starts_with(&"super::".chars().collect::<Vec<_>>()) {
                    ups += 1;
                    i += "super::".len();
                }
                let ups = ups - inline_mods.len().min(ups);
                if ups == 0 {
                    None // within this file
                } else {
                    let keep = module.len().saturating_sub(ups);
                    Some(module[..keep].to_vec())
                }
            } else {
                i += 1;
                continue;
            };
            let found = paths_at(&code, i);
            if let Some(base) = base {
                for path in found {
                    let mut full = base.clone();
                    full.extend(path);
                    out.push((
                        full,
                        Import {
                            file: file.to_owned(),
                            line: n + 1,
                            text: line.trim().to_owned(),
                        },
                    ));
                }
            }
        }
        for c in &code {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    while inline_mods.last().is_some_and(|&d| d > depth) {
                        inline_mods.pop();
                    }
                }
                _ => {}
            }
        }
        if opens_mod {
            inline_mods.push(depth);
        }
    }
    out
}

/// The longest prefix of `path` that is a module of the crate.
fn resolve(modules: &BTreeSet<ModPath>, path: &[String]) -> ModPath {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| modules.contains(p))
        .unwrap_or_default()
}

/// A directed graph of sibling units under one parent, with an example
/// import per edge; returns one circle if there is any.
fn find_cycle(edges: &BTreeMap<(String, String), Import>) -> Option<Vec<(String, Import)>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in edges.keys() {
        next.entry(a).or_default().push(b);
    }
    fn visit<'a>(
        node: &'a str,
        next: &BTreeMap<&'a str, Vec<&'a str>>,
        state: &mut BTreeMap<&'a str, u8>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<&'a str>> {
        state.insert(node, 1);
        stack.push(node);
        for &to in next.get(node).into_iter().flatten() {
            match state.get(to) {
                Some(1) => {
                    let start = stack.iter().position(|&n| n == to).unwrap();
                    let mut circle = stack[start..].to_vec();
                    circle.push(to);
                    return Some(circle);
                }
                Some(_) => {}
                None => {
                    if let Some(circle) = visit(to, next, state, stack) {
                        return Some(circle);
                    }
                }
            }
        }
        stack.pop();
        state.insert(node, 2);
        None
    }
    let mut state = BTreeMap::new();
    for &node in next.keys() {
        if !state.contains_key(node) {
            if let Some(circle) = visit(node, &next, &mut state, &mut Vec::new()) {
                return Some(
                    circle
                        .windows(2)
                        .map(|w| {
                            let import = edges[&(w[0].to_owned(), w[1].to_owned())].clone();
                            (w[0].to_owned(), import)
                        })
                        .collect(),
                );
            }
        }
    }
    None
}

fn describe_cycle(kind: &str, circle: &[(String, Import)]) -> String {
    let mut text = format!("an import circle among {kind}:");
    for (from, import) in circle {
        text.push_str(&format!(
            "\n  {from}: {}:{}: {}",
            import.file, import.line, import.text
        ));
    }
    text
}

fn layer_of(table: &[(&str, u32)], name: &str) -> Option<u32> {
    table.iter().find(|(n, _)| *n == name).map(|&(_, l)| l)
}

/// The problems in `src/`: imports of a higher layer, modules in no layer,
/// circles among siblings.
fn rust_problems(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let modules: BTreeSet<ModPath> = files.iter().map(|f| module_path(src, f)).collect();
    let mut problems = Vec::new();
    // Per parent module: edges between its children.
    let mut siblings: BTreeMap<ModPath, BTreeMap<(String, String), Import>> = BTreeMap::new();
    for file in &files {
        let module = module_path(src, file);
        let name = file
            .strip_prefix(src.parent().unwrap())
            .unwrap()
            .display()
            .to_string();
        let top = module.first().map_or("lib", String::as_str);
        let Some(layer) = layer_of(RUST_LAYERS, top) else {
            problems.push(format!(
                "{name}: module `{top}` is in no layer: add it to RUST_LAYERS in tests/layers.rs"
            ));
            continue;
        };
        let source = fs::read_to_string(file).unwrap();
        for (path, import) in rust_imports(&module, &name, &source) {
            let target = resolve(&modules, &path);
            let target_top = target.first().map_or("lib", String::as_str);
            match layer_of(RUST_LAYERS, target_top) {
                Some(l) if l > layer => problems.push(format!(
                    "{}:{}: `{}` (layer {layer}) imports `{}` (layer {l}, above it): {}",
                    import.file,
                    import.line,
                    module.join("::"),
                    target.join("::"),
                    import.text
                )),
                _ => {}
            }
            // Ancestors and descendants are one module's inside.
            let common = module
                .iter()
                .zip(&target)
                .take_while(|(a, b)| a == b)
                .count();
            if common == module.len() || common == target.len() {
                continue;
            }
            siblings
                .entry(module[..common].to_vec())
                .or_default()
                .entry((module[common].clone(), target[common].clone()))
                .or_insert(import);
        }
    }
    for (parent, edges) in &siblings {
        if let Some(circle) = find_cycle(edges) {
            let kind = if parent.is_empty() {
                "the crate's top-level modules".to_owned()
            } else {
                format!("the modules of `{}`", parent.join("::"))
            };
            problems.push(describe_cycle(&kind, &circle));
        }
    }
    problems
}

/// The problems in `csrc/`: a file including or calling into a higher
/// layer, files in no layer, circles.
fn c_problems(csrc: &Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = fs::read_dir(csrc)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "c" || e == "h"))
        .collect();
    files.sort();
    let unit = |p: &Path| p.file_stem().unwrap().to_string_lossy().into_owned();
    let code: Vec<(PathBuf, Vec<String>)> = files
        .iter()
        .map(|f| (f.clone(), strip_comments(&fs::read_to_string(f).unwrap())))
        .collect();
    // Where each exported or shared function is defined: a line at column
    // 0 naming `pim_x(` that is not a declaration.
    let mut defined: BTreeMap<String, String> = BTreeMap::new();
    let pim_names = |line: &str| -> Vec<(usize, String)> {
        let chars: Vec<char> = line.chars().collect();
        let mut found = Vec::new();
        let mut i = 0;
        while i + 4 <= chars.len() {
            if chars[i..].starts_with(&['p', 'i', 'm', '_']) && (i == 0 || !is_ident(chars[i - 1]))
            {
                let name: String = chars[i..].iter().take_while(|&&c| is_ident(c)).collect();
                let after = i + name.len();
                if chars.get(after) == Some(&'(') {
                    found.push((i, name.clone()));
                }
                i = after;
            } else {
                i += 1;
            }
        }
        found
    };
    for (file, lines) in &code {
        if file.extension().is_some_and(|e| e == "c") {
            for line in lines {
                let starts_at_0 = !line.starts_with(char::is_whitespace) && !line.starts_with('#');
                if starts_at_0 && !line.trim_end().ends_with(';') {
                    for (_, name) in pim_names(line) {
                        defined.entry(name).or_insert_with(|| unit(file));
                    }
                }
            }
        }
    }
    let mut problems = Vec::new();
    let mut edges: BTreeMap<(String, String), Import> = BTreeMap::new();
    for (file, lines) in &code {
        let from = unit(file);
        let name = format!("csrc/{}", file.file_name().unwrap().to_string_lossy());
        let Some(layer) = layer_of(C_LAYERS, &from) else {
            problems.push(format!(
                "{name}: `{from}` is in no layer: add it to C_LAYERS in tests/layers.rs"
            ));
            continue;
        };
        for (n, line) in lines.iter().enumerate() {
            let mut targets = Vec::new();
            if let Some(rest) = line.trim_start().strip_prefix("#include \"") {
                let header = rest.split('"').next().unwrap_or_default();
                targets.push(unit(Path::new(header)));
            } else if file.extension().is_some_and(|e| e == "c") {
                for (_, called) in pim_names(line) {
                    if let Some(owner) = defined.get(&called) {
                        targets.push(owner.clone());
                    }
                }
            }
            for to in targets {
                if to == from {
                    continue;
                }
                let import = Import {
                    file: name.clone(),
                    line: n + 1,
                    text: line.trim().to_owned(),
                };
                match layer_of(C_LAYERS, &to) {
                    Some(l) if l > layer => problems.push(format!(
                        "{}:{}: `{from}` (layer {layer}) uses `{to}` (layer {l}, above it): {}",
                        import.file, import.line, import.text
                    )),
                    None => problems.push(format!(
                        "{}:{}: `{to}` is in no layer: {}",
                        import.file, import.line, import.text
                    )),
                    _ => {}
                }
                edges.entry((from.clone(), to)).or_insert(import);
            }
        }
    }
    if let Some(circle) = find_cycle(&edges) {
        problems.push(describe_cycle("the files of csrc/", &circle));
    }
    problems
}

#[test]
fn src_modules_import_only_their_own_layer_and_below_without_circles() {
    let problems = rust_problems(&manifest_dir().join("src"));
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn csrc_files_use_only_their_own_layer_and_below_without_circles() {
    let problems = c_problems(&manifest_dir().join("csrc"));
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

/// The checks see what they must: a fixture with an upward import and a
/// circle fails both ways.
#[test]
fn the_checks_catch_an_upward_import_and_a_circle() {
    let dir = std::env::temp_dir().join(format!("pim_layers_{}", std::process::id()));
    let src = dir.join("src");
    fs::create_dir_all(src.join("runtime")).unwrap();
    fs::write(src.join("lib.rs"), "mod runtime;\nmod scope;\n").unwrap();
    fs::write(
        src.join("runtime/mod.rs"),
        "mod a;\nmod b;\n// use crate::scope::X; (a comment, not an import)\n",
    )
    .unwrap();
    fs::write(
        src.join("runtime/a.rs"),
        "use super::b::B;\npub struct A;\n",
    )
    .unwrap();
    fs::write(
        src.join("runtime/b.rs"),
        "use crate::runtime::a::A;\nuse crate::{error, scope::Lent};\n",
    )
    .unwrap();
    fs::write(src.join("scope.rs"), "pub struct Lent;\n").unwrap();
    fs::write(src.join("error.rs"), "").unwrap();
    let problems = rust_problems(&src).join("\n");
    assert!(
        problems.contains("src/runtime/b.rs:2: `runtime::b` (layer 1) imports `scope`"),
        "{problems}"
    );
    assert!(
        problems.contains("an import circle among the modules of `runtime`"),
        "{problems}"
    );
    assert_eq!(problems.matches("imports `scope`").count(), 1, "{problems}");

    let csrc = dir.join("csrc");
    fs::create_dir_all(&csrc).unwrap();
    fs::write(csrc.join("arrays.c"), "#include \"start.h\"\n").unwrap();
    fs::write(csrc.join("start.h"), "").unwrap();
    fs::write(
        csrc.join("errors.c"),
        "int pim_e(void) {\n    return pim_c();\n}\n",
    )
    .unwrap();
    fs::write(
        csrc.join("call.c"),
        "int pim_c(void) {\n    return pim_e();\n}\n",
    )
    .unwrap();
    let problems = c_problems(&csrc).join("\n");
    assert!(
        problems.contains("csrc/arrays.c:1: `arrays` (layer 2) uses `start`"),
        "{problems}"
    );
    assert!(
        problems.contains("csrc/errors.c:2: `errors` (layer 1) uses `call`"),
        "{problems}"
    );
    assert!(
        problems.contains("an import circle among the files of csrc/"),
        "{problems}"
    );
    fs::remove_dir_all(&dir).unwrap();
}
