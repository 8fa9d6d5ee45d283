//! `rungs encode`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Instant;

use pipeline::encode::{self, EncodeJobError, EncodeOptions, Event, LadderChoice};
use workers::encode::Codec;

use crate::args::{EncodeArgs, Global};
use crate::config::{self, ShotChoice};
use crate::exit::{self, Failure};
use crate::{logging, output};

/// The output folder when `-o` is not given: `out/<master name without extension>`.
fn default_output(args: &EncodeArgs) -> PathBuf {
    let stem = args
        .input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "master".into());
    PathBuf::from("out").join(stem)
}

/// The library options of `rungs encode` (and `rungs submit`), checked.
pub fn options(args: &EncodeArgs) -> anyhow::Result<EncodeOptions> {
    let codecs = args
        .codec
        .iter()
        .map(|c| Codec::from_name(c).ok_or_else(|| Failure::usage(format!("unknown codec {c:?}"))))
        .collect::<anyhow::Result<Vec<Codec>>>()?;
    let codecs = encode::Codecs::new(codecs)
        .map_err(|e| Failure::usage(format!("--codec {}: {e}", args.codec.join(","))))?;
    let codec = codecs.first();
    if codecs.several() && args.rungs.is_some() {
        return Err(Failure::usage(
            "--rungs gives one codec's fixed ladder; with several codecs use --ladder fixed \
             (Apple's ladder for each codec) or a per-title ladder",
        ));
    }
    let (preset, codec_presets) = presets("preset", &args.preset, &codecs)?;
    let (probe_preset, codec_probe_presets) = presets("probe-preset", &args.probe_preset, &codecs)?;
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path)
            .map_err(|e| Failure::io(format!("cannot read {}: {e}", path.display())))
    };
    let ladder = match (args.ladder.as_deref(), &args.rungs) {
        (None | Some("fixed"), Some(path)) => LadderChoice::Custom(
            encode::ladder::from_toml(&read(path)?, codec)
                .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?,
        ),
        (Some(mode), Some(_)) => {
            return Err(Failure::usage(format!(
                "--rungs gives a fixed ladder; it cannot be used with --ladder {mode}"
            )));
        }
        (Some("fixed"), None) => LadderChoice::Apple,
        (Some("per-title"), None) => LadderChoice::PerTitle,
        (None | Some("shot"), None) => LadderChoice::Shot,
        (Some(other), None) => return Err(Failure::usage(format!("unknown ladder {other:?}"))),
    };
    let mut rules = match &args.rules {
        Some(path) => ladders::title::LadderRules::from_toml(&read(path)?)
            .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?,
        None => ladders::title::LadderRules::default(),
    };
    if let Some(p) = &args.pooling {
        rules.pooling = ladders::Pooling::from_name(p)
            .ok_or_else(|| Failure::usage(format!("unknown pooling {p:?}")))?;
    }
    if let Some(t) = &args.shot_target {
        rules.shot_target = match t.as_str() {
            "vmaf" => ladders::title::ShotTarget::Vmaf,
            _ => ladders::title::ShotTarget::Bitrate,
        };
    }
    if args.compare_fixed && !matches!(ladder, LadderChoice::PerTitle | LadderChoice::Shot) {
        return Err(Failure::usage(
            "--compare-fixed compares a per-title or shot-level ladder with Apple's fixed one",
        ));
    }
    if args.compare_fixed && args.no_vmaf {
        return Err(Failure::usage(
            "--compare-fixed measures both ladders' VMAF; it cannot be used with --no-vmaf",
        ));
    }
    let choice = ShotChoice {
        detect: true,
        threshold: None,
        keep_scores: false,
    };
    let options = EncodeOptions {
        codecs,
        ladder,
        preset,
        codec_presets,
        workers: args.workers.unwrap_or(0),
        segment_seconds: args.segment,
        ingest: config::ingest_options(&args.ingest, choice)?,
        measure: !args.no_vmaf,
        rules,
        probe_preset,
        codec_probe_presets,
        probe_sampling: args.probe_sampling,
        package: package_options(args)?,
        compare_fixed: args.compare_fixed,
    };
    // Settings no encode could take are refused now, not after decoding the whole master.
    pipeline::fleet::check_options(&options)?;
    Ok(options)
}

