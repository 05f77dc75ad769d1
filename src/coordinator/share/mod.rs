//! Share groups (KIP-932): the state of each share-partition and its persistence.

pub mod codec;
pub mod partition;
