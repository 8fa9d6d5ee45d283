use std::sync::Arc;
use std::time::Duration;

use super::*;

const LONG: Duration = Duration::from_secs(60);
const NOW: Duration = Duration::ZERO;

fn msg(id: &str) -> Message {
    Message::new(id, format!("{{\"task\":\"{id}\"}}"))
}

fn ids(q: &LocalQueue, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| q.lease(LONG, NOW).unwrap().expect("a task").message.id)
        .collect()
}

#[test]
fn delivers_in_order_once_each_and_dedupes() {
    let dir = tempfile::tempdir().unwrap();
    let q = LocalQueue::open(dir.path().join("q.journal")).unwrap();
    for id in ["a", "b", "c"] {
        assert!(q.push(msg(id)).unwrap());
    }
    assert!(!q.push(msg("b")).unwrap(), "a known id is not pushed twice");
    let a = q.lease(LONG, NOW).unwrap().unwrap();
    assert_eq!(a.message, msg("a"));
    assert_eq!(a.receives, 1);
    assert_eq!(ids(&q, 2), ["b", "c"]);
    assert!(q.lease(LONG, Duration::from_millis(20)).unwrap().is_none());
    q.ack(&a).unwrap();
    assert!(
        !q.push(msg("a")).unwrap(),
        "a done task is not pushed again"
    );
    assert_eq!(
        q.counts().unwrap(),
        Counts {
            pending: 0,
            in_flight: 2,
            done: 1,
            dead: 0
        }
    );
}

#[test]
fn an_expired_lease_is_delivered_again_and_the_old_receipt_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let q = LocalQueue::open(dir.path().join("q.journal")).unwrap();
    q.push(msg("a")).unwrap();
    let first = q.lease(Duration::from_millis(30), NOW).unwrap().unwrap();
    // Waiting longer than the visibility timeout: the task comes back.
    let second = q
        .lease(LONG, Duration::from_secs(5))
        .unwrap()
        .expect("redelivered");
    assert_eq!(second.message.id, "a");
    assert_eq!(second.receives, 2);
    assert!(matches!(q.ack(&first), Err(QueueError::LeaseLost { .. })));
    assert!(q.extend(&first, LONG).is_err());
    q.ack(&second).unwrap();
}

#[test]
fn extending_a_lease_keeps_the_task() {
    let dir = tempfile::tempdir().unwrap();
    let q = LocalQueue::open(dir.path().join("q.journal")).unwrap();
    q.push(msg("a")).unwrap();
    let lease = q.lease(Duration::from_millis(100), NOW).unwrap().unwrap();
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(50));
        q.extend(&lease, Duration::from_millis(100)).unwrap();
    }
    assert!(q.lease(LONG, NOW).unwrap().is_none(), "still leased");
    q.ack(&lease).unwrap();
}

#[test]
fn failures_retry_then_dead_letter_with_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let q = LocalQueue::with_max_receives(dir.path().join("q.journal"), 3).unwrap();
    q.push(msg("poison")).unwrap();
    q.push(msg("fine")).unwrap();
    for round in 1..=3 {
        let l = q.lease(LONG, Duration::from_secs(1)).unwrap().unwrap();
        let l = if l.message.id == "fine" {
            q.ack(&l).unwrap();
            q.lease(LONG, Duration::from_secs(1)).unwrap().unwrap()
        } else {
            l
        };
        assert_eq!((l.message.id.as_str(), l.receives), ("poison", round));
        let after = q
            .fail(
                &l,
                "corrupt master at byte 42",
                Some(Duration::from_millis(1)),
            )
            .unwrap();
        let expected = if round < 3 {
            AfterFailure::Retried
        } else {
            AfterFailure::DeadLettered
        };
        assert_eq!(after, expected);
    }
    let dead = q.dead_letters().unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message.id, "poison");
    assert_eq!(dead[0].error, "corrupt master at byte 42");
    assert_eq!(dead[0].receives, 3);
    assert!(q.counts().unwrap().is_drained());

    // A failure that is not worth retrying goes straight to the dead letters.
    q.push(msg("bad-config")).unwrap();
    let l = q.lease(LONG, NOW).unwrap().unwrap();
    assert_eq!(
        q.fail(&l, "no such codec", None).unwrap(),
        AfterFailure::DeadLettered
    );
}

#[test]
fn a_retry_delay_hides_the_task_until_it_passes() {
    let dir = tempfile::tempdir().unwrap();
    let q = LocalQueue::open(dir.path().join("q.journal")).unwrap();
    q.push(msg("a")).unwrap();
    let l = q.lease(LONG, NOW).unwrap().unwrap();
    q.fail(&l, "store busy", Some(Duration::from_millis(200)))
        .unwrap();
    assert!(q.lease(LONG, NOW).unwrap().is_none());
    assert!(q.lease(LONG, Duration::from_secs(5)).unwrap().is_some());
}

