//! Exit codes. They are part of the interface: scripts and CI rely on them.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success; the master is accepted |
//! | 1 | a check failed (`rungs ladder check`) |
//! | 2 | usage or configuration error |
//! | 3 | an input is rejected: a failed master, non-media, or videos that cannot be compared |
//! | 4 | an input or output file could not be read or written |
//! | 5 | encoding failed: a task failed for good, or its output could not be assembled (or a fleet job failed) |
//! | 6 | a fill is incomplete: files are missing from appliances (see the report) |
//! | 130 | interrupted; running the same command again resumes |
//! | 70 | internal error (a bug in rungs) |

use std::process::ExitCode;

/// Success.
pub const OK: Code = Code(0);
/// A check failed (ladder gate).
pub const CHECK_FAILED: Code = Code(1);
/// Usage or configuration error.
pub const USAGE: Code = Code(2);
/// The master is rejected.
pub const REJECTED: Code = Code(3);
/// Reading or writing a file failed.
pub const IO: Code = Code(4);
/// Encoding failed.
pub const ENCODE_FAILED: Code = Code(5);
/// A fill run left files missing.
pub const INCOMPLETE: Code = Code(6);
/// Interrupted (resumable).
pub const INTERRUPTED: Code = Code(130);
/// A bug.
pub const INTERNAL: Code = Code(70);

/// An exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Code(pub u8);

impl From<Code> for ExitCode {
    fn from(c: Code) -> Self {
        ExitCode::from(c.0)
    }
}

/// An error that already knows its exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// The code to exit with.
    pub code: Code,
    /// What to print.
    pub message: String,
}

impl Failure {
    /// A usage or configuration error.
    pub fn usage(message: impl Into<String>) -> anyhow::Error {
        Failure {
            code: USAGE,
            message: message.into(),
        }
        .into()
    }

    /// An I/O error.
    pub fn io(message: impl Into<String>) -> anyhow::Error {
        Failure {
            code: IO,
            message: message.into(),
        }
        .into()
    }

    /// A rejected or unreadable master.
    pub fn rejected(message: impl Into<String>) -> anyhow::Error {
        Failure {
            code: REJECTED,
            message: message.into(),
        }
        .into()
    }
}

/// Maps an error to its exit code.
pub fn for_error(e: &anyhow::Error) -> Code {
    for cause in e.chain() {
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return f.code;
        }
        if let Some(e) = cause.downcast_ref::<pipeline::ingest::IngestError>() {
            return match e {
                pipeline::ingest::IngestError::Io { .. } => IO,
                pipeline::ingest::IngestError::Config(_) => USAGE,
            };
        }
        if let Some(e) = cause.downcast_ref::<workers::measure::MeasureError>() {
            use workers::measure::MeasureError as M;
            return match e {
                M::Media {
                    error: media::MediaError::Io { .. },
                    ..
                } => IO,
                _ => REJECTED,
            };
        }
        if cause.downcast_ref::<std::io::Error>().is_some() {
            return IO;
        }
    }
    INTERNAL
}
