//! `Error`: why the daemon could not start or had to stop.

/// Everything the conductor library fails with (the bins wrap it in `anyhow`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is invalid; the message names it and where it came from.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The job board refused or failed an operation the daemon cannot do without.
    #[error(transparent)]
    Board(#[from] jobboard::Error),
    /// A local resource (the data dir, the listener) failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("grpc server: {0}")]
    Serve(String),
    /// The board session given to the daemon (`Daemon::board`) was lost: every
    /// job was stopped and nothing more was written; other conductors take the
    /// jobs over. A session the daemon opened itself is replaced instead.
    #[error("board session lost (lease expired or revoked); every running job was stopped")]
    SessionLost,
}

impl Error {
    /// Whether this is the operator's to fix in the configuration or the deployment (exit status 2).
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            Error::Config(_)
                | Error::Board(jobboard::Error::InvalidInput(_))
                // A board of a newer release: restarting cannot help, the operator must act.
                | Error::Board(jobboard::Error::UnsupportedFormat { .. })
        )
    }
}
