// mqttjs.test.mjs — MQTT.js (npm `mqtt`, pinned in package.json) in Node against
// tmqtt's WebSocket listeners, ws:// and wss://: QoS 0, 1 and 2 both ways, retained
// messages, a will published when its client vanishes, MQTT 3.1.1 and 5.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { freePort, makePki, startBroker, tmpdir, waitFor } from './lib.mjs';

const mqtt = await import('mqtt');

let dir, broker, pki, wsPort, wssPort;

before(async () => {
  dir = tmpdir('tmqtt-mqttjs-');
  pki = makePki(dir);
  wsPort = await freePort();
  wssPort = await freePort();
  broker = await startBroker(dir, [
    `listener ${wsPort} 127.0.0.1`, 'protocol websockets',
    `listener ${wssPort} 127.0.0.1`, 'protocol websockets',
    `certfile ${pki.cert}`, `keyfile ${pki.key}`,
  ], 2);
});

after(async () => {
  await broker.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

function url(kind) {
  return kind === 'ws' ? `ws://127.0.0.1:${wsPort}/mqtt` : `wss://localhost:${wssPort}/mqtt`;
}

async function connect(kind, opts = {}) {
  const c = await mqtt.connectAsync(url(kind), {
    reconnectPeriod: 0, connectTimeout: 5000, ca: fs.readFileSync(pki.ca), ...opts,
  });
  return c;
}

// Messages arriving on a client, awaited one by one.
function inbox(client) {
  const q = [];
  const waiters = [];
  client.on('message', (topic, payload, packet) => {
    const m = { topic, payload: payload.toString(), qos: packet.qos, retain: packet.retain };
    const w = waiters.shift();
    if (w) w(m); else q.push(m);
  });
  return (ms = 5000) => (q.length ? Promise.resolve(q.shift()) : new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no message within ' + ms + ' ms')), ms);
    waiters.push((m) => { clearTimeout(t); resolve(m); });
  }));
}

for (const kind of ['ws', 'wss']) {
  for (const protocolVersion of [4, 5]) {
    describe(`MQTT.js over ${kind}, MQTT ${protocolVersion === 4 ? '3.1.1' : '5'}`, () => {
      const id = `${kind}-v${protocolVersion}-${process.pid}`;

      test('QoS 0, 1 and 2 published and delivered', async () => {
        const sub = await connect(kind, { protocolVersion, clientId: `sub-${id}` });
        const pub = await connect(kind, { protocolVersion, clientId: `pub-${id}` });
        const next = inbox(sub);
        const granted = await sub.subscribeAsync(`t/${id}/#`, { qos: 2 });
        assert.equal(granted[0].qos, 2);
        for (const qos of [0, 1, 2]) {
          const payload = `hello qos ${qos} ` + 'x'.repeat(qos * 40000);
          await pub.publishAsync(`t/${id}/q${qos}`, payload, { qos });
          const m = await next();
          assert.equal(m.topic, `t/${id}/q${qos}`);
          assert.equal(m.qos, qos);
          assert.equal(m.payload, payload);
        }
        await sub.endAsync();
        await pub.endAsync();
      });

      test('retained message delivered to a later subscriber', async () => {
        const pub = await connect(kind, { protocolVersion });
        await pub.publishAsync(`r/${id}`, 'kept', { qos: 1, retain: true });
        await pub.endAsync();
        const sub = await connect(kind, { protocolVersion });
        const next = inbox(sub);
        await sub.subscribeAsync(`r/${id}`, { qos: 1 });
        const m = await next();
        assert.deepEqual([m.payload, m.retain], ['kept', true]);
        await sub.publishAsync(`r/${id}`, '', { qos: 1, retain: true });   // clean up
        await sub.endAsync();
      });

      test('will published when the client vanishes', async () => {
        const watcher = await connect(kind, { protocolVersion });
        const next = inbox(watcher);
        await watcher.subscribeAsync(`w/${id}`, { qos: 1 });
        const doomed = await connect(kind, {
          protocolVersion, keepalive: 60,
          will: { topic: `w/${id}`, payload: Buffer.from('gone'), qos: 1, retain: false },
        });
        doomed.stream.destroy();   // no DISCONNECT: the broker must publish the will
        const m = await next();
        assert.deepEqual([m.topic, m.payload, m.qos], [`w/${id}`, 'gone', 1]);
        doomed.end(true);
        await watcher.endAsync();
      });
    });
  }
}

test('old clients: MQTT 3.1 over the mqttv3.1 subprotocol', async () => {
  const c = await connect('ws', { protocolVersion: 3, protocolId: 'MQIsdp' });
  const next = inbox(c);
  await c.subscribeAsync('old/31', { qos: 1 });
  await c.publishAsync('old/31', 'from 3.1', { qos: 1 });
  assert.equal((await next()).payload, 'from 3.1');
  await c.endAsync();
  await waitFor(() => broker.log().includes('MQTT 3.1,') || broker.log().includes('MQTT 3.1 '),
    'the broker to log an MQTT 3.1 client');
});

test('the broker logged the wss listener', () => {
  assert.match(broker.log(), new RegExp(`port ${wssPort} \\(wss\\)`));
  assert.ok(fs.existsSync(path.join(dir, 'broker.log')));
});
