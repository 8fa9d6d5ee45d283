//! `rungs publish` against a real local S3 server (moto on loopback): types and caching, every
//! object checked, manifests last, a publish killed mid-way resumes with what it had sent
//! skipped, a second publish sends nothing, and changed segments take the old manifests down.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cloud::{AwsOptions, S3Store};
use common::{arg, rungs, rungs_text};
use fixtures::Fixture;
use fixtures::faults::FaultProxy;
use fixtures::moto::Moto;
use store::{Key, Store};

const TO: &str = "s3://origin/titles/multishot";

fn store(endpoint: &str) -> S3Store {
    S3Store::open(
        TO,
        &AwsOptions {
            endpoint: Some(endpoint.to_owned()),
            region: Some("us-east-1".into()),
            credentials: Some(("test".into(), "test".into())),
        },
    )
    .unwrap()
}

fn publish(title: &Path, endpoint: &str) -> common::Run {
    rungs(&[
        "publish",
        arg(title),
        "--to",
        TO,
        "--endpoint",
        endpoint,
        "-q",
    ])
}

fn published(s: &S3Store) -> Vec<String> {
    s.list(&Key::new("video").unwrap())
        .unwrap()
        .into_iter()
        .chain(s.list(&Key::new("audio").unwrap()).unwrap())
        .chain(
            ["master.m3u8", "manifest.mpd"]
                .iter()
                .map(|n| Key::new(*n).unwrap())
                .filter(|k| s.exists(k).unwrap()),
        )
        .map(|k| k.as_str().to_owned())
        .collect()
}

