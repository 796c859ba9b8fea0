//! The xenbus device state machine of Xen's `io/xenbus.h` as a type: the states, how they are
//! written in xenstore, and the transitions a frontend and a backend may legally make.
//!
//! The transition tables follow what Linux's xenbus drivers (blkfront/netfront and
//! blkback/netback) do: frontend `Initialising -> Initialised | Connected -> Closing -> Closed`,
//! backend `Initialising -> InitWait -> Connected -> Closing -> Closed`, the
//! `Reconfiguring -> Reconfigured -> Connected` detour, and reconnection from `Closed`.

/// `enum xenbus_state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum XenbusState {
    /// `XenbusStateUnknown` (no state node yet, or removed).
    Unknown = 0,
    /// `XenbusStateInitialising`.
    Initialising = 1,
    /// `XenbusStateInitWait`: early init done, waiting for the peer or hotplug scripts.
    InitWait = 2,
    /// `XenbusStateInitialised`: waiting for a connection from the peer.
    Initialised = 3,
    /// `XenbusStateConnected`.
    Connected = 4,
    /// `XenbusStateClosing`: closing because of an error or an unplug event.
    Closing = 5,
    /// `XenbusStateClosed`.
    Closed = 6,
    /// `XenbusStateReconfiguring`.
    Reconfiguring = 7,
    /// `XenbusStateReconfigured`.
    Reconfigured = 8,
}

/// Which end of a split device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XenbusRole {
    /// The guest-side driver (blkfront, netfront).
    Frontend,
    /// The driver domain's side (blkback, netback).
    Backend,
}

/// A refused state change or a malformed `state` node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XenbusError {
    /// The value is not a state.
    BadState,
    /// The role may not go from `from` to `to`.
    IllegalTransition {
        /// Current state.
        from: XenbusState,
        /// Requested state.
        to: XenbusState,
    },
}

impl XenbusState {
    /// All states in numeric order.
    pub const ALL: [XenbusState; 9] = [
        XenbusState::Unknown,
        XenbusState::Initialising,
        XenbusState::InitWait,
        XenbusState::Initialised,
        XenbusState::Connected,
        XenbusState::Closing,
        XenbusState::Closed,
        XenbusState::Reconfiguring,
        XenbusState::Reconfigured,
    ];

    /// Decodes a numeric state.
    pub fn from_u32(v: u32) -> Option<Self> {
        Self::ALL.get(v as usize).copied()
    }

    /// Parses the value of a `state` node read from xenstore (decimal, optionally followed by a
    /// NUL or newline); anything else from a peer is [`XenbusError::BadState`].
    pub fn parse(value: &[u8]) -> Result<Self, XenbusError> {
        let digits = match value.iter().position(|&c| c == 0 || c == b'\n') {
            Some(end) => &value[..end],
            None => value,
        };
        match digits {
            [d @ b'0'..=b'8'] => Ok(Self::ALL[usize::from(d - b'0')]),
            _ => Err(XenbusError::BadState),
        }
    }

    /// The decimal text written to a `state` node.
    pub fn as_str(self) -> &'static str {
        ["0", "1", "2", "3", "4", "5", "6", "7", "8"][self as usize]
    }

    /// Whether `role` may switch from `self` to `to`. Writing the current state again is
    /// always allowed (Linux's `xenbus_switch_state` treats it as a no-op).
    pub fn can_transition(self, role: XenbusRole, to: XenbusState) -> bool {
        use XenbusState::*;
        if self == to {
            return true;
        }
        let common = matches!(
            (self, to),
            (Unknown, Initialising)
                | (Connected, Reconfiguring)
                | (Reconfiguring, Reconfigured)
                | (Reconfigured, Connected)
                | (Closing, Closed)
                | (Closed, Unknown)
                | (Initialising | Connected | Reconfiguring | Reconfigured, Closing)
        );
        common
            || match role {
                // Linux's `xenbus_frontend_closed` goes to Closed from any state once the
                // backend closes (blkfront and netfront call it from Connected).
                XenbusRole::Frontend => matches!(
                    (self, to),
                    (Initialising, Initialised | Connected)
                        | (Initialised, Connected | Closing)
                        | (Initialising | Initialised | Connected, Closed)
                        | (Closed, Initialising)
                ),
                XenbusRole::Backend => matches!(
                    (self, to),
                    (Initialising, InitWait) | (InitWait, Connected | Closing) | (Closed, InitWait)
                ),
            }
    }
}

/// One end's state, changed only through legal transitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XenbusDevice {
    role: XenbusRole,
    state: XenbusState,
}

impl XenbusDevice {
    /// A new device end, in `Initialising` (what the toolstack writes when creating it).
    pub fn new(role: XenbusRole) -> Self {
        XenbusDevice { role, state: XenbusState::Initialising }
    }
    /// The role.
    pub fn role(&self) -> XenbusRole {
        self.role
    }
    /// The current state.
    pub fn state(&self) -> XenbusState {
        self.state
    }
    /// Switches to `to` if legal for this role; returns the text to write to the `state` node.
    pub fn switch(&mut self, to: XenbusState) -> Result<&'static str, XenbusError> {
        if !self.state.can_transition(self.role, to) {
            return Err(XenbusError::IllegalTransition { from: self.state, to });
        }
        self.state = to;
        Ok(to.as_str())
    }
}
