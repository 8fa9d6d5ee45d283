//! The S3 store, through aws-sdk-s3: objects under `s3://BUCKET/PREFIX/KEY`.
//!
//! - Large objects go up in parts (multipart upload, 8 MiB parts by default), every part with a
//!   CRC32 checksum the server checks; the whole object's CRC32 also travels as metadata
//!   (`x-amz-meta-rungs-crc32`) and every read is checked against it, since S3-compatible
//!   servers do not all return checksums for multipart objects.
//! - Requests are retried with exponential backoff by the SDK (6 attempts, 30 s per attempt);
//!   a body that breaks off mid-read, which the SDK cannot retry, is read again here.
//! - Reads stream: `get_to_file` never holds the object in memory.
//! - The endpoint is `AWS_ENDPOINT_URL`, or the one given, with path-style addressing, so any
//!   S3-compatible server works. Credentials come from the usual AWS chain and are never
//!   logged.
//! - Keys are [`Key`]s, checked before any request, so nothing can leave the prefix.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};

use store::{Key, ObjectHeaders, ObjectInfo, Store, StoreError, file_crc32};

/// Default size of an upload part, bytes (S3 needs at least 5 MiB for all but the last).
pub const DEFAULT_PART_BYTES: usize = 8 << 20;
/// Reads of a body that broke off are tried this many times.
const READ_ATTEMPTS: u32 = 5;
/// The metadata entry that holds the object's CRC32.
const CRC_META: &str = "rungs-crc32";

/// How to reach AWS, or an S3/SQS-compatible server: shared by the S3 store and the SQS queue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AwsOptions {
    /// Endpoint URL (`http://127.0.0.1:9000`); `None` uses `AWS_ENDPOINT_URL` or AWS itself.
    pub endpoint: Option<String>,
    /// Region; `None` uses the AWS chain, then `us-east-1`.
    pub region: Option<String>,
    /// Static credentials (access key id, secret); `None` uses the AWS chain.
    pub credentials: Option<(String, String)>,
}

/// Builds the shared SDK configuration: retries with backoff, timeouts, endpoint, region.
pub(crate) fn sdk_config(
    rt: &tokio::runtime::Runtime,
    options: &AwsOptions,
) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(6)
                .with_initial_backoff(Duration::from_millis(100)),
        )
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(30))
                .build(),
        );
    if let Some(e) = &options.endpoint {
        loader = loader.endpoint_url(e);
    }
    if let Some(r) = &options.region {
        loader = loader.region(aws_config::Region::new(r.clone()));
    }
    if let Some((id, secret)) = &options.credentials {
        loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
            id, secret, None, None, "rungs",
        ));
    }
    let config = rt.block_on(loader.load());
    if config.region().is_none() {
        let mut b = config.into_builder();
        b.set_region(Some(aws_config::Region::new("us-east-1")));
        return b.build();
    }
    config
}

/// A small runtime for the SDK's futures; the store's methods block on it.
pub(crate) fn runtime() -> Result<Arc<tokio::runtime::Runtime>, std::io::Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("rungs-aws")
        .enable_all()
        .build()
        .map(Arc::new)
}

/// Objects in an S3 bucket under a prefix.
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: Option<Key>,
    part_bytes: usize,
    rt: Arc<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the client: its configuration holds the credentials.
        f.debug_struct("S3Store")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// An error of the SDK (S3 or SQS: the same type) as text, with the service's code and
/// message when there is one, else the transport's error and its causes.
pub(crate) fn sdk_text<E, R>(e: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e.as_service_error() {
        Some(s) => format!(
            "{}: {}",
            s.code().unwrap_or("error"),
            s.message().unwrap_or("no message")
        ),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            text
        }
    }
}

fn remote(what: &'static str, key: &str, reason: String) -> StoreError {
    StoreError::Remote {
        what,
        key: key.to_owned(),
        reason,
    }
}

