//! Open Connect-style fill: which appliance holds which file, pushing them, and steering.
//!
//! - [`catalog`]: the titles to place, from a folder of packaged titles or a store.
//! - [`plan`]: storage appliances hold every licensed file; edges hold titles in order of their
//!   region's predicted views until they are full, a title's most-watched rungs first when it
//!   does not fit whole. Inside a site, files go to appliances by weighted rendezvous hashing
//!   ([`hashing`]), `replication` appliances per file. The plan is a JSON document.
//! - [`run`]: HTTP PUTs inside each site's window at its rate, edges filled from a storage
//!   appliance of their site when one holds the file (tiered fill), with a circuit breaker per
//!   appliance; every file read back and checked; a journal to resume.
//! - [`locate`]: up to ten URLs that hold a file or a title, best first.

pub mod catalog;
pub mod hashing;
pub mod popularity;
pub mod run;
pub mod topology;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::sink::SinkError;

pub use catalog::{CatalogError, CatalogFile, Title, catalog_dir, catalog_store, rung_of};
pub use popularity::Popularity;
pub use topology::{Tier, Topology, TopologyError};

/// Why a plan could not be made or used, or a file located.
#[derive(Debug, thiserror::Error)]
pub enum FillError {
    /// The topology is refused.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// A storage appliance cannot hold its share of the licensed catalog.
    #[error(
        "site {site}: storage appliance {appliance} needs {needs} bytes for the licensed \
         catalog but holds {capacity}; add capacity or appliances"
    )]
    StorageFull {
        /// The site.
        site: String,
        /// The appliance.
        appliance: String,
        /// Bytes the plan puts on it.
        needs: u64,
        /// Its capacity.
        capacity: u64,
    },
    /// A file of the plan is not named by a plain relative path.
    #[error("file {source}")]
    FileName {
        /// What is wrong with the name.
        source: SinkError,
    },
    /// A file's CRC32 is not 8 hex digits.
    #[error("file {key}: CRC32 {crc32:?} (expected 8 hex digits)")]
    Crc {
        /// The file.
        key: String,
        /// The CRC32 as written.
        crc32: String,
    },
    /// A placement names an appliance the topology does not have.
    #[error("file {key}: no appliance {appliance:?} in the topology")]
    NoAppliance {
        /// The file.
        key: String,
        /// The appliance named.
        appliance: String,
    },
    /// A placement reads from an appliance the topology does not have.
    #[error("file {key}: no source {from:?} in the topology")]
    NoSource {
        /// The file.
        key: String,
        /// The source named.
        from: String,
    },
    /// No site of that name.
    #[error("no site {site:?} in the plan")]
    NoSite {
        /// The name asked for.
        site: String,
    },
    /// The title may not be streamed in the site's region now.
    #[error("{title} is not licensed in region {region} at this time")]
    NotLicensed {
        /// The title.
        title: String,
        /// The site's region.
        region: String,
    },
    /// Nothing of the plan's catalog matches.
    #[error("{what} is not in the plan's catalog")]
    NotInCatalog {
        /// The file or title asked for.
        what: String,
    },
}

/// What one site's tier does with one title. It is written `whole`, `partial`, `none`,
/// `unlicensed` or `not-watched`, in the plan and in messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Placed {
    /// Every file.
    #[serde(rename = "whole")]
    Whole,
    /// The shared files and some rungs, the most watched.
    #[serde(rename = "partial")]
    Partial,
    /// Nothing, for lack of room.
    #[serde(rename = "none")]
    NoRoom,
    /// Nothing: not licensed in the site's region at the plan's time.
    #[serde(rename = "unlicensed")]
    Unlicensed,
    /// Nothing: no views predicted in the site's region.
    #[serde(rename = "not-watched")]
    NotWatched,
}

impl Placed {
    /// The word the plan uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Whole => "whole",
            Self::Partial => "partial",
            Self::NoRoom => "none",
            Self::Unlicensed => "unlicensed",
            Self::NotWatched => "not-watched",
        }
    }
}

