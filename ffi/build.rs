//! Generates the C header with cbindgen: always into `$OUT_DIR/cmqtt.h` (a unit test compares it
//! with the committed `include/cmqtt.h`, so a stale header fails `cargo test`), and into
//! `include/cmqtt.h` itself when `CMQTT_REGENERATE_HEADER=1` is set:
//!
//! ```sh
//! CMQTT_REGENERATE_HEADER=1 cargo build -p cmqtt-ffi
//! ```

use std::path::PathBuf;

fn main() {
    let crate_dir =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CMQTT_REGENERATE_HEADER");

    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("ffi/cbindgen.toml");
    // Parse the sources only (no `cargo metadata` from inside a build): the C API is this
    // crate's own items.
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen could not generate include/cmqtt.h");
    bindings.write_to_file(out_dir.join("cmqtt.h"));
    if std::env::var_os("CMQTT_REGENERATE_HEADER").is_some_and(|v| v == "1") {
        bindings.write_to_file(crate_dir.join("../include/cmqtt.h"));
    }
}
