//! Domain configs in the subset of Xen's `xl.cfg(5)` syntax that boot-time domain creation needs,
//! and the plan that turns a `cpio` boot module (configs plus guest images) into domains.
//!
//! Syntax, as xl's own parser (`libxlu_cfg`) reads it:
//! - `key = value` settings, ended by a newline or `;`; `#` starts a comment; blank lines are fine;
//! - a value is a `"double"` or `'single'` quoted string (backslash escapes `\\ \" \' \n \t \r`
//!   in double quotes only), a number (decimal or `0x` hex), or a list `[ "a", "b" ]` of those;
//!   lists may span lines and may end with a trailing comma, as in xl;
//! - numeric keys also accept a quoted number (`memory = "512"`), because xl stores every atom as a
//!   string and converts on use.
//!
//! Not supported (refused with a reason): xl's `+=` append operator and octal numbers.
//!
//! Keys and defaults (see [`DomainConfig`]): `name` (required except in `dom0.cfg`, where it
//! defaults to `Domain-0`), `memory` in MiB (default 32, libxl's default `max_memkb`), `vcpus`
//! and `maxvcpus` (only 1 for now), `kernel` (required: a member of the archive), `cmdline`,
//! `root`, `extra` (combined as xl does), `cpu_weight` or its alias `weight` (1..=65535, default
//! 256 as Xen's credit scheduler), `cpus` (the one physical CPU the vCPU is pinned to, default
//! 0; xl's CPU lists and ranges are not supported), `type = "pv"` / `builder = "generic"`, `disk` and `vif` lists
//! (kept as raw strings). Unknown keys are a [`Warning`], not an error: xl ignores them silently,
//! and a warning still catches typos. A key set twice is an error (xl would let the last one win;
//! refusing is the safer reading of an untrusted config).

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use crate::cpio::Entry;

/// Memory of a domain whose config has no `memory` key, in MiB (libxl's default `max_memkb`).
pub const DEFAULT_MEMORY_MIB: u64 = 32;
/// Largest `memory` accepted, in MiB (1 TiB): keeps byte counts far from overflow.
pub const MAX_MEMORY_MIB: u64 = 1 << 20;
/// Credit-scheduler weight of a domain whose config has no weight (Xen's `CSCHED_DEFAULT_WEIGHT`).
pub const DEFAULT_WEIGHT: u16 = 256;
/// The archive member that configures the privileged domain.
pub const DOM0_CONFIG_FILE: &str = "dom0.cfg";
/// Name of dom0 when `dom0.cfg` has no `name`, as Xen calls it; refused for any domU.
pub const DOM0_NAME: &str = "Domain-0";
/// Highest CPU number `cpus` may name (whether that CPU is online is checked when the domain
/// is created).
pub const MAX_CPU_NUMBER: u64 = 63;
/// Longest domain name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 64;
/// First domain id Xen reserves for special domains (`DOMID_FIRST_RESERVED`).
pub const FIRST_RESERVED_DOMID: u16 = 0x7ff0;

