//! The SQS queue, through aws-sdk-sqs, with a [`Store`] for what SQS does not keep: which task
//! ids were ever pushed (so pushing one again changes nothing), which are done (so a duplicate
//! delivery is dropped), and the dead-letter records with their errors.
//!
//! - `lease` long-polls (up to 20 s a call) and asks for the receive count.
//! - `extend` is the heartbeat: it moves the visibility timeout while a task runs.
//! - `ack` deletes the message and marks the task done.
//! - `fail` hides the task for the retry delay, or, once it has had its receives (or when the
//!   failure is final), records the error in the store, copies the task to the dead-letter
//!   queue and deletes it from the main one. A task whose workers keep dying is caught the same
//!   way when it is received once too often.
//!
//! State keys, under the queue's state prefix, per group (a job; `=none` for tasks of no group,
//! `=refused` for messages that are not what they claim): `known/GROUP/ID`, `done/GROUP/ID`,
//! `dead/GROUP/ID.json`. Looking at one job lists its own prefixes only.
//!
//! A message is checked when it arrives ([`Message::check`]): one whose id is malformed, too
//! long, or does not name its group is buried under `dead/=refused/` with the reason, by its SQS
//! message id, and the worker goes on.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};

use store::{Key, Store, StoreError};
use workers::queue::{AfterFailure, Counts, DeadLetter, Lease, Message, Queue, QueueError};

use crate::s3::AwsOptions;

/// Receives after which a task is dead-lettered, by default.
pub const DEFAULT_MAX_RECEIVES: u32 = 5;

/// A queue on Amazon SQS (or any server that speaks its protocol).
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
    dead_url: String,
    store: Arc<dyn Store>,
    state: Key,
    max_receives: u32,
    rt: Arc<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for SqsQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the client: its configuration holds the credentials.
        f.debug_struct("SqsQueue")
            .field("url", &self.url)
            .field("dead_url", &self.dead_url)
            .field("state", &self.state)
            .finish()
    }
}

fn remote<E, R>(what: &'static str) -> impl Fn(aws_sdk_sqs::error::SdkError<E, R>) -> QueueError
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    move |e| QueueError::Remote {
        what,
        reason: crate::s3::sdk_text(&e),
    }
}

/// The key segment of a group.
fn group_segment(group: &str) -> String {
    if group.is_empty() {
        "=none".into()
    } else {
        id_segment(group)
    }
}

/// The group segment of refused messages: no job's.
const REFUSED: &str = "=refused";

fn store_err(what: &'static str) -> impl Fn(StoreError) -> QueueError {
    move |e| QueueError::Remote {
        what,
        reason: e.to_string(),
    }
}