/// `--preset` values: one for every codec, or `CODEC=PRESET` for some.
fn presets(
    flag: &str,
    values: &[String],
    codecs: &encode::Codecs,
) -> anyhow::Result<(Option<String>, std::collections::BTreeMap<String, String>)> {
    let mut all = None;
    let mut each = std::collections::BTreeMap::new();
    for v in values {
        match v.split_once('=') {
            Some((name, preset)) => {
                let known = Codec::from_name(name).is_some_and(|c| codecs.all().contains(&c));
                if !known || preset.is_empty() {
                    return Err(Failure::usage(format!(
                        "--{flag} {v:?}: expected CODEC=PRESET with a codec of --codec ({})",
                        codecs.names()
                    )));
                }
                if each.insert(name.to_owned(), preset.to_owned()).is_some() {
                    return Err(Failure::usage(format!("--{flag}: {name} is given twice")));
                }
            }
            None if all.is_none() && !v.is_empty() => all = Some(v.clone()),
            None => {
                return Err(Failure::usage(format!(
                    "--{flag} {}: one preset for every codec, or CODEC=PRESET for each",
                    values.join(",")
                )));
            }
        }
    }
    Ok((all, each))
}

pub fn run(global: &Global, args: &EncodeArgs) -> anyhow::Result<ExitCode> {
    let options = options(args)?;
    let out = args.output.clone().unwrap_or_else(|| default_output(args));
    let progress = Progress {
        bar: logging::progress(global),
        started: Instant::now(),
        quiet: global.quiet,
        state: Mutex::new((0, 0, 0, 0)),
        planned_codecs: Mutex::default(),
    };
    let on_event = |e: Event| progress.event(e);
    crate::interrupt::install(
        &[libc::SIGINT],
        b"\ninterrupted: finishing the running chunks (Ctrl-C again to quit now)\n",
    );
    let result = encode::run(
        &args.input,
        &out,
        &options,
        &crate::interrupt::STOP,
        &on_event,
    );
    progress.bar.finish_and_clear();
    let report = match result {
        Ok(r) => r,
        Err(EncodeJobError::Rejected(report)) => {
            if !global.quiet {
                eprintln!("{}", output::validate_summary(&report));
            }
            return Err(Failure::rejected(format!(
                "{} is rejected; see the problems above (rungs validate gives them as JSON)",
                args.input.display()
            )));
        }
        // The exit code follows the error's type (`exit::for_error`).
        Err(e) => return Err(e.into()),
    };
    output::pretty(&report)?;
    if !global.quiet {
        eprintln!("{}", output::encode_summary(&report, &out));
    }
    Ok(exit::OK.into())
}

/// The progress bar of an encode and what it counts.
struct Progress {
    bar: indicatif::ProgressBar,
    started: Instant,
    quiet: bool,
    /// Frames done, frames done at the start of this run, chunk encodes done, and in total.
    state: Mutex<(u64, u64, usize, usize)>,
    /// The codecs whose encodes are planned, in order.
    planned_codecs: Mutex<Vec<Codec>>,
}

impl Progress {
    fn event(&self, e: Event) {
        let bar = &self.bar;
        match e {
            Event::Ingest(p) => {
                bar.set_message(format!("validating: {} frames", p.frames));
            }
            Event::Planned {
                codec,
                total,
                reused,
                from_anchors,
                frames,
                frames_done,
            } => self.planned(codec, total, reused, from_anchors, (frames, frames_done)),
            Event::ChunkDone { frames } => {
                let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
                s.0 += frames;
                s.2 += 1;
                let fps = (s.0 - s.1) as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
                bar.set_position(s.0);
                bar.set_message(format!("chunks {}/{} · {fps:.1} fps", s.2, s.3));
            }
            Event::Probing {
                codec,
                round,
                total,
                reused,
            } => {
                bar.set_length(total as u64);
                bar.set_position(reused as u64);
                bar.set_message(format!(
                    "{} probing, round {round}: {total} tasks",
                    codec.name()
                ));
            }
            Event::ProbeDone => bar.inc(1),
            Event::Assembling(name) => bar.set_message(format!("assembling {name}")),
            Event::Measuring(name, n) => bar.set_message(format!("VMAF of {name}: {n} frames")),
            Event::Packaging => bar.set_message("packaging for DASH and HLS"),
        }
    }

