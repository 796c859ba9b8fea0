//! The hypervisor's command line, in Xen's syntax: `opt[=val] ... [-- dom0 command line]`.
//!
//! Unknown options are collected as warnings, never fatal, as Xen does: a typo must not stop a
//! machine from booting.

use crate::idle::IdleMode;
use core::fmt;

/// Maximum number of distinct warnings kept; later ones are counted but not stored.
const MAX_WARNINGS: usize = 8;

/// Console log threshold, Xen's `loglvl=` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Nothing but fatal messages.
    None,
    /// Errors only.
    Error,
    /// Errors and warnings.
    Warning,
    /// Normal boot progress (the default).
    Info,
    /// Debugging detail.
    Debug,
    /// Everything.
    All,
}

impl LogLevel {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "none" => Self::None,
            "error" => Self::Error,
            "warning" => Self::Warning,
            "info" => Self::Info,
            "debug" => Self::Debug,
            "all" => Self::All,
            _ => return None,
        })
    }
}

/// The stack a `hv_debug=*stack_overflow` recursion runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverflowStack {
    /// The boot CPU's ring-0 stack (`stack_overflow`).
    Ring0,
    /// Its NMI stack (`nmi_stack_overflow`).
    Nmi,
    /// The boot stack (`boot_stack_overflow`).
    Boot,
}

/// Deliberate failures for testing the hypervisor's own failure paths (`hv_debug=...`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DebugAction {
    /// Dereference an unmapped address in ring 0: exercises the fault report.
    PageFault,
    /// Execute `ud2` in ring 0.
    InvalidOpcode,
    /// Call `panic!`: exercises the panic report.
    Panic,
    /// Recurse without end on one of the boot CPU's stacks: exercises its guard page.
    StackOverflow(OverflowStack),
    /// Not a failure of the machine: the first domU's grant table set-up fails, which
    /// exercises the undoing of a half-made domain (its frames must all come back).
    FailDomainGrants,
    /// As `FailDomainGrants`, but the first domU's frame assignment stops half way.
    FailDomainFrames,
}

/// One warning produced while parsing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Warning<'a> {
    /// An option the hypervisor does not know.
    UnknownOption(&'a str),
    /// A known option with a value it cannot use.
    BadValue { option: &'a str, value: &'a str },
}

impl fmt::Display for Warning<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::UnknownOption(o) => write!(f, "unknown option '{o}' ignored"),
            Warning::BadValue { option, value } => {
                write!(f, "option '{option}': bad value '{value}' ignored")
            }
        }
    }
}

/// The parsed command line. Borrowed strings point into the original text.
#[derive(Debug, PartialEq, Eq)]
pub struct CommandLine<'a> {
    /// `console=`: only `com1` (the default) is supported.
    pub console_com1: bool,
    /// `loglvl=`.
    pub log_level: LogLevel,
    /// `noreboot`: on a fatal error, stop instead of rebooting.
    pub noreboot: bool,
    /// `dom0_mem=` in bytes, if given.
    pub dom0_mem: Option<u64>,
    /// `maxcpus=`: at most this many CPUs are brought up (Xen's option; at least 1).
    pub max_cpus: Option<usize>,
    /// `idle=`: how an idle CPU waits for work (see [`IdleMode`]): `haltpoll` (default)
    /// polls for an adaptive window then halts, `poll` spins (a host CPU per idle CPU under
    /// emulation), `halt` halts at once (each wake-up is an interrupt).
    pub idle: IdleMode,
    /// `domu_start=paused`: boot-time domUs are created paused, as `xl create -p` does, for
    /// dom0 to unpause (`XEN_DOMCTL_unpausedomain`) when it is ready; `running` (default)
    /// starts them at once.
    pub domus_paused: bool,
    /// `hv_debug=`: a deliberate failure, for tests.
    pub debug_action: Option<DebugAction>,
    /// Everything after ` -- `: dom0's command line.
    pub dom0_cmdline: &'a str,
    warnings: [Option<Warning<'a>>; MAX_WARNINGS],
    dropped_warnings: usize,
}

