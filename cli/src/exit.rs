//! Exit codes. They are part of the interface: scripts and CI rely on them. [`TABLE`] is the
//! one list of them: `--help` prints it and a test holds the README's table to it.

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

/// Every exit code and what it means, in the order they are documented.
pub const TABLE: &[(Code, &str)] = &[
    (OK, "success; the master is accepted"),
    (CHECK_FAILED, "a check failed (`rungs ladder check`)"),
    (USAGE, "usage or configuration error"),
    (
        REJECTED,
        "an input is rejected: a master that fails validation, a file that is not readable \
         media, or videos that cannot be compared",
    ),
    (IO, "an input or output file could not be read or written"),
    (
        ENCODE_FAILED,
        "encoding failed: a task failed for good, or its chunks could not be assembled; or a \
         fleet job failed",
    ),
    (
        INCOMPLETE,
        "a fill is incomplete: files are missing from appliances (the report says which and why)",
    ),
    (INTERNAL, "internal error (a bug in rungs)"),
    (INTERRUPTED, "interrupted; the same command resumes"),
];

/// The `Exit codes:` section of `--help`: the table, wrapped to 80 columns.
pub fn help_text() -> String {
    let mut out = String::from("Exit codes:");
    for (code, meaning) in TABLE {
        let mut line = format!("  {:<4}", code.0);
        for word in meaning.split(' ') {
            if line.len() + 1 + word.len() > 80 && line.trim().len() > 3 {
                out.push('\n');
                out.push_str(line.trim_end());
                line = " ".repeat(6);
            } else if !line.ends_with(' ') {
                line.push(' ');
            }
            line.push_str(word);
        }
        out.push('\n');
        out.push_str(line.trim_end());
    }
    out
}

/// The table as the README shows it, in Markdown (the test that holds the README to it).
#[cfg(test)]
fn markdown() -> String {
    let mut out = String::from("| code | meaning |\n|---|---|\n");
    for (code, meaning) in TABLE {
        out.push_str(&format!("| {} | {meaning} |\n", code.0));
    }
    out
}

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
        if let Some(e) = cause.downcast_ref::<pipeline::encode::EncodeJobError>() {
            return for_job(e);
        }
        if let Some(e) = cause.downcast_ref::<pipeline::fleet::FleetError>() {
            return for_fleet(e);
        }
        if let Some(e) = cause.downcast_ref::<pipeline::ingest::IngestError>() {
            return for_ingest(e);
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

fn for_ingest(e: &pipeline::ingest::IngestError) -> Code {
    match e {
        pipeline::ingest::IngestError::Io { .. } => IO,
        pipeline::ingest::IngestError::Config(_) => USAGE,
    }
}

/// The code of a failed encode job, local or fleet.
fn for_job(e: &pipeline::encode::EncodeJobError) -> Code {
    use pipeline::encode::EncodeJobError as E;
    match e {
        E::Rejected(_) => REJECTED,
        E::Ingest(e) => for_ingest(e),
        E::Config(_) => USAGE,
        E::Inputs(_) => USAGE,
        E::Missing { .. }
        | E::NotLocal { .. }
        | E::Key { .. }
        | E::Store { .. }
        | E::Object { .. }
        | E::Fetch { .. }
        | E::Upload { .. }
        | E::Queue(_)
        | E::File { .. }
        | E::Cache(_)
        | E::Busy { .. } => IO,
        E::Tasks { .. } | E::Failed(_) => ENCODE_FAILED,
        E::Interrupted => INTERRUPTED,
    }
}

/// The code of a failed fleet operation: a job name that names no job (or one in the wrong
/// state) is the user's; the rest is the store's or the queue's.
fn for_fleet(e: &pipeline::fleet::FleetError) -> Code {
    use pipeline::fleet::FleetError as F;
    match e {
        F::JobName { .. } | F::NoJob { .. } | F::NotFailed { .. } => USAGE,
        F::QueueName { .. }
        | F::Key(_)
        | F::Store(_)
        | F::Queue(_)
        | F::Folder { .. }
        | F::Cache(_) => IO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_and_help_give_the_one_table() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
            .expect("the README");
        let section = readme
            .split("## Exit codes\n\n")
            .nth(1)
            .expect("the README has an exit-code section");
        let table: String = section
            .lines()
            .take_while(|l| l.starts_with('|'))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            table,
            markdown(),
            "README.md's exit-code table differs from exit::TABLE"
        );
        let help = help_text();
        for (code, meaning) in TABLE {
            let words: Vec<&str> = help.split_whitespace().collect();
            let at = words
                .iter()
                .position(|w| *w == code.0.to_string())
                .unwrap_or_else(|| panic!("code {} is not in --help", code.0));
            let said: Vec<&str> = meaning.split(' ').collect();
            assert_eq!(
                &words[at + 1..at + 1 + said.len()],
                &said[..],
                "code {}",
                code.0
            );
        }
        assert!(help.lines().all(|l| l.len() <= 80), "{help}");
        let mut codes: Vec<u8> = TABLE.iter().map(|(c, _)| c.0).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), TABLE.len(), "a code is listed twice");
    }
}
