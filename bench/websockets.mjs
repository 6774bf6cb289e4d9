#!/usr/bin/env node
// bench/websockets.mjs — MQTT over WebSockets against MQTT over TCP, tmqtt against
// Mosquitto's websockets listener, in one run, with the same client for every case:
//
//   throughput  QoS 0 and QoS 1, 64-byte payloads, 4 publishers -> 1 subscriber
//               (MQTT.js, the subscriber in a worker thread), messages delivered per
//               second over --duration seconds after a 1 s warm-up; publishers keep at
//               most WINDOW messages outstanding end to end, so nothing is dropped
//   memory      N idle connections (raw sockets: the upgrade and CONNECT by hand),
//               broker VmRSS growth per connection, read from /proc
//
//   node bench/websockets.mjs [BUILD_DIR] [--duration S] [--conns N] [--md]
//
// Uses MQTT.js from tests/web/node_modules (scripts/setup runs npm ci there). Loopback
// only; every process started here is stopped by its pid. Numbers, no pass/fail on
// timings; a lost QoS 1 message fails the run.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { default: mqtt } = await import(path.join(ROOT, 'tests/web/node_modules/mqtt/build/index.js'))
  .catch(() => import(path.join(ROOT, 'tests/web/node_modules/mqtt/dist/mqtt.esm.js')));

const WINDOW = 2000;
const RAW_WINDOW = 50000;   // raw clients: the subscriber reports every 20 ms, so at most 2.5 M msg/s
const TOPIC = 'bench/ws';

// ---- raw clients: the upgrade, CONNECT and frames by hand (no library per message)
const CONNECT = Buffer.from([0x10, 12, 0, 4, 77, 81, 84, 84, 4, 2, 0, 60, 0, 0]);

function frameIf(ws, p) {
  if (!ws) return p;
  const mask = crypto.randomBytes(4);
  const len = p.length;
  const head = len < 126 ? Buffer.from([0x82, 0x80 | len])
    : Buffer.from([0x82, 0x80 | 126, len >> 8, len & 255]);
  const body = Buffer.from(p);
  for (let i = 0; i < body.length; i++) body[i] ^= mask[i & 3];
  return Buffer.concat([head, mask, body]);
}

// A function taking wire bytes from a server and returning how many payload bytes
// they carried (frame headers removed, split anywhere).
function serverFrames() {
  let need = 0, hdr = Buffer.alloc(0);
  return (d) => {
    let n = 0, i = 0;
    while (i < d.length) {
      if (need) {
        const k = Math.min(need, d.length - i);
        n += k; need -= k; i += k;
        continue;
      }
      hdr = Buffer.concat([hdr, d.subarray(i, i + 1)]);
      i++;
      const l7 = hdr[1] & 127;
      const hl = hdr.length < 2 ? 2 : l7 === 126 ? 4 : l7 === 127 ? 10 : 2;
      if (hdr.length < hl) continue;
      need = l7 === 126 ? hdr.readUInt16BE(2) : l7 === 127 ? Number(hdr.readBigUInt64BE(2)) : l7;
      hdr = Buffer.alloc(0);
    }
    return n;
  };
}

// A connected MQTT client socket (CONNACK seen), over ws when asked.
function rawConnect(port, ws) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let got = Buffer.alloc(0);
    s.setNoDelay(true);
    s.on('error', reject);
    s.on('connect', () => {
      if (ws) {
        s.write('GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\n` +
          'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n');
      }
      if (!ws) s.write(CONNECT);
    });
    let upgraded = !ws;
    s.on('data', (d) => {
      got = Buffer.concat([got, d]);
      if (!upgraded && got.includes('\r\n\r\n')) {   // as browsers do: CONNECT after the 101
        upgraded = true;
        got = got.subarray(got.indexOf('\r\n\r\n') + 4);
        s.write(frameIf(ws, CONNECT));
      }
      if (got.length >= 4 && got.subarray(-4).equals(Buffer.from([0x20, 2, 0, 0]))) {
        s.removeAllListeners('data');
        resolve(s);
      }
    });
  });
}

