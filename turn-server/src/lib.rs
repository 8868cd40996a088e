//! Embedded TURN server for Switchyard.
//!
//! Not implemented yet (its own issue): the crate exists so the workspace has the shape the
//! design names. Until then clients receive no TURN servers in their JoinResponse.

/// Settings of the embedded TURN server (LiveKit's `turn:` section).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TurnConfig {
    /// `turn.enabled`.
    pub enabled: bool,
}
