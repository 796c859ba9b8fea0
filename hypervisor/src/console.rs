//! The hypervisor console: `console_println!` for raw lines and a `log` backend that prefixes
//! every record with `(hv)` and filters by `loglvl=`.

use crate::arch::x86_64::serial;
use hypervisor::cmdline::LogLevel;

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
