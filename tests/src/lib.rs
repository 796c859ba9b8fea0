//! QEMU scenario harness: boots the hypervisor (ours or Debian's Xen 4.17) with a module and a
//! command line, captures the serial log to a file, and judges the run by the `isa-debug-exit`
//! status and the expected serial lines.
//!
//! Images come from the build directory that `./run.sh build` fills (`build/` at the workspace
//! root, or `$HV_BUILD_DIR`): `hypervisor.elf`, `guest-kernel.elf`, `xen-4.17`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// QEMU status when our hypervisor ends cleanly (no module, or dom0 powered off).
pub const EXIT_SUCCESS: i32 = 33;
/// QEMU status when our hypervisor reports a failure (bad module, panic, fault, dom0 crash).
pub const EXIT_FAILURE: i32 = 35;
/// What the hypervisor logs when a dead domain's teardown cannot return some of its frames
/// (`domain/teardown.rs`: "dN: K frame(s) kept, from ...": a leak, which scenarios forbid).
pub const FRAMES_KEPT: &str = "frame(s) kept, from";
/// Status the harness reports when Xen halts after dom0's `SHUTDOWN_poweroff` (Xen prints
/// "Hardware Dom0 halted: halting machine" and stops the CPUs, so QEMU would not exit by itself:
/// the harness ends the run on that line).
pub const XEN_POWEROFF: i32 = 0;
/// Status the harness reports when Xen reports that dom0 crashed ("Hardware Dom0 crashed").
pub const XEN_DOM0_CRASHED: i32 = 3;
/// Status the harness reports when Xen restarts after dom0's reboot, watchdog or other
/// shutdown ("Hardware Dom0 shutdown: ..."): not a poweroff.
pub const XEN_DOM0_REBOOTED: i32 = 4;

/// Lines on which a Xen run is over, with the status the harness reports for each.
const XEN_END_LINES: [(&str, i32); 3] = [
    ("Hardware Dom0 halted", XEN_POWEROFF),
    ("Hardware Dom0 crashed", XEN_DOM0_CRASHED),
    ("Hardware Dom0 shutdown", XEN_DOM0_REBOOTED),
];

/// Which hypervisor a scenario boots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hv {
    /// Our hypervisor (`build/hypervisor.elf`).
    Ours,
    /// Debian's Xen 4.17 (`build/xen-4.17`), the reference.
    Xen,
}

/// The build directory holding the images.
pub fn build_dir() -> PathBuf {
    std::env::var_os("HV_BUILD_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../build"))
}

fn image(name: &str) -> PathBuf {
    let p = build_dir().join(name);
    assert!(p.exists(), "{} is missing: run `./run.sh build` first", p.display());
    p
}

/// Our hypervisor's image.
pub fn hypervisor_image() -> PathBuf {
    image("hypervisor.elf")
}

/// The PV guest kernel's image.
pub fn guest_kernel_image() -> PathBuf {
    image("guest-kernel.elf")
}

/// The assembly PV guest fixture (`tests/fixtures/mini_guest.S`).
pub fn mini_guest_image() -> PathBuf {
    image("mini-guest.elf")
}

/// The reference Xen 4.17 image (gunzipped).
pub fn xen_image() -> PathBuf {
    image("xen-4.17")
}

/// Where scenario logs and generated modules go.
pub fn work_dir() -> PathBuf {
    let d = build_dir().join("scenarios");
    std::fs::create_dir_all(&d).expect("creating the scenario directory");
    d
}

/// One QEMU boot and what it must show.
#[derive(Clone, Debug)]
pub struct Scenario {
    name: String,
    hv: Hv,
    module: Option<PathBuf>,
    hv_options: String,
    guest_cmdline: String,
    timeout: Duration,
    expect_exit: Option<i32>,
    expect_lines: Vec<String>,
    forbid_lines: Vec<String>,
    memory_mib: u32,
    extra_qemu: Vec<String>,
    monitor: Option<MonitorPlan>,
}

/// QEMU monitor commands a scenario sends once a line shows up in the serial log.
#[derive(Clone, Debug)]
struct MonitorPlan {
    after: String,
    commands: Vec<String>,
    gap: Duration,
}

/// What a run produced, for further assertions.
#[derive(Debug)]
pub struct Outcome {
    /// QEMU's exit status.
    pub status: i32,
    /// The whole serial log.
    pub log: String,
    /// Where the log was saved.
    pub log_path: PathBuf,
    /// Why the monitor commands could not be sent, if they could not.
    pub monitor_error: Option<String>,
}

