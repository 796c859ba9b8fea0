//! `domctl` (#36) for the control domain: `getdomaininfo`, `pausedomain`, `unpausedomain`,
//! `destroydomain`. Any other caller gets `-EPERM`, a wrong interface version `-EACCES`.

use super::{Env, Outcome};
use core::mem::{offset_of, size_of};
use hypercall_abi::domctl::*;
use hypercall_abi::errno::Errno;

/// What `getdomaininfo` reports about one domain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DomainInfo {
    /// Domain id.
    pub id: u16,
    /// `XEN_DOMINF_*` flags.
    pub flags: u32,
    /// Pages it has.
    pub tot_pages: u64,
    /// Pages it may have.
    pub max_pages: u64,
    /// Machine frame of its shared_info.
    pub shared_info_frame: u64,
    /// CPU time used (ns).
    pub cpu_time_ns: u64,
    /// Width of its guest-physical addresses (Xen's `hap_paddr_bits`, from the CPU).
    pub gpaddr_bits: u8,
    /// `XEN_X86_EMU_*` flags (`arch_config.emulation_flags`).
    pub emulation_flags: u32,
}

/// The machine's domain management, as the control domain may use it.
pub trait DomainControl {
    /// The first domain whose id is `>= id` (Xen's `getdomaininfo` walks on to the next one).
    fn info_from(&self, id: u16) -> Option<DomainInfo>;
    /// Stops `id` from being scheduled, one more pause (Xen's `controller_pause_count`, at
    /// most 255: `Err(EOVERFLOW)`, see [`count_pause`]); `Err(ESRCH)` if absent. A domain
    /// running on another CPU is told to stop, and the call does not return to the guest
    /// before it has (Xen's `vcpu_sleep_sync`; the machine waits outside the handler).
    fn pause(&mut self, id: u16) -> Result<(), Errno>;
    /// Undoes one pause; `id` runs again when none is left. `Err(EINVAL)` if it has none.
    fn unpause(&mut self, id: u16) -> Result<(), Errno>;
    /// Shuts `id` (not the caller) down with a `SHUTDOWN_*` reason, as if it had asked:
    /// its teardown starts and the call returns without waiting for it. `Err(ESRCH)` if absent.
    fn shut_down(&mut self, id: u16, reason: u32) -> Result<(), Errno>;
    /// Destroys `id`, releasing everything it holds. `Err(ERESTART)`: its teardown waits for
    /// another CPU to let go of it; the call is made again until it is done.
    fn destroy(&mut self, id: u16) -> Result<(), Errno>;
    /// Whether `id` answers to domctl: it exists, or (the machine's override) its teardown
    /// ended while a `destroydomain` of it was being continued (in Xen the call holds a
    /// reference to the domain until it returns).
    fn domctl_target_exists(&self, id: u16) -> bool {
        self.info_from(id).is_some_and(|d| d.id == id)
    }
}

/// What a `pausedomain` does to the domain's pause count (Xen's `controller_pause_count`):
/// one more, at most 255 (else `-EOVERFLOW`, nothing changed).
pub fn count_pause(count: &mut u8) -> Result<(), Errno> {
    *count = count.checked_add(1).ok_or(Errno::EOVERFLOW)?;
    Ok(())
}

/// `domctl(op)`.
pub fn domctl(env: &mut dyn Env, a: [u64; 5]) -> Outcome {
    match run(env, a[0]) {
        Ok(()) => Outcome::Return(0),
        // Progress made, more to wait for: the same call again (never seen by the guest).
        // Only a destroy continues, and it counts nothing, so its rounds need no marking.
        Err(Errno::ERESTART) => Outcome::Continue(a),
        Err(e) => Outcome::Return(e.to_return()),
    }
}

