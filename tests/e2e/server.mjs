// Starts the built fathom binary on a free loopback port and stops it again.
//
// FATHOM_BIN (set by CMake) names the binary; FATHOM_SOURCE_DIR the checkout (for fixtures). The server is
// started with --port 0 and the port is read from its "listening on http://HOST:PORT" line.
import { spawn } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const sourceDir = process.env.FATHOM_SOURCE_DIR ?? path.resolve(here, '..', '..');
export const binary = process.env.FATHOM_BIN ?? path.join(sourceDir, 'build', 'fathom');
export const fixtureModels = ['bert-mean-norm', 'roberta-cls', 'xlmr-bf16-max', 'bert-mlm-sharded-lasttoken', 'xlmr-unigram-mean'];

export function modelDir(name) {
  return path.join(sourceDir, 'tests', 'fixtures', 'models', name);
}

export function reference(name) {
  return JSON.parse(readFileSync(path.join(sourceDir, 'tests', 'fixtures', 'models', `${name}.reference.json`), 'utf8'));
}

// Starts `fathom serve` with the fixture models (or `models`) and extra arguments; resolves once /health is 200.
export async function startServer({ models = fixtureModels, args = [] } = {}) {
  if (!existsSync(binary)) throw new Error(`fathom binary not found at ${binary} (build it first, or set FATHOM_BIN)`);
  const argv = ['serve', '--host', '127.0.0.1', '--port', '0', ...args];
  for (const m of models) argv.push('--model', `${m}=${modelDir(m)}`);
  const child = spawn(binary, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  const server = { child, output: '', baseURL: null, exit: null };
  // Drain both pipes so the server never blocks on a full pipe; keep the text for diagnostics.
  child.stdout.on('data', (d) => { server.output += d; });
  child.stderr.on('data', (d) => { server.output += d; });
  server.exited = new Promise((resolve) => child.on('exit', (code, signal) => { server.exit = { code, signal }; resolve(server.exit); }));

  const deadline = Date.now() + 60_000;
  while (!server.baseURL) {
    if (server.exit) throw new Error(`fathom exited early (${JSON.stringify(server.exit)}):\n${server.output}`);
    if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error(`fathom did not start:\n${server.output}`); }
    const m = server.output.match(/listening on (http:\/\/[0-9.]+:\d+)/);
    if (m) server.baseURL = m[1];
    else await new Promise((r) => setTimeout(r, 50));
  }
  for (;;) {
    try {
      const r = await fetch(`${server.baseURL}/health`);
      if (r.status === 200) break;
    } catch {
      // not accepting yet
    }
    if (Date.now() > deadline) throw new Error(`/health never became ready:\n${server.output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return server;
}

// Sends SIGTERM and resolves with the exit status.
export async function stopServer(server) {
  if (!server || server.exit) return server?.exit;
  server.child.kill('SIGTERM');
  let timer;
  const timeout = new Promise((resolve) => { timer = setTimeout(() => resolve('timeout'), 30_000); });
  const result = await Promise.race([server.exited, timeout]);
  clearTimeout(timer);
  if (result === 'timeout') {
    server.child.kill('SIGKILL');
    throw new Error(`fathom did not exit within 30 s of SIGTERM:\n${server.output.slice(-2000)}`);
  }
  return result;
}

export function cosine(a, b) {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
  return dot / Math.sqrt(na * nb);
}

// The largest |a[i] - b[i]| of two vectors of the same length (asserted).
export function maxAbsDiff(a, b) {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

export function normalize(v) {
  const n = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  return n > 0 ? v.map((x) => x / n) : v;
}

export function decodeBase64Floats(text) {
  const bytes = Buffer.from(text, 'base64');
  const out = [];
  for (let i = 0; i < bytes.length; i += 4) out.push(bytes.readFloatLE(i));
  return out;
}
