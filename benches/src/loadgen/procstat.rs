//! A process's CPU time and resident memory from `/proc`, the server-side half of the
//! measurement: the kernel's own accounting of the whole process (every thread, user and
//! system time), so it works for any server, ours or not, with no cooperation from it.

use std::{fs, time::Duration};

/// One reading of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcSample {
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
    /// VmRSS in KiB.
    pub rss_kib: u64,
}

/// Why a process could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    /// The file could not be read (no such process, no permission).
    #[error("reading {path}: {source}")]
    Read {
        /// The /proc file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file did not have the expected shape.
    #[error("unexpected contents of {0}")]
    Format(String),
}

/// Which process to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pid {
    /// A process by id.
    Of(u32),
    /// The generator itself (`/proc/self`).
    Myself,
}

impl Pid {
    fn dir(self) -> String {
        match self {
            Pid::Of(p) => format!("/proc/{p}"),
            Pid::Myself => "/proc/self".into(),
        }
    }
}

/// Reads utime+stime and VmRSS of `pid`.
pub fn sample(pid: Pid) -> Result<ProcSample, ProcError> {
    let dir = pid.dir();
    let read = |name: &str| {
        let path = format!("{dir}/{name}");
        fs::read_to_string(&path).map_err(|source| ProcError::Read { path, source })
    };
    let stat = read("stat")?;
    let cpu_ticks =
        parse_stat_cpu_ticks(&stat).ok_or_else(|| ProcError::Format(format!("{dir}/stat")))?;
    let status = read("status")?;
    // A zombie has no VmRSS line: report 0 rather than failing the run.
    let rss_kib = parse_status_rss_kib(&status).unwrap_or(0);
    Ok(ProcSample { cpu_ticks, rss_kib })
}

/// The command name of `pid` (`/proc/<pid>/comm`), to show what is being measured.
pub fn command_name(pid: Pid) -> Option<String> {
    fs::read_to_string(format!("{}/comm", pid.dir()))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line. The command name (field
/// 2) is in parentheses and may itself contain spaces and parentheses, so fields are
/// counted from the *last* `)`.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_ascii_whitespace();
    // rest starts at field 3 (state); utime is field 14, i.e. the 12th from here.
    let utime: u64 = f.nth(11)?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some(utime + stime)
}

/// VmRSS in KiB from `/proc/<pid>/status`.
pub fn parse_status_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_ascii_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, from the auxiliary vector).
pub fn ticks_per_second() -> u64 {
    match rustix::param::clock_ticks_per_second() {
        0 => 100,
        n => n,
    }
}

/// CPU time between two samples.
pub fn cpu_between(a: &ProcSample, b: &ProcSample) -> Duration {
    let ticks = b.cpu_ticks.saturating_sub(a.cpu_ticks);
    Duration::from_secs_f64(ticks as f64 / ticks_per_second() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_the_command_name() {
        let line = "4242 (my (weird) srv) S 1 4242 4242 0 -1 4194560 1000 0 0 0 \
                    250 75 0 0 20 0 9 0 12345 1000000 500 18446744073709551615";
        assert_eq!(parse_stat_cpu_ticks(line), Some(325));
        assert_eq!(parse_stat_cpu_ticks("1 (x) S 1 2"), None);
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn rss_line() {
        let s = "Name:\tswitchyard\nVmPeak:\t  999 kB\nVmRSS:\t   51234 kB\nThreads:\t9\n";
        assert_eq!(parse_status_rss_kib(s), Some(51234));
        assert_eq!(parse_status_rss_kib("Name: x\n"), None);
    }

    #[test]
    fn reads_itself() {
        let a = sample(Pid::Myself).expect("/proc/self is readable");
        assert!(a.rss_kib > 0);
        assert!(ticks_per_second() >= 1);
        let b = sample(Pid::Myself).expect("again");
        assert!(command_name(Pid::Myself).is_some_and(|c| !c.is_empty()));
        assert!(b.cpu_ticks >= a.cpu_ticks);
    }
}
