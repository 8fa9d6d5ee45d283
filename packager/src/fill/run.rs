//! `rungs fill run PLAN`: the plan's files pushed to the appliances by HTTP PUT.
//!
//! - A site is filled only inside its window (the clock can be set, `--now`), at its rate (a
//!   token bucket over the bytes sent).
//! - Storage appliances first, from the origin; then edges, each file read from a storage
//!   appliance of the edge's site that holds it (tiered fill), or from the origin when that
//!   appliance is down or has no copy.
//! - Every request has timeouts. Each appliance has a circuit breaker: after `trip` failures in a
//!   row it is skipped for a cool-down, then tried again with one request; the run carries on
//!   with the others.
//! - Every file put is read back by GET and checked against the plan's CRC32.
//! - A journal (`PLAN.journal`, one `APPLIANCE KEY` line per checked file) lets a stopped run
//!   resume where it stopped.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::topology::{Site, Tier, Window, join_url};
use super::{FilePlan, FillPlan};

/// How the run behaves.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The clock for the windows, seconds since 1970 (`None`: the real time).
    pub now: Option<u64>,
    /// Timeout of one request, all of it.
    pub timeout: Duration,
    /// Failures in a row that open an appliance's breaker.
    pub trip: u32,
    /// How long an open breaker skips its appliance.
    pub cool_down: Duration,
    /// The journal.
    pub journal: PathBuf,
}

impl RunOptions {
    /// Defaults for `plan`: the journal beside it.
    pub fn for_plan(plan: &Path) -> Self {
        let mut j = plan.as_os_str().to_owned();
        j.push(".journal");
        Self {
            now: None,
            timeout: Duration::from_secs(30),
            trip: 3,
            cool_down: Duration::from_secs(30),
            journal: PathBuf::from(j),
        }
    }
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RunReport {
    /// Placements in the plan.
    pub placements: usize,
    /// Put and checked by this run.
    pub filled: usize,
    /// Found done in the journal.
    pub already: usize,
    /// Not done (failed, skipped by a breaker, or outside a window).
    pub missing: usize,
    /// Bytes moved per link, `SOURCE -> APPLIANCE`.
    pub links: BTreeMap<String, u64>,
    /// Edge files read from the origin because their storage peer failed.
    pub fallbacks: usize,
    /// Sites outside their window, with the seconds until it opens.
    pub outside_window: BTreeMap<String, u64>,
    /// Breakers that opened: appliance, times.
    pub breakers_opened: BTreeMap<String, u32>,
    /// Failures: appliance, file and why (the first 50).
    pub failures: Vec<String>,
    /// Seconds the run took.
    pub seconds: f64,
}

impl RunReport {
    /// True when every placement is done.
    pub fn complete(&self) -> bool {
        self.missing == 0
    }
}

/// A token bucket over bytes: `rate` per second, up to one second's worth in hand.
struct Bucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: u64) -> Self {
        Self {
            rate: rate as f64,
            tokens: rate as f64,
            at: Instant::now(),
        }
    }

    /// Waits until `n` bytes may go.
    fn take(&mut self, n: u64) {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate)
            .min(self.rate.max(n as f64));
        self.at = now;
        self.tokens -= n as f64;
        if self.tokens < 0.0 {
            std::thread::sleep(Duration::from_secs_f64(-self.tokens / self.rate));
        }
    }
}

/// A circuit breaker.
#[derive(Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
}

impl Breaker {
    /// True when a request may go (closed, or half-open after the cool-down).
    fn allows(&self) -> bool {
        self.open_until.is_none_or(|t| Instant::now() >= t)
    }

    fn success(&mut self) {
        self.failures = 0;
        self.open_until = None;
    }

    /// Records a failure; true when it opened the breaker.
    fn failure(&mut self, trip: u32, cool_down: Duration) -> bool {
        self.failures += 1;
        if self.failures >= trip || self.open_until.is_some() {
            self.open_until = Some(Instant::now() + cool_down);
            return true;
        }
        false
    }
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .timeout_connect(Some(timeout.min(Duration::from_secs(5))))
        .http_status_as_error(false)
        .build()
        .into()
}