    /// The chunk encodes are planned: `reused` found from the last run, `from_anchors` made
    /// while deciding.
    /// Each codec's encodes are planned on their own; the bar counts them all.
    fn planned(
        &self,
        codec: Codec,
        total: usize,
        reused: usize,
        from_anchors: usize,
        (frames, frames_done): (u64, u64),
    ) {
        let bar = &self.bar;
        let position = {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let first = self.planned_codecs.lock().map_or(true, |mut c| {
                let first = c.is_empty();
                c.push(codec);
                first
            });
            if first {
                *s = (0, 0, 0, 0);
            }
            *s = (
                s.0 + frames_done,
                s.1 + frames_done,
                s.2 + reused + from_anchors,
                s.3 + total,
            );
            s.0
        };
        if reused > 0 && !self.quiet {
            bar.suspend(|| {
                eprintln!("resuming: {reused} of {total} chunk encodes reused from the last run")
            });
        }
        if from_anchors > 0 && !self.quiet {
            bar.suspend(|| {
                eprintln!(
                    "{from_anchors} of {total} chunk encodes are the anchors' (made at \
                     those rungs' settings while deciding)"
                )
            });
        }
        let before = self.planned_codecs.lock().map_or(0, |c| c.len());
        if before <= 1 {
            bar.set_length(frames);
        } else {
            bar.inc_length(frames);
        }
        bar.set_position(position);
    }
}

/// `FILE:LANG` (the last colon splits, so a path may hold colons).
///
/// A role may follow: `FILE:LANG:forced` or `:sdh` for subtitles, `FILE:LANG:description` for
/// an audio description.
fn file_and_language(
    flag: &str,
    value: &str,
) -> anyhow::Result<(PathBuf, encode::package::TrackLabel)> {
    use packager::presentation::Role;
    let (rest, role) = match value.rsplit_once(':') {
        Some((rest, r)) => match Role::from_name(r) {
            Some(role) => (rest, role),
            None => (value, Role::Main),
        },
        None => (value, Role::Main),
    };
    let fits = if flag == "subs" {
        role.is_for_text()
    } else {
        role.is_for_audio()
    };
    if !fits {
        return Err(Failure::usage(format!(
            "--{flag} {value:?}: {} is not a role of {} tracks (expected {})",
            role.name(),
            if flag == "subs" { "subtitle" } else { "audio" },
            if flag == "subs" {
                "forced or sdh"
            } else {
                "description"
            }
        )));
    }
    let Some((file, lang)) = rest.rsplit_once(':') else {
        return Err(Failure::usage(format!(
            "--{flag} {value:?}: expected FILE:LANG"
        )));
    };
    let ok = (2..=8).contains(&lang.len())
        && lang.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && lang.bytes().next().is_some_and(|b| b.is_ascii_alphabetic());
    if file.is_empty() || !ok {
        return Err(Failure::usage(format!(
            "--{flag} {value:?}: expected FILE:LANG with a language code such as en, fra or pt-BR"
        )));
    }
    let path = PathBuf::from(file);
    if !path.is_file() {
        return Err(Failure::io(format!(
            "--{flag}: {file} is not a readable file"
        )));
    }
    Ok((
        path,
        encode::package::TrackLabel {
            language: lang.to_owned(),
            role,
        },
    ))
}

/// The encryption `--drm` asks for; keys are checked (or fetched) here, before any encoding,
/// and never shown in errors.
fn encryption(
    args: &crate::args::DrmArgs,
    master: &std::path::Path,
) -> anyhow::Result<Option<packager::package::Encryption>> {
    let Some(source) = &args.drm else {
        for (given, flag) in [
            (!args.key.is_empty(), "--key"),
            (args.cpix.is_some(), "--cpix"),
            (args.speke_url.is_some(), "--speke-url"),
            (args.cpix_out.is_some(), "--cpix-out"),
        ] {
            if given {
                return Err(Failure::usage(format!("{flag} needs --drm")));
            }
        }
        return Ok(None);
    };
    if !(0.0..=3600.0).contains(&args.clear_lead) {
        return Err(Failure::usage(format!(
            "--clear-lead {} (expected 0 to 3600 seconds)",
            args.clear_lead
        )));
    }
    let scheme: packager::cenc::Scheme = args.scheme.parse().map_err(Failure::usage)?;
    let content_id = args.content_id.clone().unwrap_or_else(|| {
        master
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "title".into())
    });
    if source != "raw" && !args.key.is_empty() {
        return Err(Failure::usage(format!(
            "--key goes with --drm raw, not --drm {source}"
        )));
    }
    let (keys, pssh) = keys_from(source, args, &content_id, scheme)?;
    let encryption = packager::package::Encryption {
        scheme,
        keys,
        clear_lead: args.clear_lead,
        pssh,
    };
    if let Some(out) = &args.cpix_out {
        let doc = packager::cpix::document(&content_id, &encryption.keys, scheme, &|kid| {
            encryption.pssh_of(kid)
        });
        store::fsutil::write_private_file_atomic(out, |f| {
            std::io::Write::write_all(f, doc.as_bytes())
        })
        .map_err(|e| Failure::io(format!("--cpix-out {}: {e}", out.display())))?;
    }
    Ok(Some(encryption))
}

