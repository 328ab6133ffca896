//! The CPU a run was made on, as precisely as a virtual machine shows it:
//! its name, its family, model and stepping, and its caches.
//!
//! Why: the host under this machine's two vCPUs has changed between days
//! (an AMD EPYC on some, an Intel Xeon on others, both named without a
//! model number), and a figure that moves the data between the vCPUs' caches
//! (async calls from many tasks, `docs/benchmark.md`) differs with it. The
//! family and model numbers and the cache sizes tell the hosts apart.

/// "Intel(R) Xeon(R) Processor (family 6, model 207, stepping 2; L1d 48K,
/// L2 2048K, L3 266240K shared by CPUs 0-1)"; "unknown" parts are left out.
pub fn describe() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    // The first CPU's block: the fields are the same for each.
    let field = |name: &str| {
        cpuinfo.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == name).then(|| value.trim().to_owned())
        })
    };
    let name = field("model name").unwrap_or_else(|| "unknown".to_owned());
    let mut details = Vec::new();
    if let (Some(family), Some(model)) = (field("cpu family"), field("model")) {
        let stepping = field("stepping").map_or_else(String::new, |s| format!(", stepping {s}"));
        details.push(format!("family {family}, model {model}{stepping}"));
    }
    let caches = caches();
    if !caches.is_empty() {
        details.push(caches);
    }
    if details.is_empty() {
        name
    } else {
        format!("{name} ({})", details.join("; "))
    }
}

/// CPU 0's caches from sysfs: "L1d 48K, L1i 32K, L2 2048K, L3 266240K
/// shared by CPUs 0-1" (a cache shared by more than CPU 0 says by which).
fn caches() -> String {
    let dir = "/sys/devices/system/cpu/cpu0/cache";
    let read = |index: usize, file: &str| {
        std::fs::read_to_string(format!("{dir}/index{index}/{file}"))
            .ok()
            .map(|s| s.trim().to_owned())
    };
    let mut caches = Vec::new();
    for index in 0..8 {
        let (Some(level), Some(kind), Some(size)) = (
            read(index, "level"),
            read(index, "type"),
            read(index, "size"),
        ) else {
            break;
        };
        let kind = match kind.as_str() {
            "Data" => "d",
            "Instruction" => "i",
            _ => "",
        };
        let shared = read(index, "shared_cpu_list")
            .filter(|cpus| cpus != "0")
            .map_or_else(String::new, |cpus| format!(" shared by CPUs {cpus}"));
        caches.push(format!("L{level}{kind} {size}{shared}"));
    }
    caches.join(", ")
}
