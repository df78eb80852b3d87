// Embeddings through the official OpenAI client against the fixture references.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

import { startServer, stopServer, reference, fixtureModels, cosine, normalize, decodeBase64Floats } from './server.mjs';

const kMinCosine = 0.9999;
let server;
let client;

before(async () => {
  server = await startServer();
  client = new OpenAI({ baseURL: `${server.baseURL}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });
});

after(async () => {
  const exit = await stopServer(server);
  assert.deepEqual(exit, { code: 0, signal: null }, 'SIGTERM must end fathom cleanly with exit code 0');
});

function assertClose(actual, expected, what) {
  assert.equal(actual.length, expected.length, `${what}: dimension`);
  const c = cosine(actual, expected);
  assert.ok(c >= kMinCosine, `${what}: cosine ${c} < ${kMinCosine}`);
}

test('GET /v1/models lists the fixture models in the OpenAI shape', async () => {
  const page = await client.models.list();
  const ids = page.data.map((m) => m.id).sort();
  assert.deepEqual(ids, [...fixtureModels].sort());
  for (const m of page.data) {
    assert.equal(m.object, 'model');
    assert.equal(m.owned_by, 'fathom');
    assert.equal(typeof m.created, 'number');
    assert.deepEqual(m.tasks, ['embed']);
    assert.deepEqual(m.endpoints, ['/v1/embeddings', '/v1/score', '/v1/rerank']);
    assert.equal(m.state, 'ready');
    assert.equal(m.device, 'cpu');
    assert.equal(typeof m.architecture, 'string');
    assert.equal(typeof m.dtype, 'string');
  }
});

for (const name of fixtureModels) {
  const ref = reference(name);
  const fits = ref.cases.filter((c) => !c.truncated);
  const expectedTokens = fits.reduce((s, c) => s + c.token_ids.length, 0);

  test(`${name}: float embeddings equal the reference`, async () => {
    const res = await client.embeddings.create({ model: name, input: fits.map((c) => c.text), encoding_format: 'float' });
    assert.equal(res.object, 'list');
    assert.equal(res.model, name);
    assert.equal(res.data.length, fits.length);
    res.data.forEach((d, i) => {
      assert.equal(d.object, 'embedding');
      assert.equal(d.index, i);
      assertClose(d.embedding, fits[i].embedding, `${name} case ${i} (${JSON.stringify(fits[i].text).slice(0, 30)})`);
    });
    assert.equal(res.usage.prompt_tokens, expectedTokens);
    assert.equal(res.usage.total_tokens, expectedTokens);
  });

  test(`${name}: base64 embeddings equal the reference`, async () => {
    // Explicit base64: the client returns the strings as sent.
    const raw = await client.embeddings.create({ model: name, input: fits.map((c) => c.text), encoding_format: 'base64' });
    raw.data.forEach((d, i) => {
      assert.equal(typeof d.embedding, 'string');
      assertClose(decodeBase64Floats(d.embedding), fits[i].embedding, `${name} base64 case ${i}`);
    });
    // No encoding_format: the client asks for base64 and decodes it itself.
    const decoded = await client.embeddings.create({ model: name, input: fits[0].text });
    assertClose(Array.from(decoded.data[0].embedding), fits[0].embedding, `${name} client-decoded base64`);
  });

  test(`${name}: token-id inputs equal the reference`, async () => {
    const res = await client.embeddings.create({ model: name, input: fits.map((c) => c.token_ids), encoding_format: 'float' });
    res.data.forEach((d, i) => assertClose(d.embedding, fits[i].embedding, `${name} token case ${i}`));
    assert.equal(res.usage.prompt_tokens, expectedTokens);
    const one = await client.embeddings.create({ model: name, input: fits[1].token_ids, encoding_format: 'float' });
    assert.equal(one.data.length, 1);
    assertClose(one.data[0].embedding, fits[1].embedding, `${name} single token array`);
  });

  test(`${name}: inputs longer than the model's limit need truncate_prompt_tokens`, async () => {
    const long = ref.cases.find((c) => c.truncated);
    assert.ok(long, 'the reference has a truncated case');
    await assert.rejects(
      client.embeddings.create({ model: name, input: ['short', long.text], encoding_format: 'float' }),
      (err) => {
        assert.equal(err.status, 400);
        assert.match(err.message, new RegExp(`input\\[1\\] has ${long.full_length} tokens`));
        assert.match(err.message, new RegExp(`${ref.max_seq_length} tokens`));
        return true;
      },
    );
    for (const t of [-1, ref.max_seq_length]) {
      const res = await client.embeddings.create({ model: name, input: long.text, encoding_format: 'float', truncate_prompt_tokens: t });
      assertClose(res.data[0].embedding, long.embedding, `${name} truncated to ${t}`);
      assert.equal(res.usage.prompt_tokens, long.token_ids.length);
    }
    const short = await client.embeddings.create({ model: name, input: long.text, encoding_format: 'float', truncate_prompt_tokens: 5 });
    assert.equal(short.usage.prompt_tokens, 5);
  });
}

test('bert-mean-norm: dimensions truncates then re-normalises', async () => {
  const ref = reference('bert-mean-norm');
  const c = ref.cases[1];
  for (const d of [8, 16, 32]) {
    const res = await client.embeddings.create({ model: 'bert-mean-norm', input: c.text, dimensions: d, encoding_format: 'float' });
    const expected = normalize(c.embedding.slice(0, d));
    assertClose(res.data[0].embedding, expected, `dimensions ${d}`);
    const norm = Math.sqrt(res.data[0].embedding.reduce((s, x) => s + x * x, 0));
    assert.ok(Math.abs(norm - 1) < 1e-5, `dimensions ${d}: norm ${norm}`);
  }
  await assert.rejects(
    client.embeddings.create({ model: 'bert-mean-norm', input: c.text, dimensions: 12 }),
    (err) => err.status === 400 && /8, 16, 32/.test(err.message) && err.param === 'dimensions',
  );
});

test('roberta-cls: dimensions is refused', async () => {
  await assert.rejects(
    client.embeddings.create({ model: 'roberta-cls', input: 'hello', dimensions: 8 }),
    (err) => err.status === 400 && /roberta-cls/.test(err.message) && /does not support dimensions/.test(err.message),
  );
});

test('normalize overrides the model default', async () => {
  const ref = reference('roberta-cls');  // does not normalise by default
  const c = ref.cases[0];
  const res = await client.embeddings.create({ model: 'roberta-cls', input: c.text, encoding_format: 'float', normalize: true });
  const v = res.data[0].embedding;
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  assert.ok(Math.abs(norm - 1) < 1e-5, `norm ${norm}`);
  assertClose(v, c.embedding, 'normalised roberta-cls');
  const plain = await client.embeddings.create({ model: 'bert-mean-norm', input: 'a', encoding_format: 'float', normalize: false, user: 'e2e' });
  const n2 = Math.sqrt(plain.data[0].embedding.reduce((s, x) => s + x * x, 0));
  assert.ok(Math.abs(n2 - 1) > 1e-3, 'normalize: false returns the raw pooled vector');
});

test('64+ concurrent requests across models all return the right vectors', async () => {
  const jobs = [];
  for (let i = 0; i < 96; i++) {
    const name = fixtureModels[i % fixtureModels.length];
    const ref = reference(name);
    const fits = ref.cases.filter((c) => !c.truncated);
    const c = fits[i % fits.length];
    jobs.push(
      client.embeddings.create({ model: name, input: c.text, encoding_format: i % 2 ? 'float' : undefined }).then((res) => {
        assertClose(Array.from(res.data[0].embedding), c.embedding, `concurrent request ${i} (${name})`);
      }),
    );
  }
  await Promise.all(jobs);
});
