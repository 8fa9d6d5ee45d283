//! What looking at one fleet job costs as the queue's history grows: the store requests of
//! `rungs status JOB` (and of the driver's look at its dead letters) with no other finished
//! tasks, against the same with `RUNGS_BENCH_OTHERS` (default 10,000) finished tasks and 100
//! dead ones of other jobs in the store. S3 and SQS are moto on loopback; every store request
//! is counted by a wrapper around the S3 store. The reference is the empty store, measured in
//! the same run; the ratio must be 1 (the benchmark fails otherwise).
//!
//! Run with `cargo bench -p benches --bench status`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use cloud::{AwsOptions, S3Store, SqsQueue};
use fixtures::moto::Moto;
use pipeline::fleet::{self, Fleet};
use store::{Key, ObjectHeaders, ObjectInfo, Store, StoreError};

/// A store that counts the requests it passes on.
#[derive(Debug)]
struct Counting {
    inner: S3Store,
    requests: AtomicUsize,
}

impl Counting {
    fn tick(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }
}

impl Store for Counting {
    fn put(&self, key: &Key, data: &[u8]) -> Result<(), StoreError> {
        self.tick();
        self.inner.put(key, data)
    }
    fn put_file(&self, key: &Key, path: &Path) -> Result<(), StoreError> {
        self.tick();
        self.inner.put_file(key, path)
    }
    fn get(&self, key: &Key) -> Result<Vec<u8>, StoreError> {
        self.tick();
        self.inner.get(key)
    }
    fn get_to_file(&self, key: &Key, path: &Path) -> Result<(), StoreError> {
        self.tick();
        self.inner.get_to_file(key, path)
    }
    fn exists(&self, key: &Key) -> Result<bool, StoreError> {
        self.tick();
        self.inner.exists(key)
    }
    fn list(&self, prefix: &Key) -> Result<Vec<Key>, StoreError> {
        self.tick();
        self.inner.list(prefix)
    }
    fn delete(&self, key: &Key) -> Result<(), StoreError> {
        self.tick();
        self.inner.delete(key)
    }
    fn children(&self, prefix: &Key) -> Result<Vec<String>, StoreError> {
        self.tick();
        self.inner.children(prefix)
    }
    fn local_path(&self, key: &Key) -> Option<PathBuf> {
        self.inner.local_path(key)
    }
    fn put_file_with(
        &self,
        key: &Key,
        path: &Path,
        headers: &ObjectHeaders,
    ) -> Result<(), StoreError> {
        self.tick();
        self.inner.put_file_with(key, path, headers)
    }
    fn head(&self, key: &Key) -> Result<Option<ObjectInfo>, StoreError> {
        self.tick();
        self.inner.head(key)
    }
    fn objects(&self) -> Result<Vec<(Key, u64)>, StoreError> {
        self.tick();
        self.inner.objects()
    }
}

fn main() {
    let others: usize = std::env::var("RUNGS_BENCH_OTHERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let moto = Moto::start().expect("moto (scripts/setup installs it)");
    let aws = AwsOptions {
        endpoint: Some(moto.endpoint.clone()),
        region: Some("us-east-1".into()),
        credentials: Some(("bench".into(), "bench".into())),
    };
    let s3 = S3Store::open("s3://bench-status/fleet", &aws).unwrap();
    s3.ensure_bucket().unwrap();
    let store = Arc::new(Counting {
        inner: s3,
        requests: AtomicUsize::new(0),
    });
    let queue = SqsQueue::open(
        "bench-status",
        &aws,
        store.clone(),
        Key::new("queue/bench-status").unwrap(),
    )
    .unwrap();
    let fleet = Fleet {
        store: store.clone(),
        queue: Arc::new(queue),
    };
    // The job looked at: a spec, a status, a few finished tasks of its own.
    let job = "target-20261207-000000-0001";
    let put = |k: &str, v: &[u8]| store.put(&Key::new(k).unwrap(), v).unwrap();
    put(
        &format!("jobs/{job}/job.json"),
        br#"{"master":{"stored":{"key":"input/master-0-m.mp4","name":"m.mp4"}},"audio":[],"subtitles":[],"options":{},"output":"store"}"#,
    );
    put(
        &format!("jobs/{job}/status.json"),
        br#"{"waiting":{"stage":"encoding chunks","done":3,"total":9},"updated":4102444800,"since":4102444800}"#,
    );
    for i in 0..3 {
        put(
            &format!("queue/bench-status/done/{job}/{job}-encode-{i}"),
            b"",
        );
    }
    let cost = |what: &str| {
        store.requests.store(0, Ordering::Relaxed);
        let t = Instant::now();
        let s = fleet::status(&fleet, job).unwrap();
        let requests = store.requests.load(Ordering::Relaxed);
        eprintln!(
            "{what}: status '{}' ({} of the job's tasks done): {requests} store requests, {:.1} ms",
            s.state,
            s.queue.2,
            t.elapsed().as_secs_f64() * 1e3
        );
        requests
    };
    let alone = cost("no other tasks");
    let t = Instant::now();
    for i in 0..others {
        let other = format!("other-{:03}", i % 500);
        put(
            &format!("queue/bench-status/done/{other}/{other}-encode-{i}"),
            b"",
        );
    }
    for i in 0..100 {
        let other = format!("other-{i:03}");
        put(
            &format!("queue/bench-status/dead/{other}/{other}-encode-{i}.json"),
            br#"{"message":{"id":"x","body":"{}"},"error":"broken","receives":5}"#,
        );
    }
    eprintln!(
        "wrote {others} finished and 100 dead tasks of 500 other jobs in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let crowded = cost(&format!("{others} other finished tasks"));
    println!(
        "status of one job: {alone} store requests alone, {crowded} beside {others} other tasks: ratio {:.2}",
        crowded as f64 / alone as f64
    );
    assert_eq!(
        crowded, alone,
        "the cost of one job's status grew with the others'"
    );
}
