// bge-m3 style models (XLM-R + FlagEmbedding's sparse_linear.pt / colbert_linear.pt) through the official
// OpenAI client (texts truncated to the 64-token limit, as the references are): embedding_type dense | sparse | colbert (a fathom extra field; the per-token types answer in
// JSON, so the client asks for encoding_format "float") against the FlagEmbedding
// references of scripts/fixtures/make_bge_m3.py, /v1/models listing the types, and the errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

import { startServer, stopServer, reference, cosine, maxAbsDiff } from './server.mjs';

const models = ['bge-m3-f32', 'bge-m3-bf16-d24'];
const plain = 'xlmr-unigram-mean';  // an XLM-R embedder without the heads
let server, client;

before(async () => {
  server = await startServer({ models: [...models, plain] });
  client = new OpenAI({ baseURL: `${server.baseURL}/v1`, apiKey: 'unused', maxRetries: 0 });
});

after(async () => {
  const exit = await stopServer(server);
  assert.deepEqual(exit, { code: 0, signal: null });
});

for (const name of models) {
  const ref = reference(name);
  const texts = ref.cases.map((c) => c.text);

  test(`${name}: dense embeddings equal the reference (the default type)`, async () => {
    const r = await client.embeddings.create({ model: name, input: texts, truncate_prompt_tokens: -1 });
    r.data.forEach((d, i) => {
      assert.ok(cosine(d.embedding, ref.cases[i].embedding) >= 0.99999, `${name} text ${i}`);
      assert.ok(maxAbsDiff(d.embedding, ref.cases[i].embedding) < 1e-5, `${name} text ${i}`);
    });
    const explicit = await client.embeddings.create({ model: name, input: texts[0], embedding_type: 'dense' });
    assert.ok(maxAbsDiff(explicit.data[0].embedding, ref.cases[0].embedding) < 1e-5);
  });

  test(`${name}: sparse lexical weights equal FlagEmbedding's`, async () => {
    const r = await client.embeddings.create({ model: name, input: texts, truncate_prompt_tokens: -1, embedding_type: 'sparse', encoding_format: 'float' });
    assert.equal(r.data.length, texts.length);
    let tokens = 0;
    r.data.forEach((d, i) => {
      const want = ref.cases[i].lexical_weights;
      assert.ok(Array.isArray(d.embedding), 'sparse: a list of {index, value}');
      const got = Object.fromEntries(d.embedding.map((e) => [String(e.index), e.value]));
      assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort(), `${name} text ${i}: token ids`);
      for (const [id, w] of Object.entries(want)) assert.ok(Math.abs(got[id] - w) < 1e-5, `${name} text ${i} id ${id}`);
      const indices = d.embedding.map((e) => e.index);
      assert.deepEqual(indices, [...indices].sort((a, b) => a - b), 'sorted by token id');
      tokens += ref.cases[i].token_ids.length;
    });
    assert.equal(r.usage.prompt_tokens, tokens);
  });

  test(`${name}: colbert vectors equal FlagEmbedding's, one per token after the first`, async () => {
    const r = await client.embeddings.create({ model: name, input: texts, truncate_prompt_tokens: -1, embedding_type: 'colbert', encoding_format: 'float' });
    r.data.forEach((d, i) => {
      const want = ref.cases[i].colbert;
      assert.equal(d.embedding.length, ref.cases[i].token_ids.length - 1);
      d.embedding.forEach((row, k) => {
        assert.equal(row.length, ref.colbert_dim);
        assert.ok(maxAbsDiff(row, want[k]) < 1e-5, `${name} text ${i} row ${k}`);
      });
    });
    // normalize: false leaves the rows as the head wrote them (not unit length).
    const raw = await client.embeddings.create({ model: name, input: texts[1], embedding_type: 'colbert', encoding_format: 'float', normalize: false });
    const norm = Math.hypot(...raw.data[0].embedding[0]);
    assert.ok(Math.abs(norm - 1) > 1e-3, `raw row norm ${norm}`);
    assert.ok(cosine(raw.data[0].embedding[0], ref.cases[1].colbert[0]) > 0.99999);
  });
}

test('/v1/models lists the embedding types of a model with the heads only', async () => {
  const r = await fetch(`${server.baseURL}/v1/models`);
  const data = (await r.json()).data;
  assert.deepEqual(data.find((m) => m.id === models[0]).embedding_types, ['dense', 'sparse', 'colbert']);
  assert.equal(data.find((m) => m.id === plain).embedding_types, undefined);
});

test('embedding_type errors are 400s naming the field, and the server keeps serving', async () => {
  const bad = [
    [{ model: plain, input: 'x', embedding_type: 'sparse' }, 'embedding_type', /has no sparse output \(its embedding types: dense\)/],
    [{ model: models[0], input: 'x', embedding_type: 'splade' }, 'embedding_type', /must be "dense", "sparse" or "colbert"/],
    [{ model: models[0], input: 'x', embedding_type: 3 }, 'embedding_type', /embedding_type/],
    [{ model: models[0], input: 'x', embedding_type: 'colbert', encoding_format: 'base64' }, 'encoding_format', /pass encoding_format "float"/],
    [{ model: models[0], input: 'x', embedding_type: 'sparse', dimensions: 8 }, 'dimensions', /dense embeddings/],
  ];
  for (const [body, param, message] of bad) {
    const r = await fetch(`${server.baseURL}/v1/embeddings`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    assert.equal(r.status, 400, JSON.stringify(body));
    const e = (await r.json()).error;
    assert.equal(e.param, param, JSON.stringify(body));
    assert.match(e.message, message);
  }
  const ok = await client.embeddings.create({ model: models[0], input: 'still serving', embedding_type: 'sparse', encoding_format: 'float' });
  assert.equal(ok.data.length, 1);
});
