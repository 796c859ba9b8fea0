//! Creating the boot-time domains from the boot module: a lone ELF becomes dom0; a `cpio`
//! bundle carries guest images and one `xl.cfg`-style file per domain (`dom0.cfg` is dom0,
//! every other `*.cfg` a domU with ids from 1). A refused config or image is reported with its
//! file, line and reason, and the other domains still start.

use crate::arch::x86_64::paging::DirectMap;
use crate::builder::{self, BuildRequest};
use crate::domain::{self, Machine};
use hypervisor::sched::DEFAULT_WEIGHT;
use hypervisor::xlcfg;

/// Event-channel ports a fresh domU's xenstore and console rings use: the first two ports
/// its empty table allocates (checked when they are allocated).
const STORE_PORT: u32 = 1;
const CONSOLE_PORT: u32 = 2;

/// Builds dom0 from a lone ELF and starts it. Returns only on failure.
pub fn start_single(machine: Machine, image: &[u8], cmdline: &str, dom0_mem: Option<u64>) -> Result<(), ()> {
    let mut machine = machine;
    let req = BuildRequest {
        id: 0,
        name: "Domain-0",
        image,
        cmdline,
        memory_bytes: dom0_mem,
        privileged: true,
        store_evtchn: 0,
        console_evtchn: 0,
    };
    match builder::build_domain(&req, &mut machine.mem) {
        Ok(built) => {
            if let Err(e) = machine.add_domain(built, DEFAULT_WEIGHT, 0) {
                log::error!("dom0 could not be set up: {e}");
                return Err(());
            }
            log::info!("Starting dom0 (command line: \"{cmdline}\")");
            domain::start(machine)
        }
        Err(e) => {
            log::error!("dom0 image refused: {e}");
            Err(())
        }
    }
}

/// Builds every domain a bundle describes and starts them. Returns only if none could start.
/// With `domus_paused` (`domu_start=paused`) and a dom0, the domUs start paused for dom0 to
/// unpause, as after `xl create -p`.
pub fn start_bundle(machine: Machine, archive: &[u8], dom0_mem: Option<u64>, domus_paused: bool) -> Result<(), ()> {
    let mut machine = machine;
    let plan = match xlcfg::plan_domains_from_archive(archive) {
        Ok(p) => p,
        Err(e) => {
            log::error!("boot bundle refused: {e}");
            return Err(());
        }
    };
    if plan.is_empty() {
        log::error!("boot bundle holds no *.cfg domain configuration");
        return Err(());
    }
    let mut started = 0;
    for outcome in &plan {
        for w in &outcome.warnings {
            log::warn!("{}", w.in_file(outcome.file));
        }
        let spec = match &outcome.result {
            Ok(spec) => spec,
            Err(e) => {
                log::error!("domain config refused: {}", e.in_file(outcome.file));
                continue;
            }
        };
        match build_one(&mut machine, spec, dom0_mem) {
            Ok(()) => {
                started += 1;
                log::info!(
                    "d{} ({}): created from {} ({}, {} MiB, weight {}, CPU {}, command line \"{}\")",
                    spec.domid,
                    spec.name,
                    outcome.file,
                    spec.kernel_path,
                    spec.memory_bytes >> 20,
                    spec.weight,
                    spec.cpu,
                    spec.cmdline
                );
            }
            Err(why) => log::error!("d{} ({}) from {}: {why}", spec.domid, spec.name, outcome.file),
        }
    }
    if started == 0 {
        log::error!("no domain of the bundle could be created");
        return Err(());
    }
    if !machine.domains.contains_key(&0) {
        log::warn!("the bundle has no usable dom0.cfg: running domUs without a control domain");
        if domus_paused {
            log::warn!("domu_start=paused ignored: no dom0 to unpause the domUs");
        }
    } else if domus_paused {
        use hypervisor::hypercalls::DomainControl;
        let domus: alloc::vec::Vec<u16> = machine.domains.values().map(|d| d.id).filter(|&id| id != 0).collect();
        for id in &domus {
            let _ = machine.pause(*id); // nothing runs yet: takes effect at once
        }
        log::info!("domUs {domus:?} start paused (domu_start=paused): dom0 unpauses them");
    }
    domain::start(machine)
}

fn build_one(
    machine: &mut Machine,
    spec: &xlcfg::DomainSpec,
    dom0_mem: Option<u64>,
) -> Result<(), alloc::string::String> {
    use alloc::string::ToString;
    let memory = if spec.is_dom0 { dom0_mem.unwrap_or(spec.memory_bytes) } else { spec.memory_bytes };
    // Checked before the build takes the domain's frames (add_domain checks again).
    if usize::from(spec.cpu) >= machine.scheds.len() {
        return Err(alloc::format!("cpus = {}, but {} CPU(s) are online", spec.cpu, machine.scheds.len()));
    }
    let req = BuildRequest {
        id: spec.domid,
        name: &spec.name,
        image: spec.kernel,
        cmdline: &spec.cmdline,
        memory_bytes: Some(memory),
        privileged: spec.is_dom0,
        store_evtchn: if spec.is_dom0 { 0 } else { STORE_PORT },
        console_evtchn: if spec.is_dom0 { 0 } else { CONSOLE_PORT },
    };
    let mem: &mut DirectMap = &mut machine.mem;
    let built =
        builder::build_domain(&req, mem).map_err(|e| alloc::format!("image {} refused: {e}", spec.kernel_path))?;
    let ring_frames = built.ring_frames;
    machine.add_domain(built, spec.weight, spec.cpu.into()).map_err(|e| e.to_string())?;
    if let Some((store_mfn, console_mfn)) = ring_frames {
        // Xen's `xc_dom_gnttab_seed`: the reserved references grant dom0, where the console
        // and xenstore backends run, the two ring frames (writable).
        use hypercall_abi::grant_table::{
            GrantEntryV1, GNTTAB_RESERVED_CONSOLE, GNTTAB_RESERVED_XENSTORE, GTF_PERMIT_ACCESS,
        };
        for (gref, mfn) in [(GNTTAB_RESERVED_CONSOLE, console_mfn), (GNTTAB_RESERVED_XENSTORE, store_mfn)] {
            let frame =
                u32::try_from(mfn).map_err(|_| alloc::format!("ring frame {mfn:#x} beyond a v1 grant entry"))?;
            let entry = GrantEntryV1 { flags: GTF_PERMIT_ACCESS, domid: 0, frame };
            if let Err(e) = machine.grants.set_entry(&mut machine.mem, spec.domid, gref, entry) {
                machine.destroy_domain_now(spec.domid);
                return Err(alloc::format!("seeding grant reference {gref}: {e:?}"));
            }
        }
    }
    if !spec.is_dom0 {
        // The rings' ports, unbound and reserved for dom0's backends (as xl does); allocated
        // in the domU's own name so this works whether or not dom0 exists.
        for want in [STORE_PORT, CONSOLE_PORT] {
            let got = machine.events.alloc_unbound(spec.domid, spec.domid, 0);
            if got != Ok(want) {
                machine.destroy_domain_now(spec.domid);
                return Err(alloc::format!("event channel for the rings: got {got:?}, start_info says port {want}"));
            }
        }
    }
    Ok(())
}