impl Scenario {
    /// A scenario named `name` (also the log file's name) booting `hv`.
    pub fn new(name: &str, hv: Hv) -> Self {
        let hv_options = match hv {
            Hv::Ours => "console=com1 loglvl=info",
            Hv::Xen => "console=com1 loglvl=all noreboot",
        };
        Self {
            name: name.to_string(),
            hv,
            module: None,
            hv_options: hv_options.to_string(),
            guest_cmdline: String::new(),
            timeout: Duration::from_secs(60),
            expect_exit: None,
            expect_lines: Vec::new(),
            forbid_lines: vec!["PANIC".into(), "FATAL".into()],
            memory_mib: 512,
            extra_qemu: Vec::new(),
            monitor: None,
        }
    }

    /// The boot module (`-initrd`).
    pub fn module(mut self, path: impl Into<PathBuf>) -> Self {
        self.module = Some(path.into());
        self
    }

    /// dom0's part of the command line (after ` -- `).
    pub fn append(mut self, guest_cmdline: &str) -> Self {
        self.guest_cmdline = guest_cmdline.to_string();
        self
    }

    /// The hypervisor's own options, replacing the defaults.
    pub fn hv_options(mut self, options: &str) -> Self {
        self.hv_options = options.to_string();
        self
    }

    /// Guest RAM in MiB (default 512).
    pub fn memory_mib(mut self, mib: u32) -> Self {
        self.memory_mib = mib;
        self
    }

    /// Extra QEMU arguments.
    pub fn qemu_args(mut self, args: &[&str]) -> Self {
        self.extra_qemu.extend(args.iter().map(|s| s.to_string()));
        self
    }

    /// Once `after` appears in the serial log, sends `commands` to QEMU's human monitor (a
    /// Unix socket next to the log), `gap` apart: host events such as `nmi` injected while
    /// the guests run. A command that cannot be sent fails the scenario.
    pub fn monitor_after(mut self, after: &str, commands: &[&str], gap: Duration) -> Self {
        let commands = commands.iter().map(|c| c.to_string()).collect();
        self.monitor = Some(MonitorPlan { after: after.to_string(), commands, gap });
        self
    }

    /// Wall-clock limit; exceeding it fails the scenario.
    pub fn timeout_secs(mut self, secs: u64) -> Self {
        self.timeout = Duration::from_secs(secs);
        self
    }

    /// The QEMU exit status the run must end with.
    pub fn expect_exit(mut self, status: i32) -> Self {
        self.expect_exit = Some(status);
        self
    }

    /// A substring that must appear in the serial log, after the previous expected one.
    pub fn expect_line(mut self, text: &str) -> Self {
        self.forbid_lines.retain(|f| !text.contains(f.as_str()));
        self.expect_lines.push(text.to_string());
        self
    }

    /// A substring that must not appear anywhere in the log.
    pub fn forbid_line(mut self, text: &str) -> Self {
        self.forbid_lines.push(text.to_string());
        self
    }

    fn command_line(&self) -> String {
        if self.guest_cmdline.is_empty() {
            self.hv_options.clone()
        } else {
            format!("{} -- {}", self.hv_options, self.guest_cmdline)
        }
    }

    /// Boots the scenario and checks it; panics with the log's tail on any mismatch.
    pub fn run(self) -> Outcome {
        let outcome = self.boot();
        if let Err(why) = self.judge(&outcome) {
            panic!(
                "scenario '{}' failed: {why}\n--- last serial lines ({}) ---\n{}",
                self.name,
                outcome.log_path.display(),
                tail(&outcome.log, 40)
            );
        }
        outcome
    }

    fn boot(&self) -> Outcome {
        let log_path = work_dir().join(format!("{}.log", self.name));
        let _ = std::fs::remove_file(&log_path);
        let kernel = match self.hv {
            Hv::Ours => hypervisor_image(),
            Hv::Xen => xen_image(),
        };
        let monitor_path = work_dir().join(format!("{}.monitor", self.name));
        let _ = std::fs::remove_file(&monitor_path);
        let monitor_arg = match &self.monitor {
            Some(_) => format!("unix:{},server=on,wait=off", monitor_path.display()),
            None => "none".to_string(),
        };
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args(["-m", &self.memory_mib.to_string()])
            .args(["-display", "none", "-monitor", &monitor_arg, "-no-reboot"])
            .arg("-serial")
            .arg(format!("file:{}", log_path.display()))
            .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
            .arg("-kernel")
            .arg(&kernel)
            .arg("-append")
            .arg(self.command_line());
        if let Some(m) = &self.module {
            cmd.arg("-initrd").arg(m);
        }
        cmd.args(&self.extra_qemu);
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("starting qemu-system-x86_64 (./run.sh installs it)");
        let start = Instant::now();
        let mut monitor_failure = None;
        let mut monitor_pending = self.monitor.as_ref();
        let status = loop {
            if let Some(s) = child.try_wait().expect("waiting for QEMU") {
                break s.code().unwrap_or(-1);
            }
            if let Some(plan) = monitor_pending {
                let log = std::fs::read(&log_path).unwrap_or_default();
                if String::from_utf8_lossy(&log).contains(plan.after.as_str()) {
                    monitor_pending = None;
                    monitor_failure = send_monitor_commands(&monitor_path, plan).err();
                }
            }
            if self.hv == Hv::Xen {
                let log = std::fs::read(&log_path).unwrap_or_default();
                let log = String::from_utf8_lossy(&log);
                if let Some(&(_, status)) = XEN_END_LINES.iter().find(|(l, _)| log.contains(l)) {
                    let _ = child.kill();
                    let _ = child.wait();
                    break status;
                }
            }
            if start.elapsed() > self.timeout {
                let _ = child.kill();
                let _ = child.wait();
                break -2;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut stderr = String::new();
        if let Some(mut e) = child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut stderr);
        }
        let raw = std::fs::read(&log_path).unwrap_or_default();
        let mut log = String::from_utf8_lossy(&raw).replace('\r', "");
        if !stderr.trim().is_empty() {
            let _ = write!(log, "\n[qemu stderr] {}", stderr.trim());
        }
        let monitor_error = match (monitor_failure, monitor_pending) {
            (Some(why), _) => Some(why.to_string()),
            (None, Some(plan)) => Some(format!("'{}' never appeared: no command sent", plan.after)),
            (None, None) => None,
        };
        Outcome { status, log, log_path, monitor_error }
    }

