// Decoder-LLM embedding models (Qwen3-Embedding layout) through the official OpenAI client against the
// sentence-transformers references: texts, the "query" instruction prompt by prompt_name (a fathom extra
// field, as sentence-transformers' encode(prompt_name=...)), /v1/models listing the prompts, and the errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

import { startServer, stopServer, reference, cosine, maxAbsDiff } from './server.mjs';

const models = ['qwen3-embed-f32', 'qwen3-embed-bf16'];
let server, client;

before(async () => {
  server = await startServer({ models });
  client = new OpenAI({ baseURL: `${server.baseURL}/v1`, apiKey: 'unused', maxRetries: 0 });
});

after(async () => {
  const exit = await stopServer(server);
  assert.deepEqual(exit, { code: 0, signal: null });
});

for (const name of models) {
  const ref = reference(name);

  test(`${name}: text embeddings equal the reference, in one request`, async () => {
    const texts = ref.cases.map((c) => c.text);
    const r = await client.embeddings.create({ model: name, input: texts });
    assert.equal(r.data.length, texts.length);
    let tokens = 0;
    r.data.forEach((d, i) => {
      assert.equal(d.index, i);
      assert.ok(cosine(d.embedding, ref.cases[i].embedding) >= 0.99999, `${name} text ${i}`);
      assert.ok(maxAbsDiff(d.embedding, ref.cases[i].embedding) < 1e-5, `${name} text ${i}`);
      tokens += ref.cases[i].token_ids.length;
    });
    assert.equal(r.usage.prompt_tokens, tokens);  // <|endoftext|> appended to each text counts
  });

  test(`${name}: prompt_name "query" prepends the instruction`, async () => {
    const queries = ref.queries.map((q) => q.query);
    const r = await client.embeddings.create({ model: name, input: queries, prompt_name: 'query' });
    r.data.forEach((d, i) => {
      assert.ok(maxAbsDiff(d.embedding, ref.queries[i].embedding) < 1e-5, `${name} query ${i}`);
    });
    assert.equal(r.usage.prompt_tokens, ref.queries.reduce((n, q) => n + q.token_ids.length, 0));
    // Without the prompt the query embeds as a plain text: a different vector.
    const plain = await client.embeddings.create({ model: name, input: queries[0] });
    assert.ok(maxAbsDiff(plain.data[0].embedding, ref.queries[0].embedding) > 1e-3);
  });
}

test('/v1/models lists the declared prompts', async () => {
  const r = await fetch(`${server.baseURL}/v1/models`);
  assert.equal(r.status, 200);
  const m = (await r.json()).data.find((x) => x.id === models[0]);
  assert.equal(m.prompts.query, reference(models[0]).queries[0].prompt);
  assert.equal(m.prompts.document, '');
});

test('an undeclared prompt_name is a 400 naming the declared ones', async () => {
  await assert.rejects(
    client.embeddings.create({ model: models[0], input: 'x', prompt_name: 'passage' }),
    (err) => err.status === 400 && err.param === 'prompt_name' && /its prompts: document, query/.test(err.message),
  );
  await assert.rejects(
    client.embeddings.create({ model: models[0], input: [[1, 2, 3]], prompt_name: 'query' }),
    (err) => err.status === 400 && err.param === 'prompt_name',
  );
  await assert.rejects(
    client.embeddings.create({ model: models[0], input: 'x', prompt_name: 7 }),
    (err) => err.status === 400 && err.param === 'prompt_name',
  );
  // The server keeps serving.
  const ok = await client.embeddings.create({ model: models[0], input: 'still here' });
  assert.equal(ok.data.length, 1);
});
