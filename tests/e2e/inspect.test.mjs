// `fathom inspect DIR` on classifier heads: which of score / classify a directory gets, as the loaded model
// serves it (a several-label head classifies only; a one-label cross-encoder also scores and reranks).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';

import { binary, modelDir } from './server.mjs';

function inspect(name) {
  const out = execFileSync(binary, ['inspect', modelDir(name)], { encoding: 'utf8' });
  const line = (label) => out.split('\n').find((l) => l.startsWith(`${label}:`))?.slice(label.length + 1).trim();
  return { tasks: line('tasks'), endpoints: line('endpoints') };
}

for (const name of ['roberta-nli-f32', 'modernbert-nli-bf16-cls']) {
  test(`${name} (several labels): classify only`, () => {
    const r = inspect(name);
    assert.equal(r.tasks, 'classify');
    assert.equal(r.endpoints, '/v1/classify');
  });
}

for (const name of ['xlmr-rerank-f32', 'modernbert-rerank-mean']) {
  test(`${name} (one label): score and classify`, () => {
    const r = inspect(name);
    assert.equal(r.tasks, 'score, classify');
    assert.match(r.endpoints, /\/v1\/rerank.*\/v1\/score.*\/v1\/classify/);
  });
}
