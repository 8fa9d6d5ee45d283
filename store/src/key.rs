//! Object keys, checked before they reach any backend.

use std::fmt;

/// The longest key, in bytes (S3's limit).
pub const MAX_KEY_BYTES: usize = 1024;

/// A validated object key: `/`-separated segments of letters, digits and `._-=+@,`, none of
/// them empty, `.` or `..`, with no leading or trailing `/`. Such a key means the same file
/// under any root and the same object under any prefix, and cannot climb out of either.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Key(String);

/// Why a key was refused. Carries the key and the byte position of the problem.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid store key {key:?}: {reason} at byte {position}")]
pub struct KeyError {
    /// The key as given.
    pub key: String,
    /// What is wrong.
    pub reason: &'static str,
    /// Byte offset of the problem in the key.
    pub position: usize,
}

impl Key {
    /// Checks `key` and wraps it.
    pub fn new(key: impl Into<String>) -> Result<Self, KeyError> {
        let key = key.into();
        let fail = |reason, position| KeyError {
            key: key.clone(),
            reason,
            position,
        };
        if key.is_empty() {
            return Err(fail("the key is empty", 0));
        }
        if key.len() > MAX_KEY_BYTES {
            return Err(fail("the key is longer than 1024 bytes", MAX_KEY_BYTES));
        }
        let mut start = 0;
        for segment in key.split('/') {
            if segment.is_empty() {
                return Err(fail("empty path segment", start));
            }
            if segment == "." || segment == ".." {
                return Err(fail("relative path segment", start));
            }
            if let Some(i) = segment.bytes().position(|b| !allowed(b)) {
                return Err(fail(
                    "character outside letters, digits and ._-=+@,",
                    start + i,
                ));
            }
            start += segment.len() + 1;
        }
        Ok(Self(key))
    }

    /// This key followed by `/` and `child`, checked.
    pub fn join(&self, child: &str) -> Result<Self, KeyError> {
        Self::new(format!("{}/{child}", self.0))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment.
    pub fn name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The segments, in order.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// True when `self` is `prefix` or lies below it.
    pub fn starts_with(&self, prefix: &Key) -> bool {
        self.0 == prefix.0
            || (self.0.len() > prefix.0.len()
                && self.0.starts_with(&prefix.0)
                && self.0.as_bytes()[prefix.0.len()] == b'/')
    }
}

fn allowed(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"._-=+@,".contains(&b)
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Key {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Key::new(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_keys() {
        for k in ["a", "jobs/abc/chunks/r0/c12.chunk", "x=1,y@2+3", "A.B-C_D"] {
            assert_eq!(Key::new(k).unwrap().as_str(), k);
        }
        let k = Key::new("jobs/j1").unwrap();
        assert_eq!(k.join("plan.json").unwrap().as_str(), "jobs/j1/plan.json");
        assert_eq!(k.join("plan.json").unwrap().name(), "plan.json");
        assert!(Key::new("jobs/j1/x").unwrap().starts_with(&k));
        assert!(!Key::new("jobs/j10").unwrap().starts_with(&k));
    }

    #[test]
    fn refuses_hostile_keys_with_the_position() {
        let cases = [
            ("", 0),
            ("/etc/passwd", 0),
            ("a/../b", 2),
            ("a/./b", 2),
            ("..", 0),
            ("a//b", 2),
            ("a/", 2),
            ("a/b c", 3),
            ("a\\..\\b", 1),
            ("a/\0", 2),
            ("a/é", 2),
            ("a/%2e%2e", 2),
        ];
        for (k, at) in cases {
            let e = Key::new(k).expect_err(k);
            assert_eq!(e.position, at, "{k:?}: {e}");
            assert!(e.to_string().contains("invalid store key"), "{e}");
        }
        assert!(Key::new("a".repeat(1025)).is_err());
        assert!(Key::new("a").unwrap().join("../x").is_err());
        let json = serde_json::from_str::<Key>("\"../x\"");
        assert!(json.is_err());
    }
}