// ---- the subscriber, in a worker so that counting does not compete with publishing
if (!isMainThread && workerData.raw) {
  // raw subscriber: counts PUBLISH bytes (all the same size) after removing frames
  const s = await rawConnect(workerData.port, workerData.ws);
  let bytes = 0;
  const unframe = workerData.ws ? serverFrames() : (d) => d.length;
  s.on('data', (d) => { bytes += unframe(d); });
  s.write(frameIf(workerData.ws, Buffer.from([0x82, 6, 0, 1, 0, 1, 0x62, 0])));   // SUBSCRIBE b
  setTimeout(() => parentPort.postMessage({ ready: true }), 200);
  setInterval(() => parentPort.postMessage({ n: Math.floor(Math.max(0, bytes - 5) / workerData.size) }), 20);
  parentPort.on('message', (m) => { if (m === 'stop') { s.destroy(); process.exit(0); } });
} else if (!isMainThread) {
  const c = await mqtt.connectAsync(workerData.url, { reconnectPeriod: 0, protocolVersion: 4 });
  let n = 0;
  c.on('message', () => { n++; });
  await c.subscribeAsync(TOPIC, { qos: workerData.qos });
  parentPort.postMessage({ ready: true });
  setInterval(() => parentPort.postMessage({ n }), 20);
  parentPort.on('message', async (m) => { if (m === 'stop') { await c.endAsync(true); process.exit(0); } });
}

function args() {
  const a = process.argv.slice(2);
  const o = { build: 'build', duration: 4, conns: 2000, md: false };
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '--duration') o.duration = Number(a[++i]);
    else if (a[i] === '--conns') o.conns = Number(a[++i]);
    else if (a[i] === '--md') o.md = true;
    else o.build = a[i];
  }
  return o;
}

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

const sleepUntil = (pred, ms, what) => new Promise((resolve, reject) => {
  const end = Date.now() + ms;
  const t = setInterval(() => {
    if (pred()) { clearInterval(t); resolve(); } else if (Date.now() > end) {
      clearInterval(t); reject(new Error('timed out: ' + what));
    }
  }, 10);
});

function rss(pid) {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
  return Number(m[1]) * 1024;
}

async function startBroker(kind, exe, dir, tcp, ws) {
  const conf = path.join(dir, kind + '.conf');
  const lines = [`listener ${tcp} 127.0.0.1`, 'allow_anonymous true', `listener ${ws} 127.0.0.1`,
    'protocol websockets', 'max_queued_messages 100000'];
  if (kind === 'mosquitto') lines.push('max_inflight_messages 100', 'user root');
  else lines.push('max_inflight_messages 100', 'connection_messages false', 'sys_interval 0');
  fs.writeFileSync(conf, lines.join('\n') + '\n');
  const log = fs.openSync(path.join(dir, kind + '.log'), 'w');
  const p = spawn(exe, ['-c', conf], { stdio: ['ignore', log, log] });
  const up = (port) => new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
  const end = Date.now() + 10000;
  while (!(await up(tcp)) || !(await up(ws))) {
    if (p.exitCode !== null || Date.now() > end) throw new Error(kind + ' did not start');
    await new Promise((r) => setTimeout(r, 20));
  }
  return p;
}

async function stopBroker(p) {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise((resolve) => p.once('exit', resolve));
  p.kill('SIGTERM');
  await gone;
}

async function throughput(url, qos, seconds) {
  const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { url, qos } });
  let received = 0;
  let ready = false;
  worker.on('message', (m) => { if (m.ready) ready = true; if (m.n !== undefined) received = m.n; });
  await sleepUntil(() => ready, 10000, 'subscriber');
  const pubs = await Promise.all([0, 1, 2, 3].map(() =>
    mqtt.connectAsync(url, { reconnectPeriod: 0, protocolVersion: 4 })));
  const payload = Buffer.alloc(64, 'x');
  let sent = 0, stop = false, acked = 0;
  const pump = () => {
    while (!stop && sent - received < WINDOW && sent - acked < WINDOW * (qos ? 1 : 1e9)) {
      const p = pubs[sent % pubs.length];
      sent++;
      if (qos) p.publish(TOPIC, payload, { qos }, () => { acked++; });
      else p.publish(TOPIC, payload, { qos });
    }
    if (!stop) setImmediate(pump);
  };
  pump();
  await new Promise((r) => setTimeout(r, 1000));
  const r0 = received, t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const rate = (received - r0) / ((performance.now() - t0) / 1000);
  stop = true;
  if (qos) await sleepUntil(() => received >= sent, 20000, `QoS ${qos}: all ${sent} messages delivered`);
  worker.postMessage('stop');
  await Promise.all(pubs.map((p) => p.endAsync(true)));
  return rate;
}

