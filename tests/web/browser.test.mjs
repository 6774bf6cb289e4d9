// browser.test.mjs — a real browser: Debian's chromium, headless, driven by
// playwright-core (pinned in package.json; it downloads no browser of its own). The
// broker serves the pages itself (http_dir on its WebSocket listener):
//   - a test page running MQTT.js (the package's browser bundle, copied into http_dir)
//     that subscribes and publishes; the test checks the outcome in the page's DOM;
//   - the status page shipped in www/, which must show live $SYS figures.
// Screenshots go to $TMQTT_WEB_ARTIFACTS (default: the test's temporary directory).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { HERE, ROOT, freePort, need, startBroker, tmpdir, waitFor } from './lib.mjs';

const mqtt = await import('mqtt');
const { chromium } = await import('playwright-core');

const CHROMIUM = process.env.TMQTT_CHROMIUM || '/usr/bin/chromium';
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let dir, browser, artifacts;

before(async () => {
  need(CHROMIUM, 'apt-get install chromium (scripts/setup)');
  dir = tmpdir('tmqtt-browser-');
  artifacts = process.env.TMQTT_WEB_ARTIFACTS || dir;
  fs.mkdirSync(artifacts, { recursive: true });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
});

after(async () => {
  if (browser) await browser.close();
  if (dir && artifacts !== dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function page() {
  const ctx = await browser.newContext();
  const p = await ctx.newPage();
  const errors = [];
  p.on('pageerror', (e) => errors.push(e.message));
  return { p, ctx, errors };
}

test('MQTT.js in Chromium subscribes and publishes through the page the broker served', async () => {
  const www = path.join(dir, 'www');
  fs.mkdirSync(www);
  fs.copyFileSync(path.join(HERE, 'page', 'test.html'), path.join(www, 'test.html'));
  fs.copyFileSync(need(path.join(HERE, 'node_modules', 'mqtt', 'dist', 'mqtt.min.js'),
    'run npm ci in tests/web (scripts/setup)'), path.join(www, 'mqtt.min.js'));
  const port = await freePort();
  const broker = await startBroker(dir, [`listener ${port} 127.0.0.1`, 'protocol websockets',
    `http_dir ${www}`], 1);
  const node = await mqtt.connectAsync(`ws://127.0.0.1:${port}/mqtt`, { reconnectPeriod: 0 });
  const fromBrowser = new Promise((resolve) => node.on('message', (t, m) => resolve([t, m.toString()])));
  await node.subscribeAsync('web/out/t1', { qos: 1 });

  const { p, ctx, errors } = await page();
  await p.goto(`http://127.0.0.1:${port}/test.html?id=t1&v=5`);
  assert.deepEqual(await fromBrowser, ['web/out/t1', 'hello from the browser']);
  await node.publishAsync('web/in/t1', 'hello from node', { qos: 1 });
  await p.waitForFunction(() => document.getElementById('result').textContent !== 'none',
    null, { timeout: 10000 });
  assert.equal(await p.textContent('#result'), 'got qos 1: hello from node');
  assert.equal(await p.textContent('#state'), 'subscribed');
  await p.screenshot({ path: path.join(artifacts, 'browser-test-page.png') });
  assert.deepEqual(errors, []);
  await ctx.close();
  await node.endAsync();
  assert.match(broker.log(), /HTTP GET \/mqtt\.min\.js: 200/);
  await broker.stop();
});

test('the status page in www/ shows live $SYS figures', async () => {
  const port = await freePort();
  const broker = await startBroker(dir, [`listener ${port} 127.0.0.1`, 'protocol websockets',
    `http_dir ${path.join(ROOT, 'www')}`, 'sys_interval 1'], 1);
  const other = await mqtt.connectAsync(`ws://127.0.0.1:${port}/mqtt`, { reconnectPeriod: 0 });
  const { p, ctx, errors } = await page();
  await p.goto(`http://127.0.0.1:${port}/`);
  const text = (id) => p.textContent('#' + id);
  await p.waitForFunction(() => document.getElementById('state').textContent === 'connected',
    null, { timeout: 10000 });
  // the page's own connection and `other`
  await p.waitForFunction(() => Number(document.getElementById('clients').textContent) >= 2,
    null, { timeout: 10000 });
  assert.match(await text('version'), /^tmqtt version /);
  // live: uptime moves on, and messages published now show up as a rate
  const up1 = await text('uptime');
  await p.waitForFunction((u) => document.getElementById('uptime').textContent !== u, up1,
    { timeout: 10000 });
  const burst = setInterval(() => other.publish('load/x', 'x', { qos: 0 }), 5);
  try {
    await p.waitForFunction(() => Number(document.getElementById('rate-in').textContent) > 0,
      null, { timeout: 10000 });
  } finally {
    clearInterval(burst);
  }
  assert.match(await text('uptime'), /\d+m \d+s$/);
  await p.screenshot({ path: path.join(artifacts, 'status-page.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await ctx.close();
  await other.endAsync();
  await broker.stop();
});