impl std::fmt::Display for Placed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where one file goes, and where it is read from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    /// The appliance.
    pub appliance: String,
    /// Where the fill reads it: a storage appliance of the same site, or `origin`.
    pub source: String,
}

/// One file of the plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FilePlan {
    /// The file.
    #[serde(flatten)]
    pub file: CatalogFile,
    /// The appliances that get it.
    pub on: Vec<Placement>,
}

/// What one site's tier does with one title.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TitlePlan {
    /// The site.
    pub site: String,
    /// The tier.
    pub tier: Tier,
    /// The title.
    pub title: String,
    /// What the tier does with it.
    pub placed: Placed,
    /// Predicted views in the site's region.
    pub views: u64,
    /// The rungs placed (all of them when whole).
    pub rungs: Vec<String>,
    /// The rungs left out for lack of room.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub left_out: Vec<String>,
    /// Bytes placed.
    pub bytes: u64,
}

/// How full an appliance will be.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApplianceUse {
    /// The appliance.
    pub name: String,
    /// Its site.
    pub site: String,
    /// Its tier.
    pub tier: Tier,
    /// Its capacity.
    pub capacity: u64,
    /// Bytes the plan puts on it.
    pub bytes: u64,
    /// Files the plan puts on it.
    pub files: usize,
}

/// The fill plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FillPlan {
    /// The moment the plan was made for (licences), seconds since 1970.
    pub now: u64,
    /// Where the catalog was read.
    pub catalog: String,
    /// The CDN.
    pub topology: Topology,
    /// Every appliance's load.
    pub appliances: Vec<ApplianceUse>,
    /// Every title at every site and tier.
    pub titles: Vec<TitlePlan>,
    /// Licence windows by `TITLE@REGION`, for `locate`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub licences: BTreeMap<String, Vec<popularity::Licence>>,
    /// Every file and where it goes.
    pub files: Vec<FilePlan>,
}

