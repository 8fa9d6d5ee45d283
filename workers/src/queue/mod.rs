//! The task queue every unit of work goes through.
//!
//! The [`Queue`] trait has the semantics of Amazon SQS, so that code above it runs unchanged on
//! one machine or on a fleet:
//! - delivery is at least once: a task may be delivered again, so handlers must be idempotent;
//! - a delivered task is *leased* for a visibility timeout; if the lease is neither extended
//!   nor acknowledged in time, the task becomes visible again and another worker gets it;
//! - a task that keeps failing (or keeps killing its worker) is moved to a dead-letter list
//!   after a maximum number of receives, with its last error.
//!
//! [`LocalQueue`] is the in-process backend, journalled on disk so that a killed run resumes;
//! The `cloud` crate's `SqsQueue` is Amazon SQS, with task state in a `store::Store`.

mod local;

use std::time::Duration;

pub use local::LocalQueue;

/// A task to run: a unique id, the group it belongs to, and a body (JSON text, opaque to the
/// queue).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Message {
    /// Unique among the tasks of a queue; pushing a known id again changes nothing. At most
    /// [`MAX_ID_LEN`] letters, digits, `.`, `-` and `_`, starting with `GROUP-` when the task
    /// has a group.
    pub id: String,
    /// What the handler needs to run the task.
    pub body: String,
    /// The job the task belongs to (empty: none). The queue keeps a group's finished and dead
    /// tasks apart from the others', so that what one job costs to look at does not grow with
    /// the rest of the queue's history.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
}

/// The longest task id a queue accepts.
pub const MAX_ID_LEN: usize = 240;

/// The longest group name a queue accepts.
pub const MAX_GROUP_LEN: usize = 100;

impl Message {
    /// A task of no group.
    pub fn new(id: impl Into<String>, body: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            body: body.into(),
            group: String::new(),
        }
    }

    /// Checks the id and the group: their length, their characters, and that the id names the
    /// group. Queues refuse such a message when it is pushed and bury it, outside every group,
    /// when one arrives from elsewhere; it never stops a worker.
    pub fn check(&self) -> Result<(), MessageError> {
        let plain = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        };
        if self.id.is_empty() || self.id.len() > MAX_ID_LEN || !plain(&self.id) {
            return Err(MessageError::Id {
                id: shown(&self.id),
                bytes: self.id.len(),
            });
        }
        if self.group.len() > MAX_GROUP_LEN || !plain(&self.group) {
            return Err(MessageError::Group {
                id: self.id.clone(),
                group: shown(&self.group),
                bytes: self.group.len(),
            });
        }
        let named = self
            .id
            .strip_prefix(&self.group)
            .is_some_and(|rest| rest.starts_with('-'));
        if !self.group.is_empty() && !named {
            return Err(MessageError::Unnamed {
                id: self.id.clone(),
                group: self.group.clone(),
            });
        }
        Ok(())
    }
}

/// At most 40 characters of `s`, quoted, with `…` when cut.
fn shown(s: &str) -> String {
    let mut t: String = s.chars().take(40).collect();
    if t.len() < s.len() {
        t.push('…');
    }
    format!("{t:?}")
}

/// Why a queue does not take a message.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// The id is empty, too long, or has other characters.
    #[error(
        "task id {id} ({bytes} bytes): expected 1 to {MAX_ID_LEN} letters, digits, '.', '-' and '_'"
    )]
    Id {
        /// The id, cut to 40 characters and quoted.
        id: String,
        /// Its length.
        bytes: usize,
    },
    /// The group is too long or has other characters.
    #[error(
        "task {id}: group {group} ({bytes} bytes): expected at most {MAX_GROUP_LEN} letters, digits, '.', '-' and '_'"
    )]
    Group {
        /// The task.
        id: String,
        /// The group, cut and quoted.
        group: String,
        /// Its length.
        bytes: usize,
    },
    /// The id does not start with `GROUP-`.
    #[error("task {id} does not name its group {group}")]
    Unnamed {
        /// The task.
        id: String,
        /// Its group.
        group: String,
    },
}

/// A task handed to one worker, until its lease expires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The task.
    pub message: Message,
    /// Names this delivery; acknowledging or extending an older delivery fails.
    pub receipt: String,
    /// How many times the task has been delivered, this time included.
    pub receives: u32,
}

/// A task that will not be delivered again, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeadLetter {
    /// The task.
    pub message: Message,
    /// The last error.
    pub error: String,
    /// Deliveries it had.
    pub receives: u32,
}

/// How many tasks are where.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Waiting to be delivered (including those waiting out a retry delay).
    pub pending: usize,
    /// Leased to a worker.
    pub in_flight: usize,
    /// Acknowledged (a remote queue counts them only per group: see [`Queue::counts_of`]).
    pub done: usize,
    /// Moved to the dead-letter list.
    pub dead: usize,
}

