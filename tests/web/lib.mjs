// lib.mjs — what the web tests share: a tmqtt broker per test (its own temporary
// directory, configuration and log), a throw-away PKI for wss, and waiting for a
// condition under a deadline (never a fixed sleep).
//
// The broker is BUILD/bin/tmqtt-broker where BUILD is $TMQTT_BUILD_DIR (default: the
// build directory next to the sources). A missing broker, npm package or browser is a
// failure with a clear message, never a skip: scripts/setup installs them all.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, '..', '..');
export const BUILD = path.resolve(process.env.TMQTT_BUILD_DIR || path.join(ROOT, 'build'));

export function need(file, hint) {
  if (!fs.existsSync(file)) throw new Error(`missing ${file}: ${hint}`);
  return file;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export async function waitFor(pred, what, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export function tmpdir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

// A CA and a server certificate for 127.0.0.1 / localhost (openssl CLI).
export function makePki(dir) {
  const j = (n) => path.join(dir, n);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  const run = (args) => execFileSync('openssl', args, { stdio: 'pipe' });
  run(['req', '-x509', ...ec, '-keyout', j('ca.key'), '-out', j('ca.pem'), '-days', '2',
    '-subj', '/CN=tmqtt web test CA']);
  fs.writeFileSync(j('server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  run(['req', ...ec, '-keyout', j('server.key'), '-out', j('server.csr'), '-subj', '/CN=localhost']);
  run(['x509', '-req', '-in', j('server.csr'), '-CA', j('ca.pem'), '-CAkey', j('ca.key'),
    '-CAcreateserial', '-out', j('server.pem'), '-days', '2', '-extfile', j('server.ext')]);
  return { ca: j('ca.pem'), cert: j('server.pem'), key: j('server.key') };
}

// Starts tmqtt-broker with `lines` (listener lines included) and waits until every
// listener is up. Returns { log(), stop() }; stop() fails if the broker died or
// printed a sanitizer report.
export async function startBroker(dir, lines, nListeners) {
  const exe = need(path.join(BUILD, 'bin', 'tmqtt-broker'),
    'build tmqtt first (cmake --build build), or set TMQTT_BUILD_DIR');
  const conf = path.join(dir, 'broker.conf');
  const logPath = path.join(dir, 'broker.log');
  // as root, tmqtt switches to user "tmqtt" unless told otherwise (the test machine
  // need not have that user; test_service.py tests the switch itself)
  const asRoot = process.getuid && process.getuid() === 0 ? ['user root'] : [];
  fs.writeFileSync(conf, ['allow_anonymous true', 'persistence false', ...asRoot, ...lines]
    .join('\n') + '\n');
  const out = fs.openSync(logPath, 'w');
  const proc = spawn(exe, ['-c', conf], { stdio: ['ignore', out, out] });
  let exited = null;
  proc.on('exit', (code, sig) => { exited = sig || code; });
  const log = () => fs.readFileSync(logPath, 'utf8');
  await waitFor(() => {
    if (exited !== null) throw new Error(`broker exited (${exited}):\n${log()}`);
    return (log().match(/listening on/g) || []).length >= nListeners;
  }, 'the broker to listen');
  return {
    log,
    async stop() {
      if (exited !== null) throw new Error(`broker died during the test (${exited}):\n${log()}`);
      proc.kill('SIGTERM');
      await waitFor(() => exited !== null, 'the broker to stop', 5000);
      fs.closeSync(out);
      for (const m of ['AddressSanitizer', 'runtime error:', 'LeakSanitizer']) {
        if (log().includes(m)) throw new Error(`broker log contains ${m}:\n${log()}`);
      }
    },
  };
}
