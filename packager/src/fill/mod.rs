//! Open Connect-style fill: which appliance holds which file, pushing them, and steering.
//!
//! - [`plan`]: storage appliances hold every licensed file; edges hold titles in order of their
//!   region's predicted views until they are full, a title's most-watched rungs first when it
//!   does not fit whole. Inside a site, files go to appliances by weighted rendezvous hashing
//!   ([`hashing`]), `replication` appliances per file. The plan is a JSON document.
//! - [`run`]: HTTP PUTs inside each site's window at its rate, edges filled from a storage
//!   appliance of their site when one holds the file (tiered fill), with a circuit breaker per
//!   appliance; every file read back and checked; a journal to resume.
//! - [`locate`]: up to ten URLs that hold a file or a title, best first.

pub mod hashing;
pub mod popularity;
pub mod run;
pub mod topology;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use popularity::Popularity;
pub use topology::{Tier, Topology};

/// One streaming file of the catalog.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CatalogFile {
    /// `TITLE/PATH`.
    pub key: String,
    /// Bytes.
    pub size: u64,
    /// CRC32, 8 hex digits.
    pub crc32: String,
}

/// A title: its streaming files.
#[derive(Clone, Debug, PartialEq)]
pub struct Title {
    /// Its name (the folder or prefix it is published under).
    pub name: String,
    /// Its files, sorted.
    pub files: Vec<CatalogFile>,
}

/// The rung a title's file belongs to (`video/RUNG/…`), if any.
pub fn rung_of(path: &str) -> Option<&str> {
    let mut parts = path.split('/');
    (parts.next() == Some("video"))
        .then(|| parts.next())
        .flatten()
}

/// True for the files a player streams: manifests at the top, and everything under `video/`,
/// `audio/`, `text/` and `thumbs/` (not the whole-file renditions or the report).
fn streamed(path: &str) -> bool {
    ["video/", "audio/", "text/", "thumbs/"]
        .iter()
        .any(|p| path.starts_with(p))
        || (!path.contains('/') && crate::publish::is_manifest(path))
}

/// The titles under `dir`: each folder holding a packaged title, or `dir` itself.
pub fn catalog_dir(dir: &Path) -> Result<Vec<Title>, String> {
    let is_title =
        |d: &Path| d.join(crate::hls::MASTER).is_file() || d.join(crate::dash::MPD).is_file();
    let mut folders = Vec::new();
    if is_title(dir) {
        folders.push(dir.to_owned());
    } else {
        let entries =
            std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() && !e.file_name().to_string_lossy().starts_with('.') && is_title(&p) {
                folders.push(p);
            }
        }
    }
    if folders.is_empty() {
        return Err(format!(
            "{} holds no packaged title (folders with {} or {})",
            dir.display(),
            crate::hls::MASTER,
            crate::dash::MPD
        ));
    }
    folders.sort();
    let mut titles = Vec::new();
    for f in folders {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        crate::sink::check_name(&name).map_err(|e| e.to_string())?;
        let mut files = Vec::new();
        for (rel, path) in crate::publish::title_files(&f).map_err(|e| e.to_string())? {
            if !streamed(&rel) {
                continue;
            }
            let (size, crc) = store::file_crc32(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            files.push(CatalogFile {
                key: format!("{name}/{rel}"),
                size,
                crc32: format!("{crc:08x}"),
            });
        }
        titles.push(Title { name, files });
    }
    Ok(titles)
}