impl Counts {
    /// True when nothing is waiting or running.
    pub fn is_drained(&self) -> bool {
        self.pending == 0 && self.in_flight == 0
    }
}

/// What became of a failed delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterFailure {
    /// The task will be delivered again.
    Retried,
    /// The task went to the dead-letter list.
    DeadLettered,
}

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// A message the queue does not take (see [`Message::check`]).
    #[error(transparent)]
    BadMessage(#[from] MessageError),
    /// A key of the queue's state in its store is refused.
    #[error("naming task state: {0}")]
    StateKey(#[from] store::KeyError),
    /// The queue's own settings are refused (its name).
    #[error("{0}")]
    Config(String),
    /// The lease expired and the task was delivered again (or finished) since: the holder must
    /// stop treating the task as its own.
    #[error("the lease of task {id} was lost (its visibility timeout passed)")]
    LeaseLost {
        /// The task.
        id: String,
    },
    /// The journal could not be read or written.
    #[error("queue journal {path}: {error}")]
    Journal {
        /// The journal file.
        path: std::path::PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
    /// The remote queue (or the store that keeps its state) failed the request.
    #[error("{what}: {reason}")]
    Remote {
        /// What was being done.
        what: &'static str,
        /// The service's code and message, or the transport's error.
        reason: String,
    },
    /// The journal holds a line that is not a journal record.
    #[error("queue journal {path} line {line}: {reason}")]
    CorruptJournal {
        /// The journal file.
        path: std::path::PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        #[source]
        reason: JournalLineError,
    },
}

/// What is wrong with a journal line.
#[derive(Debug, thiserror::Error)]
pub enum JournalLineError {
    /// The line is not a journal record.
    #[error(transparent)]
    Parse(#[from] serde_json::Error),
    /// The line settles a task no earlier line pushed.
    #[error("task {id:?} was never pushed")]
    NeverPushed {
        /// The task.
        id: String,
    },
}

/// A queue of tasks with leases, shared by worker threads (and, for remote backends, processes).
pub trait Queue: Send + Sync + std::fmt::Debug {
    /// Adds a task. Returns false, changing nothing, when a task with this id is already known
    /// (pending, running, done or dead).
    fn push(&self, message: Message) -> Result<bool, QueueError>;

    /// Adds a task that becomes visible only after `delay` (rounded down to whole seconds on
    /// SQS, at most 15 minutes there). The local queue delivers it at once.
    fn push_after(&self, message: Message, delay: Duration) -> Result<bool, QueueError> {
        let _ = delay;
        self.push(message)
    }

    /// Takes the next visible task and leases it for `visibility`, waiting up to `wait` for one
    /// to appear. `None` when nothing became visible in time.
    fn lease(&self, visibility: Duration, wait: Duration) -> Result<Option<Lease>, QueueError>;

    /// Keeps a lease alive for `visibility` from now (a heartbeat).
    fn extend(&self, lease: &Lease, visibility: Duration) -> Result<(), QueueError>;

    /// Marks the task done; it will not be delivered again.
    fn ack(&self, lease: &Lease) -> Result<(), QueueError>;

    /// Gives the task back after a failure: visible again after `retry_after`, or dead-lettered
    /// with `error` when `retry_after` is `None` or the task has used up its receives.
    fn fail(
        &self,
        lease: &Lease,
        error: &str,
        retry_after: Option<Duration>,
    ) -> Result<AfterFailure, QueueError>;

    /// How many tasks are where.
    fn counts(&self) -> Result<Counts, QueueError>;

    /// The tasks in the dead-letter list.
    fn dead_letters(&self) -> Result<Vec<DeadLetter>, QueueError>;

    /// Tasks waiting and leased across the queue, and the finished and dead tasks of `group`
    /// alone: what it costs grows with the group, not with the queue's history.
    fn counts_of(&self, group: &str) -> Result<Counts, QueueError> {
        let all = self.counts()?;
        Ok(Counts {
            done: 0,
            dead: self.dead_letters_of(group)?.len(),
            ..all
        })
    }

    /// The tasks of `group` in the dead-letter list; what it costs grows with the group's dead
    /// tasks, not with the queue's.
    fn dead_letters_of(&self, group: &str) -> Result<Vec<DeadLetter>, QueueError> {
        Ok(self
            .dead_letters()?
            .into_iter()
            .filter(|d| d.message.group == group)
            .collect())
    }

    /// Buries a delivery that is not what its id and group claim (a forged or malformed
    /// message), outside every group: no job sees it as its own, and the task it names is
    /// neither marked done nor dead.
    fn refuse(&self, lease: &Lease, error: &str) -> Result<(), QueueError> {
        self.fail(lease, error, None).map(drop)
    }
}
