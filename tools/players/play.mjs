// rungs' playback harness: serves a packaged title over HTTP on loopback, opens it in one real
// player (Shaka Player, hls.js or dash.js) in Debian's headless Chromium through
// playwright-core, runs page.js's checks and prints what it saw as one JSON object.
//
//   node play.mjs --root DIR --manifest master.m3u8 --player shaka|hlsjs|dashjs
//                 [--url http://host/title/]   (play from that server instead of DIR)
//                 [--boundaries 4,8,12] [--cue-time 6.5 --text-lang en] [--timeout 240]
//
// It also records every media request, so the test can tell which rungs were fetched.

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

const requests = [];
const server = http.createServer((req, res) => {
  const u = new URL(req.url, 'http://x');
  let file;
  if (u.pathname === '/favicon.ico') {
    res.writeHead(404).end();
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
    '--autoplay-policy=no-user-gesture-required'],
});
let out;
try {
  const page = context.pages()[0] || (await context.newPage());
  const console_ = [];
  page.on('console', (m) => { if (m.type() === 'error' || process.env.RUNGS_PLAYER_LOG) console_.push(m.text()); });
  page.on('pageerror', (e) => console_.push(`page error: ${e.message}`));
  const q = new URLSearchParams({
    player,
    manifest: args.url ? new URL(args.manifest, args.url).href : `/title/${args.manifest}`,
    boundaries: JSON.stringify((args.boundaries || '').split(',').filter(Boolean).map(Number)),
    cueTime: args['cue-time'] || '',
    textLang: args['text-lang'] || '',
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
  out = { ...r, requests, console: console_ };
} finally {
  await context.close();
  server.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
process.stdout.write(`${JSON.stringify(out)}\n`);