#[test]
fn a_title_is_published_with_types_and_caching_manifests_last_and_resumes_after_a_kill() {
    // SAFETY: the only test of this binary; no other thread reads the environment yet.
    unsafe { common::fake_aws_credentials() };
    let m = fixtures::ensure(Fixture::MultiShot).unwrap().path;
    let dir = tempfile::tempdir().unwrap();
    let title = dir.path().join("title");
    common::encode_fixed(&m, &title, &["--no-vmaf"]);
    let files = packager::publish::title_files(&title).unwrap();
    assert!(files.len() > 20, "{}", files.len());

    let moto = Moto::start().unwrap();
    let s3 = store(&moto.endpoint);
    s3.ensure_bucket().unwrap();

    // A publish through a slow link, killed once a few segments are up.
    let slow = FaultProxy::slow(moto.port, Duration::from_millis(120));
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("rungs"))
        .args([
            "publish",
            arg(&title),
            "--to",
            TO,
            "--endpoint",
            &slow.endpoint,
        ])
        .args(["--threads", "1", "-q"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the publish ended before it could be killed"
        );
        if published(&s3).len() >= 6 {
            break;
        }
        assert!(Instant::now() < end, "nothing was published");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = published(&s3);
    assert!(
        before
            .iter()
            .all(|k| !k.ends_with(".m3u8") && !k.ends_with(".mpd")),
        "a manifest went up before its segments: {before:?}"
    );

    // The second run resumes: what the first sent is skipped.
    let run = publish(&title, &moto.endpoint);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let r = &run.json;
    let n = files.len() as u64;
    assert_eq!(r["files"].as_u64(), Some(n));
    let unchanged = r["unchanged"].as_u64().unwrap();
    assert!(unchanged >= before.len() as u64, "{r}");
    assert_eq!(r["uploaded"].as_u64().unwrap() + unchanged, n);
    eprintln!(
        "killed with {} of {n} objects up; the resumed publish skipped {unchanged} and sent {}",
        before.len(),
        r["uploaded"]
    );
    let manifests: Vec<&str> = r["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        &manifests[manifests.len() - 2..],
        ["manifest.mpd", "master.m3u8"],
        "the master playlist and the MPD go last"
    );

    // Every object: the file's bytes (read back through the checksum), its type and caching.
    for (name, path) in &files {
        let key = Key::new(name.as_str()).unwrap();
        let got = s3.get(&key).unwrap();
        if name == "report.json" {
            // The report goes up without this machine's paths: the master and the renditions
            // by their file names.
            let local: serde_json::Value =
                serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
            let public: serde_json::Value = serde_json::from_slice(&got).unwrap();
            let text = public.to_string();
            assert!(!text.contains("\"/"), "a local path was published: {text}");
            let master = local["master"].as_str().unwrap();
            assert!(master.starts_with('/'), "{master}");
            assert_eq!(
                public["master"].as_str().unwrap(),
                std::path::Path::new(master)
                    .file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
            );
            assert_eq!(public["rungs"], {
                let mut r = local["rungs"].clone();
                for rung in r.as_array_mut().unwrap() {
                    let f = rung["file"]
                        .as_str()
                        .unwrap()
                        .rsplit('/')
                        .next()
                        .unwrap()
                        .to_owned();
                    rung["file"] = f.into();
                }
                r
            });
        } else {
            assert_eq!(got, std::fs::read(path).unwrap(), "{name}");
        }
        let info = s3.head(&key).unwrap().unwrap();
        let want = packager::publish::headers(name);
        assert_eq!(info.headers, want, "{name}");
        let cache = info.headers.cache_control.unwrap();
        if name.ends_with(".m4s") {
            assert!(cache.contains("immutable"), "{name}: {cache}");
        }
        if name.ends_with(".m3u8") || name.ends_with(".mpd") {
            assert!(cache.contains("max-age=10"), "{name}: {cache}");
        }
    }

    // The record the dashboard reads.
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(title.join(".rungs/publish.json")).unwrap()).unwrap();
    assert_eq!(record["files"].as_u64(), Some(n));

    // A second publish sends nothing.
    let run = publish(&title, &moto.endpoint);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json["uploaded"].as_u64(), Some(0), "{}", run.json);
    assert_eq!(run.json["unchanged"].as_u64(), Some(n));

    // A changed segment: the old manifests come down first, everything is consistent after.
    let (seg, path) = files.iter().find(|(n, _)| n.ends_with(".m4s")).unwrap();
    let mut bytes = std::fs::read(path).unwrap();
    bytes.push(0);
    std::fs::write(path, &bytes).unwrap();
    let run = publish(&title, &moto.endpoint);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.json["manifests_taken_down"].as_u64().unwrap() >= 2,
        "{}",
        run.json
    );
    assert!(
        run.json["warnings"][0]
            .as_str()
            .unwrap()
            .contains(seg.as_str())
    );
    assert_eq!(s3.get(&Key::new(seg.as_str()).unwrap()).unwrap(), bytes);
    assert!(s3.exists(&Key::new("master.m3u8").unwrap()).unwrap());

    // The published catalog plans like the folder it came from (`fill plan --catalog s3://…`).
    let oca = dir.path().join("oca.toml");
    std::fs::write(
        &oca,
        "origin = \"http://cdn-origin.test/titles\"\n[[site]]\nname = \"lon\"\nregion = \"gb\"\n\
         window = \"00:00-24:00\"\nrate = 1000000\n[[site.appliance]]\nname = \"s1\"\n\
         url = \"http://s1.test\"\ncapacity = 100000000000\ntier = \"storage\"\n",
    )
    .unwrap();
    let files_of = |catalog: &str, endpoint: Option<&str>| {
        let mut args = vec![
            "fill",
            "plan",
            "--catalog",
            catalog,
            "--topology",
            arg(&oca),
            "-q",
        ];
        if let Some(e) = endpoint {
            args.extend(["--endpoint", e]);
        }
        let run = rungs(&args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.json["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                let key = f["key"].as_str().unwrap();
                let rel = key.split_once('/').unwrap().1.to_owned();
                (
                    rel,
                    f["size"].as_u64().unwrap(),
                    f["crc32"].as_str().unwrap().to_owned(),
                )
            })
            .collect::<Vec<_>>()
    };
    let from_s3 = files_of("s3://origin/titles", Some(&moto.endpoint));
    let from_dir = files_of(arg(&title), None);
    assert!(from_s3.len() > 10);
    assert_eq!(
        from_s3, from_dir,
        "the published catalog is the packaged one"
    );

    // Bad input: not a title, not an S3 URL.
    let (code, _, stderr) = rungs_text(
        &["publish", arg(dir.path()), "--to", TO],
        Duration::from_secs(30),
    );
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("not a packaged title"), "{stderr}");
    let (code, _, stderr) = rungs_text(
        &["publish", arg(&title), "--to", "https://origin/titles"],
        Duration::from_secs(30),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("s3://"), "{stderr}");
}
