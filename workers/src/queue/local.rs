//! The in-process queue, journalled on disk.
//!
//! Every change is appended to a journal of JSON lines before it takes effect in memory. When
//! the queue is opened again (after a crash, a `kill -9`, or a normal exit), the journal is
//! replayed: tasks that were leased when the process died are pending again (their worker is
//! gone, and the death is not counted against them), acknowledged tasks stay done, and failed
//! deliveries keep counting, so only a task that itself fails ends in the dead-letter list. The
//! journal is then rewritten compactly.

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{
    AfterFailure, Counts, DeadLetter, JournalLineError, Lease, Message, Queue, QueueError,
};

/// Default deliveries of a task before it is dead-lettered.
pub const DEFAULT_MAX_RECEIVES: u32 = 4;

/// One line of the journal.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Record {
    Push {
        id: String,
        body: String,
        #[serde(default)]
        receives: u32,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        group: String,
    },
    Lease {
        id: String,
    },
    Retry {
        id: String,
        error: String,
    },
    Ack {
        id: String,
    },
    Dead {
        id: String,
        error: String,
        /// The message was refused (see [`Queue::refuse`]): it leaves its group.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        refused: bool,
    },
    /// A dead task given its receives again (a re-run retries what failed).
    Revive {
        id: String,
    },
}

#[derive(Debug)]
enum Status {
    Pending { visible_at: Option<Instant> },
    Leased { receipt: u64, until: Instant },
    Done,
    Dead { error: String },
}

#[derive(Debug)]
struct Entry {
    body: String,
    group: String,
    /// Buried as a message that is not what it claims (never revived).
    refused: bool,
    receives: u32,
    status: Status,
}

#[derive(Debug, Default)]
struct State {
    /// Task ids in push order: the delivery order.
    order: VecDeque<String>,
    entries: HashMap<String, Entry>,
    next_receipt: u64,
}

/// An in-process queue journalled in one file (see the module documentation).
#[derive(Debug)]
pub struct LocalQueue {
    state: Mutex<State>,
    wake: Condvar,
    journal: Mutex<File>,
    path: PathBuf,
    max_receives: u32,
}