#[test]
fn reopening_resumes_where_a_killed_process_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.journal");
    {
        let q = LocalQueue::open(&path).unwrap();
        for id in ["a", "b", "c", "d"] {
            q.push(msg(id)).unwrap();
        }
        let a = q.lease(LONG, NOW).unwrap().unwrap();
        q.ack(&a).unwrap();
        let _b_in_flight = q.lease(LONG, NOW).unwrap().unwrap();
        let c = q.lease(LONG, NOW).unwrap().unwrap();
        q.fail(&c, "broken", None).unwrap();
        // Dropped without acknowledging b: as if the process was killed.
    }
    // A crash in the middle of a write leaves a partial last line.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"{\"op\":\"ack\",\"id\":\"d")
        .unwrap();
    let q = LocalQueue::open(&path).unwrap();
    assert_eq!(
        q.counts().unwrap(),
        Counts {
            pending: 2,
            in_flight: 0,
            done: 1,
            dead: 1
        }
    );
    let b = q.lease(LONG, NOW).unwrap().unwrap();
    // The delivery the process died in does not count.
    assert_eq!((b.message.id.as_str(), b.receives), ("b", 1));
    assert_eq!(ids(&q, 1), ["d"]);
    assert_eq!(q.dead_letters().unwrap()[0].error, "broken");
    // The journal was compacted: one line per task plus one per finished task.
    let lines = std::fs::read_to_string(&path).unwrap();
    assert!(lines.lines().count() <= 8, "{lines}");
}

#[test]
fn a_task_killed_with_its_process_any_number_of_times_runs_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.journal");
    LocalQueue::with_max_receives(&path, 2)
        .unwrap()
        .push(msg("long"))
        .unwrap();
    // Five deaths of the process while the task runs (the queue dropped with the task leased).
    for _ in 0..5 {
        let q = LocalQueue::with_max_receives(&path, 2).unwrap();
        let l = q.lease(LONG, NOW).unwrap().expect("the task comes back");
        assert_eq!(l.receives, 1, "a death is not a failure");
    }
    let q = LocalQueue::with_max_receives(&path, 2).unwrap();
    let l = q.lease(LONG, NOW).unwrap().expect("still runs");
    q.ack(&l).unwrap();
    assert!(q.dead_letters().unwrap().is_empty());
    // A task that itself fails still ends dead after its receives, and a new id retries it.
    q.push(msg("broken")).unwrap();
    for _ in 0..2 {
        let l = q.lease(LONG, NOW).unwrap().unwrap();
        q.fail(&l, "corrupt chunk", Some(NOW)).unwrap();
    }
    assert_eq!(q.dead_letters().unwrap()[0].message.id, "broken");
    // A re-run retries it: revived with its receives, after a reopen too.
    drop(q);
    let q = LocalQueue::with_max_receives(&path, 2).unwrap();
    assert_eq!(q.revive_dead().unwrap(), 1);
    drop(q);
    let q = LocalQueue::with_max_receives(&path, 2).unwrap();
    let l = q.lease(LONG, NOW).unwrap().expect("revived");
    assert_eq!((l.message.id.as_str(), l.receives), ("broken", 1));
    q.ack(&l).unwrap();
    assert!(q.dead_letters().unwrap().is_empty());
}

#[test]
fn malformed_ids_and_groups_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let q = LocalQueue::open(dir.path().join("q.journal")).unwrap();
    let long = "j-".to_owned() + &"x".repeat(1100);
    for (m, why) in [
        (msg(&long), "1102 bytes"),
        (msg(""), "0 bytes"),
        (msg("a/../b"), "expected 1 to"),
        (
            Message {
                group: "job".into(),
                ..msg("other-encode-1")
            },
            "does not name its group",
        ),
        (
            Message {
                group: "a/b".into(),
                ..msg("a_b-1")
            },
            "group \"a/b\"",
        ),
    ] {
        let e = q.push(m).unwrap_err().to_string();
        assert!(e.contains(why), "{e}");
    }
    assert_eq!(q.counts().unwrap(), Counts::default());
    let grouped = Message {
        group: "job".into(),
        ..msg("job-encode-1")
    };
    assert!(q.push(grouped.clone()).unwrap());
    let l = q.lease(LONG, NOW).unwrap().unwrap();
    assert_eq!(l.message, grouped);
    q.fail(&l, "bad", None).unwrap();
    assert_eq!(q.dead_letters_of("job").unwrap().len(), 1);
    assert!(q.dead_letters_of("jo").unwrap().is_empty());
}

#[test]
fn a_corrupt_journal_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.journal");
    std::fs::write(
        &path,
        "{\"op\":\"push\",\"id\":\"a\",\"body\":\"{}\"}\nnot json\n{\"op\":\"ack\",\"id\":\"a\"}\n",
    )
    .unwrap();
    let e = LocalQueue::open(&path).unwrap_err();
    assert!(
        matches!(e, QueueError::CorruptJournal { line: 2, .. }),
        "{e}"
    );
    std::fs::write(&path, "{\"op\":\"ack\",\"id\":\"ghost\"}\n\n").unwrap();
    let e = LocalQueue::open(&path).unwrap_err().to_string();
    assert!(e.contains("line 1") && e.contains("never pushed"), "{e}");
}

#[test]
fn many_workers_take_every_task_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let q = Arc::new(LocalQueue::open(dir.path().join("q.journal")).unwrap());
    for i in 0..200 {
        q.push(msg(&format!("t{i:03}"))).unwrap();
    }
    let taken: Vec<Vec<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let q = Arc::clone(&q);
                s.spawn(move || {
                    let mut mine = Vec::new();
                    while let Some(l) = q.lease(LONG, Duration::from_millis(50)).unwrap() {
                        mine.push(l.message.id.clone());
                        q.ack(&l).unwrap();
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<String> = taken.into_iter().flatten().collect();
    all.sort();
    let expected: Vec<String> = (0..200).map(|i| format!("t{i:03}")).collect();
    assert_eq!(all, expected);
    assert_eq!(q.counts().unwrap().done, 200);
}
