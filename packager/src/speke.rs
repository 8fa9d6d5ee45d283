//! A SPEKE v2 client (the AWS Secure Packager and Encoder Key Exchange, CPIX over HTTP): rungs
//! sends a CPIX request naming a key ID for each class of track (audio, SD, HD, UHD, or one for
//! all) and the DRM systems it signals; the key server answers with the keys and each system's
//! `pssh`.
//!
//! Key IDs are derived from the content ID and the class, so asking again for the same content
//! names the same keys (a key server that keeps its keys gives the same title again).

use sha2::{Digest, Sha256};

use crate::cenc::Scheme;
use crate::cpix::{self, CpixError, Document};
use crate::drm::{KeyPolicy, TrackClass};

/// The largest answer read, bytes.
const MAX_ANSWER: u64 = 4 << 20;

/// Why no keys came from the key server.
#[derive(Debug, thiserror::Error)]
pub enum SpekeError {
    /// The request did not get through.
    #[error("SPEKE request to {url}: {reason}")]
    Request {
        /// The key server.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The server answered with an error.
    #[error("SPEKE key server {url} answered HTTP {status}: {body}")]
    Status {
        /// The key server.
        url: String,
        /// The status.
        status: u16,
        /// The start of its answer.
        body: String,
    },
    /// The answer is not the CPIX asked for.
    #[error("SPEKE answer from {url}: {source}")]
    Answer {
        /// The key server.
        url: String,
        /// What is wrong.
        source: CpixError,
    },
}

/// One key ID per class (`separate`: the studio rule) or one for all, from the content ID.
pub fn key_ids(content_id: &str, separate: bool) -> Vec<(TrackClass, [u8; 16])> {
    TrackClass::ALL
        .iter()
        .map(|c| {
            let label = if separate { c.name() } else { "all" };
            let d = Sha256::new()
                .chain_update(b"rungs SPEKE key ID")
                .chain_update(content_id.as_bytes())
                .chain_update(label.as_bytes())
                .finalize();
            let mut kid = [0u8; 16];
            kid.copy_from_slice(&d[..16]);
            // A version 4 (random) UUID's layout, which key servers expect of key IDs.
            kid[6] = (kid[6] & 0x0f) | 0x40;
            kid[8] = (kid[8] & 0x3f) | 0x80;
            (*c, kid)
        })
        .collect()
}

/// Asks the key server at `url` for the keys of `content_id`; returns the key policy and the
/// document (with the systems' `pssh`).
pub fn fetch(
    url: &str,
    content_id: &str,
    separate: bool,
    scheme: Scheme,
) -> Result<(KeyPolicy, Document), SpekeError> {
    let request = cpix::request(content_id, &key_ids(content_id, separate), scheme);
    let fail = |reason: String| SpekeError::Request {
        url: url.to_owned(),
        reason,
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(60)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut answer = agent
        .post(url)
        .header("Content-Type", "application/xml")
        .header("X-Speke-Version", "2.0")
        .send(request.as_bytes())
        .map_err(|e| fail(e.to_string()))?;
    let status = answer.status().as_u16();
    let body = answer
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER)
        .read_to_string()
        .map_err(|e| fail(format!("reading the answer: {e}")))?;
    if status != 200 {
        return Err(SpekeError::Status {
            url: url.to_owned(),
            status,
            body: body.chars().take(200).collect(),
        });
    }
    let answer_error = |source| SpekeError::Answer {
        url: url.to_owned(),
        source,
    };
    let doc = cpix::parse(&body).map_err(answer_error)?;
    // The answer must give exactly the keys asked for, each its class.
    let mut keys = Vec::new();
    for (class, kid) in key_ids(content_id, separate) {
        let k = doc.keys.iter().find(|k| k.kid == kid).ok_or_else(|| {
            answer_error(CpixError::Keys(format!(
                "no key {} ({} tracks)",
                crate::cenc::uuid(&kid),
                class.name()
            )))
        })?;
        let key = k.value.ok_or_else(|| {
            answer_error(CpixError::Keys(format!(
                "key {} has no value",
                crate::cenc::uuid(&kid)
            )))
        })?;
        keys.push((class, crate::cenc::ContentKey { kid, key }));
    }
    let policy =
        KeyPolicy::from_keys(keys).map_err(|e| answer_error(CpixError::Keys(e.to_string())))?;
    Ok((policy, doc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_are_stable_per_content_and_class() {
        let a = key_ids("title-1", true);
        assert_eq!(a, key_ids("title-1", true));
        assert_ne!(a, key_ids("title-2", true));
        let mut distinct: Vec<[u8; 16]> = a.iter().map(|(_, k)| *k).collect();
        distinct.dedup();
        assert_eq!(distinct.len(), 4);
        let one = key_ids("title-1", false);
        assert!(one.windows(2).all(|w| w[0].1 == w[1].1));
        assert!(a.iter().all(|(_, k)| k[6] >> 4 == 4 && k[8] >> 6 == 2));
    }
}
