//! The crate as `cargo package` makes it (what crates.io would serve),
//! unpacked under target/. Included by the tests that build against it with
//! `#[path = "common/package.rs"] mod package;`.
#![allow(dead_code)] // each test uses a different part

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The checkout this test was built from.
pub fn checkout() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Variables of the running `cargo test` (or of an outer make) that a nested
/// cargo must not inherit: its own target directory, interpreter choice and
/// jobserver come from the command the test builds.
pub const OUTER_ENV: [&str; 13] = [
    "PYO3_PYTHON",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
    "LD_LIBRARY_PATH",
    "PYTHONPATH",
    "PYTHONHOME",
    "PY_IN_MEM_PYTHON",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "DOCS_RS",
    "MAKEFLAGS",
    "MFLAGS",
    "CARGO_MAKEFLAGS",
];

/// A cargo command for a nested build, with none of [`OUTER_ENV`].
pub fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    for name in OUTER_ENV {
        command.env_remove(name);
    }
    command.stdin(Stdio::null());
    command
}

/// Runs `cargo package` on the checkout (its own target directory under
/// `work`, so it never waits on the one the running `cargo test` holds) and
/// unpacks the `.crate` into `work/unpacked/`; returns the unpacked crate's
/// directory. Unpacked again only when the `.crate` changed, so the builds
/// against it stay incremental.
pub fn unpacked(work: &Path) -> PathBuf {
    let target = work.join("target");
    let output = cargo()
        // --no-verify: the tests build the package themselves (verifying
        // would build it once more); --allow-dirty: a developer's tree
        // with uncommitted changes is what is tested.
        .args(["package", "-p", "py-in-mem", "--no-verify", "--allow-dirty"])
        .current_dir(checkout())
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("run cargo package");
    assert!(
        output.status.success(),
        "cargo package failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let name = format!("py-in-mem-{}", env!("CARGO_PKG_VERSION"));
    let crate_file = target.join("package").join(format!("{name}.crate"));
    let packed =
        std::fs::read(&crate_file).unwrap_or_else(|e| panic!("read {}: {e}", crate_file.display()));
    let unpacked_root = work.join("unpacked");
    let last = work.join("unpacked.crate");
    let dir = unpacked_root.join(&name);
    if std::fs::read(&last).ok().as_ref() == Some(&packed) && dir.is_dir() {
        return dir;
    }
    if unpacked_root.exists() {
        std::fs::remove_dir_all(&unpacked_root).expect("remove the old unpacked package");
    }
    std::fs::create_dir_all(&unpacked_root).expect("create the unpack directory");
    // -m: the files get the time of unpacking, not the fixed time cargo
    // package gives every file (older than the last build, so cargo would
    // take a changed file for unchanged).
    let status = Command::new("tar")
        .arg("-xzmf")
        .arg(&crate_file)
        .arg("-C")
        .arg(&unpacked_root)
        .status()
        .expect("run tar");
    assert!(
        status.success(),
        "tar -xzmf {} failed",
        crate_file.display()
    );
    std::fs::write(&last, &packed).expect("remember the unpacked .crate");
    assert!(
        dir.join("Cargo.toml").is_file(),
        "{} has no Cargo.toml",
        dir.display()
    );
    dir
}

/// Writes `contents` to `path` unless it already holds them (keeping its
/// modification time, so cargo does not rebuild for nothing).
pub fn write_if_changed(path: &Path, contents: &str) {
    if std::fs::read_to_string(path).ok().as_deref() == Some(contents) {
        return;
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create a directory");
    }
    std::fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}
