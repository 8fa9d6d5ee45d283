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

impl Window {
    /// Parses `HH:MM-HH:MM`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let minute = |t: &str| -> Option<u32> {
            let (h, m) = t.trim().split_once(':')?;
            let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
            ((h < 24 && m < 60) || (h == 24 && m == 0)).then_some(h * 60 + m)
        };
        let (a, b) = text
            .split_once('-')
            .ok_or_else(|| format!("window {text:?} (expected HH:MM-HH:MM, UTC)"))?;
        match (minute(a), minute(b)) {
            (Some(start), Some(end)) if start != end => Ok(Self { start, end }),
            _ => Err(format!(
                "window {text:?} (expected HH:MM-HH:MM, UTC, with different ends)"
            )),
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
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let t: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        t.validate()?;
        Ok(t)
    }

    /// Checks names, URLs, capacities, windows, rates and replication.
    pub fn validate(&self) -> Result<(), String> {
        check_url("origin", &self.origin)?;
        if self.sites.is_empty() {
            return Err("no [[site]]".into());
        }
        let mut names = std::collections::BTreeSet::new();
        for s in &self.sites {
            check_name("site", &s.name)?;
            if !names.insert(s.name.clone()) {
                return Err(format!("site {:?} appears twice", s.name));
            }
            let ctx = |e: String| format!("site {}: {e}", s.name);
            check_name("region", &s.region).map_err(ctx)?;
            Window::parse(&s.window).map_err(ctx)?;
            if s.rate == 0 {
                return Err(ctx("rate = 0 (expected bytes per second, > 0)".into()));
            }
            if s.appliances.is_empty() {
                return Err(ctx("no [[site.appliance]]".into()));
            }
            for a in &s.appliances {
                check_name("appliance", &a.name).map_err(ctx)?;
                if !names.insert(a.name.clone()) {
                    return Err(ctx(format!("name {:?} appears twice", a.name)));
                }
                check_url(&a.name, &a.url).map_err(ctx)?;
                if a.capacity == 0 {
                    return Err(ctx(format!("{}: capacity = 0", a.name)));
                }
            }
            let largest = [Tier::Storage, Tier::Edge]
                .iter()
                .map(|t| s.appliances.iter().filter(|a| a.tier == *t).count())
                .max()
                .unwrap_or(0);
            if !(1..=largest).contains(&s.replication) {
                return Err(ctx(format!(
                    "replication = {} (expected 1 to {largest}, the appliances of its largest \
                     tier; a smaller tier keeps one copy on each of its appliances)",
                    s.replication
                )));
            }
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

fn check_name(what: &str, name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} name {name:?} (expected 1 to 64 letters, digits, '-', '_' or '.')"
        ))
    }
}

fn check_url(what: &str, url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(r) if !r.is_empty() && !r.contains(char::is_whitespace) => Ok(()),
        _ => Err(format!(
            "{what}: URL {url:?} (expected http:// or https://)"
        )),
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
            let e = Topology::from_toml(&GOOD.replacen(from, to, 1)).unwrap_err();
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
