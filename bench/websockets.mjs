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
const TOPIC = 'bench/ws';

// ---- the subscriber, in a worker so that counting does not compete with publishing
if (!isMainThread) {
  const c = await mqtt.connectAsync(workerData.url, { reconnectPeriod: 0, protocolVersion: 4 });
  let n = 0;
  c.on('message', () => { n++; });
  await c.subscribeAsync(TOPIC, { qos: workerData.qos });
  parentPort.postMessage({ ready: true });
  setInterval(() => parentPort.postMessage({ n }), 20);
  parentPort.on('message', async (m) => { if (m === 'stop') { await c.endAsync(true); process.exit(0); } });
} else {
  await main();
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

// Opens n idle MQTT connections by hand (no client library per connection).
async function idle(port, ws, n) {
  const key = crypto.randomBytes(16).toString('base64');
  const connect = Buffer.from([0x10, 12, 0, 4, 77, 81, 84, 84, 4, 2, 0, 60, 0, 0]);
  const frame = (p) => {
    const mask = crypto.randomBytes(4);
    return Buffer.concat([Buffer.from([0x82, 0x80 | p.length]), mask,
      Buffer.from(p.map((b, i) => b ^ mask[i & 3]))]);
  };
  const socks = [];
  for (let i = 0; i < n; i += 100) {
    const batch = [];
    for (let k = i; k < Math.min(n, i + 100); k++) {
      batch.push(new Promise((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1');
        let got = Buffer.alloc(0);
        s.on('error', reject);
        s.on('connect', () => {
          if (ws) {
            s.write(`GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
              `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n`);
            s.write(frame(connect));
          } else {
            s.write(connect);
          }
        });
        s.on('data', (d) => {
          got = Buffer.concat([got, d]);
          // CONNACK (20 02 00 00) at the end of what arrived: connected
          if (got.length >= 4 && got.subarray(-4).equals(Buffer.from([0x20, 2, 0, 0]))) {
            s.removeAllListeners('data');
            resolve(s);
          }
        });
      }));
    }
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
      const tcp = await freePort(), ws = await freePort();
      const p = await startBroker(name, exe, dir, tcp, ws);
      procs.push(p);
      for (const [tname, url, port, isWs] of [['tcp', `mqtt://127.0.0.1:${tcp}`, tcp, false],
        ['ws', `ws://127.0.0.1:${ws}/mqtt`, ws, true]]) {
        const q0 = await throughput(url, 0, o.duration);
        const q1 = await throughput(url, 1, o.duration);
        const mem = await memory(p.pid, port, isWs, o.conns);
        rows.push({ broker: name, transport: tname, q0, q1, mem });
        console.error(`${name} ${tname}: QoS0 ${q0.toFixed(0)} msg/s, QoS1 ${q1.toFixed(0)} msg/s, ` +
          `${mem.toFixed(0)} B/connection`);
      }
      p.kill('SIGTERM');
    }
  } finally {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const f = (x) => Math.round(x).toLocaleString('en-US');
  if (o.md) {
    console.log('| broker | transport | QoS 0 msg/s | QoS 1 msg/s | broker RSS per idle connection |');
    console.log('|---|---|---:|---:|---:|');
    for (const r of rows) console.log(`| ${r.broker} | ${r.transport} | ${f(r.q0)} | ${f(r.q1)} | ${f(r.mem)} B |`);
  } else {
    for (const r of rows) console.log([r.broker, r.transport, f(r.q0), f(r.q1), f(r.mem)].join('\t'));
  }
  process.exit(0);
}
