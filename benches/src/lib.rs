//! Shared helpers for the benchmarks in `benches/`: running a command as a child process and
//! measuring its wall time and peak resident memory, so that rungs and the reference tool are
//! measured the same way in the same run.

use std::process::Command;
use std::time::{Duration, Instant};

/// What one child process cost.
#[derive(Clone, Copy, Debug)]
pub struct Cost {
    /// Wall-clock time.
    pub wall: Duration,
    /// User plus system CPU time.
    pub cpu: Duration,
    /// Peak resident set size in KiB.
    pub max_rss_kib: u64,
}

/// Runs `cmd` to completion and measures it. Fails if it does not exit with status 0.
pub fn measure(cmd: &mut Command) -> Result<Cost, String> {
    let start = Instant::now();
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet waited for; wait4 writes only to the two
    // out-pointers, which are valid for the call. `child` is never waited on afterwards.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    std::mem::forget(child);
    if r != pid {
        return Err(format!("wait4 failed for {cmd:?}"));
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!("{cmd:?} failed with status {status}"));
    }
    let tv =
        |t: libc::timeval| Duration::new(t.tv_sec.max(0) as u64, (t.tv_usec.max(0) * 1000) as u32);
    Ok(Cost {
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        max_rss_kib: usage.ru_maxrss.max(0) as u64,
    })
}

/// The medians of the wall and CPU times, and the largest RSS, of several measurements.
pub fn median(costs: &[Cost]) -> Cost {
    let mid = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    Cost {
        wall: mid(costs.iter().map(|c| c.wall).collect()),
        cpu: mid(costs.iter().map(|c| c.cpu).collect()),
        max_rss_kib: costs.iter().map(|c| c.max_rss_kib).max().unwrap_or(0),
    }
}

/// What a benchmark should do, from its environment and arguments.
pub enum Mode {
    /// Run as the measured child process with this value of the child variable.
    Child(std::ffi::OsString),
    /// `cargo bench -- --list`: print the name and stop.
    List,
    /// Measure, this many runs of each side (`RUNGS_BENCH_RUNS`, or the default).
    Runs(usize),
}

/// Decides the [`Mode`] of the benchmark `name`, whose child processes carry `child_var`.
pub fn mode(name: &str, child_var: &str, default_runs: usize) -> Mode {
    if let Some(v) = std::env::var_os(child_var) {
        return Mode::Child(v);
    }
    if std::env::args().any(|a| a == "--list") {
        println!("{name}: bench");
        return Mode::List;
    }
    Mode::Runs(
        std::env::var("RUNGS_BENCH_RUNS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or(default_runs),
    )
}

/// True when `taskset` is there to pin processes to cores.
pub fn can_pin() -> bool {
    std::process::Command::new("taskset")
        .arg("-V")
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `cmd` restricted to the first `cores` cores (with all its threads and children), when
/// `pin` is set; stdout goes nowhere.
pub fn pinned(pin: bool, cores: usize, cmd: Command) -> Command {
    if !pin {
        return cmd;
    }
    let mut t = Command::new("taskset");
    t.args(["-c", &format!("0-{}", cores.max(1) - 1)])
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdout(std::process::Stdio::null());
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            t.env(k, v);
        }
    }
    t
}