/// An object being written: its key, its name in the bucket, and what it carries.
struct Target<'a> {
    key: &'a Key,
    /// The key with the store's prefix.
    name: String,
    /// The whole object's CRC32, as hex.
    crc: String,
    headers: &'a ObjectHeaders,
}

impl S3Store {
    /// Opens `s3://BUCKET[/PREFIX]`. Nothing is sent until the first operation.
    pub fn open(url: &str, options: &AwsOptions) -> Result<Self, StoreError> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| remote("opening", url, "expected an s3://BUCKET/PREFIX URL".into()))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !bucket_ok {
            return Err(remote(
                "opening",
                url,
                format!("bucket name {bucket:?} (expected 3 to 63 of a-z, 0-9, '-' and '.')"),
            ));
        }
        let prefix = match prefix.trim_end_matches('/') {
            "" => None,
            p => Some(Key::new(p)?),
        };
        let rt = runtime().map_err(|e| remote("opening", url, e.to_string()))?;
        let config = sdk_config(&rt, options);
        let s3 = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build();
        Ok(Self {
            client: aws_sdk_s3::Client::from_conf(s3),
            bucket: bucket.to_owned(),
            prefix,
            part_bytes: DEFAULT_PART_BYTES,
            rt,
        })
    }

    /// Uses parts of `bytes` (at least 5 MiB) for multipart uploads.
    pub fn with_part_bytes(mut self, bytes: usize) -> Self {
        self.part_bytes = bytes.max(5 << 20);
        self
    }

    /// Creates the bucket when it is missing (tests and first runs).
    pub fn ensure_bucket(&self) -> Result<(), StoreError> {
        let exists = self
            .rt
            .block_on(self.client.head_bucket().bucket(&self.bucket).send())
            .is_ok();
        if exists {
            return Ok(());
        }
        self.rt
            .block_on(self.client.create_bucket().bucket(&self.bucket).send())
            .map(|_| ())
            .map_err(|e| remote("creating bucket", &self.bucket, sdk_text(&e)))
    }

    fn object(&self, key: &Key) -> String {
        match &self.prefix {
            Some(p) => format!("{p}/{key}"),
            None => key.to_string(),
        }
    }

    /// Uploads `size` bytes read by `read` (which fills the buffer it is given, whole) as `key`
    /// with the whole object's CRC32 `crc`: one request up to the part size, else a multipart
    /// upload holding one part in memory at a time, aborted on failure.
    fn upload(
        &self,
        key: &Key,
        size: u64,
        crc: u32,
        headers: &ObjectHeaders,
        read: &mut dyn FnMut(&mut [u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let target = Target {
            key,
            name: self.object(key),
            crc: format!("{crc:08x}"),
            headers,
        };
        if size <= self.part_bytes as u64 {
            let mut data = vec![0; size as usize];
            read(&mut data)?;
            return self.put_whole(&target, data);
        }
        let id = self.start_multipart(&target)?;
        let result = self.upload_parts(&target, &id, size, read);
        if result.is_err() {
            // Leave no parts behind; the object keeps its old value (or none).
            let _ = self.rt.block_on(
                self.client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&target.name)
                    .upload_id(&id)
                    .send(),
            );
        }
        result
    }

    /// Writes a whole object in one request.
    fn put_whole(&self, target: &Target<'_>, data: Vec<u8>) -> Result<(), StoreError> {
        self.rt
            .block_on(
                self.client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(&target.name)
                    .metadata(CRC_META, &target.crc)
                    .set_content_type(target.headers.content_type.clone())
                    .set_cache_control(target.headers.cache_control.clone())
                    .checksum_algorithm(ChecksumAlgorithm::Crc32)
                    .body(ByteStream::from(data))
                    .send(),
            )
            .map(|_| ())
            .map_err(|e| remote("writing", target.key.as_str(), sdk_text(&e)))
    }

    /// Starts a multipart upload; returns its id.
    fn start_multipart(&self, target: &Target<'_>) -> Result<String, StoreError> {
        let upload = self
            .rt
            .block_on(
                self.client
                    .create_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&target.name)
                    .metadata(CRC_META, &target.crc)
                    .set_content_type(target.headers.content_type.clone())
                    .set_cache_control(target.headers.cache_control.clone())
                    .checksum_algorithm(ChecksumAlgorithm::Crc32)
                    .send(),
            )
            .map_err(|e| remote("starting the upload of", target.key.as_str(), sdk_text(&e)))?;
        Ok(upload.upload_id().unwrap_or_default().to_owned())
    }

    /// Uploads `size` bytes read by `read` as the parts of upload `id`, one part in memory at
    /// a time, and completes it.
    fn upload_parts(
        &self,
        target: &Target<'_>,
        id: &str,
        size: u64,
        read: &mut dyn FnMut(&mut [u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let key = target.key.as_str();
        let mut parts = Vec::new();
        let mut left = size;
        let mut n = 0;
        while left > 0 {
            n += 1;
            let mut chunk = vec![0; left.min(self.part_bytes as u64) as usize];
            read(&mut chunk)?;
            left -= chunk.len() as u64;
            let part = self
                .rt
                .block_on(
                    self.client
                        .upload_part()
                        .bucket(&self.bucket)
                        .key(&target.name)
                        .upload_id(id)
                        .part_number(n)
                        .checksum_algorithm(ChecksumAlgorithm::Crc32)
                        .body(ByteStream::from(chunk))
                        .send(),
                )
                .map_err(|e| remote("uploading a part of", key, sdk_text(&e)))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(n)
                    .set_e_tag(part.e_tag().map(str::to_owned))
                    .set_checksum_crc32(part.checksum_crc32().map(str::to_owned))
                    .build(),
            );
        }
        self.rt
            .block_on(
                self.client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&target.name)
                    .upload_id(id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts))
                            .build(),
                    )
                    .send(),
            )
            .map_err(|e| remote("finishing the upload of", key, sdk_text(&e)))?;
        Ok(())
    }

    fn put_bytes(&self, key: &Key, data: &[u8], headers: &ObjectHeaders) -> Result<(), StoreError> {
        let mut at = 0;
        self.upload(
            key,
            data.len() as u64,
            crc32fast::hash(data),
            headers,
            &mut |buf| {
                buf.copy_from_slice(&data[at..at + buf.len()]);
                at += buf.len();
                Ok(())
            },
        )
    }

    /// The objects whose names start with `base` (a full object name), as keys under the
    /// store's prefix with their sizes, sorted. Names a `Key` refuses are skipped.
    fn list_under(&self, base: &str, what: &str) -> Result<Vec<(Key, u64)>, StoreError> {
        let strip = self.prefix.as_ref().map_or(0, |p| p.as_str().len() + 1);
        let mut keys = Vec::new();
        self.pages(base, None, what, |page| {
            for o in page.contents() {
                let Some(name) = o.key() else { continue };
                // Objects written by something else, with names a Key refuses, are skipped.
                if let Some(k) = name.get(strip..).and_then(|k| Key::new(k).ok()) {
                    keys.push((k, o.size().unwrap_or(0).max(0) as u64));
                }
            }
        })?;
        keys.sort();
        Ok(keys)
    }

    /// Every page of a listing of the names that start with `base` (grouped at `delimiter`
    /// when given), handed to `each`.
    fn pages(
        &self,
        base: &str,
        delimiter: Option<&str>,
        what: &str,
        mut each: impl FnMut(&aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output),
    ) -> Result<(), StoreError> {
        let mut token: Option<String> = None;
        loop {
            let page = self
                .rt
                .block_on(
                    self.client
                        .list_objects_v2()
                        .bucket(&self.bucket)
                        .prefix(base)
                        .set_delimiter(delimiter.map(str::to_owned))
                        .set_continuation_token(token.clone())
                        .send(),
                )
                .map_err(|e| remote("listing", what, sdk_text(&e)))?;
            each(&page);
            token = page.next_continuation_token().map(str::to_owned);
            if token.is_none() {
                return Ok(());
            }
        }
    }

    /// Streams the object into `sink`, checking its CRC32; a body that breaks off is read
    /// again from the start (`reset` clears what `sink` got).
    fn read_into(
        &self,
        key: &Key,
        sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
        reset: &mut dyn FnMut() -> std::io::Result<()>,
    ) -> Result<(), StoreError> {
        let name = self.object(key);
        let mut last = String::new();
        for attempt in 0..READ_ATTEMPTS {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(100 << attempt));
                reset().map_err(|error| StoreError::Io {
                    what: "reading",
                    key: key.to_string(),
                    error,
                })?;
            }
            let out = self.rt.block_on(async {
                let resp = match self
                    .client
                    .get_object()
                    .bucket(&self.bucket)
                    .key(&name)
                    .send()
                    .await
                {
                    Ok(r) => r,
                    Err(e) => {
                        let missing = e.as_service_error().is_some_and(|s| s.is_no_such_key());
                        return Err((missing, sdk_text(&e)));
                    }
                };
                let want = resp.metadata().and_then(|m| m.get(CRC_META)).cloned();
                let mut body = resp.body;
                let mut hasher = crc32fast::Hasher::new();
                loop {
                    match body.try_next().await {
                        Ok(Some(bytes)) => {
                            hasher.update(&bytes);
                            sink(&bytes).map_err(|e| (false, e.to_string()))?;
                        }
                        Ok(None) => break,
                        Err(e) => return Err((false, format!("the body broke off: {e}"))),
                    }
                }
                let got = format!("{:08x}", hasher.finalize());
                match want {
                    Some(w) if w != got => Err((
                        false,
                        format!("checksum mismatch (CRC32 {got}, stored {w})"),
                    )),
                    _ => Ok(()),
                }
            });
            match out {
                Ok(()) => return Ok(()),
                Err((true, _)) => return Err(StoreError::NotFound { key: key.clone() }),
                Err((false, reason)) => {
                    tracing::warn!(key = %key, attempt, "S3 read failed: {reason}");
                    last = reason;
                }
            }
        }
        Err(remote("reading", key.as_str(), last))
    }
}

