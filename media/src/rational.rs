//! A serde-friendly rational number for time bases, frame rates and aspect ratios.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A rational number such as a frame rate (`30000/1001`) or a time base (`1/90000`).
///
/// It serialises as the string `"num/den"`, which keeps the exact value in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rational {
    /// Numerator.
    pub num: i32,
    /// Denominator; 0 means unknown.
    pub den: i32,
}

impl Rational {
    /// Makes a rational from its parts.
    pub const fn new(num: i32, den: i32) -> Self {
        Self { num, den }
    }

    /// The value as a float, or `None` when the denominator or numerator is 0.
    pub fn to_f64(self) -> Option<f64> {
        (self.den != 0 && self.num != 0).then(|| f64::from(self.num) / f64::from(self.den))
    }

    /// True when both parts are positive.
    pub fn is_positive(self) -> bool {
        self.num > 0 && self.den > 0
    }

    /// Converts a timestamp in this time base to seconds.
    pub fn seconds(self, ts: i64) -> f64 {
        if self.den == 0 {
            return 0.0;
        }
        ts as f64 * f64::from(self.num) / f64::from(self.den)
    }

    /// Reduces the fraction; 0/0 stays 0/0.
    pub fn reduced(self) -> Self {
        fn gcd(mut a: i64, mut b: i64) -> i64 {
            while b != 0 {
                (a, b) = (b, a % b);
            }
            a.abs()
        }
        let g = gcd(i64::from(self.num), i64::from(self.den));
        if g <= 1 {
            return self;
        }
        // Dividing by a common factor cannot overflow i32.
        Self::new(
            (i64::from(self.num) / g) as i32,
            (i64::from(self.den) / g) as i32,
        )
    }
}

impl From<ffmpeg_next::Rational> for Rational {
    fn from(r: ffmpeg_next::Rational) -> Self {
        Self::new(r.numerator(), r.denominator())
    }
}

impl From<ffmpeg_next::ffi::AVRational> for Rational {
    fn from(r: ffmpeg_next::ffi::AVRational) -> Self {
        Self::new(r.num, r.den)
    }
}

impl From<Rational> for ffmpeg_next::Rational {
    fn from(r: Rational) -> Self {
        ffmpeg_next::Rational::new(r.num, r.den)
    }
}

impl fmt::Display for Rational {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.num, self.den)
    }
}

impl std::str::FromStr for Rational {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (n, d) = s.split_once('/').unwrap_or((s, "1"));
        let num = n
            .trim()
            .parse()
            .map_err(|_| format!("invalid numerator in {s:?}"))?;
        let den = d
            .trim()
            .parse()
            .map_err(|_| format!("invalid denominator in {s:?}"))?;
        Ok(Self::new(num, den))
    }
}

impl Serialize for Rational {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rational {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        let r: Rational = "30000/1001".parse().unwrap();
        assert_eq!(r, Rational::new(30000, 1001));
        assert_eq!(r.to_string(), "30000/1001");
        assert!((r.to_f64().unwrap() - 29.97).abs() < 0.001);
        assert_eq!("25".parse::<Rational>().unwrap(), Rational::new(25, 1));
        assert!("a/b".parse::<Rational>().is_err());
    }

    #[test]
    fn reduces_and_handles_zero() {
        assert_eq!(Rational::new(50, 2).reduced(), Rational::new(25, 1));
        assert_eq!(Rational::new(0, 0).reduced(), Rational::new(0, 0));
        assert_eq!(Rational::new(0, 0).to_f64(), None);
        assert_eq!(Rational::new(1, 0).seconds(100), 0.0);
    }
}
