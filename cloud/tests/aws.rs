//! The S3 store and the SQS queue against a real local server (moto, on loopback): every
//! operation of the traits, multipart uploads, streamed reads, checksums, hostile names,
//! leases, heartbeats, retries and the dead-letter queue.

use std::sync::Arc;
use std::time::Duration;

use cloud::{AwsOptions, S3Store, SqsQueue};
use fixtures::moto::Moto;
use store::{Key, ObjectHeaders, Store, StoreError};
use workers::queue::{AfterFailure, Message, Queue};

fn options(m: &Moto) -> AwsOptions {
    AwsOptions {
        endpoint: Some(m.endpoint.clone()),
        region: Some("us-east-1".into()),
        credentials: Some(("test".into(), "test".into())),
    }
}

fn store(m: &Moto, url: &str) -> S3Store {
    let s = S3Store::open(url, &options(m)).unwrap();
    s.ensure_bucket().unwrap();
    s
}

fn key(k: &str) -> Key {
    Key::new(k).unwrap()
}

/// Bytes that do not repeat in any short period.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn the_s3_store_keeps_objects_whole_and_in_their_prefix() {
    let m = Moto::start().unwrap();
    let s = store(&m, "s3://rungs-test/jobs/j1");
    let other = store(&m, "s3://rungs-test/jobs/j2");
    s.put(&key("plan.json"), b"{}").unwrap();
    s.put(&key("chunks/r0/c1"), b"one").unwrap();
    s.put(&key("chunks/r0/c0"), b"zero").unwrap();
    s.put(&key("chunks/r10/c0"), b"ten").unwrap();
    assert_eq!(s.get(&key("chunks/r0/c1")).unwrap(), b"one");
    assert!(s.exists(&key("plan.json")).unwrap());
    assert!(!s.exists(&key("nothing")).unwrap());
    assert!(matches!(
        s.get(&key("nothing")),
        Err(StoreError::NotFound { .. })
    ));
    let listed: Vec<String> = s
        .list(&key("chunks/r0"))
        .unwrap()
        .iter()
        .map(|k| k.to_string())
        .collect();
    assert_eq!(
        listed,
        ["chunks/r0/c0", "chunks/r0/c1"],
        "r10 is not under r0"
    );
    // Another prefix sees none of it.
    assert!(!other.exists(&key("plan.json")).unwrap());
    assert!(other.list(&key("chunks")).unwrap().is_empty());
    // Replace, delete, delete again.
    s.put(&key("plan.json"), b"{\"v\":2}").unwrap();
    assert_eq!(s.get(&key("plan.json")).unwrap(), b"{\"v\":2}");
    s.delete(&key("plan.json")).unwrap();
    s.delete(&key("plan.json")).unwrap();
    assert!(!s.exists(&key("plan.json")).unwrap());
    // Hostile names never reach the server.
    for bad in ["../jobs/j2/x", "/etc/passwd", "a//b", "a/%2e%2e"] {
        assert!(Key::new(bad).is_err(), "{bad}");
    }
    for bad in [
        "s3://Bad_Bucket/x",
        "s3://b/x",
        "http://bucket/x",
        "s3://rungs-test/../x",
    ] {
        assert!(S3Store::open(bad, &options(&m)).is_err(), "{bad}");
    }
}

#[test]
fn large_objects_go_up_in_parts_and_stream_back_checked() {
    let m = Moto::start().unwrap();
    let s = store(&m, "s3://rungs-test/big").with_part_bytes(5 << 20);
    let data = noise(12 << 20, 7);
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("master.bin");
    std::fs::write(&src, &data).unwrap();
    s.put_file(&key("master"), &src).unwrap();
    let back = dir.path().join("back.bin");
    s.get_to_file(&key("master"), &back).unwrap();
    assert!(
        std::fs::read(&back).unwrap() == data,
        "12 MiB in 3 parts comes back whole"
    );
    assert!(s.get(&key("master")).unwrap() == data);
    // Headers travel with a multipart upload, and `head` reads them back without the body.
    let headers = ObjectHeaders {
        content_type: Some("video/mp4".into()),
        cache_control: Some("public, max-age=31536000, immutable".into()),
    };
    s.put_file_with(&key("served.mp4"), &src, &headers).unwrap();
    let info = s.head(&key("served.mp4")).unwrap().unwrap();
    assert_eq!(info.size, data.len() as u64);
    assert_eq!(info.headers, headers);
    assert_eq!(
        info.crc32.as_deref(),
        Some(format!("{:08x}", crc32fast::hash(&data)).as_str())
    );
    assert_eq!(s.head(&key("absent")).unwrap(), None);
    // An object whose bytes do not match its recorded checksum is refused, not returned.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = rt.block_on(
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&m.endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .load(),
    );
    let raw = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    rt.block_on(
        raw.put_object()
            .bucket("rungs-test")
            .key("big/tampered")
            .metadata("rungs-crc32", "00000000")
            .body(b"not what was stored".to_vec().into())
            .send(),
    )
    .unwrap();
    let e = s.get(&key("tampered")).unwrap_err().to_string();
    assert!(e.contains("checksum mismatch"), "{e}");
    let e = s
        .get_to_file(&key("tampered"), &dir.path().join("t"))
        .unwrap_err();
    assert!(e.to_string().contains("checksum mismatch"), "{e}");
    assert!(!dir.path().join("t").exists(), "no partial file is left");
}

