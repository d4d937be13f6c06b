//! Process statistics from `/proc`: resident set size and CPU time.

use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Sampling period of [`PeakSampler`].
const PERIOD: Duration = Duration::from_millis(100);

/// Current `VmRSS` of `pid` in KiB, `None` if the process is gone or unreadable.
pub fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `USER_HZ`: the unit of the CPU times in `/proc/PID/stat` (fixed by the kernel ABI).
const USER_HZ: f64 = 100.0;

/// User + system CPU time consumed so far by all threads of `pid`.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name start at field 3 (state);
    // utime and stime are fields 14 and 15.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_secs_f64((utime + stime) as f64 / USER_HZ))
}

/// Measures the CPU share of a process between [`CpuMeter::start`] and
/// [`CpuMeter::finish`], in percent of one core.
pub struct CpuMeter {
    pid: u32,
    cpu: Option<Duration>,
    wall: Instant,
}

impl CpuMeter {
    /// Takes the starting CPU time of `pid`.
    pub fn start(pid: u32) -> CpuMeter {
        CpuMeter { pid, cpu: cpu_time(pid), wall: Instant::now() }
    }

    /// CPU used since `start` in percent of one core (may exceed 100 on several cores).
    pub fn finish(self) -> Option<f64> {
        let used = cpu_time(self.pid)?.checked_sub(self.cpu?)?;
        Some(100.0 * used.as_secs_f64() / self.wall.elapsed().as_secs_f64())
    }
}

/// Background task recording the peak `VmRSS` of a process every 100 ms.
pub struct PeakSampler {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Option<u64>>,
}

impl PeakSampler {
    /// Starts sampling `pid` (first sample immediately).
    pub fn start(pid: u32) -> PeakSampler {
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut peak = None;
            let mut tick = tokio::time::interval(PERIOD);
            loop {
                tokio::select! {
                    _ = tick.tick() => peak = peak.max(vm_rss_kib(pid)),
                    _ = &mut stopped => return peak.max(vm_rss_kib(pid)),
                }
            }
        });
        PeakSampler { stop, task }
    }

    /// Stops sampling (taking one last sample) and returns the peak in KiB.
    pub async fn finish(self) -> Option<u64> {
        let _ = self.stop.send(());
        self.task.await.ok().flatten()
    }
}