fn get(agent: &ureq::Agent, url: &str, limit: u64) -> Result<Vec<u8>, String> {
    let mut r = agent.get(url).call().map_err(|e| e.to_string())?;
    if r.status() != 200 {
        return Err(format!("GET {url}: HTTP {}", r.status()));
    }
    r.body_mut()
        .with_config()
        .limit(limit + 1)
        .read_to_vec()
        .map_err(|e| format!("GET {url}: {e}"))
}

fn put(agent: &ureq::Agent, url: &str, body: &[u8]) -> Result<(), String> {
    let r = agent.put(url).send(body).map_err(|e| e.to_string())?;
    match r.status().as_u16() {
        200..=299 => Ok(()),
        s => Err(format!("PUT {url}: HTTP {s}")),
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Runs the fill.
pub fn run(plan: &FillPlan, options: &RunOptions) -> Result<RunReport, String> {
    plan.validate()?;
    let started = Instant::now();
    let clock = options.now.unwrap_or_else(now_unix);
    let agent = agent(options.timeout);
    let mut report = RunReport::default();
    let journal_text = match std::fs::read_to_string(&options.journal) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("cannot read {}: {e}", options.journal.display())),
    };
    let mut done: BTreeSet<(String, String)> = journal_text
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(a, k)| (a.to_owned(), k.to_owned()))
        .collect();
    let mut journal = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&options.journal)
        .map_err(|e| format!("cannot write {}: {e}", options.journal.display()))?;
    let mut breakers: BTreeMap<String, Breaker> = BTreeMap::new();
    let t = &plan.topology;
    for site in &t.sites {
        let window = Window::parse(&site.window)?;
        let in_site: Vec<(&FilePlan, &super::Placement, Tier)> = [Tier::Storage, Tier::Edge]
            .into_iter()
            .flat_map(|tier| {
                plan.files.iter().flat_map(move |f| {
                    f.on.iter()
                        .filter(move |p| {
                            site.appliances
                                .iter()
                                .any(|a| a.name == p.appliance && a.tier == tier)
                        })
                        .map(move |p| (f, p, tier))
                })
            })
            .collect();
        report.placements += in_site.len();
        if !window.contains(clock) {
            report
                .outside_window
                .insert(site.name.clone(), window.wait(clock));
            report.missing += in_site
                .iter()
                .filter(|(f, p, _)| !done.contains(&(p.appliance.clone(), f.file.key.clone())))
                .count();
            report.already += in_site
                .iter()
                .filter(|(f, p, _)| done.contains(&(p.appliance.clone(), f.file.key.clone())))
                .count();
            continue;
        }
        let mut bucket = Bucket::new(site.rate);
        for (f, p, _tier) in in_site {
            let id = (p.appliance.clone(), f.file.key.clone());
            if done.contains(&id) {
                report.already += 1;
                continue;
            }
            match fill_one(
                site,
                plan,
                f,
                p,
                &agent,
                &mut breakers,
                &mut bucket,
                options,
                &mut report,
            ) {
                Ok(()) => {
                    writeln!(journal, "{} {}", id.0, id.1)
                        .and_then(|()| journal.flush())
                        .map_err(|e| format!("cannot write {}: {e}", options.journal.display()))?;
                    done.insert(id);
                    report.filled += 1;
                }
                Err(why) => {
                    report.missing += 1;
                    if report.failures.len() < 50 {
                        report
                            .failures
                            .push(format!("{} {}: {why}", p.appliance, f.file.key));
                    }
                }
            }
        }
    }
    report.seconds = (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    Ok(report)
}

