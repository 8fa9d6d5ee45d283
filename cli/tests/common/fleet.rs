//! A fleet on a local moto server, as the fleet tests open it.

use cloud::{AwsOptions, S3Store};
use fixtures::moto::Moto;
use pipeline::fleet::Fleet;

/// Options that reach `endpoint` with test credentials.
pub fn aws(endpoint: &str) -> AwsOptions {
    AwsOptions {
        endpoint: Some(endpoint.to_owned()),
        region: Some("us-east-1".into()),
        credentials: Some(("test".into(), "test".into())),
    }
}

/// The fleet of `queue` and `store` on `moto`, its bucket made.
pub fn open(moto: &Moto, queue: &str, store: &str) -> Fleet {
    S3Store::open(store, &aws(&moto.endpoint))
        .unwrap()
        .ensure_bucket()
        .unwrap();
    Fleet::open(
        queue,
        store,
        &aws(&moto.endpoint),
        &aws(&moto.endpoint),
        None,
    )
    .unwrap()
}