/// Why a config is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The file is not UTF-8.
    NotUtf8,
    /// The text does not follow the syntax; says what was expected.
    Syntax(&'static str),
    /// xl's `+=` operator, which this parser does not implement.
    AppendUnsupported,
    /// A key set a second time.
    DuplicateKey {
        /// The key.
        key: String,
        /// Line of the first setting.
        first_line: u32,
    },
    /// A required key is absent.
    MissingKey(&'static str),
    /// A key has a value of the wrong shape.
    WrongType {
        /// The key.
        key: String,
        /// What it needs.
        expected: &'static str,
    },
    /// A number does not parse.
    BadNumber {
        /// The key.
        key: &'static str,
        /// The text given.
        text: String,
    },
    /// A number is outside its range.
    OutOfRange {
        /// The key.
        key: &'static str,
        /// The value given.
        value: u64,
        /// Smallest accepted.
        min: u64,
        /// Largest accepted.
        max: u64,
    },
    /// More than one vCPU asked for; only one is supported for now.
    UnsupportedVcpus(u64),
    /// A setting that would change the guest in a way not supported yet: refused rather
    /// than ignored, so the guest never boots without what its config asked for.
    Unsupported {
        /// The key.
        key: &'static str,
        /// What is not supported.
        why: &'static str,
    },
    /// A guest type other than PV.
    UnsupportedType(String),
    /// The domain name is unusable; says why.
    BadName(&'static str),
    /// `kernel` names no regular file of the archive.
    KernelNotFound(String),
    /// Another config already uses this domain name.
    DuplicateName {
        /// The name.
        name: String,
        /// The config file that has it.
        other_file: String,
    },
    /// The archive holds two members with this config's path.
    DuplicateConfigFile,
    /// No domain ids are left below [`FIRST_RESERVED_DOMID`].
    TooManyDomains,
    /// The guest command line does not fit `start_info.cmd_line` (1023 bytes and a NUL).
    CmdlineTooLong(usize),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotUtf8 => write!(f, "file is not UTF-8 text"),
            Self::Syntax(what) => write!(f, "syntax error: {what}"),
            Self::AppendUnsupported => write!(f, "the '+=' operator is not supported"),
            Self::DuplicateKey { key, first_line } => {
                write!(f, "'{key}' is set twice (first on line {first_line})")
            }
            Self::MissingKey(key) => write!(f, "required key '{key}' is missing"),
            Self::WrongType { key, expected } => write!(f, "'{key}' must be {expected}"),
            Self::BadNumber { key, text } => write!(f, "'{key}': '{text}' is not a number"),
            Self::OutOfRange { key, value, min, max } => {
                write!(f, "'{key}' = {value} is out of range ({min}..={max})")
            }
            Self::UnsupportedVcpus(n) => write!(f, "vcpus = {n}: only 1 vCPU per domain for now"),
            Self::Unsupported { key, why } => write!(f, "'{key}': {why}"),
            Self::UnsupportedType(t) => write!(f, "guest type '{t}' is not supported (only pv)"),
            Self::BadName(why) => write!(f, "bad domain name: {why}"),
            Self::KernelNotFound(path) => write!(f, "kernel '{path}' is not a file in the archive"),
            Self::DuplicateName { name, other_file } => {
                write!(f, "domain name '{name}' is already used by {other_file}")
            }
            Self::DuplicateConfigFile => write!(f, "the archive holds this config file twice"),
            Self::TooManyDomains => write!(f, "no domain ids left"),
            Self::CmdlineTooLong(n) => {
                write!(f, "the command line is {n} bytes; start_info holds at most {MAX_CMDLINE_BYTES}")
            }
        }
    }
}

/// A refused config: where (1-based line, 0 for the whole file) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line of the offending setting; 0 when the error concerns the whole file.
    pub line: u32,
    /// What is wrong.
    pub reason: Reason,
}

impl ConfigError {
    fn new(line: u32, reason: Reason) -> Self {
        Self { line, reason }
    }

    /// Displays as `FILE:LINE: reason` (or `FILE: reason` for whole-file errors).
    pub fn in_file<'e>(&'e self, file: &'e str) -> InFile<'e, Reason> {
        InFile { file, line: self.line, what: &self.reason }
    }
}

/// Something worth logging that does not refuse the config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WarningKind {
    /// A key this hypervisor does not know; ignored.
    UnknownKey(String),
    /// `cmdline` is set, so `root` and `extra` are ignored (as xl does).
    CmdlineOverridesRootExtra,
}

impl fmt::Display for WarningKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownKey(key) => write!(f, "warning: unknown key '{key}' ignored"),
            Self::CmdlineOverridesRootExtra => {
                write!(f, "warning: ignoring root= and extra= in favour of cmdline=")
            }
        }
    }
}

/// A warning and the line it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// 1-based line.
    pub line: u32,
    /// What it is about.
    pub kind: WarningKind,
}

impl Warning {
    /// Displays as `FILE:LINE: warning: ...`.
    pub fn in_file<'e>(&'e self, file: &'e str) -> InFile<'e, WarningKind> {
        InFile { file, line: self.line, what: &self.kind }
    }
}

/// A message located in a file, displayed as `FILE:LINE: message`.
pub struct InFile<'e, T> {
    file: &'e str,
    line: u32,
    what: &'e T,
}

impl<T: fmt::Display> fmt::Display for InFile<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.what)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.what)
        }
    }
}

