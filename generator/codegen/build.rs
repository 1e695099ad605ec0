//! Gives the generator an identity for the fingerprints of its runs: a hash of its own sources
//! and the IR's, so that a run of a changed generator is never taken for an up-to-date one.

use std::path::Path;

/// FNV-1a, 64 bits: the same on every machine and toolchain.
fn fnv(hash: &mut u64, bytes: &[u8]) {
    for byte in bytes {
        *hash ^= u64::from(*byte);
        *hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let manifest = Path::new(&manifest);
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    // In a packaged crate the IR's folder is not beside this one; its version pins it then.
    for dir in [manifest.join("src"), manifest.join("../ir/src")] {
        println!("cargo::rerun-if-changed={}", dir.display());
        let mut files = Vec::new();
        sources(&dir, &mut files);
        files.sort();
        for file in files {
            let relative = file.strip_prefix(manifest).unwrap_or(&file);
            fnv(&mut hash, relative.to_string_lossy().as_bytes());
            fnv(&mut hash, &std::fs::read(&file).unwrap_or_default());
        }
    }
    println!("cargo::rustc-env=PREFIQ_GENERATOR_SOURCES={hash:016x}");
}
