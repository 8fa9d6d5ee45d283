//! Any bytes as what a fleet worker reads from the queue and the store: a queue message (its
//! id, group and body checked, then the body decoded as a task bound to its id) and a job spec
//! (decoded, then checked for what a fleet refuses). Each gives a value or an error; none
//! panics, and a task that is accepted is the one its id names.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipeline::encode::job::{JobSpec, Work, parse};
use workers::queue::{Lease, Message};

fuzz_target!(|data: &[u8]| {
    // The bytes as a whole message, as SQS hands it over.
    if let Ok(m) = serde_json::from_slice::<Message>(data) {
        if m.check().is_ok() {
            let lease = Lease {
                message: m.clone(),
                receipt: "r".into(),
                receives: 1,
            };
            if let Ok(work) = parse(&lease) {
                assert!(m.id.starts_with(&work.message().id), "{} is not {}", m.id, work.message().id);
                assert!(m.group.is_empty() || m.group == work.job());
            }
        }
    }
    // The bytes as a task body under a fixed id and group.
    let body = String::from_utf8_lossy(data).into_owned();
    let lease = Lease {
        message: Message {
            id: "j-plan".into(),
            body,
            group: "j".into(),
        },
        receipt: "r".into(),
        receives: 1,
    };
    if let Ok(work) = parse(&lease) {
        assert_eq!(work, Work::Plan { job: "j".into() });
    }
    // The bytes as a job spec.
    if let Ok(spec) = serde_json::from_slice::<JobSpec>(data) {
        let _ = spec.check_fleet();
    }
});
