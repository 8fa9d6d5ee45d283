//! The CDN's shape (`oca.toml`): sites, each with a region, a fill window, a rate limit, a
//! replication factor and its appliances (URL, capacity, tier).
//!
//! ```toml
//! origin = "http://origin.example/titles"   # where files come from when no peer has them
//!
//! [[site]]
//! name = "lon-ix"
//! region = "gb"
//! window = "02:00-06:00"          # UTC; "00:00-24:00" for always
//! rate = 125000000                # bytes per second for the whole site
//! replication = 1                 # appliances per file inside a tier
//!
//! [[site.appliance]]
//! name = "lon-s1"
//! url = "http://10.0.0.1/"
//! capacity = 400000000000000      # bytes
//! tier = "storage"                # or "edge"
//! ```

use serde::{Deserialize, Serialize};

/// The tier of an appliance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Holds the whole (licensed) catalog; at exchange points.
    Storage,
    /// Holds what its region is predicted to watch; inside ISPs.
    Edge,
}

/// One appliance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Appliance {
    /// Unique in the topology.
    pub name: String,
    /// Base URL: files are at `URL/TITLE/PATH`.
    pub url: String,
    /// Bytes it may hold.
    pub capacity: u64,
    /// Its tier.
    pub tier: Tier,
}

/// One site: appliances in one place, filled together.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// Unique in the topology.
    pub name: String,
    /// The region whose popularity and licences apply.
    pub region: String,
    /// Fill window, UTC, `HH:MM-HH:MM` (it may wrap past midnight).
    pub window: String,
    /// Fill rate limit of the whole site, bytes per second.
    pub rate: u64,
    /// Appliances per file inside a tier (at most the tier's appliances).
    #[serde(default = "one")]
    pub replication: usize,
    /// The appliances.
    #[serde(rename = "appliance")]
    pub appliances: Vec<Appliance>,
}

fn one() -> usize {
    1
}

/// The whole CDN.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Where files come from when no peer holds them (the published title's base URL).
    pub origin: String,
    /// The sites.
    #[serde(rename = "site")]
    pub sites: Vec<Site>,
}

/// A fill window: minutes after midnight UTC, start inclusive, end exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Start minute.
    pub start: u32,
    /// End minute (may be below the start: the window wraps past midnight).
    pub end: u32,
}

/// Why a topology (or one of its windows) is refused.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// `oca.toml` is not valid TOML of the expected shape (the message gives the line).
    #[error(transparent)]
    Toml(#[from] toml::de::Error),
    /// A window is not two times joined by `-`.
    #[error("window {text:?} (expected HH:MM-HH:MM, UTC)")]
    WindowSyntax {
        /// The window as written.
        text: String,
    },
    /// A window's times are out of range, or equal.
    #[error("window {text:?} (expected HH:MM-HH:MM, UTC, with different ends)")]
    WindowEnds {
        /// The window as written.
        text: String,
    },
    /// A URL that is not `http://` or `https://`.
    #[error("{what}: URL {url:?} (expected http:// or https://)")]
    Url {
        /// Whose URL (`origin` or the appliance's name).
        what: String,
        /// The URL as written.
        url: String,
    },
    /// A name with characters outside the allowed set, or too long.
    #[error("{what} name {name:?} (expected 1 to 64 letters, digits, '-', '_' or '.')")]
    Name {
        /// What it names (`site`, `region`, `appliance`).
        what: &'static str,
        /// The name as written.
        name: String,
    },
    /// No `[[site]]` at all.
    #[error("no [[site]]")]
    NoSites,
    /// Two sites with one name.
    #[error("site {name:?} appears twice")]
    SiteTwice {
        /// The name.
        name: String,
    },
    /// A site's rate is zero.
    #[error("rate = 0 (expected bytes per second, > 0)")]
    ZeroRate,
    /// A site without appliances.
    #[error("no [[site.appliance]]")]
    NoAppliances,
    /// An appliance named like a site or another appliance.
    #[error("name {name:?} appears twice")]
    NameTwice {
        /// The name.
        name: String,
    },
    /// An appliance of no capacity.
    #[error("{appliance}: capacity = 0")]
    ZeroCapacity {
        /// The appliance.
        appliance: String,
    },
    /// A replication factor outside 1 to the appliances of the site's largest tier.
    #[error(
        "replication = {replication} (expected 1 to {largest}, the appliances of its largest \
         tier; a smaller tier keeps one copy on each of its appliances)"
    )]
    Replication {
        /// The factor as written.
        replication: usize,
        /// Appliances in the site's largest tier.
        largest: usize,
    },
    /// Something wrong inside one site.
    #[error("site {site}: {source}")]
    Site {
        /// The site.
        site: String,
        /// What is wrong.
        source: Box<TopologyError>,
    },
}

impl Window {
    /// Parses `HH:MM-HH:MM`.
    pub fn parse(text: &str) -> Result<Self, TopologyError> {
        let minute = |t: &str| -> Option<u32> {
            let (h, m) = t.trim().split_once(':')?;
            let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
            ((h < 24 && m < 60) || (h == 24 && m == 0)).then_some(h * 60 + m)
        };
        let (a, b) = text
            .split_once('-')
            .ok_or_else(|| TopologyError::WindowSyntax { text: text.into() })?;
        match (minute(a), minute(b)) {
            (Some(start), Some(end)) if start != end => Ok(Self { start, end }),
            _ => Err(TopologyError::WindowEnds { text: text.into() }),
        }
    }

