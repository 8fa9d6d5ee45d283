// rungs' playback harness: serves a packaged title over HTTP on loopback, opens it in one real
// player (Shaka Player, hls.js or dash.js) in Debian's headless Chromium through
// playwright-core, runs page.js's checks and prints what it saw as one JSON object.
//
//   node play.mjs --root DIR --manifest master.m3u8 --player shaka|hlsjs|dashjs
//                 [--url http://host/title/]   (play from that server instead of DIR)
//                 [--boundaries 4,8,12] [--cue-time 6.5 --text-lang en] [--timeout 240]
//                 [--keys KID:KEY,...]   (a W3C ClearKey licence server for an encrypted title)
//                 [--shaka-config JSON]  (given to Shaka's configure() before loading)
//
// It also records every media request, so the test can tell which rungs were fetched, and
// every licence request with the key IDs asked for.

import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const root = path.resolve(args.root || '.');
const player = args.player || 'shaka';
const timeout = Number(args.timeout || 240) * 1000;

const libs = {
  shaka: process.env.RUNGS_SHAKA_DEBUG ? 'node_modules/shaka-player/dist/shaka-player.compiled.debug.js' : 'node_modules/shaka-player/dist/shaka-player.compiled.js',
  hlsjs: 'node_modules/hls.js/dist/hls.min.js',
  dashjs: 'node_modules/dashjs/dist/modern/umd/dash.all.min.js',
};
const types = {
  '.m3u8': 'application/vnd.apple.mpegurl', '.mpd': 'application/dash+xml', '.mp4': 'video/mp4',
  '.m4s': 'video/iso.segment', '.vtt': 'text/vtt', '.jpg': 'image/jpeg', '.js': 'text/javascript',
  '.html': 'text/html',
};
const lib = libs[player.startsWith('shaka') ? 'shaka' : player];
if (!lib) {
  console.error(`unknown player ${player}`);
  process.exit(2);
}

// ClearKey: key IDs and keys in hex, answered as base64url JSON Web Keys.
const hexToB64url = (h) => Buffer.from(h, 'hex').toString('base64url');
const keys = new Map((args.keys || '').split(',').filter(Boolean).map((pair) => {
  const [kid, key] = pair.split(':');
  return [hexToB64url(kid.replace(/-/g, '')), hexToB64url(key)];
}));
const licenses = [];

// Answers a ClearKey licence request ({"kids": [...]}) with the keys held for those IDs.
function license(req, res) {
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', () => {
    let kids = [];
    try { kids = JSON.parse(body).kids || []; } catch (e) { kids = []; }
    const found = kids.filter((k) => keys.has(k.replace(/=+$/, '')));
    licenses.push({ kids, found: found.length });
    res.writeHead(200, { 'content-type': 'application/json', 'access-control-allow-origin': '*' });
    res.end(JSON.stringify({
      keys: found.map((k) => ({ kty: 'oct', kid: k.replace(/=+$/, ''), k: keys.get(k.replace(/=+$/, '')) })),
      type: 'temporary',
    }));
  });
}

const requests = [];
const server = http.createServer((req, res) => {
  const u = new URL(req.url, 'http://x');
  let file;
  if (u.pathname === '/favicon.ico') {
    res.writeHead(404).end();
    return;
  }
  if (u.pathname === '/__license' && req.method === 'POST') {
    license(req, res);
    return;
  }
  if (u.pathname === '/') {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<!doctype html><meta charset="utf-8"><video width="640" height="360"></video>
<script src="/__lib.js"></script><script src="/__page.js"></script>`);
    return;
  } else if (u.pathname === '/__lib.js') {
    file = path.join(here, lib);
  } else if (u.pathname === '/__page.js') {
    file = path.join(here, 'page.js');
  } else {
    const rel = decodeURIComponent(u.pathname).replace(/^\/title\//, '');
    file = path.resolve(root, rel);
    if (!file.startsWith(root + path.sep)) {
      res.writeHead(403).end();
      return;
    }
    requests.push(rel);
  }
  fs.readFile(file, (err, data) => {
    if (err) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, {
      'content-type': types[path.extname(file)] || 'application/octet-stream',
      'access-control-allow-origin': '*',
    });
    res.end(data);
  });
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const port = server.address().port;

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'rungs-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.RUNGS_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--autoplay-policy=no-user-gesture-required',
    // Extra switches for diagnosis, such as Chromium's logging of its media parsers.
    ...(process.env.RUNGS_CHROMIUM_ARGS || '').split(' ').filter(Boolean)],
});
let out;
try {
  const page = context.pages()[0] || (await context.newPage());
  const console_ = [];
  page.on('console', (m) => { if (m.type() === 'error' || process.env.RUNGS_PLAYER_LOG) console_.push(m.text()); });
  page.on('pageerror', (e) => console_.push(`page error: ${e.message}`));
  // Chromium's own media log (why a segment was refused), for diagnosis.
  if (process.env.RUNGS_MEDIA_LOG) {
    const cdp = await context.newCDPSession(page);
    cdp.on('Media.playerMessagesLogged', (e) => e.messages.forEach((m) => console_.push(`media ${m.level}: ${m.message}`)));
    cdp.on('Media.playerErrorsRaised', (e) => e.errors.forEach((m) => console_.push(`media error: ${JSON.stringify(m).slice(0, 400)}`)));
    await cdp.send('Media.enable');
  }
  const q = new URLSearchParams({
    player,
    manifest: args.url ? new URL(args.manifest, args.url).href : `/title/${args.manifest}`,
    boundaries: JSON.stringify((args.boundaries || '').split(',').filter(Boolean).map(Number)),
    cueTime: args['cue-time'] || '',
    textLang: args['text-lang'] || '',
    license: keys.size ? '/__license' : '',
    shakaConfig: args['shaka-config'] || '',
  });
  await page.goto(`http://127.0.0.1:${port}/?${q}`);
  const end = Date.now() + timeout;
  let r = null;
  while (Date.now() < end) {
    r = await page.evaluate(() => window.rungsResult);
    if (r && r.done) break;
    await new Promise((res) => setTimeout(res, 250));
  }
  if (!r || !r.done) {
    r = { ...(r || {}), errors: [...((r && r.errors) || []), `the harness timed out after ${timeout / 1000} s`] };
  }
  out = { ...r, requests, licenses, console: console_ };
} finally {
  await context.close();
  server.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
process.stdout.write(`${JSON.stringify(out)}\n`);
