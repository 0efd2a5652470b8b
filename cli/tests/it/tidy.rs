//! Repository rules that code review would otherwise have to remember.

use std::path::{Path, PathBuf};

fn rust_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every module states its boundary in a `//!` line, so the layout explains itself.
#[test]
fn every_module_opens_with_a_doc_comment() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for krate in ["transports", "daemon", "cli", "relay"] {
        rust_sources(&root.join(krate).join("src"), &mut files);
    }
    rust_sources(&root.join("web/embed"), &mut files);
    assert!(files.len() > 20, "found the sources");
    let undocumented: Vec<String> = files
        .iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            !text.trim_start().starts_with("//!")
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        undocumented.is_empty(),
        "modules without a //! doc: {undocumented:?}"
    );
}

/// docs/architecture.md names every source module, so it cannot silently drift.
#[test]
fn architecture_doc_names_every_module() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let doc =
        std::fs::read_to_string(root.join("docs/architecture.md")).expect("docs/architecture.md");
    let mut files = Vec::new();
    for krate in ["transports", "daemon", "cli", "relay"] {
        rust_sources(&root.join(krate).join("src"), &mut files);
    }
    rust_sources(&root.join("web/embed"), &mut files);
    let missing: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let stem = path.file_stem()?.to_str()?;
            let name = if stem == "mod" {
                path.parent()?.file_name()?.to_str()?
            } else {
                stem
            };
            (!["lib", "main"].contains(&name) && !doc.contains(&format!("`{name}")))
                .then(|| path.display().to_string())
        })
        .collect();
    assert!(
        missing.is_empty(),
        "modules docs/architecture.md does not mention: {missing:?}"
    );
}
