//! Planning the boot-time domains of a bundle: which config is dom0, domain ids, kernels
//! resolved to archive members, duplicate names refused.

use super::*;

/// A domain ready to build: everything the domain builder needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainSpec<'a> {
    /// Domain id: 0 for dom0, domUs from 1 in archive order.
    pub domid: u16,
    /// Whether this is the privileged domain.
    pub is_dom0: bool,
    /// Domain name.
    pub name: String,
    /// Memory in bytes.
    pub memory_bytes: u64,
    /// Credit-scheduler weight.
    pub weight: u16,
    /// The physical CPU the vCPU is pinned to.
    pub cpu: u16,
    /// The guest image's path in the archive.
    pub kernel_path: String,
    /// The guest image (a slice of the boot module).
    pub kernel: &'a [u8],
    /// Guest command line.
    pub cmdline: String,
    /// Raw `disk` strings.
    pub disks: Vec<String>,
    /// Raw `vif` strings.
    pub vifs: Vec<String>,
}

/// What became of one config file of the archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigOutcome<'a> {
    /// The config's path in the archive.
    pub file: &'a str,
    /// Warnings to log, even when the config is accepted.
    pub warnings: Vec<Warning>,
    /// The domain to build, or why this config is refused.
    pub result: Result<DomainSpec<'a>, ConfigError>,
}

fn is_config(entry: &Entry<'_>) -> bool {
    entry.is_file() && entry.name.ends_with(".cfg")
}

/// Finds a regular file of the archive by the path a config gives (`./` or `/` prefixes allowed).
fn find_member<'a>(entries: &[Entry<'a>], path: &str) -> Option<&'a [u8]> {
    let path = path.trim_start_matches('/');
    let path = path.strip_prefix("./").unwrap_or(path);
    entries.iter().find(|e| e.is_file() && e.name == path).map(|e| e.data)
}

/// Plans the domains of a boot archive: one outcome per `*.cfg` member.
///
/// Rule for dom0: the member `dom0.cfg` at the archive root configures dom0 (domid 0). Every other
/// config is a domU, given ids 1, 2, ... in archive order; a refused config uses no id. Without a
/// `dom0.cfg`, or when it is refused, there is no dom0: no domU is ever promoted, so privilege
/// never depends on another file's typo. dom0's outcome comes first (it is built first and wins
/// name clashes); a later config reusing a name is refused.
pub fn plan_domains<'a>(entries: &[Entry<'a>]) -> Vec<ConfigOutcome<'a>> {
    let configs = entries.iter().filter(|e| is_config(e));
    let dom0 = configs.clone().filter(|e| e.name == DOM0_CONFIG_FILE);
    let domus = configs.filter(|e| e.name != DOM0_CONFIG_FILE);
    let mut outcomes: Vec<ConfigOutcome<'a>> = Vec::new();
    let mut next_domu_id: u16 = 1;
    for (entry, is_dom0) in dom0.map(|e| (e, true)).chain(domus.map(|e| (e, false))) {
        let (warnings, result) = plan_one(entries, entry, is_dom0, &outcomes, next_domu_id);
        if let Ok(spec) = &result {
            if !spec.is_dom0 {
                next_domu_id += 1;
            }
        }
        outcomes.push(ConfigOutcome { file: entry.name, warnings, result });
    }
    outcomes
}

/// Plans the domains of the archive `bytes` (see [`plan_domains`]).
pub fn plan_domains_from_archive(bytes: &[u8]) -> Result<Vec<ConfigOutcome<'_>>, crate::cpio::CpioError> {
    let entries = crate::cpio::Reader::new(bytes).collect::<Result<Vec<_>, _>>()?;
    Ok(plan_domains(&entries))
}

fn plan_one<'a>(
    entries: &[Entry<'a>],
    entry: &Entry<'a>,
    is_dom0: bool,
    earlier: &[ConfigOutcome<'a>],
    next_domu_id: u16,
) -> (Vec<Warning>, Result<DomainSpec<'a>, ConfigError>) {
    if earlier.iter().any(|o| o.file == entry.name) {
        return (Vec::new(), Err(ConfigError::new(0, Reason::DuplicateConfigFile)));
    }
    let text = match core::str::from_utf8(entry.data) {
        Ok(text) => text,
        Err(e) => {
            let valid = entry.data.get(..e.valid_up_to()).unwrap_or(&[]);
            let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
            let line = u32::try_from(line).unwrap_or(u32::MAX);
            return (Vec::new(), Err(ConfigError::new(line, Reason::NotUtf8)));
        }
    };
    let ParsedConfig { config, warnings } = match DomainConfig::parse(text, is_dom0) {
        Ok(parsed) => parsed,
        Err(e) => return (Vec::new(), Err(e)),
    };
    (warnings, spec_from_config(entries, config, is_dom0, earlier, next_domu_id))
}

fn spec_from_config<'a>(
    entries: &[Entry<'a>],
    config: DomainConfig,
    is_dom0: bool,
    earlier: &[ConfigOutcome<'a>],
    next_domu_id: u16,
) -> Result<DomainSpec<'a>, ConfigError> {
    let clash = earlier.iter().find(|o| o.result.as_ref().is_ok_and(|s| s.name == config.name));
    if let Some(other) = clash {
        let reason = Reason::DuplicateName { name: config.name.clone(), other_file: other.file.to_string() };
        return Err(ConfigError::new(config.name_line, reason));
    }
    let kernel = find_member(entries, &config.kernel)
        .ok_or_else(|| ConfigError::new(config.kernel_line, Reason::KernelNotFound(config.kernel.clone())))?;
    let domid = if is_dom0 { 0 } else { next_domu_id };
    if domid >= FIRST_RESERVED_DOMID {
        return Err(ConfigError::new(0, Reason::TooManyDomains));
    }
    Ok(DomainSpec {
        domid,
        is_dom0,
        memory_bytes: config.memory_bytes(),
        name: config.name,
        weight: config.weight,
        cpu: config.cpu,
        kernel_path: config.kernel,
        kernel,
        cmdline: config.cmdline,
        disks: config.disks,
        vifs: config.vifs,
    })
}
