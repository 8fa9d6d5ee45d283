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

use super::topology::{Appliance, Site, Tier, TopologyError, Window, join_url};
use super::{FilePlan, FillError, FillPlan, Placement};

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

/// Why a run could not go on.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The plan is refused.
    #[error(transparent)]
    Plan(#[from] FillError),
    /// A site's window is refused.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// The journal could not be read.
    #[error("cannot read {path}: {source}")]
    ReadJournal {
        /// The journal.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The journal could not be written.
    #[error("cannot write {path}: {source}")]
    WriteJournal {
        /// The journal.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// Why one request failed.
#[derive(Debug, thiserror::Error)]
enum HttpError {
    /// No answer: connection, timeout, protocol.
    #[error(transparent)]
    Request(#[from] ureq::Error),
    /// A GET answered with another status than 200.
    #[error("GET {url}: HTTP {status}")]
    GetStatus {
        /// The URL.
        url: String,
        /// The status.
        status: ureq::http::StatusCode,
    },
    /// A GET's body could not be read (or was too long).
    #[error("GET {url}: {source}")]
    GetBody {
        /// The URL.
        url: String,
        /// What failed.
        source: ureq::Error,
    },
    /// A PUT answered with a status outside 2xx.
    #[error("PUT {url}: HTTP {status}")]
    PutStatus {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
    },
}

/// Why one placement was not filled (the report's failures say it after the placement).
#[derive(Debug, thiserror::Error)]
enum PushError {
    /// The placement names an appliance of another site.
    #[error("appliance {appliance} is not in site {site}")]
    NotInSite {
        /// The appliance.
        appliance: String,
        /// The site being filled.
        site: String,
    },
    /// The appliance's circuit breaker is open.
    #[error("skipped: its circuit breaker is open")]
    BreakerOpen,
    /// The origin could not be read.
    #[error("origin: {0}")]
    Origin(#[source] HttpError),
    /// The origin's bytes are not the plan's.
    #[error("the origin's copy differs from the plan's ({len} bytes, CRC32 {crc:08x})")]
    OriginDiffers {
        /// Bytes read.
        len: usize,
        /// Their CRC32.
        crc: u32,
    },
    /// The PUT or the read-back failed.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The appliance gave back other bytes than were put.
    #[error("read back {len} bytes that differ from the file")]
    ReadBack {
        /// Bytes read back.
        len: usize,
    },
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .timeout_connect(Some(timeout.min(Duration::from_secs(5))))
        .http_status_as_error(false)
        .build()
        .into()
}

fn get(agent: &ureq::Agent, url: &str, limit: u64) -> Result<Vec<u8>, HttpError> {
    let mut r = agent.get(url).call()?;
    if r.status() != 200 {
        return Err(HttpError::GetStatus {
            url: url.to_owned(),
            status: r.status(),
        });
    }
    r.body_mut()
        .with_config()
        .limit(limit + 1)
        .read_to_vec()
        .map_err(|source| HttpError::GetBody {
            url: url.to_owned(),
            source,
        })
}

fn put(agent: &ureq::Agent, url: &str, body: &[u8]) -> Result<(), HttpError> {
    let r = agent.put(url).send(body)?;
    match r.status().as_u16() {
        200..=299 => Ok(()),
        status => Err(HttpError::PutStatus {
            url: url.to_owned(),
            status,
        }),
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// True when `bytes` are the plan's file: its size and CRC32.
fn intact(f: &FilePlan, bytes: &[u8]) -> bool {
    bytes.len() as u64 == f.file.size && format!("{:08x}", crc32fast::hash(bytes)) == f.file.crc32
}

/// The journal: the placements done, `APPLIANCE KEY` a line, appended as each is checked.
struct Journal {
    path: PathBuf,
    done: BTreeSet<(String, String)>,
    file: std::fs::File,
}

impl Journal {
    /// Reads what is done (nothing when there is no journal yet) and opens it to append.
    fn open(path: &Path) -> Result<Self, RunError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(RunError::ReadJournal {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let done = text
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(a, k)| (a.to_owned(), k.to_owned()))
            .collect();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| RunError::WriteJournal {
                path: path.to_owned(),
                source,
            })?;
        Ok(Self {
            path: path.to_owned(),
            done,
            file,
        })
    }

    fn contains(&self, f: &FilePlan, p: &Placement) -> bool {
        self.done
            .contains(&(p.appliance.clone(), f.file.key.clone()))
    }

    /// Records a placement done, on disk at once.
    fn record(&mut self, f: &FilePlan, p: &Placement) -> Result<(), RunError> {
        writeln!(self.file, "{} {}", p.appliance, f.file.key)
            .and_then(|()| self.file.flush())
            .map_err(|source| RunError::WriteJournal {
                path: self.path.clone(),
                source,
            })?;
        self.done.insert((p.appliance.clone(), f.file.key.clone()));
        Ok(())
    }
}

/// The placements on `site`'s appliances: its storage tier's first, then its edges'.
fn placements_of<'p>(plan: &'p FillPlan, site: &Site) -> Vec<(&'p FilePlan, &'p Placement)> {
    [Tier::Storage, Tier::Edge]
        .into_iter()
        .flat_map(|tier| {
            plan.files.iter().flat_map(move |f| {
                f.on.iter()
                    .filter(move |p| {
                        site.appliances
                            .iter()
                            .any(|a| a.name == p.appliance && a.tier == tier)
                    })
                    .map(move |p| (f, p))
            })
        })
        .collect()
}

/// Runs the fill.
pub fn run(plan: &FillPlan, options: &RunOptions) -> Result<RunReport, RunError> {
    plan.validate()?;
    let started = Instant::now();
    let clock = options.now.unwrap_or_else(now_unix);
    let mut journal = Journal::open(&options.journal)?;
    let mut filler = Filler {
        plan,
        options,
        agent: agent(options.timeout),
        breakers: BTreeMap::new(),
        report: RunReport::default(),
    };
    for site in &plan.topology.sites {
        let window = Window::parse(&site.window)?;
        let placements = placements_of(plan, site);
        filler.report.placements += placements.len();
        if window.contains(clock) {
            filler.fill_site(site, &placements, &mut journal)?;
        } else {
            filler.skip_site(site, &placements, &journal, window.wait(clock));
        }
    }
    let mut report = filler.report;
    report.seconds = (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    Ok(report)
}

/// A run in progress: the connections, the breakers and the report.
struct Filler<'a> {
    plan: &'a FillPlan,
    options: &'a RunOptions,
    agent: ureq::Agent,
    breakers: BTreeMap<String, Breaker>,
    report: RunReport,
}

impl<'a> Filler<'a> {
    /// A site outside its window: its placements not done are missing.
    fn skip_site(
        &mut self,
        site: &Site,
        placements: &[(&FilePlan, &Placement)],
        journal: &Journal,
        wait: u64,
    ) {
        self.report.outside_window.insert(site.name.clone(), wait);
        let done = placements
            .iter()
            .filter(|(f, p)| journal.contains(f, p))
            .count();
        self.report.missing += placements.len() - done;
        self.report.already += done;
    }

    /// Fills a site's placements not done yet, at the site's rate.
    fn fill_site(
        &mut self,
        site: &Site,
        placements: &[(&FilePlan, &Placement)],
        journal: &mut Journal,
    ) -> Result<(), RunError> {
        let mut bucket = Bucket::new(site.rate);
        for &(f, p) in placements {
            if journal.contains(f, p) {
                self.report.already += 1;
                continue;
            }
            match self.fill_one(site, f, p, &mut bucket) {
                Ok(()) => {
                    journal.record(f, p)?;
                    self.report.filled += 1;
                }
                Err(why) => {
                    self.report.missing += 1;
                    if self.report.failures.len() < 50 {
                        self.report
                            .failures
                            .push(format!("{} {}: {why}", p.appliance, f.file.key));
                    }
                }
            }
        }
        Ok(())
    }

    fn breaker(&mut self, appliance: &str) -> &mut Breaker {
        self.breakers.entry(appliance.to_owned()).or_default()
    }

    /// Counts a failure against `appliance`'s breaker, and its opening in the report.
    fn failed(&mut self, appliance: &str) {
        let (trip, cool_down) = (self.options.trip, self.options.cool_down);
        if self.breaker(appliance).failure(trip, cool_down) {
            *self
                .report
                .breakers_opened
                .entry(appliance.to_owned())
                .or_default() += 1;
        }
    }

    /// Reads a file's bytes from the placement's source (falling back to the origin), puts it
    /// on the appliance, reads it back and checks it.
    fn fill_one(
        &mut self,
        site: &Site,
        f: &FilePlan,
        p: &Placement,
        bucket: &mut Bucket,
    ) -> Result<(), PushError> {
        let target = site
            .appliances
            .iter()
            .find(|a| a.name == p.appliance)
            .ok_or_else(|| PushError::NotInSite {
                appliance: p.appliance.clone(),
                site: site.name.clone(),
            })?;
        if !self.breaker(&target.name).allows() {
            return Err(PushError::BreakerOpen);
        }
        let (body, from) = self.fetch(f, p)?;
        bucket.take(body.len() as u64);
        let url = join_url(&target.url, &f.file.key);
        match self.put_checked(&url, f, &body) {
            Ok(()) => {
                self.breaker(&target.name).success();
                *self
                    .report
                    .links
                    .entry(format!("{from} -> {}", target.name))
                    .or_default() += f.file.size;
                Ok(())
            }
            Err(e) => {
                self.failed(&target.name);
                Err(e)
            }
        }
    }

    /// The file's bytes and where they came from: the storage peer when it is up and has the
    /// file intact, else the origin.
    fn fetch(&mut self, f: &FilePlan, p: &Placement) -> Result<(Vec<u8>, String), PushError> {
        let plan = self.plan;
        if p.source != "origin"
            && let Some((_, peer)) = plan.topology.appliance(&p.source)
        {
            if let Some(body) = self.read_peer(peer, f) {
                return Ok((body, peer.name.clone()));
            }
            self.report.fallbacks += 1;
        }
        let url = join_url(&plan.topology.origin, &f.file.key);
        let body = get(&self.agent, &url, f.file.size).map_err(PushError::Origin)?;
        if !intact(f, &body) {
            return Err(PushError::OriginDiffers {
                len: body.len(),
                crc: crc32fast::hash(&body),
            });
        }
        Ok((body, "origin".to_owned()))
    }

    /// The file from a storage peer, unless its breaker is open, it fails (a failure against
    /// its breaker) or its copy is not intact.
    fn read_peer(&mut self, peer: &Appliance, f: &FilePlan) -> Option<Vec<u8>> {
        if !self.breaker(&peer.name).allows() {
            return None;
        }
        match get(&self.agent, &join_url(&peer.url, &f.file.key), f.file.size) {
            Ok(bytes) if intact(f, &bytes) => {
                self.breaker(&peer.name).success();
                Some(bytes)
            }
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(peer = %peer.name, "tiered fill: {e}");
                self.failed(&peer.name);
                None
            }
        }
    }

    /// Puts `body` at `url`, then reads it back and checks it.
    fn put_checked(&self, url: &str, f: &FilePlan, body: &[u8]) -> Result<(), PushError> {
        put(&self.agent, url, body)?;
        let back = get(&self.agent, url, f.file.size)?;
        if intact(f, &back) {
            Ok(())
        } else {
            Err(PushError::ReadBack { len: back.len() })
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
