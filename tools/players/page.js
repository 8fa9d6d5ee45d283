// Runs inside the test page: loads a manifest in one player and walks through the checks of
// rungs' playback test. Each step records what it saw in `window.rungsResult`; the harness
// (play.mjs) reads it. Nothing here decides pass or fail: the Rust test does.

/* global shaka, Hls, dashjs */

const params = new URLSearchParams(location.search);
const which = params.get('player');
const url = params.get('manifest');
const boundaries = JSON.parse(params.get('boundaries') || '[]');
const cueTime = Number(params.get('cueTime') || 'NaN');
const textLang = params.get('textLang') || '';
const license = params.get('license') ? new URL(params.get('license'), location.href).href : '';
const shakaConfig = params.get('shakaConfig') ? JSON.parse(params.get('shakaConfig')) : null;

const result = {
  player: which,
  manifest: url,
  steps: [],
  errors: [],
  started: false,
  boundariesCrossed: 0,
  variants: [],
  switched: [],
  audioLanguages: [],
  cueTexts: [],
  ended: false,
  thumbnail: null,
  done: false,
};
window.rungsResult = result;

const video = document.querySelector('video');
video.muted = true;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(what, test, ms) {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (await test()) return true;
    await sleep(50);
  }
  result.steps.push(`timed out waiting for ${what} (${ms} ms)`);
  return false;
}
function step(s) {
  result.steps.push(`${(video.currentTime || 0).toFixed(3)}s: ${s}`);
}
video.addEventListener('error', () => {
  const e = video.error;
  result.errors.push(`media element: ${e && e.code} ${e && e.message}`);
});

// A common face over the three players.
async function open() {
  if (which.startsWith('shaka')) {
    shaka.polyfill.installAll();
    const p = new shaka.Player();
    await p.attach(video);
    // Subtitles chosen before loading, as a viewer's preference. (Enabled later, Shaka 5 defers
    // the text of a fully buffered HLS stream until the next video append, which never comes.)
    if (textLang) p.configure({ preferredText: [{ language: textLang }] });
    if (license) p.configure({ drm: { servers: { 'org.w3.clearkey': license } } });
    if (shakaConfig) p.configure(shakaConfig);
    p.addEventListener('error', (e) => result.errors.push(`shaka: ${e.detail && e.detail.code} ${JSON.stringify(e.detail && e.detail.data).slice(0, 300)}`));
    await p.load(url);
    return {
      // One variant per video stream: those with the audio now playing.
      variants: () => {
        const all = p.getVariantTracks();
        const audio = (all.find((t) => t.active) || all[0] || {}).audioId;
        return all.filter((t) => t.videoId != null && t.audioId === audio)
          .map((t) => ({ key: t.id, width: t.width, height: t.height, bandwidth: t.videoBandwidth || t.bandwidth, active: t.active, codec: t.videoCodec }));
      },
      select: (key) => {
        p.configure({ abr: { enabled: false } });
        const t = p.getVariantTracks().find((x) => x.id === key);
        p.selectVariantTrack(t, /* clearBuffer */ true);
      },
      audioLanguages: () => [...new Set(p.getVariantTracks().map((t) => t.language))],
      thumbnail: async (time) => {
        const tracks = p.getImageTracks();
        if (!tracks.length) return null;
        const t = await p.getThumbnails(tracks[0].id, time);
        return t && { uris: t.uris, x: t.positionX, y: t.positionY, width: t.width, height: t.height };
      },
      showText: (lang) => {
        p.selectTextTrack(p.getTextTracks().find((t) => t.language === lang));
      },
    };
  }
  if (which === 'hlsjs') {
    const drm = license ? { emeEnabled: true, drmSystems: { 'org.w3.clearkey': { licenseUrl: license } } } : {};
    const hls = new Hls({ renderTextTracksNatively: true, enableWorker: true, ...drm });
    hls.on(Hls.Events.ERROR, (_, d) => {
      if (d.fatal || d.type === 'keySystemError') result.errors.push(`hls.js ${d.fatal ? 'fatal' : 'key system'}: ${d.type} ${d.details}`);
      else result.steps.push(`hls.js warning: ${d.details}`);
    });
    const parsed = new Promise((r) => hls.on(Hls.Events.MANIFEST_PARSED, r));
    hls.loadSource(url);
    hls.attachMedia(video);
    await parsed;
    return {
      variants: () => hls.levels.map((l, i) => ({ key: i, width: l.width, height: l.height, bandwidth: l.bitrate, active: hls.currentLevel === i })),
      select: (key) => { hls.currentLevel = key; },
      audioLanguages: () => hls.audioTracks.map((t) => t.lang),
      showText: (lang) => {
        const i = hls.subtitleTracks.findIndex((t) => t.lang === lang);
        hls.subtitleDisplay = true;
        hls.subtitleTrack = i;
        // hls.js turns the track off right after loading; select it again on the next tick.
        setTimeout(() => { hls.subtitleTrack = i; }, 0);
      },
    };
  }
  if (which === 'dashjs') {
    const p = dashjs.MediaPlayer().create();
    p.on(dashjs.MediaPlayer.events.ERROR, (e) => result.errors.push(`dash.js: ${JSON.stringify(e.error || e).slice(0, 300)}`));
    const ready = new Promise((r) => p.on(dashjs.MediaPlayer.events.STREAM_INITIALIZED, r));
    if (license) p.setProtectionData({ 'org.w3.clearkey': { serverURL: license } });
    p.initialize(video, url, false);
    await ready;
    return {
      variants: () => p.getRepresentationsByType('video').map((r, i) => ({
        key: r.id, width: r.width, height: r.height, bandwidth: r.bandwidth,
        active: (p.getCurrentRepresentationForType('video') || {}).id === r.id,
      })),
      select: (key) => {
        p.updateSettings({ streaming: { abr: { autoSwitchBitrate: { video: false } } } });
        p.setRepresentationForTypeById('video', key, true);
      },
      audioLanguages: () => p.getTracksFor('audio').map((t) => t.lang),
      showText: (lang) => {
        p.enableText(true);
        const tracks = p.getTracksFor('text');
        const i = tracks.findIndex((t) => t.lang === lang);
        p.setTextTrack(i);
      },
    };
  }
  throw new Error(`unknown player ${which}`);
}

