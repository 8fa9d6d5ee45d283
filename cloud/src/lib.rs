//! The fleet's backends on AWS, or on any S3- and SQS-compatible server: [`S3Store`] is the
//! `store` crate's [`store::Store`] on an S3 bucket, and [`SqsQueue`] the `workers` crate's
//! [`workers::queue::Queue`] on Amazon SQS, with task state in a store.
//!
//! Only what runs a fleet, submits to one or publishes to S3 links this crate and the AWS SDK;
//! a local build of the rest of rungs does not.

mod s3;
mod sqs;

pub use s3::{AwsOptions, DEFAULT_PART_BYTES, S3Store};
pub use sqs::{DEFAULT_MAX_RECEIVES, SqsQueue};