    /// True when `unix` seconds fall inside the window.
    pub fn contains(&self, unix: u64) -> bool {
        let m = ((unix % 86_400) / 60) as u32;
        if self.start < self.end {
            (self.start..self.end).contains(&m)
        } else {
            m >= self.start || m < self.end
        }
    }

    /// Seconds from `unix` to the window's next opening (0 inside it).
    pub fn wait(&self, unix: u64) -> u64 {
        if self.contains(unix) {
            return 0;
        }
        let now = unix % 86_400;
        let start = u64::from(self.start) * 60;
        (start + 86_400 - now) % 86_400
    }
}

impl Topology {
    /// Parses and checks `oca.toml`.
    pub fn from_toml(text: &str) -> Result<Self, TopologyError> {
        let t: Self = toml::from_str(text)?;
        t.validate()?;
        Ok(t)
    }

    /// Checks names, URLs, capacities, windows, rates and replication.
    pub fn validate(&self) -> Result<(), TopologyError> {
        check_url("origin", &self.origin)?;
        if self.sites.is_empty() {
            return Err(TopologyError::NoSites);
        }
        let mut names = std::collections::BTreeSet::new();
        for s in &self.sites {
            check_name("site", &s.name)?;
            if !names.insert(s.name.clone()) {
                return Err(TopologyError::SiteTwice {
                    name: s.name.clone(),
                });
            }
            validate_site(s, &mut names).map_err(|e| TopologyError::Site {
                site: s.name.clone(),
                source: Box::new(e),
            })?;
        }
        Ok(())
    }

    /// The appliance named `name`, with its site.
    pub fn appliance(&self, name: &str) -> Option<(&Site, &Appliance)> {
        self.sites
            .iter()
            .find_map(|s| s.appliances.iter().find(|a| a.name == name).map(|a| (s, a)))
    }
}

/// Checks one site; `names` holds the names taken so far (sites and appliances).
fn validate_site(
    s: &Site,
    names: &mut std::collections::BTreeSet<String>,
) -> Result<(), TopologyError> {
    check_name("region", &s.region)?;
    Window::parse(&s.window)?;
    if s.rate == 0 {
        return Err(TopologyError::ZeroRate);
    }
    if s.appliances.is_empty() {
        return Err(TopologyError::NoAppliances);
    }
    for a in &s.appliances {
        check_name("appliance", &a.name)?;
        if !names.insert(a.name.clone()) {
            return Err(TopologyError::NameTwice {
                name: a.name.clone(),
            });
        }
        check_url(&a.name, &a.url)?;
        if a.capacity == 0 {
            return Err(TopologyError::ZeroCapacity {
                appliance: a.name.clone(),
            });
        }
    }
    let largest = [Tier::Storage, Tier::Edge]
        .iter()
        .map(|t| s.appliances.iter().filter(|a| a.tier == *t).count())
        .max()
        .unwrap_or(0);
    if !(1..=largest).contains(&s.replication) {
        return Err(TopologyError::Replication {
            replication: s.replication,
            largest,
        });
    }
    Ok(())
}

fn check_name(what: &'static str, name: &str) -> Result<(), TopologyError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(TopologyError::Name {
            what,
            name: name.to_owned(),
        })
    }
}

fn check_url(what: &str, url: &str) -> Result<(), TopologyError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(r) if !r.is_empty() && !r.contains(char::is_whitespace) => Ok(()),
        _ => Err(TopologyError::Url {
            what: what.to_owned(),
            url: url.to_owned(),
        }),
    }
}

/// Joins a base URL and a relative path with one slash.
pub fn join_url(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
origin = "http://127.0.0.1:9000/origin"
[[site]]
name = "lon"
region = "gb"
window = "22:00-06:00"
rate = 1000000
[[site.appliance]]
name = "lon-s1"
url = "http://127.0.0.1:8001"
capacity = 1000
tier = "storage"
[[site.appliance]]
name = "lon-e1"
url = "http://127.0.0.1:8002"
capacity = 500
tier = "edge"
"#;

    #[test]
    fn a_topology_parses_and_bad_ones_say_why() {
        let t = Topology::from_toml(GOOD).unwrap();
        assert_eq!(t.sites[0].replication, 1);
        assert_eq!(t.appliance("lon-e1").unwrap().1.tier, Tier::Edge);
        for (from, to, says) in [
            ("capacity = 500", "capacity = 0", "capacity = 0"),
            ("22:00-06:00", "25:00-06:00", "window"),
            ("rate = 1000000", "rate = 0", "rate = 0"),
            ("\"lon-e1\"", "\"lon-s1\"", "appears twice"),
            ("http://127.0.0.1:8002", "ftp://x", "expected http"),
            ("tier = \"edge\"", "tier = \"core\"", "unknown variant"),
            (
                "rate = 1000000",
                "rate = 1000000\nreplication = 3",
                "replication = 3",
            ),
            ("name = \"lon\"", "name = \"../lon\"", "site name"),
        ] {
            let e = Topology::from_toml(&GOOD.replacen(from, to, 1))
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{to}: {e}");
        }
    }

    #[test]
    fn windows_wrap_past_midnight() {
        let w = Window::parse("22:00-06:00").unwrap();
        let at = |h: u64, m: u64| 86_400 * 20_000 + h * 3600 + m * 60;
        assert!(w.contains(at(23, 0)) && w.contains(at(5, 59)) && !w.contains(at(6, 0)));
        assert_eq!(w.wait(at(21, 0)), 3600);
        assert_eq!(w.wait(at(6, 0)), 16 * 3600);
        let all = Window::parse("00:00-24:00").unwrap();
        assert!(all.contains(at(12, 0)));
        assert!(Window::parse("10:00-10:00").is_err());
    }
}