function activeCueTexts() {
  const out = [];
  for (const t of Array.from(video.textTracks)) {
    if (t.mode === 'disabled') continue;
    for (const c of Array.from(t.activeCues || [])) out.push(c.text);
  }
  return out;
}

async function main() {
  let api;
  try {
    api = await open();
  } catch (e) {
    result.errors.push(`load: ${e && (e.message || e.code || e)}`);
    result.done = true;
    return;
  }
  step('loaded');
  result.audioLanguages = api.audioLanguages();
  if (api.thumbnail) {
    try { result.thumbnail = await api.thumbnail(1); } catch (e) { result.errors.push(`thumbnail: ${e}`); }
  }
  result.variants = api.variants();
  video.playbackRate = 2;
  try { await video.play(); } catch (e) { result.errors.push(`play(): ${e.message}`); }
  result.started = await until('playback to start', () => video.currentTime > 0.3, 20000);
  step('started');
  // Three segment boundaries in a row, from the start.
  const third = boundaries.length >= 3 ? boundaries[2] : 0;
  if (await until('three segment boundaries', () => video.currentTime > third + 0.2, 60000)) {
    result.boundariesCrossed = boundaries.filter((b) => b < video.currentTime).length;
  }
  step(`crossed ${result.boundariesCrossed} boundaries`);
  // Forced switches: each rung in turn, from the top down; a switch counts once the player
  // reports the rung active and playback has moved on by a second.
  const vs = api.variants().sort((a, b) => b.bandwidth - a.bandwidth);
  for (const v of vs) {
    api.select(v.key);
    const t0 = video.currentTime;
    const ok = await until(`rung ${v.width}x${v.height} @ ${v.bandwidth}`, () => {
      const now = api.variants().find((x) => x.key === v.key);
      return now && now.active && video.currentTime > t0 + 1 && video.videoHeight === v.height;
    }, 30000);
    result.switched.push({ ...v, ok, videoHeight: video.videoHeight, at: video.currentTime });
    step(`rung ${v.width}x${v.height}: ${ok}`);
  }
  // The subtitle cue due at cueTime.
  if (textLang && Number.isFinite(cueTime)) {
    api.showText(textLang);
    video.currentTime = Math.max(0, cueTime - 1);
    video.play().catch(() => {});
    await until('the cue time', () => video.currentTime >= cueTime + 0.1, 20000);
    await until('an active cue', () => activeCueTexts().length > 0, 5000);
    result.cueTexts = activeCueTexts();
    result.textTracks = Array.from(video.textTracks).map((t) => `${t.kind}/${t.language}/${t.mode}/${t.cues ? t.cues.length : 'null'}`);
    step(`cues: ${JSON.stringify(result.cueTexts)}`);
  }
  // The end.
  const ended = new Promise((r) => video.addEventListener('ended', () => r(true), { once: true }));
  video.currentTime = Math.max(0, video.duration - 3);
  video.play().catch(() => {});
  // The end: the element's event, or the playhead held at the duration (dash.js does not
  // always end the media source, so the element may stop there without the event).
  const atEnd = () => video.duration > 0 && video.currentTime >= video.duration - 0.05;
  result.ended = await Promise.race([
    ended,
    until('the end', atEnd, 30000).then((ok) => ok && sleep(2000).then(() => video.ended || atEnd())),
  ]);
  step(`ended: ${result.ended} (event: ${video.ended}) at ${video.currentTime} of ${video.duration}`);
  result.done = true;
}

main().catch((e) => { result.errors.push(`harness: ${e && e.stack}`); result.done = true; });
