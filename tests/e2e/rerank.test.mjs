// Rerank, score and classify over plain HTTP, in every request shape, against the cross-encoder references
// (tests/fixtures/models/*-rerank-*, *-nli-*: transformers + sentence-transformers' CrossEncoder; BERT, XLM-R,
// RoBERTa and ModernBERT heads),
// and every error case; an embedding model beside them scores by cosine similarity.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startServer, stopServer, reference, cosine } from './server.mjs';

const rerankers = ['bert-rerank-f16', 'xlmr-rerank-f32', 'xlmr-rerank-bf16', 'modernbert-rerank-mean'];
const classifiers = ['roberta-nli-f32', 'modernbert-nli-bf16-cls'];
const classifier = classifiers[0];  // the error cases
const embedder = 'bert-mean-norm';
const kTol = 1e-5;
let server;

before(async () => {
  server = await startServer({ models: [...rerankers, ...classifiers, embedder] });
});

after(async () => {
  const exit = await stopServer(server);
  assert.deepEqual(exit, { code: 0, signal: null });
});

async function post(path, body) {
  const r = await fetch(`${server.baseURL}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: r.status, body: json };
}

function assertError(res, status, code, fragment) {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.equal(typeof res.body.error?.message, 'string', JSON.stringify(res.body));
  if (code) assert.equal(res.body.error.code, code, JSON.stringify(res.body));
  if (fragment) assert.ok(res.body.error.message.includes(fragment), res.body.error.message);
}

// The reference score of pair `c`: the CrossEncoder's activated score.
const ceScore = (c) => c.ce_score[0];
const sigmoid = (x) => 1 / (1 + Math.exp(-x));

// The reference pairs of one query, in document order.
function pairsOf(ref) {
  const query = ref.pairs[0].query;
  return { query, pairs: ref.pairs.filter((c) => c.query === query) };
}

for (const name of rerankers) {
  const ref = reference(name);
  const { query, pairs } = pairsOf(ref);

  test(`${name}: /v1/rerank (Cohere shape) sorts the documents by the CrossEncoder's scores`, async () => {
    assert.ok(pairs.length >= 2);
    const res = await post('/v1/rerank', { model: name, query, documents: pairs.map((c) => c.document), return_documents: true });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.model, name);
    assert.match(res.body.id, /^rerank-/);
    assert.equal(res.body.results.length, pairs.length);
    const expected = pairs.map((c, i) => ({ i, s: ceScore(c) })).sort((a, b) => b.s - a.s);
    res.body.results.forEach((r, k) => {
      assert.equal(r.index, expected[k].i, `rank ${k}`);
      assert.ok(Math.abs(r.relevance_score - expected[k].s) < kTol, `${r.relevance_score} vs ${expected[k].s}`);
      assert.equal(r.document.text, pairs[r.index].document);
    });
    const tokens = pairs.reduce((s, c) => s + c.token_ids.length, 0);
    assert.deepEqual(res.body.usage, { prompt_tokens: tokens, total_tokens: tokens });
  });

  test(`${name}: top_n, document objects and /rerank, /v2/rerank aliases`, async () => {
    const documents = pairs.map((c) => ({ text: c.document }));
    for (const path of ['/rerank', '/v2/rerank']) {
      const res = await post(path, { model: name, query, documents, top_n: 1 });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.results.length, 1);
      const best = pairs.reduce((b, c, i) => (ceScore(c) > ceScore(pairs[b]) ? i : b), 0);
      assert.equal(res.body.results[0].index, best);
      assert.equal(res.body.results[0].document, undefined, 'return_documents defaults to false');
    }
  });

  test(`${name}: TEI /rerank shape (texts, raw_scores, return_text)`, async () => {
    const texts = pairs.map((c) => c.document);
    const res = await post('/rerank', { model: name, query, texts, raw_scores: true, return_text: true });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.ok(Array.isArray(res.body));
    for (const r of res.body) {
      assert.ok(Math.abs(r.score - pairs[r.index].logits[0]) < kTol, `raw ${r.score} vs ${pairs[r.index].logits[0]}`);
      assert.equal(r.text, texts[r.index]);
    }
    for (let k = 1; k < res.body.length; k++) assert.ok(res.body[k - 1].score >= res.body[k].score);
  });

  test(`${name}: /v1/score one-to-one, one-to-many and many-to-many`, async () => {
    const one = await post('/v1/score', { model: name, text_1: query, text_2: pairs[0].document });
    assert.equal(one.status, 200, JSON.stringify(one.body));
    assert.equal(one.body.object, 'list');
    assert.equal(one.body.data.length, 1);
    assert.ok(Math.abs(one.body.data[0].score - ceScore(pairs[0])) < kTol);
    const many = await post('/score', { model: name, text_1: [query], text_2: pairs.map((c) => c.document) });
    assert.equal(many.status, 200);
    many.body.data.forEach((d, i) => {
      assert.equal(d.index, i);
      assert.equal(d.object, 'score');
      assert.ok(Math.abs(d.score - ceScore(pairs[i])) < kTol, `pair ${i}`);
    });
    const all = ref.pairs.slice(0, 6);
    const zip = await post('/v1/score', { model: name, text_1: all.map((c) => c.query), text_2: all.map((c) => c.document) });
    assert.equal(zip.status, 200);
    zip.body.data.forEach((d, i) => assert.ok(Math.abs(d.score - ceScore(all[i])) < kTol, `zip ${i}`));
  });

  test(`${name}: a pair over the limit is refused naming it, and truncated on request`, async () => {
    const lp = ref.long_pair;
    const refused = await post('/v1/rerank', { model: name, query: lp.query, documents: ['short', lp.document] });
    assertError(refused, 400, 'too_many_tokens', `${lp.max_length} tokens`);
    assert.ok(refused.body.error.message.includes('documents[1]'), refused.body.error.message);
    for (const flag of [{ truncate: true }, { truncation: true }, { truncate_prompt_tokens: -1 }]) {
      const cut = await post('/v1/score', { model: name, text_1: lp.query, text_2: lp.document, ...flag });
      assert.equal(cut.status, 200, JSON.stringify(cut.body));
      assert.ok(Math.abs(cut.body.data[0].score - lp.ce_score[0]) < kTol, `${JSON.stringify(flag)}: ${cut.body.data[0].score} vs ${lp.ce_score[0]}`);
      assert.equal(cut.body.usage.prompt_tokens, lp.max_length);
    }
  });
}

