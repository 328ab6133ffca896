//! The C glue shares a binary with the host's own C code: every symbol it
//! exports starts with `pim_`, so a host that defines C functions of the
//! article's names (`detect`, `init_python`, ...) links and runs beside it.

use std::process::Command;

use py_in_mem::Outliers;

/// Host functions named as the glue's functions once were. Before the glue's
/// exports took the `pim_` prefix, this test binary failed to link
/// ("multiple definition of `detect'").
macro_rules! host_functions {
    ($($name:ident => $value:expr),* $(,)?) => {
        $(
            #[doc = concat!("The host's own C function `", stringify!($name), "`.")]
            #[no_mangle]
            pub extern "C" fn $name() -> i32 {
                $value
            }
        )*
        /// Each host function, called through its C symbol, with what it returns.
        fn host_results() -> Vec<(&'static str, i32)> {
            vec![$((stringify!($name), $name())),*]
        }
    };
}

host_functions! {
    detect => 1,
    init_python => 2,
    array_copy => 3,
    call_function => 4,
    load_func => 5,
    load_source => 6,
    borrow_array => 7,
    borrow_release => 8,
    own_array => 9,
    describe_array => 10,
    py_last_error => 11,
    py_decref => 12,
    add_sys_path => 13,
    npy_typenum => 14,
}

#[test]
fn a_host_with_c_functions_of_the_old_names_links_and_runs() {
    let results = host_results();
    for (k, (name, value)) in results.iter().enumerate() {
        assert_eq!(
            *value,
            k as i32 + 1,
            "the host's {name} was not the one called"
        );
    }
    let outliers = Outliers::new("outliers", "detect").unwrap();
    let mut data = vec![0.5; 64];
    data[5] = 90.0;
    assert_eq!(outliers.detect(&data).unwrap(), [5]);
}

#[test]
fn every_symbol_the_glue_defines_starts_with_pim() {
    let archive = std::path::Path::new(env!("OUT_DIR")).join("libpy_in_mem_glue.a");
    let output = Command::new("nm")
        .args(["--defined-only", "--extern-only", "--format=posix"])
        .arg(&archive)
        .output()
        .expect("run nm (binutils)");
    assert!(
        output.status.success(),
        "nm {}: {:?}",
        archive.display(),
        output
    );
    let listing = String::from_utf8(output.stdout).unwrap();
    // "name type value size", one a line; member headers end with ':'.
    let symbols: Vec<&str> = listing
        .lines()
        .filter(|line| !line.trim_end().ends_with(':') && !line.is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert!(
        [
            "pim_call_one",
            "pim_borrow_release",
            "pim_raise_deadline",
            "pim_clear_deadline"
        ]
        .iter()
        .all(|name| symbols.contains(name)),
        "nm listed {symbols:?}"
    );
    let foreign: Vec<&&str> = symbols.iter().filter(|s| !s.starts_with("pim_")).collect();
    assert!(
        foreign.is_empty(),
        "exported without the pim_ prefix: {foreign:?}"
    );
}