impl FillPlan {
    /// Checks a plan read from a file: its topology, every file's name (a plain relative path)
    /// and checksum, and that every placement names an appliance of the topology.
    pub fn validate(&self) -> Result<(), FillError> {
        self.topology.validate()?;
        for f in &self.files {
            let key = || f.file.key.clone();
            crate::sink::check_name(&f.file.key)
                .map_err(|source| FillError::FileName { source })?;
            if f.file.crc32.len() != 8 || !f.file.crc32.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(FillError::Crc {
                    key: key(),
                    crc32: f.file.crc32.clone(),
                });
            }
            for p in &f.on {
                if self.topology.appliance(&p.appliance).is_none() {
                    return Err(FillError::NoAppliance {
                        key: key(),
                        appliance: p.appliance.clone(),
                    });
                }
                if p.source != "origin" && self.topology.appliance(&p.source).is_none() {
                    return Err(FillError::NoSource {
                        key: key(),
                        from: p.source.clone(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Computes the plan: site by site, the storage tier (every licensed file), then the edges
/// (titles by views until full).
pub fn plan(
    titles: &[Title],
    catalog: &str,
    topology: &Topology,
    popularity: &Popularity,
    now: u64,
) -> Result<FillPlan, FillError> {
    topology.validate()?;
    let mut on = Placements::new();
    let mut appliances = Vec::new();
    let mut title_plans = Vec::new();
    for site in &topology.sites {
        let mut s = SitePlan::new(site, popularity, now);
        s.place_storage(titles, &mut on)?;
        title_plans.extend(s.place_edges(titles, &mut on));
        appliances.extend(s.uses());
    }
    let mut licences = BTreeMap::new();
    for ((title, region), d) in &popularity.0 {
        if !d.licences.is_empty() {
            licences.insert(format!("{title}@{region}"), d.licences.clone());
        }
    }
    let files = titles
        .iter()
        .flat_map(|t| &t.files)
        .map(|f| FilePlan {
            file: f.clone(),
            on: on.remove(&f.key).unwrap_or_default(),
        })
        .collect();
    Ok(FillPlan {
        now,
        catalog: catalog.to_owned(),
        topology: topology.clone(),
        appliances,
        titles: title_plans,
        licences,
        files,
    })
}

/// The placements made so far, by file key, in the order they were made.
type Placements = BTreeMap<String, Vec<Placement>>;

/// One tier of a site while it is planned: its appliances and what the plan puts on each.
struct TierLoad<'a> {
    /// The tier's appliances, in the topology's order.
    appliances: Vec<&'a topology::Appliance>,
    /// Name and weight (capacity) of each, for the hashing.
    weights: Vec<(&'a str, f64)>,
    /// Appliances per file.
    replication: usize,
    /// Bytes and files on each.
    used: Vec<(u64, usize)>,
}

impl<'a> TierLoad<'a> {
    fn new(site: &'a topology::Site, tier: Tier) -> Self {
        let appliances: Vec<&topology::Appliance> =
            site.appliances.iter().filter(|a| a.tier == tier).collect();
        Self {
            weights: appliances
                .iter()
                .map(|a| (a.name.as_str(), a.capacity as f64))
                .collect(),
            used: vec![(0, 0); appliances.len()],
            replication: site.replication,
            appliances,
        }
    }

    fn is_empty(&self) -> bool {
        self.appliances.is_empty()
    }

    /// The appliances that get `key`: the `replication` best by rendezvous hashing.
    fn targets(&self, key: &str) -> Vec<usize> {
        let mut r = hashing::rank(&self.weights, key);
        r.truncate(self.replication.min(self.weights.len()));
        r
    }

    fn name(&self, i: usize) -> &'a str {
        &self.appliances[i].name
    }

    /// Where `files` go, when they all fit beside what the tier holds already.
    fn fit<'f>(&self, files: &[&'f CatalogFile]) -> Option<Vec<(&'f CatalogFile, usize)>> {
        let mut add = vec![0u64; self.appliances.len()];
        let mut put = Vec::new();
        for f in files {
            for i in self.targets(&f.key) {
                add[i] += f.size;
                put.push((*f, i));
            }
        }
        let fits = self
            .appliances
            .iter()
            .zip(self.used.iter().zip(&add))
            .all(|(a, (u, x))| u.0 + x <= a.capacity);
        fits.then_some(put)
    }
}

/// A title's files in the order an edge takes them, each group with its rung (`None`: the
/// files every rung needs).
type Groups<'t> = Vec<(Option<String>, Vec<&'t CatalogFile>)>;

/// One site while it is planned.
struct SitePlan<'a> {
    site: &'a topology::Site,
    popularity: &'a Popularity,
    now: u64,
    storage: TierLoad<'a>,
    edges: TierLoad<'a>,
}

impl<'a> SitePlan<'a> {
    fn new(site: &'a topology::Site, popularity: &'a Popularity, now: u64) -> Self {
        Self {
            site,
            popularity,
            now,
            storage: TierLoad::new(site, Tier::Storage),
            edges: TierLoad::new(site, Tier::Edge),
        }
    }

    fn licensed(&self, t: &Title) -> bool {
        self.popularity
            .licensed(&t.name, &self.site.region, self.now)
    }

    fn views(&self, t: &Title) -> u64 {
        self.popularity
            .get(&t.name, &self.site.region)
            .map_or(0, |d| d.views)
    }

    /// Where an edge reads `key`: the storage appliance of the site that holds it, or the
    /// origin.
    fn source(&self, key: &str) -> String {
        self.storage
            .targets(key)
            .first()
            .map_or_else(|| "origin".to_owned(), |&i| self.storage.name(i).to_owned())
    }

    /// Storage: every licensed file, from the origin. A storage appliance that cannot hold its
    /// share is an error: the tier must hold the whole licensed catalog.
    fn place_storage(&mut self, titles: &[Title], on: &mut Placements) -> Result<(), FillError> {
        if self.storage.is_empty() {
            return Ok(());
        }
        for t in titles {
            if !self.licensed(t) {
                continue;
            }
            for f in &t.files {
                for i in self.storage.targets(&f.key) {
                    self.storage.used[i].0 += f.size;
                    self.storage.used[i].1 += 1;
                    on.entry(f.key.clone()).or_default().push(Placement {
                        appliance: self.storage.name(i).to_owned(),
                        source: "origin".into(),
                    });
                }
            }
        }
        for (a, (bytes, _)) in self.storage.appliances.iter().zip(&self.storage.used) {
            if *bytes > a.capacity {
                return Err(FillError::StorageFull {
                    site: self.site.name.clone(),
                    appliance: a.name.clone(),
                    needs: *bytes,
                    capacity: a.capacity,
                });
            }
        }
        Ok(())
    }

    /// Edges: titles by views, most watched first, until full. Returns what each tier does
    /// with each title, in that order (a title's storage line, when it is unlicensed, then its
    /// edge line).
    fn place_edges(&mut self, titles: &[Title], on: &mut Placements) -> Vec<TitlePlan> {
        let mut order: Vec<&Title> = titles.iter().collect();
        order.sort_by(|a, b| self.views(b).cmp(&self.views(a)).then(a.name.cmp(&b.name)));
        let mut out = Vec::new();
        for t in order {
            if !self.storage.is_empty() && !self.licensed(t) {
                out.push(self.title_plan(t, Tier::Storage, Placed::Unlicensed));
            }
            if !self.edges.is_empty() {
                out.push(self.place_title(t, on));
            }
        }
        out
    }

    /// A title's line with nothing placed yet.
    fn title_plan(&self, t: &Title, tier: Tier, placed: Placed) -> TitlePlan {
        TitlePlan {
            site: self.site.name.clone(),
            tier,
            title: t.name.clone(),
            placed,
            views: self.views(t),
            rungs: Vec::new(),
            left_out: Vec::new(),
            bytes: 0,
        }
    }

    /// One title on the edges: the shared files, then its rungs, until one does not fit.
    fn place_title(&mut self, t: &Title, on: &mut Placements) -> TitlePlan {
        if !self.licensed(t) {
            return self.title_plan(t, Tier::Edge, Placed::Unlicensed);
        }
        let mut tp = self.title_plan(t, Tier::Edge, Placed::NoRoom);
        if tp.views == 0 {
            tp.placed = Placed::NotWatched;
            return tp;
        }
        let groups = self.groups(t);
        let mut full = false;
        let mut common_placed = false;
        let mut added: Vec<(String, usize, u64)> = Vec::new();
        for (rung, files) in &groups {
            let put = if full { None } else { self.edges.fit(files) };
            let Some(put) = put else {
                full = true;
                tp.left_out.extend(rung.clone());
                continue;
            };
            for (f, i) in put {
                self.edges.used[i].0 += f.size;
                self.edges.used[i].1 += 1;
                tp.bytes += f.size;
                added.push((f.key.clone(), i, f.size));
                on.entry(f.key.clone()).or_default().push(Placement {
                    appliance: self.edges.name(i).to_owned(),
                    source: self.source(&f.key),
                });
            }
            match rung {
                Some(r) => tp.rungs.push(r.clone()),
                None => common_placed = true,
            }
        }
        tp.placed = if common_placed && tp.left_out.is_empty() {
            Placed::Whole
        } else if common_placed && !tp.rungs.is_empty() {
            Placed::Partial
        } else {
            Placed::NoRoom
        };
        if tp.placed == Placed::NoRoom && groups.len() > 1 {
            // The shared files alone play nothing: take them back.
            for (key, i, size) in added {
                self.edges.used[i].0 -= size;
                self.edges.used[i].1 -= 1;
                if let Some(list) = on.get_mut(&key) {
                    list.retain(|p| p.appliance != self.edges.name(i));
                }
            }
            tp.bytes = 0;
            tp.left_out = groups.iter().filter_map(|(r, _)| r.clone()).collect();
        }
        tp
    }

    /// What every rung needs (manifests, audio, text, thumbnails), then the rungs, most watched
    /// first (by their views, else highest bit rate first).
    fn groups<'t>(&self, t: &'t Title) -> Groups<'t> {
        let mut groups: BTreeMap<Option<String>, Vec<&CatalogFile>> = BTreeMap::new();
        for f in &t.files {
            let rel = &f.key[t.name.len() + 1..];
            groups
                .entry(rung_of(rel).map(str::to_owned))
                .or_default()
                .push(f);
        }
        let demand = self.popularity.get(&t.name, &self.site.region);
        let mut rungs: Vec<(String, Vec<&CatalogFile>)> = groups
            .iter()
            .filter_map(|(k, v)| k.clone().map(|k| (k, v.clone())))
            .collect();
        rungs.sort_by_key(|(name, files)| {
            let v = demand
                .and_then(|d| d.rung_views.get(name))
                .copied()
                .unwrap_or(0);
            let bytes: u64 = files.iter().map(|f| f.size).sum();
            (std::cmp::Reverse(v), std::cmp::Reverse(bytes), name.clone())
        });
        let common = groups.remove(&None).unwrap_or_default();
        std::iter::once((None, common))
            .chain(rungs.into_iter().map(|(n, f)| (Some(n), f)))
            .collect()
    }