impl LocalQueue {
    /// Opens (or creates) the queue journalled at `path`, with the default maximum receives.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, QueueError> {
        Self::with_max_receives(path, DEFAULT_MAX_RECEIVES)
    }

    /// Opens the queue, dead-lettering tasks after `max_receives` deliveries (at least 1).
    pub fn with_max_receives(
        path: impl Into<PathBuf>,
        max_receives: u32,
    ) -> Result<Self, QueueError> {
        let path = path.into();
        let io = |error| QueueError::Journal {
            path: path.clone(),
            error,
        };
        let mut state = State::default();
        match File::open(&path) {
            Ok(f) => replay(&path, f, &mut state)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        compact(&path, &state).map_err(io)?;
        let journal = OpenOptions::new().append(true).open(&path).map_err(io)?;
        Ok(Self {
            state: Mutex::new(state),
            wake: Condvar::new(),
            journal: Mutex::new(journal),
            path,
            max_receives: max_receives.max(1),
        })
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Gives every dead task (one that failed, not a refused message) its receives again: a
    /// re-run of a local job retries what failed in the last one. Returns how many.
    pub fn revive_dead(&self) -> Result<usize, QueueError> {
        let mut state = self.lock();
        let dead: Vec<String> = state
            .order
            .iter()
            .filter(|id| {
                let e = &state.entries[*id];
                matches!(e.status, Status::Dead { .. }) && !e.refused
            })
            .cloned()
            .collect();
        for id in &dead {
            self.log(&Record::Revive { id: id.clone() })?;
            let e = state.entries.get_mut(id).expect("listed above");
            e.receives = 0;
            e.status = Status::Pending { visible_at: None };
        }
        drop(state);
        self.wake.notify_all();
        Ok(dead.len())
    }

    /// Tasks waiting and leased, and those done and dead (of `group` alone, when given).
    fn tally(&self, group: Option<&str>) -> Counts {
        let state = self.lock();
        let mut c = Counts::default();
        for e in state.entries.values() {
            let ours = group.is_none_or(|g| e.group == g);
            match e.status {
                Status::Pending { .. } => c.pending += 1,
                Status::Leased { .. } => c.in_flight += 1,
                Status::Done if ours => c.done += 1,
                Status::Dead { .. } if ours => c.dead += 1,
                _ => {}
            }
        }
        c
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A worker thread that panicked while holding the lock left consistent data (every
        // change is one assignment after the journal write), so the poison is ignored.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends a record and syncs it to the disk before the change it records takes effect:
    /// after a power cut the journal holds every change the queue acted on.
    fn log(&self, record: &Record) -> Result<(), QueueError> {
        let mut line = serde_json::to_string(record).expect("journal records serialise");
        line.push('\n');
        let mut f = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        f.write_all(line.as_bytes())
            .and_then(|()| f.sync_data())
            .map_err(|error| QueueError::Journal {
                path: self.path.clone(),
                error,
            })
    }

    /// The entry a lease names, if the lease is still current.
    fn current<'a>(state: &'a mut State, lease: &Lease) -> Result<&'a mut Entry, QueueError> {
        let lost = || QueueError::LeaseLost {
            id: lease.message.id.clone(),
        };
        let entry = state.entries.get_mut(&lease.message.id).ok_or_else(lost)?;
        match entry.status {
            Status::Leased { receipt, .. } if receipt.to_string() == lease.receipt => Ok(entry),
            _ => Err(lost()),
        }
    }

    /// Takes the first visible task, if any, returning expired leases to the pending set and
    /// dead-lettering tasks that have used up their receives. Also returns when the next task
    /// may become visible.
    fn try_lease(
        &self,
        state: &mut State,
        visibility: Duration,
    ) -> Result<(Option<Lease>, Option<Instant>), QueueError> {
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        let mut soonest = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
        let ids: Vec<String> = state.order.iter().cloned().collect();
        for id in ids {
            let Some(entry) = state.entries.get_mut(&id) else {
                continue;
            };
            match entry.status {
                Status::Leased { until, .. } if until <= now => {}
                Status::Leased { until, .. } => {
                    soonest(until);
                    continue;
                }
                Status::Pending {
                    visible_at: Some(t),
                } if t > now => {
                    soonest(t);
                    continue;
                }
                Status::Pending { .. } => {}
                Status::Done | Status::Dead { .. } => continue,
            }
            if entry.receives >= self.max_receives {
                let error = format!(
                    "delivered {} times without being acknowledged (its worker died or its \
                     lease expired each time)",
                    entry.receives
                );
                self.log(&Record::Dead {
                    id: id.clone(),
                    error: error.clone(),
                    refused: false,
                })?;
                entry.status = Status::Dead { error };
                tracing::warn!(task = %id, "task dead-lettered after {} receives", entry.receives);
                continue;
            }
            self.log(&Record::Lease { id: id.clone() })?;
            state.next_receipt += 1;
            let receipt = state.next_receipt;
            let entry = state.entries.get_mut(&id).expect("entry still there");
            entry.receives += 1;
            entry.status = Status::Leased {
                receipt,
                until: now + visibility,
            };
            let lease = Lease {
                message: Message {
                    id,
                    body: entry.body.clone(),
                    group: entry.group.clone(),
                },
                receipt: receipt.to_string(),
                receives: entry.receives,
            };
            return Ok((Some(lease), None));
        }
        Ok((None, next))
    }
}

impl Queue for LocalQueue {
    fn push(&self, message: Message) -> Result<bool, QueueError> {
        message.check().map_err(QueueError::BadMessage)?;
        let mut state = self.lock();
        if state.entries.contains_key(&message.id) {
            return Ok(false);
        }
        self.log(&Record::Push {
            id: message.id.clone(),
            body: message.body.clone(),
            receives: 0,
            group: message.group.clone(),
        })?;
        state.order.push_back(message.id.clone());
        state.entries.insert(
            message.id,
            Entry {
                body: message.body,
                group: message.group,
                refused: false,
                receives: 0,
                status: Status::Pending { visible_at: None },
            },
        );
        drop(state);
        self.wake.notify_one();
        Ok(true)
    }

    fn lease(&self, visibility: Duration, wait: Duration) -> Result<Option<Lease>, QueueError> {
        let deadline = Instant::now() + wait;
        let mut state = self.lock();
        loop {
            let (lease, next) = self.try_lease(&mut state, visibility)?;
            if lease.is_some() {
                return Ok(lease);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let until = next.map_or(deadline, |n| n.min(deadline));
            let timeout = until
                .saturating_duration_since(now)
                .max(Duration::from_millis(1));
            state = self
                .wake
                .wait_timeout(state, timeout)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn extend(&self, lease: &Lease, visibility: Duration) -> Result<(), QueueError> {
        let mut state = self.lock();
        let entry = Self::current(&mut state, lease)?;
        if let Status::Leased { until, .. } = &mut entry.status {
            *until = Instant::now() + visibility;
        }
        Ok(())
    }

    fn ack(&self, lease: &Lease) -> Result<(), QueueError> {
        let mut state = self.lock();
        Self::current(&mut state, lease)?;
        self.log(&Record::Ack {
            id: lease.message.id.clone(),
        })?;
        Self::current(&mut state, lease)?.status = Status::Done;
        drop(state);
        // Workers waiting for the queue to drain look again.
        self.wake.notify_all();
        Ok(())
    }

    fn fail(
        &self,
        lease: &Lease,
        error: &str,
        retry_after: Option<Duration>,
    ) -> Result<AfterFailure, QueueError> {
        let mut state = self.lock();
        let receives = Self::current(&mut state, lease)?.receives;
        let id = lease.message.id.clone();
        let outcome = match retry_after {
            Some(delay) if receives < self.max_receives => {
                self.log(&Record::Retry {
                    id,
                    error: error.to_owned(),
                })?;
                Self::current(&mut state, lease)?.status = Status::Pending {
                    visible_at: Some(Instant::now() + delay),
                };
                AfterFailure::Retried
            }
            _ => {
                self.log(&Record::Dead {
                    id,
                    error: error.to_owned(),
                    refused: false,
                })?;
                Self::current(&mut state, lease)?.status = Status::Dead {
                    error: error.to_owned(),
                };
                AfterFailure::DeadLettered
            }
        };
        drop(state);
        self.wake.notify_all();
        Ok(outcome)
    }

    fn refuse(&self, lease: &Lease, error: &str) -> Result<(), QueueError> {
        let mut state = self.lock();
        Self::current(&mut state, lease)?;
        self.log(&Record::Dead {
            id: lease.message.id.clone(),
            error: error.to_owned(),
            refused: true,
        })?;
        let entry = Self::current(&mut state, lease)?;
        entry.status = Status::Dead {
            error: error.to_owned(),
        };
        entry.group.clear();
        entry.refused = true;
        drop(state);
        self.wake.notify_all();
        Ok(())
    }

    fn counts_of(&self, group: &str) -> Result<Counts, QueueError> {
        Ok(self.tally(Some(group)))
    }

    fn counts(&self) -> Result<Counts, QueueError> {
        Ok(self.tally(None))
    }

    fn dead_letters(&self) -> Result<Vec<DeadLetter>, QueueError> {
        let state = self.lock();
        Ok(state
            .order
            .iter()
            .filter_map(|id| {
                let e = &state.entries[id];
                match &e.status {
                    Status::Dead { error } => Some(DeadLetter {
                        message: Message {
                            id: id.clone(),
                            body: e.body.clone(),
                            group: e.group.clone(),
                        },
                        error: error.clone(),
                        receives: e.receives,
                    }),
                    _ => None,
                }
            })
            .collect())
    }
}

/// Applies the journal to `state`. A last line cut short by a crash is ignored; any other
/// unreadable line is an error naming it.
fn replay(path: &Path, file: File, state: &mut State) -> Result<(), QueueError> {
    let mut lines = BufReader::new(file).split(b'\n').enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        let line = line.map_err(|error| QueueError::Journal {
            path: path.to_owned(),
            error,
        })?;
        if line.is_empty() {
            continue;
        }
        let record: Record = match serde_json::from_slice(&line) {
            Ok(r) => r,
            Err(_) if lines.peek().is_none() => {
                tracing::warn!(journal = %path.display(), line = i + 1, "ignoring a journal line cut short by a crash");
                break;
            }
            Err(e) => {
                return Err(QueueError::CorruptJournal {
                    path: path.to_owned(),
                    line: i + 1,
                    reason: e.into(),
                });
            }
        };
        apply(state, record).map_err(|reason| QueueError::CorruptJournal {
            path: path.to_owned(),
            line: i + 1,
            reason,
        })?;
    }
    // Whoever held a lease is gone: the process died under the task, which is not the task's
    // failure, so that delivery does not count against its receives (a task killed with the
    // process any number of times is still run on resume).
    for e in state.entries.values_mut() {
        if matches!(e.status, Status::Leased { .. }) {
            e.status = Status::Pending { visible_at: None };
            e.receives = e.receives.saturating_sub(1);
        }
    }
    Ok(())
}

fn apply(state: &mut State, record: Record) -> Result<(), JournalLineError> {
    let (id, status) = match record {
        Record::Push {
            id,
            body,
            receives,
            group,
        } => {
            if !state.entries.contains_key(&id) {
                state.order.push_back(id.clone());
                state.entries.insert(
                    id,
                    Entry {
                        body,
                        group,
                        refused: false,
                        receives,
                        status: Status::Pending { visible_at: None },
                    },
                );
            }
            return Ok(());
        }
        Record::Lease { id } => (
            id,
            Status::Leased {
                receipt: 0,
                until: Instant::now(),
            },
        ),
        Record::Retry { id, .. } => (id, Status::Pending { visible_at: None }),
        Record::Revive { id } => {
            if let Some(e) = state.entries.get_mut(&id) {
                e.receives = 0;
            }
            (id, Status::Pending { visible_at: None })
        }
        Record::Ack { id } => (id, Status::Done),
        Record::Dead { id, error, refused } => {
            if refused && let Some(e) = state.entries.get_mut(&id) {
                e.group.clear();
                e.refused = true;
            }
            (id, Status::Dead { error })
        }
    };
    let entry = state
        .entries
        .get_mut(&id)
        .ok_or_else(|| JournalLineError::NeverPushed { id: id.clone() })?;
    if matches!(status, Status::Leased { .. }) {
        entry.receives += 1;
    }
    entry.status = status;
    Ok(())
}

/// Rewrites the journal with one record per task (two for finished ones), atomically.
fn compact(path: &Path, state: &State) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    store::fsutil::write_file_atomic(path, |f| {
        let mut out = std::io::BufWriter::new(f);
        for id in &state.order {
            let e = &state.entries[id];
            let push = Record::Push {
                id: id.clone(),
                body: e.body.clone(),
                receives: e.receives,
                group: e.group.clone(),
            };
            let after = match &e.status {
                Status::Done => Some(Record::Ack { id: id.clone() }),
                Status::Dead { error } => Some(Record::Dead {
                    id: id.clone(),
                    error: error.clone(),
                    refused: e.refused,
                }),
                _ => None,
            };
            for r in std::iter::once(push).chain(after) {
                serde_json::to_writer(&mut out, &r)?;
                out.write_all(b"\n")?;
            }
        }
        out.flush()
    })
}

#[cfg(test)]
mod tests;