/// A task id as a key segment: kept when it is one, else hex-escaped.
fn id_segment(id: &str) -> String {
    if !id.is_empty()
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-=+@,".contains(&b))
    {
        return id.to_owned();
    }
    let mut s = String::from("x-");
    for b in id.bytes() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

impl SqsQueue {
    /// Opens the queue named `name` and its dead-letter queue `NAME-dead`, creating both when
    /// missing; task state goes to `store` under `state`.
    pub fn open(
        name: &str,
        options: &AwsOptions,
        store: Arc<dyn Store>,
        state: Key,
    ) -> Result<Self, QueueError> {
        let name_ok = (1..=75).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(QueueError::Config(format!(
                "queue name {name:?} (expected 1 to 75 letters, digits, '-' and '_')"
            )));
        }
        let rt = crate::s3::runtime().map_err(|e| QueueError::Remote {
            what: "opening the queue",
            reason: e.to_string(),
        })?;
        let config = crate::s3::sdk_config(&rt, options);
        let client = aws_sdk_sqs::Client::new(&config);
        let create = |n: String| {
            rt.block_on(client.create_queue().queue_name(n).send())
                .map_err(remote("creating the queue"))
                .map(|o| o.queue_url().unwrap_or_default().to_owned())
        };
        let url = create(name.to_owned())?;
        let dead_url = create(format!("{name}-dead"))?;
        Ok(Self {
            client,
            url,
            dead_url,
            store,
            state,
            max_receives: DEFAULT_MAX_RECEIVES,
            rt,
        })
    }

    /// Dead-letters a task after this many receives.
    pub fn with_max_receives(mut self, n: u32) -> Self {
        self.max_receives = n.max(1);
        self
    }

    /// The prefix of a group's state of one kind (`known`, `done`, `dead`).
    fn prefix(&self, kind: &str, group_segment: &str) -> Result<Key, QueueError> {
        self.state
            .join(kind)
            .and_then(|k| k.join(group_segment))
            .map_err(QueueError::StateKey)
    }

    fn key(&self, kind: &str, m: &Message) -> Result<Key, QueueError> {
        self.prefix(kind, &group_segment(&m.group))?
            .join(&id_segment(&m.id))
            .map_err(QueueError::StateKey)
    }

    /// Where a dead task's record goes: under its group, or under the refused ones.
    fn dead_key(&self, m: &Message, refused: bool) -> Result<Key, QueueError> {
        let group = if refused {
            REFUSED.to_owned()
        } else {
            group_segment(&m.group)
        };
        self.prefix("dead", &group)?
            .join(&format!("{}.json", id_segment(&m.id)))
            .map_err(QueueError::StateKey)
    }

    /// Deletes the delivery `receipt` from the main queue.
    fn delete(&self, receipt: &str, what: &'static str) -> Result<(), QueueError> {
        self.rt
            .block_on(
                self.client
                    .delete_message()
                    .queue_url(&self.url)
                    .receipt_handle(receipt)
                    .send(),
            )
            .map(|_| ())
            .map_err(remote(what))
    }

    /// Hides the delivery of `lease` for `seconds` from now. The service refusing the receipt
    /// means the lease was lost (it expired and the task went to someone else).
    fn hide(&self, lease: &Lease, seconds: u64, what: &'static str) -> Result<(), QueueError> {
        self.rt
            .block_on(
                self.client
                    .change_message_visibility()
                    .queue_url(&self.url)
                    .receipt_handle(&lease.receipt)
                    .visibility_timeout(seconds.min(43_200) as i32)
                    .send(),
            )
            .map(|_| ())
            .map_err(|e| {
                if e.as_service_error().is_some() {
                    QueueError::LeaseLost {
                        id: lease.message.id.clone(),
                    }
                } else {
                    remote(what)(e)
                }
            })
    }

    /// Records the task as dead (refused: outside every group) and moves it to the
    /// dead-letter queue.
    fn bury(&self, lease: &Lease, error: &str, refused: bool) -> Result<(), QueueError> {
        let mut record = DeadLetter {
            message: lease.message.clone(),
            error: error.to_owned(),
            receives: lease.receives,
        };
        let key = self.dead_key(&record.message, refused)?;
        if refused {
            record.message.group.clear();
        }
        let json = serde_json::to_vec_pretty(&record).unwrap_or_default();
        self.store
            .put(&key, &json)
            .map_err(store_err("recording a dead task"))?;
        let body = serde_json::to_string(&lease.message).unwrap_or_default();
        self.rt
            .block_on(
                self.client
                    .send_message()
                    .queue_url(&self.dead_url)
                    .message_body(body)
                    .send(),
            )
            .map_err(remote("moving a task to the dead-letter queue"))?;
        self.delete(&lease.receipt, "deleting a dead task")
    }

    /// Messages waiting (visible or delayed) and leased in the queue at `url`, as the service
    /// counts them (approximately).
    fn waiting(&self, url: &str) -> Result<(usize, usize), QueueError> {
        let attrs = self
            .rt
            .block_on(
                self.client
                    .get_queue_attributes()
                    .queue_url(url)
                    .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                    .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                    .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
                    .send(),
            )
            .map_err(remote("counting tasks"))?;
        let get = |n: QueueAttributeName| -> usize {
            attrs
                .attributes()
                .and_then(|a| a.get(&n))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Ok((
            get(QueueAttributeName::ApproximateNumberOfMessages)
                + get(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
            get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        ))
    }

    /// The dead records under `prefix`. One that does not parse is returned as a dead letter
    /// of its own that says so, so that it never hides the others.
    fn dead_under(&self, prefix: &Key) -> Result<Vec<DeadLetter>, QueueError> {
        let mut out = Vec::new();
        for k in self
            .store
            .list(prefix)
            .map_err(store_err("listing dead tasks"))?
        {
            let bytes = self
                .store
                .get(&k)
                .map_err(store_err("reading a dead task"))?;
            out.push(
                serde_json::from_slice(&bytes).unwrap_or_else(|e| DeadLetter {
                    message: Message::new(k.name().trim_end_matches(".json"), ""),
                    error: format!("unreadable dead-letter record {k}: {e}"),
                    receives: 0,
                }),
            );
        }
        Ok(out)
    }
}

impl Queue for SqsQueue {
    fn push(&self, message: Message) -> Result<bool, QueueError> {
        self.push_after(message, Duration::ZERO)
    }

    fn push_after(&self, message: Message, delay: Duration) -> Result<bool, QueueError> {
        message.check().map_err(QueueError::BadMessage)?;
        let known = self.key("known", &message)?;
        if self
            .store
            .exists(&known)
            .map_err(store_err("looking up a task"))?
        {
            return Ok(false);
        }
        let body = serde_json::to_string(&message).unwrap_or_default();
        self.rt
            .block_on(
                self.client
                    .send_message()
                    .queue_url(&self.url)
                    .message_body(body)
                    .delay_seconds(delay.as_secs().min(900) as i32)
                    .send(),
            )
            .map_err(remote("sending a task"))?;
        self.store
            .put(&known, b"")
            .map_err(store_err("recording a task"))?;
        Ok(true)
    }

    fn lease(&self, visibility: Duration, wait: Duration) -> Result<Option<Lease>, QueueError> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let out = self
                .rt
                .block_on(
                    self.client
                        .receive_message()
                        .queue_url(&self.url)
                        .max_number_of_messages(1)
                        .wait_time_seconds(left.as_secs().min(20) as i32)
                        .visibility_timeout(visibility.as_secs().max(1) as i32)
                        .message_system_attribute_names(
                            MessageSystemAttributeName::ApproximateReceiveCount,
                        )
                        .send(),
                )
                .map_err(remote("receiving a task"))?;
            let Some(m) = out.messages().first() else {
                if left.is_zero() {
                    return Ok(None);
                }
                continue;
            };
            let receipt = m.receipt_handle().unwrap_or_default().to_owned();
            let receives = m
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|v| v.parse().ok())
                .unwrap_or(1);
            let parsed = serde_json::from_str::<Message>(m.body().unwrap_or_default())
                .map_err(|e| format!("not a task: {e}"))
                .and_then(|msg| msg.check().map(|()| msg).map_err(|e| e.to_string()));
            let message = match parsed {
                Ok(msg) => msg,
                Err(why) => {
                    // Not one of ours, or malformed: bury it under its SQS id, outside every
                    // group, rather than loop on it or stop.
                    let lease = Lease {
                        message: Message::new(
                            m.message_id().unwrap_or("unknown"),
                            m.body().unwrap_or_default(),
                        ),
                        receipt,
                        receives,
                    };
                    tracing::warn!(sqs_id = %lease.message.id, "refused a message: {why}");
                    self.bury(&lease, &why, true)?;
                    continue;
                }
            };
            let lease = Lease {
                message,
                receipt,
                receives,
            };
            // A duplicate delivery of a finished task is dropped.
            if self
                .store
                .exists(&self.key("done", &lease.message)?)
                .map_err(store_err("looking up a task"))?
            {
                let _ = self.delete(&lease.receipt, "dropping a duplicate delivery");
                continue;
            }
            // A task whose workers keep dying never reaches `fail`: catch it here.
            if receives > self.max_receives {
                self.bury(
                    &lease,
                    &format!(
                        "received {receives} times without finishing (its worker died or lost the lease each time)"
                    ),
                    false,
                )?;
                continue;
            }
            return Ok(Some(lease));
        }
    }

    fn extend(&self, lease: &Lease, visibility: Duration) -> Result<(), QueueError> {
        self.hide(lease, visibility.as_secs().max(1), "extending a lease")
    }

    fn ack(&self, lease: &Lease) -> Result<(), QueueError> {
        self.store
            .put(&self.key("done", &lease.message)?, b"")
            .map_err(store_err("recording a finished task"))?;
        self.delete(&lease.receipt, "deleting a finished task")
    }

    fn fail(
        &self,
        lease: &Lease,
        error: &str,
        retry_after: Option<Duration>,
    ) -> Result<AfterFailure, QueueError> {
        match retry_after {
            Some(delay) if lease.receives < self.max_receives => {
                self.hide(lease, delay.as_secs(), "giving a task back")?;
                Ok(AfterFailure::Retried)
            }
            _ => {
                self.bury(lease, error, false)?;
                Ok(AfterFailure::DeadLettered)
            }
        }
    }

    fn refuse(&self, lease: &Lease, error: &str) -> Result<(), QueueError> {
        self.bury(lease, error, true)
    }

    /// Waiting and leased tasks from the service's counts, and the dead-letter queue's; the
    /// tasks done are not counted here (it would list the queue's whole history): see
    /// [`Queue::counts_of`] for a group's.
    fn counts(&self) -> Result<Counts, QueueError> {
        let (pending, in_flight) = self.waiting(&self.url)?;
        let (dead, dead_leased) = self.waiting(&self.dead_url)?;
        Ok(Counts {
            pending,
            in_flight,
            done: 0,
            dead: dead + dead_leased,
        })
    }

    fn counts_of(&self, group: &str) -> Result<Counts, QueueError> {
        let (pending, in_flight) = self.waiting(&self.url)?;
        let group = group_segment(group);
        let count = |kind: &str| -> Result<usize, QueueError> {
            Ok(self
                .store
                .list(&self.prefix(kind, &group)?)
                .map_err(store_err("counting tasks"))?
                .len())
        };
        Ok(Counts {
            pending,
            in_flight,
            done: count("done")?,
            dead: count("dead")?,
        })
    }

    fn dead_letters(&self) -> Result<Vec<DeadLetter>, QueueError> {
        let prefix = self.state.join("dead").map_err(|e| QueueError::Remote {
            what: "naming task state",
            reason: e.to_string(),
        })?;
        self.dead_under(&prefix)
    }

    fn dead_letters_of(&self, group: &str) -> Result<Vec<DeadLetter>, QueueError> {
        self.dead_under(&self.prefix("dead", &group_segment(group))?)
    }
}
