//! `Capacity`: how full a board is, for refusing posts before it is in trouble.
//!
//! A board answers what it can measure cheaply (`JobBoard::capacity`); the
//! limits (a maximum of queued jobs, a storage quota) are the conductor's, which
//! checks its posts against the last answer (see the conductor's `admission`).

/// How full a board is, as last measured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capacity {
    /// Jobs waiting to be claimed (UNCLAIMED), when asked for.
    pub queued: Option<u64>,
    /// The backing store's size and alarms, on a board with a storage quota (etcd).
    pub storage: Option<StorageUse>,
}

/// The backing store's size, as its quota counts it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageUse {
    /// The database's size in bytes (etcd: `dbSize` of the member answering).
    pub db_bytes: u64,
    /// An alarm raised on the store (etcd: `NOSPACE`, `CORRUPT`), by name.
    pub alarm: Option<String>,
}
