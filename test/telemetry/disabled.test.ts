import { test } from 'node:test';
import assert from 'node:assert/strict';
import { envWithoutOtel } from '../harness/index.js';
import { runFixture } from './helpers.js';

test('disabled tracing never loads @opentelemetry (no worker, no SDK import)', async () => {
  const r = await runFixture('disabled-run.ts', [], envWithoutOtel());
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
    states: string[];
    before: { cache: string[]; resolved: string[]; sawOwnModules: boolean };
    control: { cache: number; resolved: number };
  };
  assert.deepEqual(out.states, ['false:disabled', 'false:disabled', 'false:disabled', 'false:disabled']);
  assert.ok(out.before.sawOwnModules, 'the resolve probe works');
  assert.deepEqual(out.before.resolved, []);
  assert.deepEqual(out.before.cache, []);
  assert.ok(
    out.control.resolved > 0 && out.control.cache > 0,
    `the probes detect an OpenTelemetry import: ${JSON.stringify(out.control)}`,
  );
});
