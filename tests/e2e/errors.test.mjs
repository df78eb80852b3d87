// Every error case returns the right status and the OpenAI error shape, and the server keeps serving.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';

import { startServer, stopServer, reference, fixtureModels } from './server.mjs';

const kMaxBody = 100_000;
let server;

before(async () => {
  server = await startServer({
    models: [...fixtureModels, 'whisper-tiny-random-f32'],
    args: ['--max-body-bytes', String(kMaxBody)],
  });
});

after(async () => {
  // The server survived everything below: it still answers, then shuts down cleanly.
  const health = await fetch(`${server.baseURL}/health`);
  assert.equal(health.status, 200);
  const exit = await stopServer(server);
  assert.deepEqual(exit, { code: 0, signal: null });
});

async function post(path, body, headers = { 'content-type': 'application/json' }) {
  return fetch(`${server.baseURL}${path}`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

// Checks status and the {"error":{"message","type","param","code"}} shape; returns the error object.
async function expectError(responsePromise, status, { param, code, message } = {}) {
  const res = await responsePromise;
  const text = await res.text();
  assert.equal(res.status, status, `status (body: ${text})`);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  const body = JSON.parse(text);
  assert.ok(body.error, `error object in ${text}`);
  const e = body.error;
  assert.equal(typeof e.message, 'string');
  assert.ok(e.message.length > 0);
  assert.equal(typeof e.type, 'string');
  assert.ok('param' in e && 'code' in e, `param and code present in ${text}`);
  if (param !== undefined) assert.equal(e.param, param, text);
  if (code !== undefined) assert.equal(e.code, code, text);
  if (message !== undefined) assert.match(e.message, message);
  return e;
}

async function stillServes() {
  const res = await post('/v1/embeddings', { model: 'bert-mean-norm', input: 'still serving' });
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.data[0].embedding.length, 32);
}

test('malformed JSON and non-object bodies are 400', async () => {
  await expectError(post('/v1/embeddings', '{"model": "bert-mean-norm", "input": '), 400, { code: 'invalid_json', message: /malformed JSON/ });
  await expectError(post('/v1/embeddings', '[1, 2, 3]'), 400, { message: /JSON object/ });
  await expectError(post('/v1/embeddings', '"just a string"'), 400);
  await expectError(post('/v1/embeddings', '{"input": "\udc00"}'), 400);
  await stillServes();
});

test('a wrong content type is 415', async () => {
  await expectError(post('/v1/embeddings', JSON.stringify({ model: 'bert-mean-norm', input: 'x' }), { 'content-type': 'text/plain' }), 415, {
    message: /application\/json/,
  });
  await expectError(post('/v1/embeddings', 'model=bert-mean-norm', { 'content-type': 'application/x-www-form-urlencoded' }), 415);
});

test('a body over --max-body-bytes is 413 and names the limit', async () => {
  const big = JSON.stringify({ model: 'bert-mean-norm', input: 'x'.repeat(kMaxBody + 10) });
  await expectError(post('/v1/embeddings', big), 413, { message: new RegExp(String(kMaxBody)) });
  await stillServes();
});

test('unknown routes are 404, wrong methods 405, unserved endpoints 404 naming the loaded models', async () => {
  await expectError(fetch(`${server.baseURL}/v1/nope`), 404, { message: /unknown route/ });
  await expectError(post('/v2/embeddings', {}), 404);
  const wrong = fetch(`${server.baseURL}/v1/embeddings`);
  await expectError(wrong, 405, { message: /POST/ });
  assert.equal((await fetch(`${server.baseURL}/v1/embeddings`)).headers.get('allow'), 'POST');
  await expectError(fetch(`${server.baseURL}/v1/models`, { method: 'DELETE' }), 405);
  await expectError(post('/health', {}), 405);
  const models = await (await fetch(`${server.baseURL}/v1/models`)).json();
  assert.ok(models.data.some((m) => m.id === 'whisper-tiny-random-f32' && m.tasks.includes('transcribe')));
  await expectError(post('/v1/classify', {}), 404, {
    code: 'endpoint_not_served',
    message: /no loaded model serves \/v1\/classify.*roberta-cls \(embed\).*whisper-tiny-random-f32 \(transcribe, translate\)/,
  });
});

test('a model without the capability is 400 model_capability_mismatch naming what it supports', async () => {
  await expectError(post('/v1/embeddings', { model: 'whisper-tiny-random-f32', input: 'x' }), 400, {
    param: 'model',
    code: 'model_capability_mismatch',
    message: /model 'whisper-tiny-random-f32' does not support \/v1\/embeddings \(embed\); it supports: transcribe \(\/v1\/audio\/transcriptions\), translate \(\/v1\/audio\/translations\)/,
  });
  await stillServes();
});

test('model errors: missing, unknown (404 model_not_found listing the loaded models)', async () => {
  await expectError(post('/v1/embeddings', { input: 'x' }), 400, { param: 'model' });
  await expectError(post('/v1/embeddings', { model: 42, input: 'x' }), 400, { param: 'model' });
  const e = await expectError(post('/v1/embeddings', { model: 'gpt-4', input: 'x' }), 404, { param: 'model', code: 'model_not_found' });
  assert.match(e.message, /gpt-4/);
  assert.match(e.message, /bert-mean-norm/);
  assert.match(e.message, /xlmr-bf16-max/);
});

test('input validation is 400 with param "input"', async () => {
  const m = 'bert-mean-norm';
  const bad = [
    [{ model: m, input: '' }, /empty string/],
    [{ model: m, input: [] }, /empty array/],
    [{ model: m, input: ['ok', ''] }, /input\[1\].*empty/],
    [{ model: m, input: 42 }, /input has type number/],
    [{ model: m, input: { text: 'x' } }, /input has type object/],
    [{ model: m, input: [null] }, /input\[0\]/],
    [{ model: m, input: ['a', 1] }, /input\[1\]/],
    [{ model: m, input: [1, 'a'] }, /input\[1\]/],
    [{ model: m, input: [1.5] }, /input/],
    [{ model: m, input: [[101, 102], []] }, /input\[1\].*empty/],
    [{ model: m, input: [[101, 102], 7] }, /input\[1\]/],
    [{ model: m, input: [101, 99999999] }, /99999999.*not a token id/],
    [{ model: m, input: [[101, -1]] }, /input\[0\]\[1\] = -1/],
    [{ model: m }, /input is required/],
    [{ model: m, input: Array(2049).fill('a') }, /2049 items; at most 2048/],
  ];
  for (const [body, message] of bad) {
    await expectError(post('/v1/embeddings', body), 400, { param: 'input', message });
  }
  const long = reference(m).cases.find((c) => c.truncated);
  await expectError(post('/v1/embeddings', { model: m, input: ['a', 'b', long.text] }), 400, {
    param: 'input',
    message: new RegExp(`input\\[2\\] has ${long.full_length} tokens.*64`),
  });
  await stillServes();
});

test('parameter validation is 400 naming the parameter', async () => {
  const m = 'bert-mean-norm';
  await expectError(post('/v1/embeddings', { model: m, input: 'x', encoding_format: 'hex' }), 400, { param: 'encoding_format' });
  await expectError(post('/v1/embeddings', { model: m, input: 'x', dimensions: '8' }), 400, { param: 'dimensions' });
  await expectError(post('/v1/embeddings', { model: m, input: 'x', dimensions: 0 }), 400, { param: 'dimensions' });
  await expectError(post('/v1/embeddings', { model: m, input: 'x', dimensions: 64 }), 400, { param: 'dimensions', message: /8, 16, 32/ });
  await expectError(post('/v1/embeddings', { model: 'roberta-cls', input: 'x', dimensions: 8 }), 400, {
    param: 'dimensions',
    message: /'roberta-cls' does not support dimensions/,
  });
  await expectError(post('/v1/embeddings', { model: m, input: 'x', truncate_prompt_tokens: 0 }), 400, { param: 'truncate_prompt_tokens' });
  await expectError(post('/v1/embeddings', { model: m, input: 'x', truncate_prompt_tokens: 65 }), 400, {
    param: 'truncate_prompt_tokens',
    message: /at most 64/,
  });
  await expectError(post('/v1/embeddings', { model: m, input: 'x', truncate_prompt_tokens: 'all' }), 400, { param: 'truncate_prompt_tokens' });
  await expectError(post('/v1/embeddings', { model: m, input: 'x', normalize: 'yes' }), 400, { param: 'normalize' });
  await expectError(post('/v1/embeddings', { model: m, input: 'x', user: 7 }), 400, { param: 'user' });
  await stillServes();
});

// Raw bytes the fetch API would refuse to send.
function rawRequest(bytes) {
  return new Promise((resolve) => {
    const url = new URL(server.baseURL);
    const socket = net.connect(Number(url.port), url.hostname, () => socket.end(bytes));
    let data = '';
    socket.on('data', (d) => { data += d; });
    socket.on('close', () => resolve(data));
    socket.on('error', () => resolve(data));
    socket.setTimeout(10_000, () => socket.destroy());
  });
}

test('garbage on the wire never crashes the server', async () => {
  const junk = [
    'GARBAGE\r\n\r\n',
    'POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n{}',
    'POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n',
    'POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n\x00\xff\xfe{',
    `GET /${'a'.repeat(20000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
    '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03',
  ];
  for (const bytes of junk) {
    const reply = await rawRequest(bytes);
    if (reply.startsWith('HTTP/1.1 ')) {
      const status = Number(reply.slice(9, 12));
      assert.ok(status >= 400 && status < 500, `junk ${JSON.stringify(bytes.slice(0, 40))} got ${status}`);
    }
  }
  const bin = await post('/v1/embeddings', Buffer.from([0x7b, 0xff, 0xfe, 0x00]));
  assert.equal(bin.status, 400);
  await stillServes();
});