for (const classifier of classifiers) {
  test(`${classifier}: /v1/classify returns labels and softmax probabilities`, async () => {
    const ref = reference(classifier);
    const res = await post('/v1/classify', { model: classifier, input: ref.singles.map((c) => c.text) });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.data.length, ref.singles.length);
    res.body.data.forEach((d, i) => {
      const want = ref.singles[i];
      assert.equal(d.index, i);
      assert.equal(d.label, want.label);
      assert.equal(d.num_classes, 3);
      d.probs.forEach((p, k) => assert.ok(Math.abs(p - want.probabilities[k]) < kTol, `input ${i} label ${k}`));
    });
    const single = await post('/classify', { model: classifier, input: ref.singles[0].text });
    assert.equal(single.status, 200);
    assert.equal(single.body.data.length, 1);
    assert.equal(single.body.usage.prompt_tokens, ref.singles[0].token_ids.length);
  });
}

test('a single-logit cross-encoder classifies with a sigmoid probability', async () => {
  const ref = reference('xlmr-rerank-f32');
  const res = await post('/v1/classify', { model: 'xlmr-rerank-f32', input: ref.singles[1].text });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.ok(Math.abs(res.body.data[0].probs[0] - sigmoid(ref.singles[1].logits[0])) < kTol);
});

