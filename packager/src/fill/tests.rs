//! Tests of the plan, its checks and `locate`.

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
    assert_eq!(hit.placed, Placed::Partial);
    assert_eq!(hit.placed.to_string(), "partial");
    assert_eq!(
        (hit.rungs.clone(), hit.left_out.clone()),
        (vec!["low".to_owned()], vec!["high".to_owned()])
    );
    assert_eq!(state("niche", "lon").placed, Placed::Whole);
    assert_eq!(state("banned", "lon").placed, Placed::Unlicensed);
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
    assert_eq!(state("niche", "par").placed, Placed::NotWatched);
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
    assert!(e.to_string().contains("not licensed"), "{e}");
    assert!(locate(&p, "hit", "nowhere", 0).is_err());
}

#[test]
fn placed_reads_and_writes_the_plan_words() {
    for (p, word) in [
        (Placed::Whole, "whole"),
        (Placed::Partial, "partial"),
        (Placed::NoRoom, "none"),
        (Placed::Unlicensed, "unlicensed"),
        (Placed::NotWatched, "not-watched"),
    ] {
        assert_eq!(p.to_string(), word);
        assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{word}\""));
        assert_eq!(
            serde_json::from_str::<Placed>(&format!("\"{word}\"")).unwrap(),
            p
        );
    }
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
    assert!(bad.validate().unwrap_err().to_string().contains("file"));
    assert!(locate(&bad, "t", "lon", 0).is_err());
    let mut bad = good.clone();
    bad.files[0].on[0].appliance = "ghost".into();
    assert!(bad.validate().unwrap_err().to_string().contains("ghost"));
    let mut bad = good;
    bad.files[0].file.crc32 = "xyz".into();
    assert!(bad.validate().unwrap_err().to_string().contains("CRC32"));
}

#[test]
fn a_storage_tier_too_small_is_refused() {
    let titles = [title("big", &[("low", 400_000)])];
    let e = plan(&titles, "cat", &topology(1000), &Popularity::default(), 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("add capacity"), "{e}");
}