/// A setting's value. Atoms keep their text, as xl's parser does; numbers convert on use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A quoted string (unescaped) or a bare number (its text).
    Atom(String),
    /// A `[ ... ]` list of atoms.
    List(Vec<String>),
}

/// One `key = value` setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    /// The key.
    pub key: String,
    /// The value.
    pub value: Value,
    /// 1-based line of the key.
    pub line: u32,
}

#[derive(Debug, PartialEq, Eq)]
enum Token<'t> {
    Key(&'t str),
    Equals,
    PlusEquals,
    Atom(String),
    Open,
    Close,
    Comma,
    Semicolon,
    Newline,
    End,
}

/// Splits config text into tokens, tracking the line. Copyable so that the parser can peek.
#[derive(Clone, Copy)]
struct Lexer<'t> {
    text: &'t str,
    pos: usize,
    line: u32,
}

impl<'t> Lexer<'t> {
    fn error(&self, what: &'static str) -> ConfigError {
        ConfigError::new(self.line, Reason::Syntax(what))
    }

    fn peek_byte(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    /// Advances over bytes while `keep` holds; returns the text passed over.
    fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> &'t str {
        let start = self.pos;
        while self.peek_byte().is_some_and(&keep) {
            self.pos += 1;
        }
        // The stop byte is ASCII (or the end), so both ends are char boundaries.
        self.text.get(start..self.pos).unwrap_or("")
    }

    /// The next token and the line it starts on.
    fn next(&mut self) -> Result<(Token<'t>, u32), ConfigError> {
        self.take_while(|b| b == b' ' || b == b'\t' || b == b'\r');
        if self.peek_byte() == Some(b'#') {
            self.take_while(|b| b != b'\n');
        }
        let line = self.line;
        let Some(byte) = self.peek_byte() else {
            return Ok((Token::End, line));
        };
        let token = match byte {
            b'\n' => {
                self.pos += 1;
                self.line = self.line.saturating_add(1);
                Token::Newline
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                Token::Key(self.take_while(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.'))
            }
            b'0'..=b'9' => {
                let text = self.take_while(|b| b.is_ascii_alphanumeric() || b == b'.');
                Token::Atom(text.to_string())
            }
            b'"' | b'\'' => Token::Atom(self.quoted(byte)?),
            b'=' => self.punct(1, Token::Equals),
            b'+' if self.text.as_bytes().get(self.pos + 1) == Some(&b'=') => self.punct(2, Token::PlusEquals),
            b'[' => self.punct(1, Token::Open),
            b']' => self.punct(1, Token::Close),
            b',' => self.punct(1, Token::Comma),
            b';' => self.punct(1, Token::Semicolon),
            _ => return Err(self.error("unexpected character")),
        };
        Ok((token, line))
    }

    fn punct(&mut self, len: usize, token: Token<'t>) -> Token<'t> {
        self.pos += len;
        token
    }

    /// A quoted string starting at the opening `quote`; escapes only inside double quotes.
    fn quoted(&mut self, quote: u8) -> Result<String, ConfigError> {
        self.pos += 1;
        let mut out = String::new();
        let rest = self.text.get(self.pos..).unwrap_or("");
        let mut chars = rest.char_indices();
        while let Some((at, c)) = chars.next() {
            match c {
                '\n' => return Err(self.error("string not closed on its line")),
                c if c as u32 == quote as u32 => {
                    self.pos += at + 1;
                    return Ok(out);
                }
                '\\' if quote == b'"' => {
                    let escaped = match chars.next().map(|(_, c)| c) {
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some('r') => '\r',
                        Some(c @ ('\\' | '"' | '\'')) => c,
                        _ => return Err(self.error("unknown escape in string")),
                    };
                    out.push(escaped);
                }
                c => out.push(c),
            }
        }
        Err(self.error("string not closed"))
    }
}

/// Parses config text into its settings, in file order. Checks syntax only, not keys.
pub fn parse_settings(text: &str) -> Result<Vec<Setting>, ConfigError> {
    let mut lexer = Lexer { text, pos: 0, line: 1 };
    let mut settings = Vec::new();
    loop {
        let (key, line) = match lexer.next()? {
            (Token::End, _) => return Ok(settings),
            (Token::Newline | Token::Semicolon, _) => continue,
            (Token::Key(key), line) => (key, line),
            (_, at) => return Err(syntax(at, "expected a key")),
        };
        match lexer.next()? {
            (Token::Equals, _) => {}
            (Token::PlusEquals, _) => return Err(ConfigError::new(line, Reason::AppendUnsupported)),
            (_, at) => return Err(syntax(at, "expected '=' after the key")),
        }
        let value = parse_value(&mut lexer)?;
        settings.push(Setting { key: key.to_string(), value, line });
        match lexer.next()? {
            (Token::Newline | Token::Semicolon, _) => {}
            (Token::End, _) => return Ok(settings),
            (_, at) => return Err(syntax(at, "expected the end of the line after the value")),
        }
    }
}

/// A syntax error at the token that starts on line `at` (a newline token is on the line it
/// ends, so a value missing at the end of a line is reported on that line).
fn syntax(at: u32, what: &'static str) -> ConfigError {
    ConfigError::new(at, Reason::Syntax(what))
}

fn parse_value(lexer: &mut Lexer<'_>) -> Result<Value, ConfigError> {
    match lexer.next()? {
        (Token::Atom(text), _) => Ok(Value::Atom(text)),
        (Token::Open, _) => parse_list(lexer).map(Value::List),
        (_, at) => Err(syntax(at, "expected a value (string, number or list)")),
    }
}

/// The items of a list whose `[` was just read; newlines may appear between items.
fn parse_list(lexer: &mut Lexer<'_>) -> Result<Vec<String>, ConfigError> {
    let mut items = Vec::new();
    loop {
        match next_skipping_newlines(lexer)? {
            (Token::Close, _) => return Ok(items),
            (Token::Atom(text), _) => items.push(text),
            (_, at) => return Err(syntax(at, "expected a list item or ']'")),
        }
        match next_skipping_newlines(lexer)? {
            (Token::Comma, _) => {}
            (Token::Close, _) => return Ok(items),
            (_, at) => return Err(syntax(at, "expected ',' or ']' in the list")),
        }
    }
}

fn next_skipping_newlines<'t>(lexer: &mut Lexer<'t>) -> Result<(Token<'t>, u32), ConfigError> {
    loop {
        match lexer.next()? {
            (Token::Newline, _) => {}
            (Token::End, _) => return Err(lexer.error("list not closed with ']'")),
            token => return Ok(token),
        }
    }
}

/// Parses xl's number forms we accept: decimal, or hex with `0x`. Octal (leading 0) is refused
/// rather than misread, because xl's `strtol(.., 0)` would read `010` as 8.
fn parse_number(text: &str) -> Option<u64> {
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).ok();
    }
    if text.len() > 1 && text.starts_with('0') {
        return None;
    }
    text.parse().ok()
}