impl Store for S3Store {
    fn put(&self, key: &Key, data: &[u8]) -> Result<(), StoreError> {
        self.put_bytes(key, data, &ObjectHeaders::default())
    }

    fn put_file(&self, key: &Key, path: &Path) -> Result<(), StoreError> {
        self.put_file_with(key, path, &ObjectHeaders::default())
    }

    fn get(&self, key: &Key) -> Result<Vec<u8>, StoreError> {
        let out = std::cell::RefCell::new(Vec::new());
        self.read_into(
            key,
            &mut |b| {
                out.borrow_mut().extend_from_slice(b);
                Ok(())
            },
            &mut || {
                out.borrow_mut().clear();
                Ok(())
            },
        )?;
        Ok(out.into_inner())
    }

    fn get_to_file(&self, key: &Key, path: &Path) -> Result<(), StoreError> {
        let file_err = |what| {
            let path = path.to_owned();
            move |error| StoreError::File { what, path, error }
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let tmp = tempfile::NamedTempFile::new_in(dir).map_err(file_err("creating"))?;
        let file = std::cell::RefCell::new(tmp);
        self.read_into(key, &mut |b| file.borrow_mut().write_all(b), &mut || {
            let mut f = file.borrow_mut();
            f.as_file_mut().set_len(0)?;
            std::io::Seek::rewind(f.as_file_mut())
        })?;
        let tmp = file.into_inner();
        tmp.as_file().sync_all().map_err(file_err("syncing"))?;
        tmp.persist(path).map(|_| ()).map_err(|e| StoreError::File {
            what: "renaming into",
            path: path.to_owned(),
            error: e.error,
        })
    }

    fn exists(&self, key: &Key) -> Result<bool, StoreError> {
        let r = self.rt.block_on(
            self.client
                .head_object()
                .bucket(&self.bucket)
                .key(self.object(key))
                .send(),
        );
        match r {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
            Err(e) => Err(remote("looking up", key.as_str(), sdk_text(&e))),
        }
    }

    fn list(&self, prefix: &Key) -> Result<Vec<Key>, StoreError> {
        let listed = self.list_under(&self.object(prefix), prefix.as_str())?;
        Ok(listed
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| k.starts_with(prefix))
            .collect())
    }