/// Xen 4.17's `do_domctl` order: the structure is read (`-EFAULT`), its interface version
/// checked (`-EACCES`), the target looked up (`-ESRCH`; not for `getdomaininfo`, which
/// walks on to the next domain), and only then the caller's right (`-EPERM`).
fn run(env: &mut dyn Env, op_va: u64) -> Result<(), Errno> {
    let caller = env.domain();
    let mut op = [0u8; XEN_DOMCTL_SIZE];
    env.copy_from_guest(op_va, &mut op)?;
    let cmd = u32::from_le_bytes(op[0..4].try_into().unwrap_or_default());
    let version = u32::from_le_bytes(op[4..8].try_into().unwrap_or_default());
    let target = u16::from_le_bytes([op[8], op[9]]);
    if version != XEN_DOMCTL_INTERFACE_VERSION {
        return Err(Errno::EACCES);
    }
    let Some(ctl) = env.domain_control() else { return Err(Errno::ENOSYS) };
    if cmd != XEN_DOMCTL_GETDOMAININFO && !ctl.domctl_target_exists(target) {
        return Err(Errno::ESRCH);
    }
    if !caller.privileged {
        return Err(Errno::EPERM);
    }
    match cmd {
        // Xen 4.17 looks no further for a reserved id (DOMID_SELF included).
        XEN_DOMCTL_GETDOMAININFO if target >= hypercall_abi::mm::DOMID_FIRST_RESERVED => Err(Errno::EINVAL),
        XEN_DOMCTL_GETDOMAININFO => {
            let info = ctl.info_from(target).ok_or(Errno::ESRCH)?;
            let out = GetDomainInfo {
                domain: info.id,
                flags: info.flags,
                tot_pages: info.tot_pages,
                max_pages: info.max_pages,
                shared_info_frame: info.shared_info_frame,
                cpu_time: info.cpu_time_ns,
                nr_online_vcpus: 1,
                max_vcpu_id: 0,
                gpaddr_bits: info.gpaddr_bits,
                arch_config: [info.emulation_flags, 0],
                ..GetDomainInfo::default()
            };
            op[8..10].copy_from_slice(&info.id.to_le_bytes());
            // Xen's `getdomaininfo` clears the whole structure before it fills it: no byte of
            // the caller's request comes back in a field left at 0 (the rest of the union
            // does, as in Xen, which copies the whole `xen_domctl` back).
            let u = XEN_DOMCTL_U_OFFSET;
            let field = |off: usize, len: usize| u + off..u + off + len;
            op[u..u + size_of::<GetDomainInfo>()].fill(0);
            op[field(offset_of!(GetDomainInfo, domain), 2)].copy_from_slice(&out.domain.to_le_bytes());
            op[field(offset_of!(GetDomainInfo, flags), 4)].copy_from_slice(&out.flags.to_le_bytes());
            for (off, v) in [
                (offset_of!(GetDomainInfo, tot_pages), out.tot_pages),
                (offset_of!(GetDomainInfo, max_pages), out.max_pages),
                (offset_of!(GetDomainInfo, shared_info_frame), out.shared_info_frame),
                (offset_of!(GetDomainInfo, cpu_time), out.cpu_time),
            ] {
                op[field(off, 8)].copy_from_slice(&v.to_le_bytes());
            }
            op[field(offset_of!(GetDomainInfo, nr_online_vcpus), 4)]
                .copy_from_slice(&out.nr_online_vcpus.to_le_bytes());
            op[field(offset_of!(GetDomainInfo, max_vcpu_id), 4)].copy_from_slice(&out.max_vcpu_id.to_le_bytes());
            op[u + offset_of!(GetDomainInfo, gpaddr_bits)] = out.gpaddr_bits;
            op[field(offset_of!(GetDomainInfo, arch_config), 4)].copy_from_slice(&out.arch_config[0].to_le_bytes());
            env.copy_to_guest(op_va, &op)
        }
        // A domain may not pause or destroy itself through domctl (Xen: -EINVAL).
        XEN_DOMCTL_PAUSEDOMAIN | XEN_DOMCTL_DESTROYDOMAIN if target == caller.id => Err(Errno::EINVAL),
        XEN_DOMCTL_PAUSEDOMAIN => ctl.pause(target),
        XEN_DOMCTL_UNPAUSEDOMAIN => ctl.unpause(target),
        XEN_DOMCTL_DESTROYDOMAIN => ctl.destroy(target),
        _ => Err(Errno::ENOSYS),
    }
}