/// A domain's settings, checked and with defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainConfig {
    /// Domain name (`name`; `Domain-0` by default in `dom0.cfg`).
    pub name: String,
    /// Line of `name`, 0 when defaulted (for errors found later, such as duplicate names).
    pub name_line: u32,
    /// Memory in MiB (`memory`, default [`DEFAULT_MEMORY_MIB`]).
    pub memory_mib: u64,
    /// Path of the guest image inside the archive (`kernel`), as written.
    pub kernel: String,
    /// Line of `kernel`.
    pub kernel_line: u32,
    /// Guest command line: `cmdline`, else `root=ROOT EXTRA`, else `extra` (xl's rule).
    pub cmdline: String,
    /// Credit-scheduler weight (`cpu_weight` or `weight`, default [`DEFAULT_WEIGHT`]).
    pub weight: u16,
    /// The physical CPU the vCPU is pinned to (`cpus`, default 0).
    pub cpu: u16,
    /// `disk` list, raw strings.
    pub disks: Vec<String>,
    /// `vif` list, raw strings.
    pub vifs: Vec<String>,
}

/// A parsed config and the warnings met on the way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedConfig {
    /// The domain's settings.
    pub config: DomainConfig,
    /// Unknown keys and the like.
    pub warnings: Vec<Warning>,
}

/// Keys read by [`DomainConfig::parse`] (after [`canonical_key`]).
#[rustfmt::skip]
const KNOWN_KEYS: &[&str] = &[
    "name", "memory", "vcpus", "maxvcpus", "kernel", "cmdline", "root", "extra", "cpu_weight",
    "cpus", "type", "builder", "disk", "vif", "maxmem",
];

