//! Load the libpython py-in-mem was built against (its README, "Using the
//! crate from your own binary").
fn main() {
    if let Ok(dir) = std::env::var("DEP_PY_IN_MEM_GLUE_LIBDIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