/// The keys of `--drm SOURCE`, and the `pssh` boxes a key server gave for them.
fn keys_from(
    source: &str,
    args: &crate::args::DrmArgs,
    content_id: &str,
    scheme: packager::cenc::Scheme,
) -> anyhow::Result<(packager::drm::KeyPolicy, Pssh)> {
    let mut pssh = std::collections::BTreeMap::new();
    let keys = match source {
        "raw" => {
            if args.key.is_empty() {
                return Err(Failure::usage(
                    "--drm raw needs at least one --key KID:KEY[:TRACKS]",
                ));
            }
            packager::drm::KeyPolicy::parse(&args.key)
                .map_err(|e| Failure::usage(format!("--key: {e}")))?
        }
        "cpix" => {
            let Some(path) = &args.cpix else {
                return Err(Failure::usage("--drm cpix needs --cpix FILE"));
            };
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::io(format!("--cpix {}: {e}", path.display())))?;
            let doc = packager::cpix::parse(&text)
                .map_err(|e| Failure::usage(format!("--cpix {}: {e}", path.display())))?;
            let policy = doc
                .policy()
                .map_err(|e| Failure::usage(format!("--cpix {}: {e}", path.display())))?;
            for kid in policy.kids() {
                pssh.insert(kid, doc.pssh_of(&kid));
            }
            policy
        }
        _ => {
            let Some(url) = &args.speke_url else {
                return Err(Failure::usage("--drm speke needs --speke-url URL"));
            };
            let (policy, doc) =
                packager::speke::fetch(url, content_id, args.speke_keys == "studio", scheme)
                    .map_err(|e| Failure::io(e.to_string()))?;
            for kid in policy.kids() {
                pssh.insert(kid, doc.pssh_of(&kid));
            }
            policy
        }
    };
    Ok((keys, pssh))
}

/// `pssh` boxes by key ID.
type Pssh = std::collections::BTreeMap<[u8; 16], Vec<Vec<u8>>>;

fn package_options(args: &EncodeArgs) -> anyhow::Result<Option<encode::package::PackageOptions>> {
    if args.no_package {
        if args.drm.drm.is_some() {
            return Err(Failure::usage(
                "--drm encrypts the packaged title: it cannot go with --no-package",
            ));
        }
        return Ok(None);
    }
    let audio = args
        .audio
        .iter()
        .map(|v| file_and_language("audio", v))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let subtitles = args
        .subs
        .iter()
        .map(|v| file_and_language("subs", v))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if !(16..=512).contains(&args.audio_kbps) {
        return Err(Failure::usage(format!(
            "--audio-kbps {} (expected 16 to 512)",
            args.audio_kbps
        )));
    }
    let mut settings = packager::package::Settings {
        segment_seconds: args.segment,
        audio_bitrate: args.audio_kbps * 1000,
        ..Default::default()
    };
    settings.thumbnails.interval = args.thumbnails.max(1);
    settings.encryption = encryption(&args.drm, &args.input)?;
    if settings.encryption.is_some() && args.codec.iter().any(|c| c == "vp9") {
        return Err(Failure::usage(format!(
            "--drm with --codec {}: rungs encrypts H.264, HEVC and AV1 so far",
            args.codec.join(",")
        )));
    }
    Ok(Some(encode::package::PackageOptions {
        settings,
        audio,
        subtitles,
        thumbnails: args.thumbnails > 0,
    }))
}
