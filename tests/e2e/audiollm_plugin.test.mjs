// The audio_llm example plugin (examples/audio_llm) served by the fathom binary: `--plugin` plus a directory
// in the plugin's own layout is all it takes for /v1/audio/transcriptions to appear, and the official OpenAI
// client gets transformers' greedy text through it. A second directory of that layout with a placeholder
// token its tokenizer lacks does not load; the startup output, /v1/models and a request to it (503) name the
// missing token, and the good model keeps serving.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI, { toFile } from 'openai';

import { binary, modelDir, reference, sourceDir, startServer, stopServer } from './server.mjs';

const kFixture = 'funasr-nano-random-a';
const plugin = path.join(path.dirname(binary), 'plugins', 'libaudio_llm.so');
const jfkPath = path.resolve(sourceDir, '..', 'shared', 'assets', 'whisper', 'jfk.wav');
let server;
let client;
let work;

// The FunASR-Nano fixture rewritten into the ExampleAudioLlm layout (examples/audio_llm/example_layout.h).
function exampleDir(name, audioToken) {
  const src = modelDir(kFixture);
  const dir = path.join(work, name);
  mkdirSync(dir);
  for (const f of ['model.safetensors', 'am.mvn']) copyFileSync(path.join(src, f), path.join(dir, f));
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) {
    copyFileSync(path.join(src, 'Qwen3-tiny', f), path.join(dir, f));
  }
  const nano = JSON.parse(readFileSync(path.join(src, 'config.json'), 'utf8'));
  const config = {
    architectures: ['ExampleAudioLlm'],
    model_type: 'example_audio_llm',
    audio_config: {
      num_mel_bins: nano.frontend_conf.n_mels, lfr_m: nano.frontend_conf.lfr_m, lfr_n: nano.frontend_conf.lfr_n,
      cmvn_file: 'am.mvn', encoder: nano.audio_encoder_conf,
    },
    adaptor_config: nano.audio_adaptor_conf,
    text_config: JSON.parse(readFileSync(path.join(src, 'Qwen3-tiny', 'config.json'), 'utf8')),
    audio_token: audioToken,
  };
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

before(async () => {
  assert.ok(existsSync(plugin), `the example plugin is built at ${plugin}`);
  work = mkdtempSync(path.join(os.tmpdir(), 'fathom-audio-llm-'));
  const good = exampleDir('good', '<|AUDIO|>');
  const broken = exampleDir('broken', '<|SPEECH|>');
  server = await startServer({
    models: [],
    args: ['--plugin', plugin, '--model', `example=${good}`, '--model', `broken=${broken}`],
  });
  client = new OpenAI({ baseURL: `${server.baseURL}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 120_000 });
});

after(async () => {
  const exit = await stopServer(server);
  rmSync(work, { recursive: true, force: true });
  assert.deepEqual(exit, { code: 0, signal: null }, 'SIGTERM must end fathom cleanly with exit code 0');
});

test('the plugin model is listed with the transcription endpoint and nothing else', async () => {
  const list = await client.models.list();
  const m = list.data.find((x) => x.id === 'example');
  assert.ok(m, 'listed');
  assert.deepEqual(m.tasks, ['transcribe']);
  assert.deepEqual(m.endpoints, ['/v1/audio/transcriptions']);
  const broken = list.data.find((x) => x.id === 'broken');
  assert.equal(broken.state, 'failed');
  assert.deepEqual(broken.endpoints, []);
  assert.match(broken.error, /has no token '<\|SPEECH\|>'/);
});

test('the startup output names the missing token and the endpoint it costs', () => {
  assert.match(server.output, /has no token '<\|SPEECH\|>'/);
  assert.match(server.output, /broken[^\n]*\/v1\/audio\/transcriptions|\/v1\/audio\/transcriptions[^\n]*broken/);
});

test('transcriptions equal transformers greedy text for the default prompt and a language', async () => {
  const cases = reference(kFixture).generate.cases;
  const file = () => toFile(readFileSync(jfkPath), 'jfk.wav', { type: 'audio/wav' });
  const plain = await client.audio.transcriptions.create({ file: await file(), model: 'example', max_completion_tokens: 12 });
  assert.equal(plain.text, cases.jfk_default.text);
  const en = await client.audio.transcriptions.create({
    file: await file(), model: 'example', language: 'en', max_completion_tokens: 12,
  });
  assert.equal(en.text, cases.jfk_language_en.text);
});

test('a request for the model that failed to load names why', async () => {
  const form = new FormData();
  form.append('file', new Blob([readFileSync(jfkPath)], { type: 'audio/wav' }), 'jfk.wav');
  form.append('model', 'broken');
  const r = await fetch(`${server.baseURL}/v1/audio/transcriptions`, { method: 'POST', body: form });
  assert.equal(r.status, 503);  // the model exists but failed to load
  const body = await r.json();
  assert.match(body.error.message, /has no token '<\|SPEECH\|>'/);
});
