// An audio-LLM (the FunASR-Nano fixture: SenseVoice encoder -> adaptor -> Qwen3 decoder) through the official
// OpenAI client: the transcription text equals transformers' greedy text for the default prompt, a selected
// language and a context prompt; streaming deltas add up to it; concurrent requests batch to the same text;
// what the model cannot do (translation, an unknown language, beams) is refused with a clear 4xx.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import OpenAI, { toFile } from 'openai';

import { startServer, stopServer, reference, sourceDir } from './server.mjs';

const kModel = 'funasr-nano-random-a';
const jfkPath = path.resolve(sourceDir, '..', 'shared', 'assets', 'whisper', 'jfk.wav');
let server;
let client;
let jfk;
let cases;

before(async () => {
  server = await startServer({ models: [kModel] });
  client = new OpenAI({ baseURL: `${server.baseURL}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 120_000 });
  jfk = readFileSync(jfkPath);
  cases = reference(kModel).generate.cases;
});

after(async () => {
  const exit = await stopServer(server);
  assert.deepEqual(exit, { code: 0, signal: null }, 'SIGTERM must end fathom cleanly with exit code 0');
});

const file = () => toFile(jfk, 'jfk.wav', { type: 'audio/wav' });

test('the model is listed as a transcription model', async () => {
  const list = await client.models.list();
  const m = list.data.find((x) => x.id === kModel);
  assert.ok(m, 'listed');
  assert.deepEqual(m.tasks, ['transcribe']);
  assert.deepEqual(m.endpoints, ['/v1/audio/transcriptions']);
});

test('default prompt, a language and a context prompt give the reference texts', async () => {
  const plain = await client.audio.transcriptions.create({ file: await file(), model: kModel, max_completion_tokens: 12 });
  assert.equal(plain.text, cases.jfk_default.text);
  const en = await client.audio.transcriptions.create({
    file: await file(), model: kModel, language: 'en', max_completion_tokens: 12,
  });
  assert.equal(en.text, cases.jfk_language_en.text);
  const prompted = await client.audio.transcriptions.create({
    file: await file(), model: kModel, prompt: 'Kennedy, Americans', max_completion_tokens: 12,
  });
  assert.equal(prompted.text, cases.jfk_prompt.text);
});

test('verbose_json names the language read from the transcript and one segment over the clip', async () => {
  const r = await client.audio.transcriptions.create({
    file: await file(), model: kModel, response_format: 'verbose_json', max_completion_tokens: 12,
  });
  assert.equal(r.language, 'english');  // the reference text is Latin script
  assert.equal(r.duration, 11);
  assert.equal(r.segments.length, 1);
  assert.equal(r.segments[0].start, 0);
  assert.equal(r.segments[0].end, 11);
  assert.deepEqual(r.segments[0].tokens, cases.jfk_default.greedy_tokens);
});

test('streaming: deltas add up to the done text', async () => {
  const stream = await client.audio.transcriptions.create({
    file: await file(), model: kModel, stream: true, max_completion_tokens: 12,
  });
  let joined = '';
  let done = null;
  for await (const ev of stream) {
    if (ev.type === 'transcript.text.delta') joined += ev.delta;
    else if (ev.type === 'transcript.text.done') done = ev.text;
  }
  assert.equal(done, cases.jfk_default.text);
  assert.equal(joined, done);
});

test('concurrent requests batch to the same texts', async () => {
  const results = await Promise.all(Array.from({ length: 6 }, async (_, i) =>
    client.audio.transcriptions.create({
      file: await file(), model: kModel, max_completion_tokens: 12, ...(i % 2 ? { language: 'en' } : {}),
    })));
  results.forEach((r, i) => assert.equal(r.text, i % 2 ? cases.jfk_language_en.text : cases.jfk_default.text));
});

test('errors: translation 404, unknown language 400 naming the accepted ones, empty audio 400', async () => {
  await assert.rejects(client.audio.translations.create({ file: await file(), model: kModel }),
    (e) => e.status === 404 && /transcribe/.test(e.message));
  await assert.rejects(client.audio.transcriptions.create({ file: await file(), model: kModel, language: 'fr' }),
    (e) => e.status === 400 && /en, ja, zh/.test(e.message));
  await assert.rejects(client.audio.transcriptions.create({ file: await toFile(Buffer.alloc(0), 'x.wav'), model: kModel }),
    (e) => e.status === 400);
  await assert.rejects(client.audio.transcriptions.create({ file: await file(), model: kModel, temperature: '0,0.5' }),
    (e) => e.status === 400 && /fallback schedule is not supported/.test(e.message));
  // The server keeps serving.
  const ok = await client.audio.transcriptions.create({ file: await file(), model: kModel, max_completion_tokens: 12 });
  assert.equal(ok.text, cases.jfk_default.text);
});
