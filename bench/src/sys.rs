//! What this machine is, and what the process and its threads use: CPU time per thread (from
//! `/proc/self/task/*/schedstat`, nanoseconds), resident memory (`/proc/self/status`).

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

/// The machine the numbers were taken on.
#[derive(Debug, Clone)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory: String,
    pub kernel: String,
    pub rustc: String,
    pub clocksource: String,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Describes this machine.
pub fn machine() -> Machine {
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let mhz = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("cpu MHz"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string());
    let cpu = match mhz {
        Some(m) => format!("{cpu} ({m} MHz)"),
        None => cpu,
    };
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let memory = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| format!("{:.1} GiB", kb as f64 / 1024.0 / 1024.0))
        .unwrap_or_else(|| "unknown".into());
    let kernel = format!(
        "{} {}",
        read("/proc/sys/kernel/ostype").trim(),
        read("/proc/sys/kernel/osrelease").trim()
    );
    let rustc = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let clocksource = read("/sys/devices/system/clocksource/clocksource0/current_clocksource")
        .trim()
        .to_string();
    Machine {
        cpu,
        cores,
        memory,
        kernel,
        rustc,
        clocksource,
    }
}

/// The 1, 5 and 15 minute load averages (`/proc/loadavg`): this machine may be shared.
pub fn loadavg() -> String {
    read("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Sets this thread's timer slack (inherited by threads it creates from now on). The emulator
/// paces bytes with `thread::sleep`; the default 50 µs slack would add up to 50 µs to every
/// paced write and make the emulated line slower than the baud rate says.
pub fn set_timer_slack(ns: u64) {
    // SAFETY: prctl with an integer argument.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, ns as libc::c_ulong, 0, 0, 0);
    }
}

/// `VmRSS` and `VmHWM` of this process, in KiB.
pub fn rss_kib() -> (u64, u64) {
    let s = read("/proc/self/status");
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU time (ns) of every thread of this process whose name starts with one of `prefixes`,
/// keyed by thread id.
pub fn thread_cpu(prefixes: &[&str]) -> HashMap<u32, u64> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(tid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let p = e.path();
        let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
        if !prefixes.iter().any(|x| comm.trim().starts_with(x)) {
            continue;
        }
        if let Some(ns) = std::fs::read_to_string(p.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        {
            out.insert(tid, ns);
        }
    }
    out
}

/// CPU time spent by matching threads between two [`thread_cpu`] snapshots (threads that
/// started in between count from zero; threads that ended are lost, so take `after` before
/// dropping the session).
pub fn cpu_between(before: &HashMap<u32, u64>, after: &HashMap<u32, u64>) -> Duration {
    let ns: u64 = after
        .iter()
        .map(|(tid, ns)| ns.saturating_sub(*before.get(tid).unwrap_or(&0)))
        .sum();
    Duration::from_nanos(ns)
}

/// CPU time of the calling thread.
pub fn this_thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// CPU time (user + system) of the whole process.
pub fn process_cpu() -> Duration {
    // SAFETY: getrusage fills a plain struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec * 1000) as u32);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}
