//! Shared helper for the layout tests: compiles a C probe against Xen's public headers
//! (Debian's `libxen-dev`, under `/usr/include/xen`) and returns the values it prints.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

/// Directory holding Xen's public headers; `XEN_INCLUDE` overrides the Debian default.
pub fn xen_include_dir() -> PathBuf {
    std::env::var_os("XEN_INCLUDE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/include"))
}

/// Compiles and runs a C program that includes `headers` (e.g. `"xen/xen.h"`) and prints each
/// `(name, C integer expression)` as `name=value`; returns the map name -> value.
///
/// Panics with a clear message if the headers or the C compiler are missing: the layout proof
/// is a required test, so a machine without `libxen-dev` must fail it, not skip it.
pub fn c_values(probe_name: &str, headers: &[&str], exprs: &[(&str, &str)]) -> BTreeMap<String, u64> {
    c_values_with_defines(probe_name, &[], headers, exprs)
}

/// As [`c_values`], with `defines` (e.g. `__XEN_TOOLS__` for tools-only headers such as
/// `domctl.h`) defined before the headers are included.
pub fn c_values_with_defines(
    probe_name: &str,
    defines: &[&str],
    headers: &[&str],
    exprs: &[(&str, &str)],
) -> BTreeMap<String, u64> {
    let inc = xen_include_dir();
    assert!(
        inc.join("xen/xen.h").exists(),
        "Xen public headers not found under {} (install Debian's libxen-dev: ./run.sh does it)",
        inc.display()
    );
    let mut src = String::from("#include <stdio.h>\n#include <stddef.h>\n#include <stdint.h>\n");
    src.push_str("#define __XEN_INTERFACE_VERSION__ 0x00040d00\n");
    for d in defines {
        src.push_str(&format!("#define {d} 1\n"));
    }
    for h in headers {
        src.push_str(&format!("#include <{h}>\n"));
    }
    src.push_str("int main(void) {\n");
    for (name, expr) in exprs {
        src.push_str(&format!("  printf(\"%s=%llu\\n\", \"{name}\", (unsigned long long)({expr}));\n"));
    }
    src.push_str("  return 0;\n}\n");

    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("layout-{probe_name}"));
    std::fs::create_dir_all(&dir).unwrap();
    let c_file = dir.join("probe.c");
    let exe = dir.join("probe");
    std::fs::write(&c_file, &src).unwrap();
    let out = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .arg("-I")
        .arg(&inc)
        .arg("-o")
        .arg(&exe)
        .arg(&c_file)
        .output()
        .expect("running the C compiler (cc) for the layout probe");
    assert!(
        out.status.success(),
        "layout probe failed to compile:\n{}\nsource:\n{src}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&exe).output().expect("running the layout probe");
    assert!(run.status.success());
    String::from_utf8(run.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

/// Asserts that every `(name, rust_value)` equals the C value of the same name, reporting all
/// mismatches at once.
pub fn assert_all_equal(c: &BTreeMap<String, u64>, rust: &[(&str, u64)]) {
    let mut bad = Vec::new();
    for (name, rv) in rust {
        match c.get(*name) {
            Some(cv) if cv == rv => {}
            Some(cv) => bad.push(format!("{name}: Rust {rv} != C {cv}")),
            None => bad.push(format!("{name}: no C value")),
        }
    }
    assert!(bad.is_empty(), "layout mismatches against Xen's headers:\n{}", bad.join("\n"));
}