impl<'a> CommandLine<'a> {
    /// Parses `text`. Never fails: problems become [`Warning`]s.
    pub fn parse(text: &'a str) -> Self {
        let (own, dom0) = split_dom0(text);
        let mut cl = CommandLine {
            console_com1: true,
            log_level: LogLevel::Info,
            noreboot: false,
            dom0_mem: None,
            max_cpus: None,
            idle: IdleMode::HaltPoll,
            domus_paused: false,
            debug_action: None,
            dom0_cmdline: dom0,
            warnings: [None; MAX_WARNINGS],
            dropped_warnings: 0,
        };
        for word in own.split_ascii_whitespace() {
            let (key, value) = match word.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (word, None),
            };
            match (key, value) {
                ("console", Some(v)) => {
                    // Xen accepts a comma list; we only drive COM1, which is always on.
                    if !v.split(',').any(|c| c == "com1") {
                        cl.warn(Warning::BadValue { option: key, value: v });
                    }
                }
                ("loglvl", Some(v)) => match LogLevel::parse(v.split('/').next().unwrap_or(v)) {
                    Some(l) => cl.log_level = l,
                    None => cl.warn(Warning::BadValue { option: key, value: v }),
                },
                ("noreboot", None) => cl.noreboot = true,
                ("dom0_mem", Some(v)) => match parse_size(v) {
                    Some(n) if n > 0 => cl.dom0_mem = Some(n),
                    _ => cl.warn(Warning::BadValue { option: key, value: v }),
                },
                ("maxcpus", Some(v)) => match v.parse::<usize>() {
                    Ok(n) if n > 0 => cl.max_cpus = Some(n),
                    _ => cl.warn(Warning::BadValue { option: key, value: v }),
                },
                ("domu_start", Some(v)) => match v {
                    "paused" => cl.domus_paused = true,
                    "running" => cl.domus_paused = false,
                    _ => cl.warn(Warning::BadValue { option: key, value: v }),
                },
                ("idle", Some(v)) => match IdleMode::parse(v) {
                    Some(mode) => cl.idle = mode,
                    None => cl.warn(Warning::BadValue { option: key, value: v }),
                },
                ("hv_debug", Some(v)) => match v {
                    "pagefault" => cl.debug_action = Some(DebugAction::PageFault),
                    "ud2" => cl.debug_action = Some(DebugAction::InvalidOpcode),
                    "panic" => cl.debug_action = Some(DebugAction::Panic),
                    "stack_overflow" => cl.debug_action = Some(DebugAction::StackOverflow(OverflowStack::Ring0)),
                    "nmi_stack_overflow" => cl.debug_action = Some(DebugAction::StackOverflow(OverflowStack::Nmi)),
                    "boot_stack_overflow" => cl.debug_action = Some(DebugAction::StackOverflow(OverflowStack::Boot)),
                    "fail_domain_grants" => cl.debug_action = Some(DebugAction::FailDomainGrants),
                    "fail_domain_frames" => cl.debug_action = Some(DebugAction::FailDomainFrames),
                    _ => cl.warn(Warning::BadValue { option: key, value: v }),
                },
                _ => cl.warn(Warning::UnknownOption(word)),
            }
        }
        cl
    }

    fn warn(&mut self, w: Warning<'a>) {
        match self.warnings.iter_mut().find(|s| s.is_none()) {
            Some(slot) => *slot = Some(w),
            None => self.dropped_warnings += 1,
        }
    }

    /// The warnings, in the order found.
    pub fn warnings(&self) -> impl Iterator<Item = &Warning<'a>> {
        self.warnings.iter().flatten()
    }

    /// How many warnings did not fit in the list.
    pub fn dropped_warnings(&self) -> usize {
        self.dropped_warnings
    }
}

/// Splits at the first ` -- ` (or a leading `-- `), as Xen does for dom0's part.
fn split_dom0(text: &str) -> (&str, &str) {
    let text = text.trim();
    if let Some(rest) = text.strip_prefix("--") {
        if rest.is_empty() || rest.starts_with(' ') {
            return ("", rest.trim());
        }
    }
    if let Some(own) = text.strip_suffix(" --") {
        return (own, "");
    }
    match text.find(" -- ") {
        Some(i) => (&text[..i], text[i + 4..].trim()),
        None => (text, ""),
    }
}

