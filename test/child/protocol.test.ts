// The daemon → child messages (src/child/protocol.ts parseToChild): a job is
// rebuilt from checked fields, and a child sent one it cannot use says why and
// exits as a failed setup rather than running half a job.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import {
  parseToChild,
  ProtocolError,
  SETUP_EXIT_STATUS,
  type ChildJob,
  parseFromChild,
} from '../../src/child/protocol.js';

const job: ChildJob = {
  containerId: 'c1',
  execId: '',
  modulePath: '/b/rootfs/m.wasm',
  exportName: '_start',
  args: ['/m.wasm', 'x'],
  env: ['A=1'],
  preopens: { '/': '/b/rootfs' },
  stdout: '/run/fifo-out',
  stderr: '',
  user: { uid: 1000, gid: 1000, additionalGids: [5] },
  trace: { env: { TRACEPARENT: '00-aa-bb-01' }, recordUnder: { traceparent: '00-aa-bb-01', tracestate: 'k=v' } },
  componentCache: { dir: '/var/lib/wasmts/components', maxBytes: 512 << 20 },
};

/** The job with one field replaced (undefined: removed). */
function withField(field: string, value: unknown): { t: 'job'; job: Record<string, unknown> } {
  const copy: Record<string, unknown> = { ...job };
  if (value === undefined) delete copy[field];
  else copy[field] = value;
  return { t: 'job', job: copy };
}

function refused(raw: unknown, pattern: RegExp): void {
  assert.throws(
    () => parseToChild(raw),
    (e: unknown) => e instanceof ProtocolError && pattern.test(e.message),
    `${JSON.stringify(raw)} should be refused with ${pattern}`,
  );
}

describe('parseToChild', () => {
  test('a job survives the IPC round trip unchanged; run carries nothing', () => {
    assert.deepEqual(parseToChild(JSON.parse(JSON.stringify({ t: 'job', job }))), { t: 'job', job });
    assert.deepEqual(parseToChild({ t: 'run', extra: 1 }), { t: 'run' });
    const { user: _u, trace: _t, ...plain } = job;
    assert.deepEqual(parseToChild({ t: 'job', job: plain }), { t: 'job', job: plain });
  });

  test('fields the job does not have are left behind', () => {
    const parsed = parseToChild({ t: 'job', job: { ...job, stdin: {}, surprise: 1 } });
    assert.deepEqual(parsed, { t: 'job', job });
  });

  test('messages that are not a job or run', () => {
    refused(null, /must be an object/);
    refused('run', /must be an object/);
    refused({ t: 'jobs' }, /unknown message type "jobs"/);
    refused({}, /unknown message type undefined/);
    refused({ t: 'job' }, /^job must be an object$/);
  });

  test('each field of a job, wrong', () => {
    refused(withField('containerId', undefined), /^job\.containerId must be a string$/);
    refused(withField('execId', 1), /^job\.execId must be a string$/);
    refused(withField('modulePath', 'rel.wasm'), /^job\.modulePath must be an absolute path$/);
    refused(withField('exportName', ''), /^job\.exportName must be a name$/);
    refused(withField('args', 'x'), /^job\.args must be a list of strings$/);
    refused(withField('env', [1]), /^job\.env must be a list of strings$/);
    refused(withField('preopens', { '/': 'relative' }), /^job\.preopens must be an object of strings$/);
    refused(withField('preopens', ['/']), /^job\.preopens/);
    refused(withField('stdout', null), /^job\.stdout must be a string$/);
    refused(withField('stderr', undefined), /^job\.stderr must be a string$/);
    refused(withField('user', { uid: -1, gid: 0 }), /^job\.user must be numeric uid and gid$/);
    refused(withField('user', { uid: 0, gid: 0, additionalGids: ['x'] }), /^job\.user\.additionalGids/);
    refused(withField('trace', { env: { A: 1 } }), /^job\.trace\.env must be an object of strings$/);
    refused(withField('trace', { env: {}, recordUnder: { tracestate: 'x' } }), /^job\.trace\.recordUnder/);
    refused(withField('componentCache', undefined), /^job\.componentCache/);
    refused(withField('componentCache', { dir: 'rel', maxBytes: 1 }), /^job\.componentCache/);
    refused(
      withField('componentCache', { dir: '/c', maxBytes: 0 }),
      /^job\.componentCache\.maxBytes must be positive$/,
    );
    refused(withField('componentCache', { dir: '/c', maxBytes: 1.5 }), /^job\.componentCache/);
  });

  test('parseFromChild still drops what is not a child message', () => {
    assert.equal(parseFromChild({ t: 'job', job }), undefined);
  });
});

test('a Wasm child sent a job it cannot use reports why and exits as a failed setup', { timeout: 30_000 }, async () => {
  const entry = path.resolve('dist/wasm-child.cjs');
  const child = spawn(process.execPath, [entry], { stdio: ['pipe', 'ignore', 'ignore', 'ipc'], env: {}, cwd: '/' });
  const messages: unknown[] = [];
  child.on('message', (m) => messages.push(m));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.send(withField('modulePath', 'relative.wasm'));
  assert.equal(await exited, SETUP_EXIT_STATUS);
  assert.deepEqual(
    messages.map((m) => parseFromChild(m)),
    [{ t: 'error', message: 'the Wasm child got a message it cannot use: job.modulePath must be an absolute path' }],
  );
});
