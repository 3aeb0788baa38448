//! Embeds every template of `templates/` (partials included) so that adding one is adding a
//! file: `$OUT_DIR/templates.rs` lists them as `(name, include_str!(path))`, sorted. A file's
//! name is its path under `templates/` without `.ts.hbs`/`.hbs`; partials drop `partials/`
//! (`templates/partials/access/insert.hbs` is the partial `access/insert`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = manifest.join("../templates");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &mut files);
    files.sort();
    let mut out = String::from("pub const TEMPLATES: &[(&str, &str)] = &[\n");
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        let relative = file
            .strip_prefix(&root)
            .expect("under templates/")
            .to_string_lossy()
            .replace('\\', "/");
        let name = relative
            .strip_suffix(".ts.hbs")
            .or_else(|| relative.strip_suffix(".hbs"))
            .expect("a .hbs file");
        let name = name.strip_prefix("partials/").unwrap_or(name);
        let absolute = file.canonicalize().expect("canonical path");
        writeln!(
            out,
            "    ({name:?}, include_str!({:?})),",
            absolute.to_string_lossy()
        )
        .expect("write to a String");
    }
    out.push_str("];\n");
    let target = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR")).join("templates.rs");
    fs::write(target, out).expect("write templates.rs");
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|error| panic!("{}: {error}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            println!("cargo:rerun-if-changed={}", path.display());
            collect(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "hbs") {
            out.push(path);
        }
    }
}
