//! The generic worker loop: lease a task, keep the lease alive while the handler runs, then
//! acknowledge it or give it back. It knows nothing of what tasks mean; the handler does.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::queue::{AfterFailure, Lease, Queue, QueueError};

/// How the worker threads run.
#[derive(Clone, Debug)]
pub struct PoolOptions {
    /// Worker threads, at least 1.
    pub workers: usize,
    /// The lease a task gets, renewed by the heartbeat while it runs.
    pub visibility: Duration,
    /// How often running leases are renewed; well under `visibility`.
    pub heartbeat: Duration,
    /// How long an idle worker waits for a task before checking whether the queue drained.
    pub idle_wait: Duration,
    /// How long a task that failed with a retryable error stays hidden.
    pub retry_delay: Duration,
    /// Return once the queue is drained; `false` serves until `stop` (a fleet worker).
    pub until_drained: bool,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            visibility: Duration::from_secs(60),
            heartbeat: Duration::from_secs(15),
            idle_wait: Duration::from_millis(200),
            retry_delay: Duration::from_secs(1),
            until_drained: true,
        }
    }
}

/// Why a handler could not finish a task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskFailure {
    /// What went wrong, for the log and the dead-letter record.
    pub message: String,
    /// True when running the task again may succeed (a busy store, a lost connection); false
    /// when it cannot (a corrupt input, an impossible setting).
    pub retryable: bool,
    /// True when the message is not the task it claims to be (its id does not match its body,
    /// or its body names another group): it is buried outside every group.
    pub refused: bool,
}

impl TaskFailure {
    /// A failure that another attempt will not fix.
    pub fn fatal(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
            refused: false,
        }
    }

    /// A failure that another attempt may fix.
    pub fn retry(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
            refused: false,
        }
    }

    /// A message that is not the task it claims to be (see [`Queue::refuse`]).
    pub fn refused(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
            refused: true,
        }
    }
}

/// What the pool did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolReport {
    /// Tasks acknowledged.
    pub done: usize,
    /// Failures given back for another attempt.
    pub retried: usize,
    /// Tasks that went to the dead-letter list.
    pub dead: usize,
}

/// Runs `handler` on tasks from `queue` with `options.workers` threads until the queue is
/// drained (nothing pending or in flight) or `stop` is set. After `stop`, workers finish the
/// task in hand and take no new one.
///
/// A handler that panics counts as a retryable failure. When the remote queue or its store
/// fails beyond the SDK's own retries (an outage), the thread logs it and tries again after a
/// growing pause (up to [`MAX_BACKOFF`]) until `stop`; other queue errors (the local journal)
/// end the run.
pub fn run<H>(
    queue: &dyn Queue,
    handler: &H,
    options: &PoolOptions,
    stop: &AtomicBool,
) -> Result<PoolReport, QueueError>
where
    H: Fn(&Lease) -> Result<(), TaskFailure> + Sync,
{
    let pool = Pool {
        queue,
        handler,
        options,
        stop,
        held: Mutex::new(HashMap::new()),
        report: Mutex::new(PoolReport::default()),
    };
    let finished = AtomicBool::new(false);
    std::thread::scope(|s| {
        let beat = s.spawn(|| pool.heartbeat(&finished));
        let workers: Vec<_> = (0..options.workers.max(1))
            .map(|slot| {
                let pool = &pool;
                s.spawn(move || pool.work(slot))
            })
            .collect();
        let results: Vec<Result<(), QueueError>> = workers
            .into_iter()
            .map(|w| w.join().unwrap_or(Ok(())))
            .collect();
        finished.store(true, Ordering::Release);
        beat.thread().unpark();
        let _ = beat.join();
        results.into_iter().collect::<Result<(), _>>()
    })?;
    Ok(pool.report.into_inner().unwrap_or_else(|p| p.into_inner()))
}

/// The longest pause between two tries of a queue that keeps failing.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What the threads of [`run`] share.
struct Pool<'a, H> {
    queue: &'a dyn Queue,
    handler: &'a H,
    options: &'a PoolOptions,
    stop: &'a AtomicBool,
    /// The lease each worker slot holds while its handler runs.
    held: Mutex<HashMap<usize, Lease>>,
    report: Mutex<PoolReport>,
}