/// The titles published under `store`'s prefix (by `rungs publish`): each first-level folder
/// holding a manifest, or the prefix itself (then named `root_name`). Sizes come from the
/// listing, CRC32s from each object's record, which `rungs publish` writes.
pub fn catalog_store(store: &dyn store::Store, root_name: &str) -> Result<Vec<Title>, String> {
    let objects = store.objects().map_err(|e| e.to_string())?;
    let has = |k: &str| objects.iter().any(|(o, _)| o.as_str() == k);
    let is_title = |p: &str| {
        has(&format!("{p}{}", crate::hls::MASTER)) || has(&format!("{p}{}", crate::dash::MPD))
    };
    let mut groups: BTreeMap<String, Vec<(String, &store::Key, u64)>> = BTreeMap::new();
    if is_title("") {
        crate::sink::check_name(root_name).map_err(|e| e.to_string())?;
        for (k, size) in &objects {
            groups
                .entry(root_name.to_owned())
                .or_default()
                .push((k.as_str().to_owned(), k, *size));
        }
    } else {
        for (k, size) in &objects {
            let Some((title, rel)) = k.as_str().split_once('/') else {
                continue;
            };
            if is_title(&format!("{title}/")) {
                groups
                    .entry(title.to_owned())
                    .or_default()
                    .push((rel.to_owned(), k, *size));
            }
        }
    }
    if groups.is_empty() {
        return Err(
            "the store holds no published title (folders with master.m3u8 or manifest.mpd)".into(),
        );
    }
    let mut titles = Vec::new();
    for (name, files) in groups {
        let mut out = Vec::new();
        for (rel, key, size) in files {
            if !streamed(&rel) {
                continue;
            }
            let info = store
                .head(key)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("{} vanished while the catalog was read", key.as_str()))?;
            let crc32 = info.crc32.ok_or_else(|| {
                format!(
                    "{} has no CRC32 record: publish titles with `rungs publish`",
                    key.as_str()
                )
            })?;
            out.push(CatalogFile {
                key: format!("{name}/{rel}"),
                size,
                crc32,
            });
        }
        titles.push(Title { name, files: out });
    }
    Ok(titles)
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
    /// `whole`, `partial` (some rungs), `none` (no room), `unlicensed`, or `not-watched`.
    pub placed: String,
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
    pub fn validate(&self) -> Result<(), String> {
        self.topology.validate()?;
        for f in &self.files {
            crate::sink::check_name(&f.file.key).map_err(|e| format!("file {e}"))?;
            if f.file.crc32.len() != 8 || !f.file.crc32.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!(
                    "file {}: CRC32 {:?} (expected 8 hex digits)",
                    f.file.key, f.file.crc32
                ));
            }
            for p in &f.on {
                if self.topology.appliance(&p.appliance).is_none() {
                    return Err(format!(
                        "file {}: no appliance {:?} in the topology",
                        f.file.key, p.appliance
                    ));
                }
                if p.source != "origin" && self.topology.appliance(&p.source).is_none() {
                    return Err(format!(
                        "file {}: no source {:?} in the topology",
                        f.file.key, p.source
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Computes the plan.
pub fn plan(
    titles: &[Title],
    catalog: &str,
    topology: &Topology,
    popularity: &Popularity,
    now: u64,
) -> Result<FillPlan, String> {
    topology.validate()?;
    let mut on: BTreeMap<String, Vec<Placement>> = BTreeMap::new();
    let mut appliances = Vec::new();
    let mut title_plans = Vec::new();
    for site in &topology.sites {
        let tier_of = |tier: Tier| -> Vec<&topology::Appliance> {
            site.appliances.iter().filter(|a| a.tier == tier).collect()
        };
        let (storage, edges) = (tier_of(Tier::Storage), tier_of(Tier::Edge));
        let weights = |list: &[&topology::Appliance]| -> Vec<(String, f64)> {
            list.iter()
                .map(|a| (a.name.clone(), a.capacity as f64))
                .collect()
        };
        let (ws, we) = (weights(&storage), weights(&edges));
        let targets = |w: &[(String, f64)], key: &str| -> Vec<usize> {
            let refs: Vec<(&str, f64)> = w.iter().map(|(n, x)| (n.as_str(), *x)).collect();
            let mut r = hashing::rank(&refs, key);
            r.truncate(site.replication.min(w.len()));
            r
        };
        let mut used_s = vec![(0u64, 0usize); storage.len()];
        let mut used_e = vec![(0u64, 0usize); edges.len()];
        let licensed = |t: &Title| popularity.licensed(&t.name, &site.region, now);
        // Storage: every licensed file.
        if !storage.is_empty() {
            for t in titles {
                if !licensed(t) {
                    continue;
                }
                for f in &t.files {
                    for i in targets(&ws, &f.key) {
                        used_s[i].0 += f.size;
                        used_s[i].1 += 1;
                        on.entry(f.key.clone()).or_default().push(Placement {
                            appliance: storage[i].name.clone(),
                            source: "origin".into(),
                        });
                    }
                }
            }
            for (a, (bytes, _)) in storage.iter().zip(&used_s) {
                if *bytes > a.capacity {
                    return Err(format!(
                        "site {}: storage appliance {} needs {bytes} bytes for the licensed \
                         catalog but holds {}; add capacity or appliances",
                        site.name, a.name, a.capacity
                    ));
                }
            }
        }
        let source = |key: &str| -> String {
            targets(&ws, key)
                .first()
                .map_or_else(|| "origin".to_owned(), |&i| storage[i].name.clone())
        };
        // Edges: titles by views, until full.
        let views = |t: &Title| popularity.get(&t.name, &site.region).map_or(0, |d| d.views);
        let mut order: Vec<&Title> = titles.iter().collect();
        order.sort_by(|a, b| views(b).cmp(&views(a)).then(a.name.cmp(&b.name)));
        for t in order {
            for (tier, list) in [(Tier::Storage, &storage), (Tier::Edge, &edges)] {
                if list.is_empty() || (tier == Tier::Storage && licensed(t)) {
                    continue;
                }
                if tier == Tier::Storage {
                    title_plans.push(TitlePlan {
                        site: site.name.clone(),
                        tier,
                        title: t.name.clone(),
                        placed: "unlicensed".into(),
                        views: views(t),
                        rungs: Vec::new(),
                        left_out: Vec::new(),
                        bytes: 0,
                    });
                    continue;
                }
                let mut tp = TitlePlan {
                    site: site.name.clone(),
                    tier,
                    title: t.name.clone(),
                    placed: "none".into(),
                    views: views(t),
                    rungs: Vec::new(),
                    left_out: Vec::new(),
                    bytes: 0,
                };
                if !licensed(t) {
                    tp.placed = "unlicensed".into();
                    title_plans.push(tp);
                    continue;
                }
                if tp.views == 0 {
                    tp.placed = "not-watched".into();
                    title_plans.push(tp);
                    continue;
                }
                // Groups: what every rung needs (manifests, audio, text, thumbnails), then the
                // rungs, most watched first (by their views, else highest bit rate first).
                let mut groups: BTreeMap<Option<String>, Vec<&CatalogFile>> = BTreeMap::new();
                for f in &t.files {
                    let rel = &f.key[t.name.len() + 1..];
                    groups
                        .entry(rung_of(rel).map(str::to_owned))
                        .or_default()
                        .push(f);
                }
                let demand = popularity.get(&t.name, &site.region);
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
                let common = groups.get(&None).cloned().unwrap_or_default();
                let all: Vec<(Option<String>, Vec<&CatalogFile>)> = std::iter::once((None, common))
                    .chain(rungs.into_iter().map(|(n, f)| (Some(n), f)))
                    .collect();
                let mut full = false;
                let mut common_placed = false;
                let mut added: Vec<(String, usize, u64)> = Vec::new();
                for (rung, files) in &all {
                    if full {
                        tp.left_out.extend(rung.clone());
                        continue;
                    }
                    let mut add = vec![(0u64, 0usize); edges.len()];
                    let mut put = Vec::new();
                    for f in files {
                        for i in targets(&we, &f.key) {
                            add[i].0 += f.size;
                            add[i].1 += 1;
                            put.push((f, i));
                        }
                    }
                    let fits = edges
                        .iter()
                        .zip(used_e.iter().zip(&add))
                        .all(|(a, (u, x))| u.0 + x.0 <= a.capacity);
                    if !fits {
                        full = true;
                        tp.left_out.extend(rung.clone());
                        continue;
                    }
                    for (u, x) in used_e.iter_mut().zip(&add) {
                        u.0 += x.0;
                        u.1 += x.1;
                    }
                    for (f, i) in put {
                        tp.bytes += f.size;
                        added.push((f.key.clone(), i, f.size));
                        on.entry(f.key.clone()).or_default().push(Placement {
                            appliance: edges[i].name.clone(),
                            source: source(&f.key),
                        });
                    }
                    match rung {
                        Some(r) => tp.rungs.push(r.clone()),
                        None => common_placed = true,
                    }
                }
                let has_rungs = all.len() > 1;
                tp.placed = if common_placed && tp.left_out.is_empty() {
                    "whole"
                } else if common_placed && !tp.rungs.is_empty() {
                    "partial"
                } else {
                    "none"
                }
                .into();
                if tp.placed == "none" && has_rungs {
                    // The shared files alone play nothing: take them back.
                    for (key, i, size) in added {
                        used_e[i].0 -= size;
                        used_e[i].1 -= 1;
                        if let Some(list) = on.get_mut(&key) {
                            list.retain(|p| p.appliance != edges[i].name);
                        }
                    }
                    tp.bytes = 0;
                    tp.left_out = all.iter().filter_map(|(r, _)| r.clone()).collect();
                }
                title_plans.push(tp);
            }
        }
        for (list, used) in [(&storage, &used_s), (&edges, &used_e)] {
            for (a, (bytes, files)) in list.iter().zip(used.iter()) {
                appliances.push(ApplianceUse {
                    name: a.name.clone(),
                    site: site.name.clone(),
                    tier: a.tier,
                    capacity: a.capacity,
                    bytes: *bytes,
                    files: *files,
                });
            }
        }
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

/// Up to ten URLs holding `what` (a file `TITLE/PATH`, or a whole title: appliances that hold
/// every file of it) for a client of `site`, best first: the site's edges, its storage
/// appliances, other sites, then the origin. A title not licensed in the site's region at `now`
/// is refused.
pub fn locate(plan: &FillPlan, what: &str, site: &str, now: u64) -> Result<Vec<String>, String> {
    plan.validate()?;
    let t = &plan.topology;
    let home = t
        .sites
        .iter()
        .find(|s| s.name == site)
        .ok_or_else(|| format!("no site {site:?} in the plan"))?;
    let what = what.trim_matches('/');
    let title = what.split('/').next().unwrap_or(what);
    let licensed = plan
        .licences
        .get(&format!("{title}@{}", home.region))
        .is_none_or(|l| popularity::licensed_at(l, now));
    if !licensed {
        return Err(format!(
            "{title} is not licensed in region {} at this time",
            home.region
        ));
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
        return Err(format!("{what} is not in the plan's catalog"));
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
mod tests {
    use super::*;

    /// A title with shared files of 10 bytes and rungs of `rungs` bytes each (4 files a rung).
    fn title(name: &str, rungs: &[(&str, u64)]) -> Title {
        let mut files = vec![
            CatalogFile {
                key: format!("{name}/master.m3u8"),
                size: 5,
                crc32: "00000000".into(),
            },
            CatalogFile {
                key: format!("{name}/audio/en/seg-00001.m4s"),
                size: 5,
                crc32: "00000000".into(),
            },
        ];
        for (r, bytes) in rungs {
            for i in 0..4 {
                files.push(CatalogFile {
                    key: format!("{name}/video/{r}/seg-{i:05}.m4s"),
                    size: bytes / 4,
                    crc32: "00000000".into(),
                });
            }
        }
        Title {
            name: name.into(),
            files,
        }
    }

    fn topology(edge_capacity: u64) -> Topology {
        Topology::from_toml(&format!(
            r#"
origin = "http://origin.test/titles"
[[site]]
name = "lon"
region = "gb"
window = "00:00-24:00"
rate = 1000000
[[site.appliance]]
name = "lon-s1"
url = "http://s1.test"
capacity = 100000
tier = "storage"
[[site.appliance]]
name = "lon-s2"
url = "http://s2.test"
capacity = 100000
tier = "storage"
[[site.appliance]]
name = "lon-e1"
url = "http://e1.test"
capacity = {edge_capacity}
tier = "edge"
[[site]]
name = "par"
region = "fr"
window = "01:00-05:00"
rate = 1000000
[[site.appliance]]
name = "par-e1"
url = "http://pe1.test"
capacity = 100000
tier = "edge"
"#
        ))
        .unwrap()
    }

    #[test]
    fn storage_holds_everything_licensed_and_edges_fill_by_views() {
        let titles = [
            title("hit", &[("low", 400), ("high", 2000)]),
            title("niche", &[("low", 400)]),
            title("banned", &[("low", 400)]),
        ];
        let pop = Popularity::parse(
            "title,region,views,licensed_from,licensed_until,rung\n\
             hit,gb,1000,,,\nhit,gb,900,,,low\nhit,gb,100,,,high\n\
             niche,gb,10,,,\nbanned,gb,5000,2030-01-01,,\n\
             hit,fr,50,,,\n",
        )
        .unwrap();
        // The edge holds `hit` whole only with 2410 bytes; give it 1000: `hit` partial (its
        // most-watched rung), `niche` whole after it.
        let p = plan(&titles, "cat", &topology(1000), &pop, 0).unwrap();
        let on = |key: &str| -> Vec<&str> {
            p.files
                .iter()
                .find(|f| f.file.key == key)
                .unwrap()
                .on
                .iter()
                .map(|x| x.appliance.as_str())
                .collect()
        };
        // Storage: each licensed file on exactly one of the two storage appliances.
        for f in &p.files {
            let storage =
                f.on.iter()
                    .filter(|x| x.appliance.starts_with("lon-s"))
                    .count();
            let want = usize::from(!f.file.key.starts_with("banned/"));
            assert_eq!(storage, want, "{}", f.file.key);
        }
        let state = |t: &str, site: &str| {
            p.titles
                .iter()
                .find(|x| x.title == t && x.site == site && x.tier == Tier::Edge)
                .unwrap()
        };
        let hit = state("hit", "lon");
        assert_eq!(hit.placed, "partial");
        assert_eq!(
            (hit.rungs.clone(), hit.left_out.clone()),
            (vec!["low".to_owned()], vec!["high".to_owned()])
        );
        assert_eq!(state("niche", "lon").placed, "whole");
        assert_eq!(state("banned", "lon").placed, "unlicensed");
        assert!(on("banned/video/low/seg-00000.m4s").is_empty());
        assert!(on("hit/video/low/seg-00000.m4s").contains(&"lon-e1"));
        assert!(!on("hit/video/high/seg-00000.m4s").contains(&"lon-e1"));
        // Paris has no storage: its edge fills from the origin; `niche` is not watched there.
        let paris: Vec<&Placement> = p
            .files
            .iter()
            .flat_map(|f| &f.on)
            .filter(|x| x.appliance == "par-e1")
            .collect();
        assert!(!paris.is_empty() && paris.iter().all(|x| x.source == "origin"));
        assert_eq!(state("niche", "par").placed, "not-watched");
        // London's edge reads from the storage appliance that holds the file (tiered fill).
        for f in &p.files {
            for x in f.on.iter().filter(|x| x.appliance == "lon-e1") {
                assert!(
                    on(&f.file.key).contains(&x.source.as_str()),
                    "{}",
                    f.file.key
                );
            }
        }
        let e1 = p.appliances.iter().find(|a| a.name == "lon-e1").unwrap();
        assert!(e1.bytes <= e1.capacity);
        // The plan is a JSON document that reads back the same.
        let json = serde_json::to_string_pretty(&p).unwrap();
        assert_eq!(serde_json::from_str::<FillPlan>(&json).unwrap(), p);

        // Locate: the edge first, then storage, then the other site, then the origin.
        let urls = locate(&p, "hit/video/low/seg-00000.m4s", "lon", 0).unwrap();
        assert!(urls[0].starts_with("http://e1.test/"), "{urls:?}");
        assert!(urls[1].starts_with("http://s"), "{urls:?}");
        assert_eq!(
            urls.last().unwrap(),
            "http://origin.test/titles/hit/video/low/seg-00000.m4s"
        );
        assert!(
            urls.iter().any(|u| u.starts_with("http://pe1.test/")),
            "{urls:?}"
        );
        // A title goes to the appliances that hold all of it: London's edge has only part of
        // `hit` and its storage tier splits it over two appliances, so Paris's edge comes first.
        let urls = locate(&p, "hit", "lon", 0).unwrap();
        assert_eq!(
            urls,
            ["http://pe1.test/hit/", "http://origin.test/titles/hit/"]
        );
        let urls = locate(&p, "niche", "lon", 0).unwrap();
        assert_eq!(urls[0], "http://e1.test/niche/");
        let e = locate(&p, "banned", "lon", 0).unwrap_err();
        assert!(e.contains("not licensed"), "{e}");
        assert!(locate(&p, "hit", "nowhere", 0).is_err());
    }

    #[test]
    fn hostile_plans_are_refused() {
        let titles = [title("t", &[("low", 400)])];
        let good = plan(
            &titles,
            "cat",
            &topology(100_000),
            &Popularity::default(),
            0,
        )
        .unwrap();
        good.validate().unwrap();
        let mut bad = good.clone();
        bad.files[0].file.key = "../../etc/passwd".into();
        assert!(bad.validate().unwrap_err().contains("file"));
        assert!(locate(&bad, "t", "lon", 0).is_err());
        let mut bad = good.clone();
        bad.files[0].on[0].appliance = "ghost".into();
        assert!(bad.validate().unwrap_err().contains("ghost"));
        let mut bad = good;
        bad.files[0].file.crc32 = "xyz".into();
        assert!(bad.validate().unwrap_err().contains("CRC32"));
    }

    #[test]
    fn a_storage_tier_too_small_is_refused() {
        let titles = [title("big", &[("low", 400_000)])];
        let e = plan(&titles, "cat", &topology(1000), &Popularity::default(), 0).unwrap_err();
        assert!(e.contains("add capacity"), "{e}");
    }
}