/// Reads a file's bytes from the placement's source (falling back to the origin), puts it on
/// the appliance, reads it back and checks it.
#[allow(clippy::too_many_arguments)]
fn fill_one(
    site: &Site,
    plan: &FillPlan,
    f: &FilePlan,
    p: &super::Placement,
    agent: &ureq::Agent,
    breakers: &mut BTreeMap<String, Breaker>,
    bucket: &mut Bucket,
    options: &RunOptions,
    report: &mut RunReport,
) -> Result<(), String> {
    let t = &plan.topology;
    let target = site
        .appliances
        .iter()
        .find(|a| a.name == p.appliance)
        .ok_or_else(|| format!("appliance {} is not in site {}", p.appliance, site.name))?;
    if !breakers.entry(target.name.clone()).or_default().allows() {
        return Err("skipped: its circuit breaker is open".into());
    }
    let check = |bytes: &[u8]| {
        bytes.len() as u64 == f.file.size
            && format!("{:08x}", crc32fast::hash(bytes)) == f.file.crc32
    };
    // The source: the storage peer when it is up and has the file intact, else the origin.
    let mut body = None;
    let mut from = "origin".to_owned();
    if p.source != "origin"
        && let Some((_, peer)) = t.appliance(&p.source)
    {
        let b = breakers.entry(peer.name.clone()).or_default();
        if b.allows() {
            match get(agent, &join_url(&peer.url, &f.file.key), f.file.size) {
                Ok(bytes) if check(&bytes) => {
                    b.success();
                    body = Some(bytes);
                    from = peer.name.clone();
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(peer = %peer.name, "tiered fill: {e}");
                    if b.failure(options.trip, options.cool_down) {
                        *report.breakers_opened.entry(peer.name.clone()).or_default() += 1;
                    }
                }
            }
        }
        if body.is_none() {
            report.fallbacks += 1;
        }
    }
    let body = match body {
        Some(b) => b,
        None => {
            let b = get(agent, &join_url(&t.origin, &f.file.key), f.file.size)
                .map_err(|e| format!("origin: {e}"))?;
            if !check(&b) {
                return Err(format!(
                    "the origin's copy differs from the plan's ({} bytes, CRC32 {:08x})",
                    b.len(),
                    crc32fast::hash(&b)
                ));
            }
            b
        }
    };
    bucket.take(body.len() as u64);
    let url = join_url(&target.url, &f.file.key);
    let result = put(agent, &url, &body).and_then(|()| {
        let back = get(agent, &url, f.file.size)?;
        if check(&back) {
            Ok(())
        } else {
            Err(format!(
                "read back {} bytes that differ from the file",
                back.len()
            ))
        }
    });
    let b = breakers.entry(target.name.clone()).or_default();
    match result {
        Ok(()) => {
            b.success();
            *report
                .links
                .entry(format!("{from} -> {}", target.name))
                .or_default() += f.file.size;
            Ok(())
        }
        Err(e) => {
            if b.failure(options.trip, options.cool_down) {
                *report
                    .breakers_opened
                    .entry(target.name.clone())
                    .or_default() += 1;
            }
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_holds_the_rate() {
        let mut b = Bucket::new(1_000_000);
        let t0 = Instant::now();
        for _ in 0..30 {
            b.take(100_000);
        }
        // 3 MB at 1 MB/s with 1 MB in hand: never less than 2 s (a loaded machine may take
        // longer; the limit is what matters).
        let s = t0.elapsed().as_secs_f64();
        assert!(s >= 1.95, "{s}");
    }

    #[test]
    fn breakers_open_after_failures_and_half_open_after_the_cool_down() {
        let mut b = Breaker::default();
        let cool = Duration::from_millis(50);
        assert!(!b.failure(3, cool) && !b.failure(3, cool));
        assert!(b.failure(3, cool) && !b.allows());
        std::thread::sleep(cool);
        assert!(b.allows(), "half-open");
        assert!(
            b.failure(3, cool),
            "one failure while half-open opens it again"
        );
        std::thread::sleep(cool);
        b.success();
        assert!(b.allows() && b.failures == 0);
    }
}
