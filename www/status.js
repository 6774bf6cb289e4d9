// status.js — tmqtt's status page: connects back to the broker that served it over
// MQTT over WebSockets (same host and port, ws:// or wss:// as the page was loaded),
// subscribes to $SYS/broker/# and shows the figures live. No libraries: a minimal
// MQTT 3.1.1 client (CONNECT, SUBSCRIBE, PUBLISH in, PINGREQ) is all it needs.
//
// Query parameters: username, password (when the broker refuses anonymous clients),
// path (WebSocket path, default /mqtt).
'use strict';

const enc = new TextEncoder();
const dec = new TextDecoder();

function str(s) {
  const b = enc.encode(s);
  return [b.length >> 8, b.length & 255, ...b];
}

function packet(type, flags, body) {
  const len = [];
  let n = body.length;
  do {
    let d = n % 128;
    n = Math.floor(n / 128);
    if (n) d |= 128;
    len.push(d);
  } while (n);
  return new Uint8Array([(type << 4) | flags, ...len, ...body]);
}

function connectPacket(id, user, pass, keepalive) {
  let flags = 0x02;   // clean session
  const payload = [...str(id)];
  if (user) { flags |= 0x80; payload.push(...str(user)); }
  if (user && pass) { flags |= 0x40; payload.push(...str(pass)); }
  return packet(1, 0, [...str('MQTT'), 4, flags, keepalive >> 8, keepalive & 255, ...payload]);
}

// Splits a byte stream into MQTT packets (several per frame, or one over several).
class Reader {
  constructor() { this.buf = new Uint8Array(0); }
  push(chunk) {
    const b = new Uint8Array(this.buf.length + chunk.length);
    b.set(this.buf);
    b.set(chunk, this.buf.length);
    this.buf = b;
    const out = [];
    for (;;) {
      let len = 0, mult = 1, i = 1;
      for (;; i++) {
        if (i >= this.buf.length) return out;
        len += (this.buf[i] & 127) * mult;
        mult *= 128;
        if (!(this.buf[i] & 128)) break;
      }
      const end = i + 1 + len;
      if (this.buf.length < end) return out;
      out.push({ type: this.buf[0] >> 4, flags: this.buf[0] & 15, body: this.buf.subarray(i + 1, end) });
      this.buf = this.buf.slice(end);
    }
  }
}

const $ = (id) => document.getElementById(id);
const figures = {};   // $SYS topic -> value
let lastRate = null;  // {t, received, sent} of the previous messages sample

function set(id, text) { const e = $(id); if (e) e.textContent = text; }

function uptime(v) {
  const s = parseInt(v, 10);
  if (Number.isNaN(s)) return v;
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
  return (d ? d + 'd ' : '') + (d || h ? h + 'h ' : '') + m + 'm ' + (s % 60) + 's';
}

function show(topic, value) {
  figures[topic] = value;
  const t = topic.replace('$SYS/broker/', '');
  if (t === 'clients/connected') set('clients', value);
  else if (t === 'uptime') set('uptime', uptime(value));
  else if (t === 'version') set('version', value);
  else if (t === 'subscriptions/count') set('subscriptions', value);
  else if (t === 'retained messages/count') set('retained', value);
  else if (t === 'bytes/received') set('bytes-in', value);
  else if (t === 'bytes/sent') set('bytes-out', value);
  else if (t === 'messages/sent') rate();
  const row = $('sys-' + t);
  if (row) row.textContent = value;
  else {
    const tr = document.createElement('tr');
    tr.innerHTML = '<td></td><td></td>';
    tr.children[0].textContent = topic;
    tr.children[1].textContent = value;
    tr.children[1].id = 'sys-' + t;
    $('all').appendChild(tr);
  }
  set('updated', new Date().toLocaleTimeString());
}

// Messages per second from the counters' growth between two $SYS rounds (the
// round's messages/sent follows its messages/received).
function rate() {
  const r = parseInt(figures['$SYS/broker/messages/received'], 10);
  const s = parseInt(figures['$SYS/broker/messages/sent'], 10);
  if (Number.isNaN(r) || Number.isNaN(s)) return;
  const now = performance.now();
  if (lastRate && now > lastRate.t) {
    const dt = (now - lastRate.t) / 1000;
    set('rate-in', ((r - lastRate.r) / dt).toFixed(1));
    set('rate-out', ((s - lastRate.s) / dt).toFixed(1));
  }
  lastRate = { t: now, r, s };
}

function start() {
  const q = new URLSearchParams(location.search);
  const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + (q.get('path') || '/mqtt');
  const keepalive = 30;
  const ws = new WebSocket(url, ['mqtt']);
  ws.binaryType = 'arraybuffer';
  const reader = new Reader();
  let ping = null;
  set('state', 'connecting');
  ws.onopen = () => {
    ws.send(connectPacket('status-' + Math.random().toString(16).slice(2, 10),
      q.get('username'), q.get('password'), keepalive));
  };
  ws.onmessage = (ev) => {
    for (const p of reader.push(new Uint8Array(ev.data))) {
      if (p.type === 2) {            // CONNACK
        if (p.body[1] !== 0) {
          set('state', 'refused (CONNACK ' + p.body[1] + '): add ?username=&password=');
          ws.close();
          return;
        }
        set('state', 'connected');
        ws.send(packet(8, 2, [0, 1, ...str('$SYS/broker/#'), 0]));
        ping = setInterval(() => ws.send(packet(12, 0, [])), keepalive * 500);
      } else if (p.type === 3) {     // PUBLISH (QoS 0)
        const tl = (p.body[0] << 8) | p.body[1];
        const off = 2 + tl + (((p.flags >> 1) & 3) ? 2 : 0);
        show(dec.decode(p.body.subarray(2, 2 + tl)), dec.decode(p.body.subarray(off)));
      }
    }
  };
  ws.onclose = () => {
    clearInterval(ping);
    if (!$('state').textContent.startsWith('refused')) {
      set('state', 'disconnected, retrying');
      setTimeout(start, 3000);
    }
  };
}

start();