/// The key a setting counts as: `weight` is our short alias of xl's `cpu_weight`.
fn canonical_key(key: &str) -> &str {
    if key == "weight" {
        "cpu_weight"
    } else {
        key
    }
}

/// Looks settings up by key, remembering their lines.
struct Settings<'s>(&'s [Setting]);

impl<'s> Settings<'s> {
    fn get(&self, key: &str) -> Option<&'s Setting> {
        self.0.iter().find(|s| canonical_key(&s.key) == key)
    }

    fn string(&self, key: &str) -> Result<Option<(&'s str, u32)>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Setting { value: Value::Atom(text), line, .. }) => Ok(Some((text, *line))),
            Some(s) => Err(wrong_type(s, "a string")),
        }
    }

    fn list(&self, key: &str) -> Result<Vec<String>, ConfigError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Setting { value: Value::List(items), .. }) => Ok(items.clone()),
            Some(s) => Err(wrong_type(s, "a list [ ... ]")),
        }
    }

    /// A number in `min..=max`, or `default` when absent.
    fn number(&self, key: &'static str, default: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
        let Some((text, line)) = self.string(key)? else {
            return Ok(default);
        };
        let value = parse_number(text)
            .ok_or_else(|| ConfigError::new(line, Reason::BadNumber { key, text: text.to_string() }))?;
        if !(min..=max).contains(&value) {
            return Err(ConfigError::new(line, Reason::OutOfRange { key, value, min, max }));
        }
        Ok(value)
    }
}

fn wrong_type(setting: &Setting, expected: &'static str) -> ConfigError {
    ConfigError::new(setting.line, Reason::WrongType { key: setting.key.clone(), expected })
}

impl DomainConfig {
    /// Memory in bytes (cannot overflow: `memory_mib` is at most [`MAX_MEMORY_MIB`]).
    pub fn memory_bytes(&self) -> u64 {
        self.memory_mib << 20
    }

    /// Parses and checks one config file. `is_dom0` lets `name` default to [`DOM0_NAME`] and
    /// reserves that name for dom0.
    pub fn parse(text: &str, is_dom0: bool) -> Result<ParsedConfig, ConfigError> {
        let settings = parse_settings(text)?;
        let mut warnings = Vec::new();
        for (i, setting) in settings.iter().enumerate() {
            let key = canonical_key(&setting.key);
            if let Some(first) = settings[..i].iter().find(|s| canonical_key(&s.key) == key) {
                let key = setting.key.clone();
                return Err(ConfigError::new(setting.line, Reason::DuplicateKey { key, first_line: first.line }));
            }
            if !KNOWN_KEYS.contains(&key) {
                let kind = WarningKind::UnknownKey(setting.key.clone());
                warnings.push(Warning { line: setting.line, kind });
            }
        }
        let s = Settings(&settings);

        let (name, name_line) = match s.string("name")? {
            Some((name, line)) => (name, line),
            None if is_dom0 => (DOM0_NAME, 0),
            None => return Err(ConfigError::new(0, Reason::MissingKey("name"))),
        };
        check_name(name, is_dom0).map_err(|why| ConfigError::new(name_line, Reason::BadName(why)))?;

        let memory_mib = s.number("memory", DEFAULT_MEMORY_MIB, 1, MAX_MEMORY_MIB)?;
        // A domain may grow back to the memory it was built with, never past it.
        if s.number("maxmem", memory_mib, 1, MAX_MEMORY_MIB)? != memory_mib {
            let line = s.get("maxmem").map_or(0, |st| st.line);
            let why = "only maxmem = memory is supported (a domain cannot grow past the memory it is built with)";
            return Err(ConfigError::new(line, Reason::Unsupported { key: "maxmem", why }));
        }
        // xl would pass it as the boot module; starting the guest without it would hide that.
        if let Some(st) = s.get("ramdisk") {
            let why = "a ramdisk (boot module) is not passed to guests yet";
            return Err(ConfigError::new(st.line, Reason::Unsupported { key: "ramdisk", why }));
        }
        for key in ["vcpus", "maxvcpus"] {
            let vcpus = s.number(key, 1, 1, u64::MAX)?;
            if vcpus != 1 {
                let line = s.get(key).map_or(0, |st| st.line);
                return Err(ConfigError::new(line, Reason::UnsupportedVcpus(vcpus)));
            }
        }
        let (kernel, kernel_line) = s.string("kernel")?.ok_or(ConfigError::new(0, Reason::MissingKey("kernel")))?;

        let weight = s.number("cpu_weight", DEFAULT_WEIGHT.into(), 1, u16::MAX.into())?;
        let weight = u16::try_from(weight).unwrap_or(DEFAULT_WEIGHT); // in range: checked above

        let cpu = s.number("cpus", 0, 0, MAX_CPU_NUMBER)? as u16; // in range: checked

        check_guest_type(&s)?;
        let cmdline = combine_cmdline(&s, &mut warnings)?;
        let config = DomainConfig {
            name: name.to_string(),
            name_line,
            memory_mib,
            kernel: kernel.to_string(),
            kernel_line,
            cmdline,
            weight,
            cpu,
            disks: s.list("disk")?,
            vifs: s.list("vif")?,
        };
        Ok(ParsedConfig { config, warnings })
    }
}