/// Parses a Xen size: a decimal number with an optional `B`, `K`, `M`, `G` or `T` suffix; a
/// bare number means bytes. Returns `None` for malformed text or overflow.
pub fn parse_size(s: &str) -> Option<u64> {
    let (digits, shift) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 10),
        b'm' | b'M' => (&s[..s.len() - 1], 20),
        b'g' | b'G' => (&s[..s.len() - 1], 30),
        b't' | b'T' => (&s[..s.len() - 1], 40),
        b'b' | b'B' => (&s[..s.len() - 1], 0),
        _ => (s, 0),
    };
    let n: u64 = digits.parse().ok()?;
    n.checked_mul(1u64 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domus_start_running_or_paused() {
        assert!(!CommandLine::parse("").domus_paused);
        assert!(CommandLine::parse("domu_start=paused").domus_paused);
        let cl = CommandLine::parse("domu_start=later");
        assert!(!cl.domus_paused);
        assert_eq!(cl.warnings().count(), 1);
    }

    #[test]
    fn idle_is_haltpoll_unless_told_halt_or_poll() {
        assert_eq!(CommandLine::parse("").idle, IdleMode::HaltPoll);
        assert_eq!(CommandLine::parse("idle=poll").idle, IdleMode::Poll);
        assert_eq!(CommandLine::parse("idle=poll idle=halt").idle, IdleMode::Halt);
        assert_eq!(CommandLine::parse("idle=halt idle=haltpoll").idle, IdleMode::HaltPoll);
        let cl = CommandLine::parse("idle=mwait");
        assert_eq!(cl.idle, IdleMode::HaltPoll);
        assert_eq!(cl.warnings().count(), 1);
    }

    #[test]
    fn maxcpus_takes_a_positive_count() {
        assert_eq!(CommandLine::parse("maxcpus=2").max_cpus, Some(2));
        for bad in ["maxcpus=0", "maxcpus=two", "maxcpus=-1"] {
            let cl = CommandLine::parse(bad);
            assert_eq!(cl.max_cpus, None, "{bad}");
            assert_eq!(cl.warnings().count(), 1, "{bad}");
        }
    }

    #[test]
    fn defaults_for_empty_line() {
        let cl = CommandLine::parse("");
        assert!(cl.console_com1);
        assert_eq!(cl.log_level, LogLevel::Info);
        assert!(!cl.noreboot);
        assert_eq!(cl.dom0_mem, None);
        assert_eq!(cl.max_cpus, None);
        assert_eq!(cl.dom0_cmdline, "");
        assert_eq!(cl.warnings().count(), 0);
    }

    #[test]
    fn xen_options_and_dom0_part() {
        let cl = CommandLine::parse("console=com1 loglvl=all noreboot dom0_mem=256M -- role=test shutdown=poweroff");
        assert_eq!(cl.log_level, LogLevel::All);
        assert!(cl.noreboot);
        assert_eq!(cl.dom0_mem, Some(256 << 20));
        assert_eq!(cl.dom0_cmdline, "role=test shutdown=poweroff");
        assert_eq!(cl.warnings().count(), 0);
    }

    #[test]
    fn unknown_and_bad_options_warn_but_parse_the_rest() {
        let cl = CommandLine::parse("frobnicate loglvl=loud dom0_mem=12Q noreboot");
        let w: Vec<_> = cl.warnings().copied().collect();
        assert_eq!(
            w,
            vec![
                Warning::UnknownOption("frobnicate"),
                Warning::BadValue { option: "loglvl", value: "loud" },
                Warning::BadValue { option: "dom0_mem", value: "12Q" },
            ]
        );
        assert!(cl.noreboot);
        assert_eq!(cl.log_level, LogLevel::Info);
    }

    #[test]
    fn warnings_beyond_capacity_are_counted() {
        let cl = CommandLine::parse("a b c d e f g h i j");
        assert_eq!(cl.warnings().count(), MAX_WARNINGS);
        assert_eq!(cl.dropped_warnings(), 2);
    }

    #[test]
    fn dom0_separator_edge_cases() {
        assert_eq!(split_dom0("-- x=1"), ("", "x=1"));
        assert_eq!(split_dom0("noreboot --"), ("noreboot", ""));
        assert_eq!(split_dom0("a=--b"), ("a=--b", ""));
        assert_eq!(split_dom0("a -- b -- c"), ("a", "b -- c"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("64k"), Some(64 << 10));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("99999999999T"), None);
        assert_eq!(parse_size("M"), None);
        assert_eq!(parse_size(""), None);
    }

    #[test]
    fn debug_actions() {
        assert_eq!(CommandLine::parse("hv_debug=pagefault").debug_action, Some(DebugAction::PageFault));
        assert_eq!(CommandLine::parse("hv_debug=panic").debug_action, Some(DebugAction::Panic));
        let overflow = |v: &str| CommandLine::parse(&format!("hv_debug={v}")).debug_action;
        assert_eq!(overflow("stack_overflow"), Some(DebugAction::StackOverflow(OverflowStack::Ring0)));
        assert_eq!(overflow("nmi_stack_overflow"), Some(DebugAction::StackOverflow(OverflowStack::Nmi)));
        assert_eq!(overflow("boot_stack_overflow"), Some(DebugAction::StackOverflow(OverflowStack::Boot)));
        assert_eq!(CommandLine::parse("hv_debug=fail_domain_grants").debug_action, Some(DebugAction::FailDomainGrants));
        assert_eq!(CommandLine::parse("hv_debug=fail_domain_frames").debug_action, Some(DebugAction::FailDomainFrames));
        assert_eq!(CommandLine::parse("hv_debug=nope").warnings().count(), 1);
    }
}
