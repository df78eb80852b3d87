// Operations end to end: the admin API loads and unloads a model while traffic runs on another, in-flight
// requests finish across an unload, /metrics moves, /ready answers, and admin calls without or with a wrong
// token are refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import OpenAI, { toFile } from 'openai';

import { startServer, stopServer, modelDir, reference, cosine, sourceDir } from './server.mjs';

const kToken = 'e2e-admin-token';
let server;
let client;

before(async () => {
  server = await startServer({
    models: ['bert-mean-norm'],
    args: ['--admin-token', kToken, '--max-batch-tokens', '64', '--max-queued-requests', '4096'],
  });
  client = new OpenAI({ baseURL: `${server.baseURL}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });
});

after(async () => {
  const exit = await stopServer(server);
  assert.deepEqual(exit, { code: 0, signal: null });
});

function admin(method, path, { body, token = kToken } = {}) {
  const headers = { 'content-type': 'application/json' };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  return fetch(`${server.baseURL}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}

async function metrics() {
  const res = await fetch(`${server.baseURL}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /text\/plain/);
  return res.text();
}

// The value of the first sample line starting with `prefix` (e.g. 'fathom_tokens_processed_total{model="x"}').
function sample(text, prefix) {
  const line = text.split('\n').find((l) => l.startsWith(prefix + ' '));
  return line === undefined ? 0 : Number(line.slice(prefix.length + 1));
}

async function modelStates() {
  const page = await client.models.list();
  return Object.fromEntries(page.data.map((m) => [m.id, m.state]));
}

test('admin calls without a token or with a wrong one are refused', async () => {
  const load = { name: 'roberta-cls', path: modelDir('roberta-cls') };
  for (const token of [null, 'wrong-token']) {
    const res = await admin('POST', '/v1/admin/models', { body: load, token });
    assert.equal(res.status, 401);
    const e = (await res.json()).error;
    assert.equal(e.code, 'unauthorized');
    const del = await admin('DELETE', '/v1/admin/models/bert-mean-norm', { token });
    assert.equal(del.status, 401);
  }
  assert.deepEqual(await modelStates(), { 'bert-mean-norm': 'ready' });
});

test('a model loads and unloads at run time while another serves traffic', async () => {
  const before = await metrics();
  // Steady traffic on bert-mean-norm for the whole test; every request must succeed.
  let stop = false;
  let served = 0;
  const traffic = (async () => {
    const failures = [];
    while (!stop) {
      try {
        const r = await client.embeddings.create({ model: 'bert-mean-norm', input: ['steady traffic', 'on the other model'] });
        assert.equal(r.data.length, 2);
        served++;
      } catch (e) {
        failures.push(String(e));
      }
    }
    return failures;
  })();

  // Load roberta-cls through the admin API.
  const loaded = await admin('POST', '/v1/admin/models', {
    body: { name: 'roberta-cls', path: modelDir('roberta-cls'), options: { budget: '64MiB', priority: 1, max_batch_tokens: 64 } },
  });
  const info = await loaded.json();
  assert.equal(loaded.status, 200, JSON.stringify(info));
  assert.equal(info.id, 'roberta-cls');
  assert.equal(info.state, 'ready');
  assert.equal(info.memory_budget, 64 * 1024 * 1024);
  assert.deepEqual(await modelStates(), { 'bert-mean-norm': 'ready', 'roberta-cls': 'ready' });
  assert.equal((await fetch(`${server.baseURL}/ready`)).status, 200);

  // It serves, with the fixture's reference output.
  const ref = reference('roberta-cls').cases[0];
  const r = await client.embeddings.create({ model: 'roberta-cls', input: ref.text, encoding_format: 'float' });
  assert.equal(r.data[0].embedding.length, ref.embedding.length);
  assert.ok(cosine(r.data[0].embedding, ref.embedding) > 0.9999);

  // A large request is in flight when the unload starts: it still finishes.
  const big = Array.from({ length: 2048 }, (_, i) => `request ${i} rides through the unload with several words of text`);
  const inflight = client.embeddings.create({ model: 'roberta-cls', input: big });
  for (let i = 0; i < 400; i++) {
    if (sample(await metrics(), 'fathom_queue_depth{model="roberta-cls"}') > 0) break;
    await new Promise((res) => setTimeout(res, 5));
  }
  const sawQueued = sample(await metrics(), 'fathom_queue_depth{model="roberta-cls"}') > 0;
  const unload = admin('DELETE', '/v1/admin/models/roberta-cls');
  const done = await inflight;
  assert.equal(done.data.length, 2048);
  const unloaded = await unload;
  assert.equal(unloaded.status, 200, await unloaded.clone().text());
  assert.deepEqual(await unloaded.json(), { id: 'roberta-cls', object: 'model', deleted: true });
  if (!sawQueued) console.log('note: the big request had left the queue before the unload began');

  // Later requests get 404 model_not_found, as for a model never loaded.
  const gone = await fetch(`${server.baseURL}/v1/embeddings`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'roberta-cls', input: 'hello' }),
  });
  assert.equal(gone.status, 404);
  assert.equal((await gone.json()).error.code, 'model_not_found');
  assert.deepEqual(await modelStates(), { 'bert-mean-norm': 'ready' });
  const again = await admin('DELETE', '/v1/admin/models/roberta-cls');
  assert.equal(again.status, 404);

  stop = true;
  const failures = await traffic;
  assert.deepEqual(failures, [], 'traffic on the other model never failed');
  assert.ok(served > 0);

  // The counters moved.
  const afterText = await metrics();
  const ok200 = 'fathom_requests_total{route="/v1/embeddings",model="bert-mean-norm",status="200"}';
  assert.ok(sample(afterText, ok200) >= sample(before, ok200) + served, `${ok200} moved by ${served}`);
  assert.ok(sample(afterText, 'fathom_tokens_processed_total{model="bert-mean-norm"}') >
            sample(before, 'fathom_tokens_processed_total{model="bert-mean-norm"}'));
  assert.ok(sample(afterText, 'fathom_tokens_processed_total{model="roberta-cls"}') > 2048);
  assert.ok(sample(afterText, 'fathom_batch_size_count{model="roberta-cls"}') > 1);
  assert.ok(sample(afterText, 'fathom_request_errors_total{status="404"}') >= 1);
  assert.match(afterText, /fathom_request_duration_seconds_bucket\{route="\/v1\/embeddings",model="bert-mean-norm",le="\+Inf"\} \d+/);
  assert.ok(sample(afterText, 'fathom_queue_wait_seconds_count{model="roberta-cls"}') > 2048);
  assert.ok(sample(afterText, 'fathom_step_duration_seconds_count{model="roberta-cls"}') > 1);
  assert.match(afterText, /fathom_requests_total\{route="\/v1\/admin\/models",model="",status="401"\} 2/);
});

test('a load over its memory budget is refused with the budget in the message and /ready reports it', async () => {
  const res = await admin('POST', '/v1/admin/models', {
    body: { name: 'squeezed', path: modelDir('roberta-cls'), options: { budget: 4096 } },
  });
  assert.equal(res.status, 400);
  const e = (await res.json()).error;
  assert.equal(e.code, 'memory_budget_exceeded');
  assert.match(e.message, /model 'squeezed' does not fit its memory budget of 0\.0 MiB \(4096 bytes\)/);
  assert.equal((await modelStates()).squeezed, 'failed');
  const ready = await fetch(`${server.baseURL}/ready`);
  assert.equal(ready.status, 503);
  assert.match((await ready.json()).error.message, /squeezed \(failed/);
  assert.equal((await admin('DELETE', '/v1/admin/models/squeezed')).status, 200);
  assert.equal((await fetch(`${server.baseURL}/ready`)).status, 200);
  assert.equal((await fetch(`${server.baseURL}/health`)).status, 200);
});

test('a speech model loaded at run time serves /v1/audio/transcriptions and counts audio seconds', async () => {
  // The server started with an embedding model only; with the admin API on, the audio routes exist anyway.
  const before = sample(await metrics(), 'fathom_audio_seconds_processed_total{model="whisper"}');
  const loaded = await admin('POST', '/v1/admin/models', { body: { name: 'whisper', path: modelDir('whisper-tiny-random-f32') } });
  assert.equal(loaded.status, 200, await loaded.clone().text());
  assert.deepEqual((await loaded.json()).tasks, ['transcribe', 'translate']);
  const audio = readFileSync(path.join(sourceDir, 'tests', 'fixtures', 'audio', 'jfk_2s5_16k.flac'));
  const r = await client.audio.transcriptions.create({
    file: await toFile(audio, 'jfk.flac', { type: 'audio/flac' }), model: 'whisper', language: 'en', max_completion_tokens: 8,
  });
  assert.equal(typeof r.text, 'string');
  const after = sample(await metrics(), 'fathom_audio_seconds_processed_total{model="whisper"}');
  assert.ok(after - before > 2.4 && after - before < 2.6, `audio seconds moved by ${after - before}`);
  assert.equal((await admin('DELETE', '/v1/admin/models/whisper')).status, 200);
  await assert.rejects(
    client.audio.transcriptions.create({ file: await toFile(audio, 'jfk.flac', { type: 'audio/flac' }), model: 'whisper' }),
    (e) => e.status === 404 && e.error?.code === 'model_not_found',
  );
});