    fn judge(&self, o: &Outcome) -> Result<(), String> {
        if o.status == -2 {
            return Err(format!("timed out after {:?}", self.timeout));
        }
        if let Some(want) = self.expect_exit {
            if o.status != want {
                return Err(format!(
                    "QEMU exit status {} ({}), expected {want}",
                    o.status,
                    describe_status(self.hv, o.status)
                ));
            }
        }
        if let Some(why) = &o.monitor_error {
            return Err(format!("QEMU monitor: {why}"));
        }
        for f in &self.forbid_lines {
            if let Some(line) = o.log.lines().find(|l| l.contains(f.as_str())) {
                return Err(format!("forbidden text '{f}' in the log: {line}"));
            }
        }
        let mut rest = o.log.as_str();
        for want in &self.expect_lines {
            match rest.find(want.as_str()) {
                Some(i) => rest = &rest[i + want.len()..],
                None if o.log.contains(want.as_str()) => {
                    return Err(format!("expected line '{want}' appears, but out of order"))
                }
                None => return Err(format!("expected line '{want}' not found")),
            }
        }
        Ok(())
    }
}

/// Connects to QEMU's monitor socket and sends `plan`'s commands, `plan.gap` apart.
fn send_monitor_commands(socket: &Path, plan: &MonitorPlan) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut monitor = std::os::unix::net::UnixStream::connect(socket)?;
    for command in &plan.commands {
        monitor.write_all(format!("{command}\n").as_bytes())?;
        std::thread::sleep(plan.gap);
    }
    Ok(())
}

/// A human reading of a QEMU status.
pub fn describe_status(hv: Hv, status: i32) -> &'static str {
    match (hv, status) {
        (_, -2) => "timeout",
        (Hv::Ours, EXIT_SUCCESS) => "clean end",
        (Hv::Ours, EXIT_FAILURE) => "hypervisor-reported failure",
        (Hv::Ours, 0) => "no exit-port write: triple fault or reset",
        (Hv::Xen, XEN_POWEROFF) => "dom0 halted or powered off",
        (Hv::Xen, XEN_DOM0_CRASHED) => "dom0 crashed",
        (Hv::Xen, XEN_DOM0_REBOOTED) => "dom0 rebooted (or another shutdown than poweroff)",
        _ => "unexpected status",
    }
}

/// Asserts that the hypervisor's shutdown line ("No domains left: shutting down. Free frames:
/// F (before the domains: B).") shows every frame back in the allocator: F == B.
pub fn assert_every_frame_returned(log: &str) {
    let line = log
        .lines()
        .find(|l| l.contains("No domains left: shutting down. Free frames: "))
        .unwrap_or_else(|| panic!("no shutdown line with the free-frame count"));
    let numbers: Vec<u64> =
        line.split(|c: char| !c.is_ascii_digit()).filter(|w| !w.is_empty()).filter_map(|w| w.parse().ok()).collect();
    assert!(numbers.len() == 2 && numbers[0] == numbers[1], "frames missing after the domains: {line}");
}

/// The last `n` lines of `log`.
pub fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Writes a `cpio` newc archive of `members` (path, bytes) to `build/scenarios/NAME.cpio`:
/// the boot-bundle format of DESIGN.md §3.
pub fn cpio_bundle(name: &str, members: &[(&str, &[u8])]) -> PathBuf {
    let out = hypervisor::cpio::build(members);
    let p = work_dir().join(format!("{name}.cpio"));
    std::fs::write(&p, out).expect("writing the bundle");
    p
}
