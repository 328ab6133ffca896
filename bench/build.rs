//! Makes the bench load the libpython py-in-mem was built against (and tells
//! it which one that is, so it can check), and generates the gRPC client from
//! `proto/outliers.proto` with a vendored protoc (no download, no system
//! protoc).

fn main() {
    // Set by py-in-mem's build script (`links = "py_in_mem_glue"`).
    if let Ok(dir) = std::env::var("DEP_PY_IN_MEM_GLUE_LIBDIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        // For the report's check of which libpython the binary maps.
        println!("cargo:rustc-env=PIM_BENCH_LIBPYTHON_DIR={dir}");
    }
    println!("cargo:rerun-if-changed=proto/outliers.proto");
    let protoc = protoc_bin_vendored::protoc_bin_path()
        .expect("protoc-bin-vendored has no protoc for this platform");
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);
    tonic_prost_build::configure()
        .build_server(false)
        .compile_with_config(config, &["proto/outliers.proto"], &["proto"])
        .expect("compiling proto/outliers.proto");
}