/// Our naming rule: names appear in logs, xenstore paths and `xl` commands (which also take
/// numeric domain ids, hence no all-digit names).
fn check_name(name: &str, is_dom0: bool) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty");
    }
    if name.len() > MAX_NAME_LEN {
        return Err("longer than 64 bytes");
    }
    if !name.bytes().all(|b| b.is_ascii_graphic() && b != b'/') {
        return Err("only printable ASCII without spaces or '/' is allowed");
    }
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return Err("all digits (would read as a domain id)");
    }
    if !is_dom0 && name == DOM0_NAME {
        return Err("Domain-0 is reserved for dom0 (dom0.cfg)");
    }
    Ok(())
}

/// Accepts only PV: `type = "pv"` (xl 4.10+) or the older `builder = "generic"`.
fn check_guest_type(s: &Settings<'_>) -> Result<(), ConfigError> {
    for (key, pv_word) in [("type", "pv"), ("builder", "generic")] {
        if let Some((value, line)) = s.string(key)? {
            if value != pv_word {
                return Err(ConfigError::new(line, Reason::UnsupportedType(value.to_string())));
            }
        }
    }
    Ok(())
}

/// Longest guest command line: `start_info.cmd_line` is 1024 bytes with its NUL
/// (`MAX_GUEST_CMDLINE`). Xen's toolstack cuts a longer one; it is refused here instead, so
/// that no option at its end is silently lost.
pub const MAX_CMDLINE_BYTES: usize = hypercall_abi::start_info::MAX_GUEST_CMDLINE - 1;

/// xl's `parse_cmdline`: `cmdline` wins over `root`/`extra`; otherwise `root=ROOT EXTRA`,
/// `root=ROOT` or `EXTRA`.
/// Refused on the line of the longest part if the result does not fit `start_info`.
fn combine_cmdline(s: &Settings<'_>, warnings: &mut Vec<Warning>) -> Result<String, ConfigError> {
    let root = s.string("root")?;
    let extra = s.string("extra")?;
    let fits = |text: String, line: u32| {
        if text.len() > MAX_CMDLINE_BYTES {
            Err(ConfigError::new(line, Reason::CmdlineTooLong(text.len())))
        } else {
            Ok(text)
        }
    };
    if let Some((cmdline, line)) = s.string("cmdline")? {
        if root.is_some() || extra.is_some() {
            warnings.push(Warning { line, kind: WarningKind::CmdlineOverridesRootExtra });
        }
        return fits(cmdline.to_string(), line);
    }
    let longest_line = [root, extra].into_iter().flatten().max_by_key(|(text, _)| text.len()).map_or(0, |(_, l)| l);
    let text = match (root, extra) {
        (Some((root, _)), Some((extra, _))) => alloc::format!("root={root} {extra}"),
        (Some((root, _)), None) => alloc::format!("root={root}"),
        (None, extra) => extra.map_or("", |(text, _)| text).to_string(),
    };
    fits(text, longest_line)
}

mod plan;
pub use plan::{plan_domains, plan_domains_from_archive, ConfigOutcome, DomainSpec};

#[cfg(test)]
mod tests;
