// The control socket's JSON lines (src/handoff/handoff.ts): a handoff is
// rebuilt from checked fields, and any reply but a well-formed success is a
// refusal, so Node's `start` then starts a daemon itself.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseHandoff, parseHandoffReply } from '../../src/handoff/handoff.js';

const handoff = { socketPath: '/run/containerd/s/abc', namespace: 'default', id: 'c1', bundle: '/run/b/c1' };

test('a handoff comes back with its four fields and nothing else', () => {
  assert.deepEqual(parseHandoff(JSON.stringify({ ...handoff, extra: { x: 1 } })), handoff);
});

test('each field of a handoff, wrong', () => {
  const bad = (patch: Record<string, unknown>, pattern: RegExp) =>
    assert.throws(() => parseHandoff(JSON.stringify({ ...handoff, ...patch })), { message: pattern });
  bad({ socketPath: 'relative' }, /^handoff: socketPath must be an absolute path$/);
  bad({ socketPath: '/run/x\u0000y' }, /socketPath must be an absolute path/);
  bad({ namespace: '' }, /^handoff: namespace and id are required$/);
  bad({ id: 7 }, /namespace and id are required/);
  bad({ bundle: undefined }, /^handoff: bundle must be an absolute path$/);
  assert.throws(() => parseHandoff('[1]'), { message: 'handoff: not an object' });
  assert.throws(() => parseHandoff('null'), { message: 'handoff: not an object' });
  assert.throws(() => parseHandoff('{"socketPath'), { message: /^handoff: not JSON: / });
});

test('replies: only ok with a positive whole pid is a success', () => {
  assert.deepEqual(parseHandoffReply('{"ok":true,"pid":123}'), { ok: true, pid: 123 });
  assert.deepEqual(parseHandoffReply('{"ok":false,"error":"busy"}'), { ok: false, error: 'busy' });
  for (const line of [
    '{"ok":true}',
    '{"ok":true,"pid":"1"}',
    '{"ok":true,"pid":-1}',
    '{"ok":true,"pid":1.5}',
    '[]',
    '7',
  ])
    assert.deepEqual(parseHandoffReply(line), { ok: false, error: 'malformed reply' }, line);
  assert.throws(() => parseHandoffReply('nope'), { message: /^handoff reply: not JSON: / });
});
