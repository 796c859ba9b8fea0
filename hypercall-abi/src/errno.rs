//! Xen's error codes (`errno.h`): hypercalls return `-errno` in `rax` (Linux x86 numbering).

/// A Xen error number, stored positive (`Errno::EINVAL.0 == 22`); hypercalls return its
/// negation. `EINTR` and `ERESTART` are Xen-internal and never reach a guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Errno(pub i32);

macro_rules! errnos {
    ($($name:ident = $val:expr, $doc:expr;)*) => {
        impl Errno {
            $(#[doc = $doc] pub const $name: Errno = Errno($val);)*

            /// The symbolic name (`"EINVAL"`), or `None` for numbers Xen does not define.
            pub const fn name(self) -> Option<&'static str> {
                // Aliases (EWOULDBLOCK, EDEADLOCK) are listed after their primary name, so
                // the first match wins and gives the primary name.
                $(if self.0 == $val { return Some(stringify!($name)); })*
                None
            }
        }
        /// Every `(name, value)` pair of `errno.h`, aliases included (for tests and tables).
        pub const ALL: &[(&str, i32)] = &[$((stringify!($name), $val)),*];
    };
}

errnos! {
    EPERM = 1, "Operation not permitted.";
    ENOENT = 2, "No such file or directory.";
    ESRCH = 3, "No such process (e.g. no such domain).";
    EINTR = 4, "Interrupted system call (Xen-internal).";
    EIO = 5, "I/O error.";
    ENXIO = 6, "No such device or address.";
    E2BIG = 7, "Argument list too long.";
    ENOEXEC = 8, "Exec format error.";
    EBADF = 9, "Bad file number.";
    ECHILD = 10, "No child processes.";
    EAGAIN = 11, "Try again.";
    EWOULDBLOCK = 11, "Operation would block (alias of EAGAIN).";
    ENOMEM = 12, "Out of memory.";
    EACCES = 13, "Permission denied.";
    EFAULT = 14, "Bad address (a guest pointer could not be accessed).";
    EBUSY = 16, "Device or resource busy.";
    EEXIST = 17, "File exists.";
    EXDEV = 18, "Cross-device link.";
    ENODEV = 19, "No such device.";
    ENOTDIR = 20, "Not a directory.";
    EISDIR = 21, "Is a directory.";
    EINVAL = 22, "Invalid argument.";
    ENFILE = 23, "File table overflow.";
    EMFILE = 24, "Too many open files.";
    ENOSPC = 28, "No space left on device.";
    EROFS = 30, "Read-only file system.";
    EMLINK = 31, "Too many links.";
    EDOM = 33, "Math argument out of domain of function.";
    ERANGE = 34, "Math result not representable.";
    EDEADLK = 35, "Resource deadlock would occur.";
    EDEADLOCK = 35, "Resource deadlock would occur (alias of EDEADLK).";
    ENAMETOOLONG = 36, "File name too long.";
    ENOLCK = 37, "No record locks available.";
    ENOSYS = 38, "Function not implemented (unknown hypercall or sub-operation).";
    ENOTEMPTY = 39, "Directory not empty.";
    ENODATA = 61, "No data available.";
    ETIME = 62, "Timer expired (e.g. a one-shot timer already in the past).";
    EBADMSG = 74, "Not a data message.";
    EOVERFLOW = 75, "Value too large for defined data type.";
    EILSEQ = 84, "Illegal byte sequence.";
    ERESTART = 85, "Interrupted system call should be restarted (Xen-internal).";
    ENOTSOCK = 88, "Socket operation on non-socket.";
    EMSGSIZE = 90, "Message too large.";
    EOPNOTSUPP = 95, "Operation not supported.";
    EADDRINUSE = 98, "Address already in use.";
    EADDRNOTAVAIL = 99, "Cannot assign requested address.";
    ENOBUFS = 105, "No buffer space available.";
    EISCONN = 106, "Transport endpoint is already connected.";
    ENOTCONN = 107, "Transport endpoint is not connected.";
    ETIMEDOUT = 110, "Connection timed out.";
    ECONNREFUSED = 111, "Connection refused.";
}

impl Errno {
    /// The value a hypercall returns in `rax` for this error (`-errno`).
    pub const fn to_return(self) -> i64 {
        -(self.0 as i64)
    }

    /// Splits a raw hypercall return value: negative values in Xen's error range (-1..=-4095)
    /// become `Err`, everything else is `Ok` (some calls return positive data). A call whose
    /// data may itself fall in that range cannot be told from an error this way:
    /// `get_debugreg` of a breakpoint address in the last page of the address space, say.
    pub const fn check(ret: i64) -> Result<u64, Errno> {
        if ret < 0 && ret >= -4095 {
            Err(Errno(-ret as i32))
        } else {
            Ok(ret as u64)
        }
    }
}

impl core::fmt::Display for Errno {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.name() {
            Some(n) => write!(f, "-{} ({n})", self.0),
            None => write!(f, "-{}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_returns() {
        assert_eq!(Errno::ENOSYS.to_return(), -38);
        assert_eq!(Errno(11).name(), Some("EAGAIN"));
        assert_eq!(Errno(35).name(), Some("EDEADLK"));
        assert_eq!(Errno(500).name(), None);
        assert_eq!(Errno::check(-14), Err(Errno::EFAULT));
        assert_eq!(Errno::check(0x4_0011), Ok(0x4_0011));
    }
}