    fn children(&self, prefix: &Key) -> Result<Vec<String>, StoreError> {
        let base = format!("{}/", self.object(prefix));
        let mut names = Vec::new();
        self.pages(&base, Some("/"), prefix.as_str(), |page| {
            let objects = page.contents().iter().filter_map(|o| o.key());
            let folders = page.common_prefixes().iter().filter_map(|p| p.prefix());
            for full in objects.chain(folders) {
                let name = full.get(base.len()..).unwrap_or("").trim_end_matches('/');
                if !name.is_empty() && prefix.join(name).is_ok() {
                    names.push(name.to_owned());
                }
            }
        })?;
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn delete(&self, key: &Key) -> Result<(), StoreError> {
        self.rt
            .block_on(
                self.client
                    .delete_object()
                    .bucket(&self.bucket)
                    .key(self.object(key))
                    .send(),
            )
            .map(|_| ())
            .map_err(|e| remote("deleting", key.as_str(), sdk_text(&e)))
    }

    /// Uploads the file `path` as `key` with `headers`, streaming it: one part in memory at a
    /// time. The file is read twice (its CRC32 travels first, as metadata); a file that
    /// changes in between is refused.
    fn put_file_with(
        &self,
        key: &Key,
        path: &Path,
        headers: &ObjectHeaders,
    ) -> Result<(), StoreError> {
        let file_err = |error| StoreError::File {
            what: "reading",
            path: path.to_owned(),
            error,
        };
        let (size, crc) = file_crc32(path).map_err(file_err)?;
        let mut file = std::fs::File::open(path).map_err(file_err)?;
        let mut again = crc32fast::Hasher::new();
        let mut read = 0u64;
        self.upload(key, size, crc, headers, &mut |buf| {
            std::io::Read::read_exact(&mut file, buf).map_err(file_err)?;
            again.update(buf);
            read += buf.len() as u64;
            if read == size && again.clone().finalize() != crc {
                return Err(StoreError::File {
                    what: "uploading",
                    path: path.to_owned(),
                    error: std::io::Error::other("the file changed while it was uploaded"),
                });
            }
            Ok(())
        })
    }

    /// What the store has under `key`: its size, recorded CRC32 and headers; `None` when
    /// there is no object.
    fn head(&self, key: &Key) -> Result<Option<ObjectInfo>, StoreError> {
        let r = self.rt.block_on(
            self.client
                .head_object()
                .bucket(&self.bucket)
                .key(self.object(key))
                .send(),
        );
        match r {
            Ok(h) => Ok(Some(ObjectInfo {
                size: h.content_length().unwrap_or(0).max(0) as u64,
                crc32: h.metadata().and_then(|m| m.get(CRC_META)).cloned(),
                headers: ObjectHeaders {
                    content_type: h.content_type().map(str::to_owned),
                    cache_control: h.cache_control().map(str::to_owned),
                },
            })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(remote("looking up", key.as_str(), sdk_text(&e))),
        }
    }

    /// Every object under the store's prefix, with its size, sorted.
    fn objects(&self) -> Result<Vec<(Key, u64)>, StoreError> {
        let base = self
            .prefix
            .as_ref()
            .map_or(String::new(), |p| format!("{p}/"));
        self.list_under(&base, "")
    }
}
