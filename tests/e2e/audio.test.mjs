// Speech-to-text through the official OpenAI client: transcriptions and translations with the tiny random
// Whisper fixture, every response format, streaming, and the text of the offline `fathom transcribe`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import OpenAI, { toFile } from 'openai';

import { startServer, stopServer, modelDir, binary, sourceDir } from './server.mjs';

const kModel = 'whisper-tiny-random-f32';
const jfkPath = path.resolve(sourceDir, '..', 'shared', 'assets', 'whisper', 'jfk.wav');
let server;
let client;
let jfk;

before(async () => {
  server = await startServer({ models: [kModel, 'bert-mean-norm'] });
  client = new OpenAI({ baseURL: `${server.baseURL}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 120_000 });
  jfk = readFileSync(process.env.FATHOM_JFK ?? jfkPath);
});

after(async () => {
  const exit = await stopServer(server);
  assert.deepEqual(exit, { code: 0, signal: null }, 'SIGTERM must end fathom cleanly with exit code 0');
});

const file = () => toFile(jfk, 'jfk.wav', { type: 'audio/wav' });

// The offline command's text for the same settings (the server and the CLI share the decoding path).
// Asynchronous: a synchronous child blocks the event loop, so the client would not see the server close an
// idle keep-alive connection (after 5 s, e.g. under a sanitizer build) and would write its next request
// into the closed socket (EPIPE).
async function offlineText(args) {
  const { stdout } = await promisify(execFile)(
    binary, ['transcribe', jfkPath, '--model', modelDir(kModel), '--format', 'text', ...args], { encoding: 'utf8' });
  return stdout.replace(/\n$/, '');
}

test('GET /v1/models lists the whisper model with its tasks and endpoints', async () => {
  const page = await client.models.list();
  const m = page.data.find((x) => x.id === kModel);
  assert.ok(m, 'whisper model listed');
  assert.deepEqual(m.tasks, ['transcribe', 'translate']);
  assert.deepEqual(m.endpoints, ['/v1/audio/transcriptions', '/v1/audio/translations']);
});

test('transcription json equals the offline transcribe command', async () => {
  const r = await client.audio.transcriptions.create({ file: await file(), model: kModel, language: 'en', max_completion_tokens: 24 });
  assert.equal(typeof r.text, 'string');
  assert.ok(r.text.length > 0);
  assert.equal(r.text, await offlineText(['--language', 'en', '--max-tokens', '24']));
});

test('translation (source language fr) equals the offline --translate command', async () => {
  const r = await client.audio.translations.create({ file: await file(), model: kModel, language: 'fr', max_completion_tokens: 24 });
  assert.equal(r.text, await offlineText(['--language', 'fr', '--translate', '--max-tokens', '24']));
});

test('verbose_json, srt, vtt and text formats', async () => {
  const v = await client.audio.transcriptions.create({
    file: await file(), model: kModel, language: 'en', response_format: 'verbose_json', timestamp_granularities: ['segment'],
    max_completion_tokens: 24,
  });
  assert.equal(v.task, 'transcribe');
  assert.equal(v.language, 'english');
  assert.ok(Math.abs(v.duration - 11) < 0.1, `duration ${v.duration}`);
  assert.ok(v.segments.length >= 1);
  for (const s of v.segments) {
    assert.equal(typeof s.text, 'string');
    assert.ok(s.end >= s.start);
  }
  const srt = await client.audio.transcriptions.create({ file: await file(), model: kModel, language: 'en', response_format: 'srt', max_completion_tokens: 24 });
  assert.match(srt, /^1\n\d\d:\d\d:\d\d,\d\d\d --> \d\d:\d\d:\d\d,\d\d\d\n/);
  const vtt = await client.audio.transcriptions.create({ file: await file(), model: kModel, language: 'en', response_format: 'vtt', max_completion_tokens: 24 });
  assert.match(vtt, /^WEBVTT\n/);
  const text = await client.audio.transcriptions.create({ file: await file(), model: kModel, language: 'en', response_format: 'text', max_completion_tokens: 24 });
  assert.equal(text.trim(), (await offlineText(['--language', 'en', '--max-tokens', '24'])).trim());
});

test('streaming: deltas add up to the done text', async () => {
  const stream = await client.audio.transcriptions.create({
    file: await file(), model: kModel, language: 'en', stream: true, max_completion_tokens: 24,
  });
  let joined = '';
  let done = null;
  for await (const ev of stream) {
    if (ev.type === 'transcript.text.delta') joined += ev.delta;
    else if (ev.type === 'transcript.text.done') done = ev.text;
  }
  assert.equal(done, await offlineText(['--language', 'en', '--max-tokens', '24']));
  assert.equal(joined, done);
});

test('concurrent requests all succeed with the same text', async () => {
  const expected = await offlineText(['--language', 'en', '--max-tokens', '24']);
  const results = await Promise.all(Array.from({ length: 8 }, async () =>
    client.audio.transcriptions.create({ file: await file(), model: kModel, language: 'en', max_completion_tokens: 24 })));
  for (const r of results) assert.equal(r.text, expected);
});

test('errors: unknown model 404, embedding model 400, bad format 400, undecodable file 400', async () => {
  await assert.rejects(client.audio.transcriptions.create({ file: await file(), model: 'nope' }), (e) => e.status === 404);
  await assert.rejects(client.audio.transcriptions.create({ file: await file(), model: 'bert-mean-norm' }),
    (e) => e.status === 400 && /supports: embed/.test(e.message));
  await assert.rejects(client.audio.transcriptions.create({ file: await file(), model: kModel, response_format: 'xml' }),
    (e) => e.status === 400 && e.param === 'response_format');
  await assert.rejects(client.audio.transcriptions.create({ file: await toFile(Buffer.from('not audio at all'), 'x.mp3'), model: kModel }),
    (e) => e.status === 400 && e.param === 'file');
});

test('temperature fallback: a schedule with thresholds that never trigger keeps the greedy text; a forced retry reports the last temperature', async () => {
  const greedy = await client.audio.transcriptions.create({
    file: await file(), model: kModel, language: 'en', max_completion_tokens: 24, response_format: 'verbose_json',
  });
  const kept = await client.audio.transcriptions.create({
    file: await file(), model: kModel, language: 'en', max_completion_tokens: 24, response_format: 'verbose_json',
    temperature: '0,0.5,1', compression_ratio_threshold: 1e9, logprob_threshold: 'none', no_speech_threshold: 'none',
  });
  assert.equal(kept.text, greedy.text);
  assert.ok(kept.segments.length > 0);
  for (const s of kept.segments) assert.equal(s.temperature, 0);
  const retried = await client.audio.transcriptions.create({
    file: await file(), model: kModel, language: 'en', max_completion_tokens: 24, response_format: 'verbose_json',
    temperature: 0, temperature_increment_on_fallback: 0.5, compression_ratio_threshold: -1, seed: 3,
  });
  assert.ok(retried.segments.length > 0);
  for (const s of retried.segments) assert.equal(s.temperature, 1);
  await assert.rejects(client.audio.transcriptions.create({ file: await file(), model: kModel, temperature: '0.5,0.2' }),
    (e) => e.status === 400 && /must increase/.test(e.message));
});
