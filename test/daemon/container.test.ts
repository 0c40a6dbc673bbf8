// Create through the Task service over a fake engine: what a bad bundle, a
// refused module or an unexpected failure answers (and that nothing is left
// behind), and what the engine is asked to run.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Code } from '../../src/ttrpc/status.js';
import { ModuleError } from '../../src/daemon/engine/engine.js';
import { PAUSE_MODULE } from '../../src/child/pause-module.js';
import { CONTAINER_TYPE_ANNOTATION } from '../../src/bundle/index.js';
import { INIT_PID_FILE as PID_FILE } from '../../src/bundle/files.js';
import { harness, makeBundle, rejectsWith, v2Call, type Harness } from './in-process.js';
import { CHILD_TRACE } from '../../src/daemon/call-values.js';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

function fresh(): Harness {
  const h = harness();
  dirs.push(h.dir);
  return h;
}

const INVALID = ['invalid-argument', Code.InvalidArgument] as const;

/** A failed Create leaves no container, no pid file and the id free for the next try. */
async function assertNothingLeft(h: Harness, id: string, bundle: string): Promise<void> {
  assert.equal(h.service.containers.size, 0);
  assert.equal(h.service.busy, false);
  assert.ok(!fs.existsSync(path.join(bundle, PID_FILE)));
  const failure = h.log.find((l) => l.level === 'error' && l.msg === 'create failed');
  assert.equal(failure?.fields?.id, id, 'the log line names the container');
  fs.writeFileSync(
    path.join(bundle, 'config.json'),
    fs.readFileSync(path.join(makeBundle(h.dir, 'good'), 'config.json')),
  );
  await h.calls.create(id, bundle);
}

describe('Create refusals name the container and the cause', () => {
  test('config.json that is not JSON', async () => {
    const h = fresh();
    const bundle = makeBundle(h.dir, 'json', { config: '{' });
    await rejectsWith(h.calls.create('json', bundle), ...INVALID, /^container json: .*config.json is not valid JSON/);
    await assertNothingLeft(h, 'json', bundle);
  });

  test('a spec without process args', async () => {
    const h = fresh();
    const bundle = makeBundle(h.dir, 'noargs', { args: [] });
    await rejectsWith(h.calls.create('noargs', bundle), ...INVALID, /process.args must be a non-empty list/);
    await assertNothingLeft(h, 'noargs', bundle);
  });

  test('a module missing from the rootfs, or no WebAssembly', async () => {
    const h = fresh();
    const bundle = makeBundle(h.dir, 'missing', { args: ['/nope.wasm'] });
    await rejectsWith(
      h.calls.create('missing', bundle),
      ...INVALID,
      /^container missing: module \/nope.wasm not found in the container's rootfs/,
    );
    const native = makeBundle(h.dir, 'native', { args: ['/bin/app'] });
    fs.mkdirSync(path.join(native, 'rootfs', 'bin'));
    fs.writeFileSync(path.join(native, 'rootfs', 'bin', 'app'), '\x7fELF\x02\x01\x01');
    await rejectsWith(
      h.calls.create('native', native),
      ...INVALID,
      /^container native: \/bin\/app is not a WebAssembly module: no \\0asm magic \(it is an ELF executable/,
    );
    assert.equal(h.engine.instances.length, 0, 'nothing reached the engine');
  });

  test('stdout that does not exist, binary:// log drivers', async () => {
    const h = fresh();
    const bundle = makeBundle(h.dir, 'io');
    await rejectsWith(
      h.calls.create('io', bundle, { stdout: path.join(h.dir, 'no-fifo') }),
      ...INVALID,
      `container io: stdout ${path.join(h.dir, 'no-fifo')} does not exist`,
    );
    await rejectsWith(
      h.calls.create('io', bundle, { stderr: 'binary:///usr/bin/logger' }),
      ...INVALID,
      'container io: binary:// log drivers are not supported, use a FIFO or file:// path',
    );
  });

  test("a module the engine refuses is the caller's to fix; any other failure is Unknown; both keep the message", async () => {
    const h = fresh();
    const bundle = makeBundle(h.dir, 'refused');
    h.engine.failNextPrepare(new ModuleError('component imports wasi:http/outgoing-handler, which the host lacks'));
    await rejectsWith(
      h.calls.create('refused', bundle),
      ...INVALID,
      'container refused: component imports wasi:http/outgoing-handler, which the host lacks',
    );
    await assertNothingLeft(h, 'refused', bundle);
    const other = makeBundle(h.dir, 'eio');
    h.engine.failNextPrepare(new Error('read EIO'));
    await rejectsWith(h.calls.create('eio', other), 'unknown', Code.Unknown, 'container eio: read EIO');
  });
});

describe('what Create hands the engine', () => {
  test("the trace context in the call's values (CHILD_TRACE), and the bundle to beforeCreate first", async () => {
    const seen: string[] = [];
    const h = harness({ beforeCreate: (id, bundle) => void seen.push(`${id} ${bundle}`) });
    dirs.push(h.dir);
    const bundle = makeBundle(h.dir, 'traced');
    const ctx = v2Call('Create');
    ctx.values.set(CHILD_TRACE, { env: { TRACEPARENT: 'from the interceptor' } });
    await h.calls.create('traced', bundle, {}, ctx);
    assert.deepEqual(seen, [`traced ${bundle}`]);
    assert.deepEqual(h.engine.instance('traced').spec.trace, { env: { TRACEPARENT: 'from the interceptor' } });
  });

  test("a pod's sandbox container runs the built-in pause module instead of its image's binary", async () => {
    const h = fresh();
    const bundle = makeBundle(h.dir, 'sandbox', {
      args: ['/pause'],
      annotations: { [CONTAINER_TYPE_ANNOTATION]: 'sandbox' },
    });
    await h.calls.create('sandbox', bundle);
    const spec = h.engine.instance('sandbox').spec;
    assert.equal(spec.modulePath, path.join(bundle, 'wasmts-pause.wasm'));
    assert.deepEqual(fs.readFileSync(spec.modulePath), Buffer.from(PAUSE_MODULE));
    assert.deepEqual(spec.args, ['/pause']);
  });

  test('module.wasm#export runs that export; args, env and the rootfs preopen come from the spec', async () => {
    const h = fresh();
    const bundle = makeBundle(h.dir, 'export', { args: ['app.wasm#serve', '--port', '80'] });
    await h.calls.create('export', bundle);
    const spec = h.engine.instance('export').spec;
    assert.deepEqual([spec.exportName, spec.args], ['serve', ['/app.wasm', '--port', '80']]);
    assert.deepEqual(spec.preopens, { '/': path.join(bundle, 'rootfs') });
    assert.deepEqual(spec.env, ['PATH=/', 'PWD=/']);
  });
});