fn queue(m: &Moto, name: &str, max_receives: u32) -> SqsQueue {
    let state = Arc::new(store(m, "s3://rungs-test/queues"));
    SqsQueue::open(name, &options(m), state, key(name))
        .unwrap()
        .with_max_receives(max_receives)
}

fn msg(id: &str) -> Message {
    Message::new(id, format!("{{\"task\":\"{id}\"}}"))
}

#[test]
fn forged_and_malformed_messages_are_buried_apart_and_never_stop_a_lease() {
    let m = Moto::start().unwrap();
    let q = queue(&m, "hostile", 3);
    let grouped = |group: &str, id: &str| Message {
        group: group.into(),
        ..msg(id)
    };
    // What a hostile sender puts on the queue, before the real task.
    let long = format!("victim-{}", "x".repeat(1100));
    for body in [
        serde_json::to_string(&grouped("victim", &long)).unwrap(),
        "not json at all".to_owned(),
        serde_json::to_string(&grouped("victim", "other-advance-1")).unwrap(),
        serde_json::to_string(&grouped("victim", "victim/../x")).unwrap(),
    ] {
        m.send_raw("hostile", &body).unwrap();
    }
    let e = q.push(grouped("victim", &long)).unwrap_err().to_string();
    assert!(e.contains("1107 bytes"), "{e}");
    q.push(grouped("victim", "victim-advance-1")).unwrap();
    let l = q
        .lease(Duration::from_secs(30), Duration::from_secs(5))
        .unwrap()
        .expect("the real task comes through");
    assert_eq!(l.message.id, "victim-advance-1");
    // A well-formed forgery the handler finds out (its body is another task) is refused: the
    // task it names is neither done nor dead, and no job sees the record.
    q.refuse(&l, "the id does not match the body").unwrap();
    assert!(q.dead_letters_of("victim").unwrap().is_empty());
    let refused = q.dead_letters().unwrap();
    assert_eq!(refused.len(), 5, "{refused:#?}");
    assert!(refused.iter().all(|d| d.message.group.is_empty()));
    assert!(refused.iter().any(|d| d.error.contains("1107 bytes")));
    assert!(refused.iter().any(|d| d.error.contains("not a task")));
    assert!(
        refused
            .iter()
            .any(|d| d.error.contains("does not name its group"))
    );
    assert!(q.push(grouped("victim", "victim-advance-1")).is_ok());
    // Dead letters are a group's by its field: `a` does not see `a-b`'s.
    q.push(grouped("a-b", "a-b-encode-1")).unwrap();
    q.push(grouped("a", "a-encode-2")).unwrap();
    for _ in 0..2 {
        let l = q
            .lease(Duration::from_secs(30), Duration::from_secs(5))
            .unwrap()
            .unwrap();
        q.fail(&l, "broken", None).unwrap();
    }
    let ids = |g: &str| -> Vec<String> {
        q.dead_letters_of(g)
            .unwrap()
            .into_iter()
            .map(|d| d.message.id)
            .collect()
    };
    assert_eq!(ids("a"), ["a-encode-2"]);
    assert_eq!(ids("a-b"), ["a-b-encode-1"]);
    // A dead record that does not parse shows as one of its own job's, saying so; the other
    // job's are untouched.
    store(&m, "s3://rungs-test/queues")
        .put(&key("hostile/dead/a/a-encode-4.json"), b"{ not json")
        .unwrap();
    let a = q.dead_letters_of("a").unwrap();
    assert_eq!(a.len(), 2, "{a:#?}");
    assert!(
        a.iter()
            .any(|d| d.error.contains("unreadable dead-letter record"))
    );
    assert_eq!(ids("a-b"), ["a-b-encode-1"]);
}

#[test]
fn sqs_leases_extend_ack_and_dedupe() {
    let m = Moto::start().unwrap();
    let q = queue(&m, "basic", 3);
    assert!(q.push(msg("a")).unwrap());
    assert!(!q.push(msg("a")).unwrap(), "a known id is not sent twice");
    assert!(q.push(msg("b")).unwrap());
    let first = q
        .lease(Duration::from_secs(2), Duration::from_secs(2))
        .unwrap()
        .unwrap();
    assert_eq!(first.receives, 1);
    // The heartbeat keeps it: 3 s of 1 s extensions on a 2 s lease.
    for _ in 0..3 {
        std::thread::sleep(Duration::from_secs(1));
        q.extend(&first, Duration::from_secs(2)).unwrap();
    }
    let second = q
        .lease(Duration::from_secs(30), Duration::from_secs(2))
        .unwrap()
        .unwrap();
    assert_ne!(
        second.message.id, first.message.id,
        "the extended task stayed leased"
    );
    assert!(
        q.lease(Duration::from_secs(30), Duration::ZERO)
            .unwrap()
            .is_none()
    );
    q.ack(&first).unwrap();
    q.ack(&second).unwrap();
    let c = q.counts_of("").unwrap();
    assert_eq!((c.pending, c.in_flight, c.done, c.dead), (0, 0, 2, 0));
    assert!(!q.push(msg("a")).unwrap(), "a done id is not sent again");
}

