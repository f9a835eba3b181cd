//! With the `ebpf` feature, compiles `bpf/connect.bpf.c` (the connect-time caller
//! records) with clang into `$OUT_DIR/connect.bpf.o`, which `src/ebpf/imp.rs` embeds.
//! Without the feature nothing is built and clang is not needed.

use std::path::PathBuf;
use std::process::{exit, Command};

fn main() {
    println!("cargo:rerun-if-changed=bpf/connect.bpf.c");
    println!("cargo:rerun-if-env-changed=CLANG");
    if std::env::var_os("CARGO_FEATURE_EBPF").is_none() {
        return;
    }
    let Some(out) = std::env::var_os("OUT_DIR").map(|d| PathBuf::from(d).join("connect.bpf.o"))
    else {
        eprintln!("OUT_DIR is not set");
        exit(1);
    };
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".into());
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".into());
    // <linux/bpf.h> includes <asm/types.h>, which Debian keeps under the multiarch directory.
    let multiarch = format!("/usr/include/{arch}-linux-gnu");
    let status = Command::new(&clang)
        .args([
            "-O2",
            "-g",
            "-target",
            "bpf",
            "-Wall",
            "-Werror",
            "-I",
            &multiarch,
            "-c",
            "bpf/connect.bpf.c",
            "-o",
        ])
        .arg(&out)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => {
            eprintln!("clang failed ({s}) compiling crates/sys/bpf/connect.bpf.c; it needs the kernel headers (apt install linux-libc-dev)");
            exit(1);
        }
        Err(e) => {
            eprintln!(
                "the `ebpf` feature compiles crates/sys/bpf/connect.bpf.c with `{clang}` ({e}): install clang \
                 (apt install clang) or set CLANG, or build without `--features ebpf`"
            );
            exit(1);
        }
    }
}