// QoS 0 with raw clients: 4 publishers write batches of 256 PUBLISH packets (each in
// its own masked frame over ws, as browsers send them) in one write.
async function rawThroughput(port, ws, seconds) {
  const pkt = Buffer.concat([Buffer.from([0x30, 3 + 64, 0, 1, 0x62]), Buffer.alloc(64, 'x')]);
  const worker = new Worker(fileURLToPath(import.meta.url),
    { workerData: { raw: true, port, ws, size: pkt.length } });
  let received = 0, ready = false;
  worker.on('message', (m) => { if (m.ready) ready = true; if (m.n !== undefined) received = m.n; });
  await sleepUntil(() => ready, 10000, 'raw subscriber');
  const pubs = await Promise.all([0, 1, 2, 3].map(() => rawConnect(port, ws)));
  const batch = Buffer.concat(Array.from({ length: 256 }, () => frameIf(ws, pkt)));
  let sent = 0, stop = false;
  const pump = () => {
    while (!stop && sent - received < RAW_WINDOW) {
      pubs[(sent / 256) % 4].write(batch);
      sent += 256;
    }
    if (!stop) setImmediate(pump);
  };
  pump();
  await new Promise((r) => setTimeout(r, 1000));
  const r0 = received, t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const rate = (received - r0) / ((performance.now() - t0) / 1000);
  stop = true;
  worker.postMessage('stop');
  for (const p of pubs) p.destroy();
  return rate;
}

// Opens n idle MQTT connections by hand (no client library per connection).
async function idle(port, ws, n) {
  const socks = [];
  for (let i = 0; i < n; i += 100) {
    const batch = [];
    for (let k = i; k < Math.min(n, i + 100); k++) batch.push(rawConnect(port, ws));
    socks.push(...await Promise.all(batch));
  }
  return socks;
}

async function memory(pid, port, ws, n) {
  const before = rss(pid);
  const socks = await idle(port, ws, n);
  await new Promise((r) => setTimeout(r, 1000));   // let the broker settle before reading
  const after = rss(pid);
  for (const s of socks) s.destroy();
  await new Promise((r) => setTimeout(r, 500));
  return (after - before) / n;
}

async function main() {
  const o = args();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tmqtt-ws-bench-'));
  const brokers = [
    ['tmqtt', path.resolve(o.build, 'bin/tmqtt-broker')],
    ['mosquitto', '/usr/sbin/mosquitto'],
  ];
  const rows = [];
  const procs = [];
  try {
    for (const [name, exe] of brokers) {
      if (!fs.existsSync(exe)) throw new Error('missing ' + exe);
      for (const [tname, isWs] of [['tcp', false], ['ws', true]]) {
        // memory on a fresh broker (nothing freed yet to reuse), then throughput
        const tcp = await freePort(), ws = await freePort();
        let p = await startBroker(name, exe, dir, tcp, ws);
        procs.push(p);
        const port = isWs ? ws : tcp;
        const mem = await memory(p.pid, port, isWs, o.conns);
        await stopBroker(p);
        p = await startBroker(name, exe, dir, tcp, ws);
        procs.push(p);
        const url = isWs ? `ws://127.0.0.1:${ws}/mqtt` : `mqtt://127.0.0.1:${tcp}`;
        const raw = await rawThroughput(port, isWs, o.duration);
        const q0 = await throughput(url, 0, o.duration);
        const q1 = await throughput(url, 1, o.duration);
        await stopBroker(p);
        rows.push({ broker: name, transport: tname, raw, q0, q1, mem });
        console.error(`${name} ${tname}: raw QoS0 ${raw.toFixed(0)} msg/s, MQTT.js QoS0 ` +
          `${q0.toFixed(0)} msg/s, QoS1 ${q1.toFixed(0)} msg/s, ${mem.toFixed(0)} B/connection`);
      }
    }
  } finally {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const f = (x) => Math.round(x).toLocaleString('en-US');
  if (o.md) {
    console.log('| broker | transport | QoS 0 msg/s, raw clients | QoS 0 msg/s, MQTT.js | QoS 1 msg/s, MQTT.js | broker RSS per idle connection |');
    console.log('|---|---|---:|---:|---:|---:|');
    for (const r of rows) {
      console.log(`| ${r.broker} | ${r.transport} | ${f(r.raw)} | ${f(r.q0)} | ${f(r.q1)} | ${f(r.mem)} B |`);
    }
  } else {
    for (const r of rows) console.log([r.broker, r.transport, f(r.raw), f(r.q0), f(r.q1), f(r.mem)].join('\t'));
  }
  process.exit(0);
}

if (isMainThread) await main();
