//! The hypervisor console: `console_println!` for raw lines and a `log` backend that prefixes
//! every record with `(hv)` and filters by `loglvl=`.

use crate::arch::x86_64::{cpu, serial};
use hypervisor::cmdline::LogLevel;
use hypervisor::log_limit::{self, RateLimit, Verdict};

/// Prints one line on COM1.
#[macro_export]
macro_rules! console_println {
    ($($arg:tt)*) => {
        $crate::arch::x86_64::serial::write_fmt(format_args!("{}\r\n", format_args!($($arg)*)))
    };
}

struct Logger;

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        if record.target() == log_limit::GUEST_TARGET {
            // Never wait here: a CPU that holds it is printing, and so may this one.
            if let Some(mut limit) = GUEST_LINES.try_lock() {
                match limit.admit(cpu::rdtsc()) {
                    Verdict::Drop => return,
                    Verdict::Print { suppressed_before: 0 } => {}
                    Verdict::Print { suppressed_before } => serial::write_fmt(format_args!(
                        "(hv) WARNING: {suppressed_before} guest messages suppressed\r\n"
                    )),
                }
            }
        }
        let tag = match record.level() {
            log::Level::Error => "ERROR: ",
            log::Level::Warn => "WARNING: ",
            log::Level::Info => "",
            log::Level::Debug | log::Level::Trace => "debug: ",
        };
        serial::write_fmt(format_args!("(hv) {tag}{}\r\n", record.args()));
    }

    fn flush(&self) {}
}

static LOGGER: Logger = Logger;

/// The limit on lines guests cause ([`log_limit::GUEST_TARGET`]), in TSC ticks.
static GUEST_LINES: spin::Mutex<RateLimit> = spin::Mutex::new(RateLimit::unconfigured());

/// Starts rate-limiting guest-caused lines: Xen's 10 per 5 s, measured with the TSC.
pub fn limit_guest_lines(tsc_hz: u64) {
    GUEST_LINES.lock().configure(tsc_hz.saturating_mul(log_limit::WINDOW_SECONDS), log_limit::BURST);
}

/// Installs the logger at `level`.
pub fn init(level: LogLevel) {
    let filter = match level {
        LogLevel::None => log::LevelFilter::Off,
        LogLevel::Error => log::LevelFilter::Error,
        LogLevel::Warning => log::LevelFilter::Warn,
        LogLevel::Info => log::LevelFilter::Info,
        LogLevel::Debug => log::LevelFilter::Debug,
        LogLevel::All => log::LevelFilter::Trace,
    };
    // A second call only changes the level: set_logger refuses to replace, which is fine.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(filter);
}