test('an embedding model scores and reranks by cosine similarity', async () => {
  const texts = ['What is the capital of France?', 'Paris is the capital of France.', 'The quick brown fox.'];
  const emb = await fetch(`${server.baseURL}/v1/embeddings`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ model: embedder, input: texts }),
  }).then((r) => r.json());
  const v = emb.data.map((d) => d.embedding);
  const score = await post('/v1/score', { model: embedder, text_1: texts[0], text_2: texts.slice(1) });
  assert.equal(score.status, 200, JSON.stringify(score.body));
  score.body.data.forEach((d, i) => assert.ok(Math.abs(d.score - cosine(v[0], v[i + 1])) < 1e-5, `pair ${i}`));
  const rr = await post('/v1/rerank', { model: embedder, query: texts[0], documents: texts.slice(1) });
  assert.equal(rr.status, 200);
  const best = cosine(v[0], v[1]) > cosine(v[0], v[2]) ? 0 : 1;
  assert.equal(rr.body.results[0].index, best);
});

test('errors: capability, unknown model, shapes, types and limits', async () => {
  const q = 'query';
  assertError(await post('/v1/rerank', { model: 'nope', query: q, documents: ['a'] }), 404, 'model_not_found');
  assertError(await post('/v1/rerank', { model: classifier, query: q, documents: ['a'] }), 400, 'model_capability_mismatch', 'classify');
  assertError(await post('/v1/classify', { model: embedder, input: 'a' }), 400, 'model_capability_mismatch', 'embed');
  assertError(await post('/v1/embeddings', { model: 'bert-rerank-f16', input: 'a' }), 400, 'model_capability_mismatch', 'score');
  assertError(await post('/v1/rerank', { model: 'bert-rerank-f16', query: q }), 400, null, 'documents');
  assertError(await post('/v1/rerank', { model: 'bert-rerank-f16', query: q, documents: [] }), 400, null, 'empty');
  assertError(await post('/v1/rerank', { model: 'bert-rerank-f16', query: q, documents: [3] }), 400, null, 'documents[0]');
  assertError(await post('/v1/rerank', { model: 'bert-rerank-f16', query: 7, documents: ['a'] }), 400, null, 'query');
  assertError(await post('/v1/rerank', { model: 'bert-rerank-f16', query: q, documents: ['a'], top_n: 0 }), 400, null, 'top_n');
  assertError(await post('/v1/rerank', { model: 'bert-rerank-f16', query: q, documents: ['a'], texts: ['b'] }), 400, null, 'not both');
  assertError(await post('/rerank', { query: q, texts: ['a'] }), 400, 'model_required', 'bert-rerank-f16');
  assertError(await post('/v1/score', { model: 'bert-rerank-f16', text_1: ['a', 'b'], text_2: ['c', 'd', 'e'] }), 400, null, 'same length');
  assertError(await post('/v1/score', { model: 'bert-rerank-f16', text_1: 'a' }), 400, null, 'text_2');
  assertError(await post('/v1/classify', { model: classifier, input: [] }), 400, null, 'empty');
  assertError(await post('/v1/classify', { model: classifier, input: 'a', truncate: 'yes' }), 400, null, 'truncate');
  assertError(await post('/v1/rerank', '{"model": "bert-rerank-f16", "query": '), 400, 'invalid_json');
  const long = 'word '.repeat(500);
  assertError(await post('/v1/classify', { model: classifier, input: long }), 400, 'too_many_tokens', '64 tokens');
  const cut = await post('/v1/classify', { model: classifier, input: long, truncate: true });
  assert.equal(cut.status, 200, JSON.stringify(cut.body));
  assert.equal(cut.body.usage.prompt_tokens, 64);
  // The server keeps serving after every refusal.
  const ok = await post('/v1/score', { model: 'bert-rerank-f16', text_1: 'a', text_2: 'b' });
  assert.equal(ok.status, 200);
});
