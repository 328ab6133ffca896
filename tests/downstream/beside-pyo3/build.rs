fn main() {
    // An rpath to the lib directory of the Python that pyo3-ffi (and so
    // py-in-mem) was built against: the binary loads that libpython, not
    // another of the same version on the system's library path.
    pyo3_build_config::add_libpython_rpath_link_args();
}