    /// How full each appliance of the site will be, storage first.
    fn uses(&self) -> Vec<ApplianceUse> {
        [&self.storage, &self.edges]
            .into_iter()
            .flat_map(|tier| tier.appliances.iter().zip(&tier.used))
            .map(|(a, (bytes, files))| ApplianceUse {
                name: a.name.clone(),
                site: self.site.name.clone(),
                tier: a.tier,
                capacity: a.capacity,
                bytes: *bytes,
                files: *files,
            })
            .collect()
    }
}

/// Up to ten URLs holding `what` (a file `TITLE/PATH`, or a whole title: appliances that hold
/// every file of it) for a client of `site`, best first: the site's edges, its storage
/// appliances, other sites, then the origin. A title not licensed in the site's region at `now`
/// is refused.
pub fn locate(plan: &FillPlan, what: &str, site: &str, now: u64) -> Result<Vec<String>, FillError> {
    plan.validate()?;
    let t = &plan.topology;
    let home = t
        .sites
        .iter()
        .find(|s| s.name == site)
        .ok_or_else(|| FillError::NoSite {
            site: site.to_owned(),
        })?;
    let what = what.trim_matches('/');
    let title = what.split('/').next().unwrap_or(what);
    let licensed = plan
        .licences
        .get(&format!("{title}@{}", home.region))
        .is_none_or(|l| popularity::licensed_at(l, now));
    if !licensed {
        return Err(FillError::NotLicensed {
            title: title.to_owned(),
            region: home.region.clone(),
        });
    }
    let files: Vec<&FilePlan> = plan
        .files
        .iter()
        .filter(|f| {
            f.file.key == what
                || (!what.contains('/') && f.file.key.starts_with(&format!("{what}/")))
        })
        .collect();
    if files.is_empty() {
        return Err(FillError::NotInCatalog {
            what: what.to_owned(),
        });
    }
    let holds_all = |name: &str| {
        files
            .iter()
            .all(|f| f.on.iter().any(|p| p.appliance == name))
    };
    let rank_in = |s: &topology::Site, tier: Tier| -> Vec<String> {
        let list: Vec<(&str, f64)> = s
            .appliances
            .iter()
            .filter(|a| a.tier == tier)
            .map(|a| (a.name.as_str(), a.capacity as f64))
            .collect();
        hashing::rank(&list, &files[0].file.key)
            .into_iter()
            .map(|i| list[i].0.to_owned())
            .filter(|n| holds_all(n))
            .collect()
    };
    let mut names = rank_in(home, Tier::Edge);
    names.extend(rank_in(home, Tier::Storage));
    for s in t.sites.iter().filter(|s| s.name != site) {
        names.extend(rank_in(s, Tier::Edge));
        names.extend(rank_in(s, Tier::Storage));
    }
    let path = if what.contains('/') {
        what.to_owned()
    } else {
        format!("{what}/")
    };
    let mut urls: Vec<String> = names
        .iter()
        .filter_map(|n| t.appliance(n))
        .map(|(_, a)| topology::join_url(&a.url, &path))
        .collect();
    urls.push(topology::join_url(&t.origin, &path));
    urls.truncate(10);
    Ok(urls)
}

#[cfg(test)]
mod tests;