#[test]
fn sqs_expired_leases_come_back_and_failures_end_in_the_dead_letter_queue() {
    let m = Moto::start().unwrap();
    let q = queue(&m, "chaos", 3);
    q.push(msg("flaky")).unwrap();
    q.push(msg("poison")).unwrap();
    q.push(msg("orphan")).unwrap();
    let mut seen = std::collections::BTreeMap::new();
    // Lease everything for 1 s and let the leases lapse: every task comes back, counted.
    for _ in 0..3 {
        let l = q
            .lease(Duration::from_secs(1), Duration::from_secs(2))
            .unwrap()
            .unwrap();
        seen.insert(l.message.id.clone(), l.receives);
    }
    assert_eq!(seen.values().copied().collect::<Vec<_>>(), [1, 1, 1]);
    std::thread::sleep(Duration::from_millis(1500));
    for _ in 0..3 {
        let l = q
            .lease(Duration::from_secs(1), Duration::from_secs(2))
            .unwrap()
            .unwrap();
        assert_eq!(l.receives, 2, "{}", l.message.id);
        match l.message.id.as_str() {
            "flaky" => {
                let after = q
                    .fail(&l, "a passing fault", Some(Duration::from_secs(3)))
                    .unwrap();
                assert_eq!(after, AfterFailure::Retried);
            }
            "poison" => {
                let after = q
                    .fail(&l, "corrupt master: moov atom not found", None)
                    .unwrap();
                assert_eq!(after, AfterFailure::DeadLettered);
            }
            // Its worker "dies": the 1 s lease is never acked or extended.
            _ => {}
        }
    }
    // From here: the flaky task comes back after its delay and finishes; the orphan comes
    // back each time its lease lapses, until it has been received once too often and is
    // buried. Nothing is left after that.
    let mut flaky_done = false;
    let mut orphan = Vec::new();
    while let Some(l) = q
        .lease(Duration::from_secs(1), Duration::from_secs(5))
        .unwrap()
    {
        match l.message.id.as_str() {
            "flaky" => {
                assert_eq!(l.receives, 3);
                q.ack(&l).unwrap();
                flaky_done = true;
            }
            "orphan" => orphan.push(l.receives),
            other => panic!("{other} came back"),
        }
    }
    assert!(flaky_done);
    assert_eq!(orphan, [3], "delivered a third time, buried at the fourth");
    let mut dead = q.dead_letters().unwrap();
    dead.sort_by(|a, b| a.message.id.cmp(&b.message.id));
    let summary: Vec<(&str, u32)> = dead
        .iter()
        .map(|d| (d.message.id.as_str(), d.receives))
        .collect();
    assert_eq!(summary, [("orphan", 4), ("poison", 2)]);
    assert!(dead[1].error.contains("moov atom not found"));
    assert!(
        dead[0].error.contains("received 4 times"),
        "{}",
        dead[0].error
    );
    let c = q.counts_of("").unwrap();
    assert_eq!((c.pending, c.in_flight, c.done, c.dead), (0, 0, 1, 2));
}

#[test]
fn the_store_rides_out_storage_faults() {
    let m = Moto::start().unwrap();
    store(&m, "s3://rungs-test/x");
    // 5% of requests answered 500/503, 5% of responses cut off mid-body.
    let proxy = fixtures::faults::FaultProxy::start(m.port, 0.05, 0.05, 42);
    let through = AwsOptions {
        endpoint: Some(proxy.endpoint.clone()),
        ..options(&m)
    };
    let s = S3Store::open("s3://rungs-test/faults", &through)
        .unwrap()
        .with_part_bytes(5 << 20);
    let mut objects = Vec::new();
    for i in 0..60u64 {
        let size = match i % 3 {
            0 => 10,
            1 => 200_000,
            _ => 1_000_000,
        };
        let data = noise(size, i + 1);
        let k = key(&format!("o{i}"));
        s.put(&k, &data).unwrap();
        objects.push((k, data));
    }
    let big = noise(11 << 20, 99);
    s.put(&key("big"), &big).unwrap();
    for (k, data) in &objects {
        assert!(s.get(k).unwrap() == *data, "{k}");
        assert!(s.exists(k).unwrap());
    }
    assert!(s.get(&key("big")).unwrap() == big);
    assert_eq!(s.list(&key("o1")).unwrap().len(), 1);
    let errors = proxy
        .counts
        .errors
        .load(std::sync::atomic::Ordering::Relaxed);
    let cut = proxy.counts.cut.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        errors > 0 && cut > 0,
        "faults injected: {errors} errors, {cut} cut"
    );
    eprintln!("faults injected: {errors} errors, {cut} cut responses");
}