impl<H> Pool<'_, H>
where
    H: Fn(&Lease) -> Result<(), TaskFailure> + Sync,
{
    /// Renews the held leases every `heartbeat` until `finished`.
    fn heartbeat(&self, finished: &AtomicBool) {
        while !finished.load(Ordering::Acquire) {
            std::thread::park_timeout(self.options.heartbeat);
            let held: Vec<Lease> = self
                .held
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .values()
                .cloned()
                .collect();
            for lease in held {
                if let Err(e) = self.queue.extend(&lease, self.options.visibility) {
                    tracing::warn!(task = %lease.message.id, "heartbeat: {e}");
                }
            }
        }
    }

    /// One worker thread, in `slot`: takes and runs tasks until stopped or drained.
    fn work(&self, slot: usize) -> Result<(), QueueError> {
        let options = self.options;
        let mut backoff = Backoff::default();
        while !self.stop.load(Ordering::Acquire) {
            let leased = self.queue.lease(options.visibility, options.idle_wait);
            let Some(lease) = backoff.outlive(leased, "taking a task", self.stop)? else {
                if !options.until_drained {
                    continue;
                }
                let counts = self.queue.counts();
                if backoff
                    .outlive(counts.map(Some), "counting tasks", self.stop)?
                    .is_some_and(|c| c.is_drained())
                {
                    break;
                }
                continue;
            };
            self.held
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(slot, lease.clone());
            let outcome =
                catch_unwind(AssertUnwindSafe(|| (self.handler)(&lease))).unwrap_or_else(|panic| {
                    Err(TaskFailure::retry(format!(
                        "the task panicked: {}",
                        panic_message(&panic)
                    )))
                });
            self.held
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&slot);
            let settled = self.settle(&lease, outcome).map(Some);
            backoff.outlive(settled, "settling a task", self.stop)?;
        }
        Ok(())
    }

    /// Acknowledges the task or gives it back, and counts it.
    fn settle(&self, lease: &Lease, outcome: Result<(), TaskFailure>) -> Result<(), QueueError> {
        let settled = match outcome {
            Ok(()) => self.queue.ack(lease).map(|()| None),
            Err(f) if f.refused => {
                tracing::warn!(task = %lease.message.id, "message refused: {}", f.message);
                self.queue
                    .refuse(lease, &f.message)
                    .map(|()| Some(AfterFailure::DeadLettered))
            }
            Err(f) => {
                tracing::warn!(task = %lease.message.id, attempt = lease.receives, "task failed: {}", f.message);
                let delay = f.retryable.then_some(self.options.retry_delay);
                self.queue.fail(lease, &f.message, delay).map(Some)
            }
        };
        match settled {
            Ok(after) => {
                let mut r = self.report.lock().unwrap_or_else(|p| p.into_inner());
                match after {
                    None => r.done += 1,
                    Some(AfterFailure::Retried) => r.retried += 1,
                    Some(AfterFailure::DeadLettered) => r.dead += 1,
                }
            }
            // Someone else has the task now; its output is the same.
            Err(QueueError::LeaseLost { id }) => {
                tracing::warn!(task = %id, "lease lost before the task was settled");
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }
}

/// The pause of a worker thread whose remote queue fails: it doubles from a second up to
/// [`MAX_BACKOFF`] while the failures last, and starts again once a call succeeds.
#[derive(Default)]
struct Backoff {
    pause: Option<Duration>,
}

impl Backoff {
    /// Passes a call's result on. A remote failure (the service or its store unreachable, after
    /// the SDK's own retries) is logged and waited out instead, giving `None`; any other error
    /// ends the thread.
    fn outlive<T>(
        &mut self,
        result: Result<Option<T>, QueueError>,
        what: &str,
        stop: &AtomicBool,
    ) -> Result<Option<T>, QueueError> {
        match result {
            Ok(v) => {
                if self.pause.take().is_some() {
                    tracing::info!("the queue answers again ({what})");
                }
                Ok(v)
            }
            Err(e @ QueueError::Remote { .. }) => {
                let pause = self
                    .pause
                    .map_or(Duration::from_secs(1), |p| (p * 2).min(MAX_BACKOFF));
                self.pause = Some(pause);
                tracing::warn!("{what}: {e}; trying again in {} s", pause.as_secs());
                let until = std::time::Instant::now() + pause;
                while std::time::Instant::now() < until && !stop.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{LocalQueue, Message};
    use std::sync::atomic::AtomicUsize;

    fn queue_with(dir: &tempfile::TempDir, n: usize) -> LocalQueue {
        let q = LocalQueue::with_max_receives(dir.path().join("q"), 3).unwrap();
        for i in 0..n {
            q.push(Message::new(format!("t{i}"), i.to_string()))
                .unwrap();
        }
        q
    }

    fn fast() -> PoolOptions {
        PoolOptions {
            workers: 3,
            visibility: Duration::from_millis(150),
            heartbeat: Duration::from_millis(30),
            idle_wait: Duration::from_millis(20),
            retry_delay: Duration::from_millis(5),
            until_drained: true,
        }
    }

    #[test]
    fn runs_every_task_and_survives_failures_and_panics() {
        let dir = tempfile::tempdir().unwrap();
        let q = queue_with(&dir, 30);
        let runs = AtomicUsize::new(0);
        let handler = |l: &Lease| {
            runs.fetch_add(1, Ordering::Relaxed);
            match (l.message.body.as_str(), l.receives) {
                ("3", 1) => Err(TaskFailure::retry("store busy")),
                ("4", 1) => panic!("boom"),
                ("5", _) => Err(TaskFailure::fatal("corrupt input")),
                _ => Ok(()),
            }
        };
        let report = run(&q, &handler, &fast(), &AtomicBool::new(false)).unwrap();
        assert_eq!(
            report,
            PoolReport {
                done: 29,
                retried: 2,
                dead: 1
            }
        );
        assert_eq!(runs.load(Ordering::Relaxed), 32);
        let dead = q.dead_letters().unwrap();
        assert_eq!(
            (dead[0].message.id.as_str(), dead[0].error.as_str()),
            ("t5", "corrupt input")
        );
    }

    /// A queue that fails like a remote service in an outage for its first `outage` calls.
    #[derive(Debug)]
    struct Outage {
        inner: LocalQueue,
        outage: AtomicUsize,
    }

    impl Outage {
        fn down(&self) -> Result<(), QueueError> {
            let left = self.outage.load(Ordering::Relaxed);
            if left == 0 {
                return Ok(());
            }
            self.outage.store(left - 1, Ordering::Relaxed);
            Err(QueueError::Remote {
                what: "receiving a task",
                reason: "connection refused".into(),
            })
        }
    }

    impl Queue for Outage {
        fn push(&self, m: Message) -> Result<bool, QueueError> {
            self.inner.push(m)
        }
        fn lease(&self, v: Duration, w: Duration) -> Result<Option<Lease>, QueueError> {
            self.down()?;
            self.inner.lease(v, w)
        }
        fn extend(&self, l: &Lease, v: Duration) -> Result<(), QueueError> {
            self.inner.extend(l, v)
        }
        fn ack(&self, l: &Lease) -> Result<(), QueueError> {
            self.down()?;
            self.inner.ack(l)
        }
        fn fail(
            &self,
            l: &Lease,
            e: &str,
            r: Option<Duration>,
        ) -> Result<AfterFailure, QueueError> {
            self.inner.fail(l, e, r)
        }
        fn refuse(&self, l: &Lease, e: &str) -> Result<(), QueueError> {
            self.inner.refuse(l, e)
        }
        fn counts(&self) -> Result<crate::queue::Counts, QueueError> {
            self.down()?;
            self.inner.counts()
        }
        fn dead_letters(&self) -> Result<Vec<crate::queue::DeadLetter>, QueueError> {
            self.inner.dead_letters()
        }
    }

    #[test]
    fn workers_wait_out_an_outage_of_the_queue() {
        let dir = tempfile::tempdir().unwrap();
        let q = Outage {
            inner: queue_with(&dir, 4),
            outage: AtomicUsize::new(3),
        };
        let options = PoolOptions {
            workers: 1,
            ..fast()
        };
        // Without the back-off, the first refused call ended the worker with an error.
        let report = run(&q, &|_: &Lease| Ok(()), &options, &AtomicBool::new(false)).unwrap();
        assert_eq!(report.done + report.retried, 4, "{report:?}");
        assert!(q.inner.counts().unwrap().is_drained());
        // A forged message is buried outside its claimed group, not failed as its task.
        q.inner
            .push(Message {
                group: "victim".into(),
                ..Message::new("victim-advance-1", "{}")
            })
            .unwrap();
        let refuse = |_: &Lease| Err(TaskFailure::refused("the id does not match the body"));
        let report = run(&q, &refuse, &options, &AtomicBool::new(false)).unwrap();
        assert_eq!(report.dead, 1);
        assert!(q.inner.dead_letters_of("victim").unwrap().is_empty());
        assert_eq!(q.inner.dead_letters_of("").unwrap().len(), 1);
    }

    #[test]
    fn the_heartbeat_keeps_long_tasks_leased() {
        let dir = tempfile::tempdir().unwrap();
        let q = queue_with(&dir, 2);
        let runs = AtomicUsize::new(0);
        let handler = |_: &Lease| {
            runs.fetch_add(1, Ordering::Relaxed);
            // Three visibility timeouts long.
            std::thread::sleep(Duration::from_millis(450));
            Ok(())
        };
        let report = run(&q, &handler, &fast(), &AtomicBool::new(false)).unwrap();
        assert_eq!(report.done, 2);
        assert_eq!(
            runs.load(Ordering::Relaxed),
            2,
            "no task was delivered twice"
        );
    }

    #[test]
    fn stop_finishes_the_task_in_hand_and_takes_no_more() {
        let dir = tempfile::tempdir().unwrap();
        let q = queue_with(&dir, 10);
        let stop = AtomicBool::new(false);
        let handler = |_: &Lease| {
            stop.store(true, Ordering::Release);
            Ok(())
        };
        let options = PoolOptions {
            workers: 1,
            ..fast()
        };
        let report = run(&q, &handler, &options, &stop).unwrap();
        assert_eq!(report.done, 1);
        assert_eq!(q.counts().unwrap().pending, 9);
    }
}
