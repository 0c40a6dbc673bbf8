// The names in src/telemetry/semconv.ts are the pinned conventions' own
// (@opentelemetry/semantic-conventions, pinned in package.json).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as stable from '@opentelemetry/semantic-conventions';
import * as incubating from '@opentelemetry/semantic-conventions/incubating';
import * as ours from '../../src/telemetry/semconv.js';

test("every standard attribute name we emit is the pinned package's, and the pin is the version the docs name", () => {
  const lock = JSON.parse(readFileSync(new URL('../../package-lock.json', import.meta.url), 'utf8')) as {
    packages: Record<string, { version: string }>;
  };
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    devDependencies: Record<string, string>;
  };
  assert.equal(manifest.devDependencies['@opentelemetry/semantic-conventions'], ours.SEMCONV_VERSION, 'pinned exactly');
  assert.equal(lock.packages['node_modules/@opentelemetry/semantic-conventions'].version, ours.SEMCONV_VERSION);
  const conventions = { ...incubating, ...stable } as unknown as Record<string, unknown>;
  const checked: string[] = [];
  for (const [name, value] of Object.entries(ours)) {
    if (!name.startsWith('ATTR_') || name.startsWith('ATTR_WASM')) continue;
    assert.equal(value, conventions[name], `${name}`);
    checked.push(String(value));
  }
  assert.ok(
    checked.includes('rpc.system.name') && checked.includes('process.exit.code') && checked.includes('error.type'),
    checked.join(', '),
  );
  // Stable in this version (not only incubating): what alerts are built on.
  for (const n of [
    'ATTR_RPC_SYSTEM_NAME',
    'ATTR_RPC_METHOD',
    'ATTR_RPC_STATUS_CODE',
    'ATTR_ERROR_TYPE',
    'ATTR_SERVER_ADDRESS',
    'ATTR_CONTAINER_ID',
    'ATTR_CONTAINER_IMAGE_NAME',
  ]) {
    assert.ok(n in stable, `${n} is stable in ${ours.SEMCONV_VERSION}`);
  }
  const docs = readFileSync(new URL('../../docs/tracing.md', import.meta.url), 'utf8');
  assert.match(docs, new RegExp(`semantic conventions v${ours.SEMCONV_VERSION.replace(/\./g, '\\.')}`));
});

test('gRPC status names and the server-error rule', () => {
  assert.equal(ours.grpcStatusName(0), 'OK');
  assert.equal(ours.grpcStatusName(5), 'NOT_FOUND');
  assert.equal(ours.grpcStatusName(99), '99');
  assert.deepEqual([...Array(17).keys()].filter(ours.isServerError).map(ours.grpcStatusName), [
    'UNKNOWN',
    'DEADLINE_EXCEEDED',
    'UNIMPLEMENTED',
    'INTERNAL',
    'UNAVAILABLE',
    'DATA_LOSS',
  ]);
});
