//! Build facts for `rstream version`: the exact target triple (`RSTREAM_TARGET`). The git commit comes from the
//! environment of the build (`RSTREAM_GIT_COMMIT`, which `make` sets), read with `option_env!` in the source.
//! Nothing else happens at build time (no code generation).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=RSTREAM_TARGET={target}");
}
