// Unit tests of the shim's small pure pieces: flags, socket address, start's
// stdin, spec checks, entrypoint resolution and the process state machine.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { create, toBinary, fromBinary } from '@bufbuild/protobuf';
import { parseShimFlags, FlagError } from '../../src/frontend/flags.js';
import { groupingFor, socketPathFor } from '../../src/handoff/socket-address.js';
import { parseStartInput } from '../../src/frontend/bootstrap.js';
import { resolveEntrypoint } from '../../src/daemon/container/entrypoint.js';
import { inRootfs } from '../../src/bundle/index.js';
import {
  CreatedState,
  RunningState,
  PausedState,
  StoppedState,
  type ProcessState,
} from '../../src/daemon/container/process-state.js';
import { encodeDeleteResponse } from '../../src/bundle/files.js';
import { DeleteResponseSchema } from '../../src/gen/containerd/task/v2/shim_pb.js';
import { BootstrapParamsSchema } from '../../src/gen/containerd/runtime/bootstrap/v1/bootstrap_pb.js';
import { Status } from '../../src/gen/containerd/types/task/task_pb.js';
import { Code } from '../../src/ttrpc/status.js';
import { toTtrpcError } from '../../src/daemon/errors.js';
import type { WasmInstance } from '../../src/daemon/engine/engine.js';

describe('flags', () => {
  test("containerd's start argv", () => {
    const f = parseShimFlags([
      '-namespace',
      'k8s.io',
      '-address',
      '/run/containerd/containerd.sock',
      '-publish-binary',
      '/usr/bin/containerd',
      '-id',
      'abc',
      '-debug',
      'start',
    ]);
    assert.deepEqual(
      [f.namespace, f.address, f.publishBinary, f.id, f.debug, f.action],
      ['k8s.io', '/run/containerd/containerd.sock', '/usr/bin/containerd', 'abc', true, 'start'],
    );
  });
  test('-name=value, --name and -v', () => {
    const f = parseShimFlags(['--id=x', '-bundle=/b', '-v']);
    assert.equal(f.id, 'x');
    assert.equal(f.bundle, '/b');
    assert.equal(f.version, true);
    assert.equal(f.action, '');
  });
  test('unknown flag and missing value', () => {
    assert.throws(() => parseShimFlags(['-nope', 'start']), FlagError);
    assert.throws(() => parseShimFlags(['-id']), /needs an argument/);
  });
});

describe('socket address', () => {
  test('sha256 of address/namespace/grouping, as containerd computes it', () => {
    const hex = createHash('sha256').update('/run/containerd/containerd.sock/default/c1').digest('hex');
    assert.equal(socketPathFor('/run/containerd/containerd.sock', 'default', 'c1'), `/run/containerd/s/${hex}`);
    // filepath.Join cleans: a trailing slash on the address changes nothing
    assert.equal(socketPathFor('/run/containerd/containerd.sock/', 'default', 'c1'), `/run/containerd/s/${hex}`);
  });
  test('grouping annotations', () => {
    assert.equal(groupingFor('c1', undefined), 'c1');
    assert.equal(groupingFor('c1', { 'io.kubernetes.cri.sandbox-id': 'pod' }), 'pod');
    assert.equal(groupingFor('c1', { 'io.containerd.runc.v2.group': 'g' }), 'g');
  });
});

describe("start's stdin", () => {
  test('empty, Any, BootstrapParams (binary and JSON), garbage', () => {
    assert.deepEqual(parseStartInput(new Uint8Array()), { kind: 'empty' });
    const params = toBinary(
      BootstrapParamsSchema,
      create(BootstrapParamsSchema, {
        instanceId: 'i',
        namespace: 'ns',
        containerdTtrpcAddress: 'unix:///t.sock',
        containerdGrpcAddress: '/g.sock',
        containerdBinary: '/bin/c',
        logLevel: -4,
      }),
    );
    assert.deepEqual(parseStartInput(params), {
      kind: 'bootstrap',
      instanceId: 'i',
      namespace: 'ns',
      logLevel: -4,
      ttrpcAddress: 'unix:///t.sock',
      grpcAddress: '/g.sock',
      containerdBinary: '/bin/c',
    });
    assert.deepEqual(parseStartInput(Buffer.from('{"namespace":"n2","containerd_ttrpc_address":"/x"}')), {
      kind: 'bootstrap',
      namespace: 'n2',
      ttrpcAddress: '/x',
    });
    // An Any: field 1 type_url, field 2 value
    const any = Buffer.from([0x0a, 0x03, 0x61, 0x2f, 0x62, 0x12, 0x01, 0x00]);
    assert.deepEqual(parseStartInput(any), { kind: 'other', optionTypes: ['a/b'] });
    assert.deepEqual(parseStartInput(Buffer.from([0xff, 0xff, 0xff])), { kind: 'other' });
    assert.deepEqual(parseStartInput(Buffer.from('{not json')), { kind: 'other' });
  });
});

describe('DeleteResponse encoding', () => {
  test('decodes with the generated schema', () => {
    const r = fromBinary(DeleteResponseSchema, encodeDeleteResponse(42, 137, 1_700_000_000_123));
    assert.equal(r.pid, 42);
    assert.equal(r.exitStatus, 137);
    assert.equal(r.exitedAt?.seconds, 1_700_000_000n);
    assert.equal(r.exitedAt?.nanos, 123_000_000);
  });
});

describe('entrypoint', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'wasmts-rootfs-'));
  after(() => fs.rmSync(root, { recursive: true, force: true }));
  fs.mkdirSync(path.join(root, 'app'));
  fs.writeFileSync(path.join(root, 'app/m.wasm'), Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
  fs.writeFileSync(path.join(root, 'elf'), Buffer.from('\x7fELF\x02\x01', 'latin1'));
  fs.mkdirSync(path.join(root, 'dir.wasm'));
  fs.symlinkSync('/app/m.wasm', path.join(root, 'abs-link.wasm'));
  fs.symlinkSync('../../../../../../app/m.wasm', path.join(root, 'app/rel-link.wasm'));
  fs.mkdirSync(path.join(root, 'usr/bin'), { recursive: true });
  fs.symlinkSync('/app/m.wasm', path.join(root, 'usr/bin/tool'));

  test('absolute, #export, relative to cwd, and through PATH', () => {
    assert.deepEqual(resolveEntrypoint(root, '/app/m.wasm', '/', []), {
      hostPath: path.join(root, 'app/m.wasm'),
      guestPath: '/app/m.wasm',
      exportName: '_start',
    });
    assert.equal(resolveEntrypoint(root, '/app/m.wasm#run', '/', []).exportName, 'run');
    assert.equal(resolveEntrypoint(root, './m.wasm', '/app', []).guestPath, '/app/m.wasm');
    assert.equal(resolveEntrypoint(root, 'tool', '/', ['PATH=/usr/bin']).hostPath, path.join(root, 'app/m.wasm'));
  });
  test('symlinks resolve inside the rootfs, never out of it', () => {
    assert.equal(resolveEntrypoint(root, '/abs-link.wasm', '/', []).hostPath, path.join(root, 'app/m.wasm'));
    assert.equal(resolveEntrypoint(root, '/app/rel-link.wasm', '/', []).hostPath, path.join(root, 'app/m.wasm'));
    assert.equal(inRootfs(root, '/../../etc/passwd'), path.join(root, 'etc/passwd'));
  });
  test('missing, directory, native ELF', () => {
    assert.throws(
      () => resolveEntrypoint(root, '/nope.wasm', '/', []),
      /module \/nope.wasm not found in the container's rootfs/,
    );
    assert.throws(() => resolveEntrypoint(root, '/dir.wasm', '/', []), /is a directory/);
    assert.throws(
      () => resolveEntrypoint(root, '/elf', '/', []),
      /\/elf is not a WebAssembly module: no \\0asm magic \(it is an ELF executable/,
    );
  });
});

describe('process states', () => {
  function fakeInstance(signals: number[]): WasmInstance {
    return {
      pid: 1234,
      exited: new Promise(() => undefined),
      run: () => signals.push(-1),
      signal: (s) => void signals.push(s),
      closeStdin: () => undefined,
      usage: () => undefined,
    };
  }
  const code = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      return toTtrpcError(e).code;
    }
    return Code.OK;
  };
  const exit = { status: 143, exitedAt: new Date() };

  test('created → running → paused → running → stopped → deleted', () => {
    const signals: number[] = [];
    const inst = fakeInstance(signals);
    const created = new CreatedState(inst);
    assert.equal(created.status, Status.CREATED);
    assert.equal(
      code(() => created.pause()),
      Code.FailedPrecondition,
    );
    assert.equal(
      code(() => created.delete()),
      Code.FailedPrecondition,
    );
    const running = created.start();
    assert.ok(running instanceof RunningState);
    assert.equal(
      code(() => running.start()),
      Code.FailedPrecondition,
    );
    assert.equal(
      code(() => running.delete()),
      Code.FailedPrecondition,
      'delete of a running process',
    );
    const paused = running.pause();
    assert.ok(paused instanceof PausedState);
    assert.equal(paused.status, Status.PAUSED);
    const resumed = paused.resume();
    assert.deepEqual(signals, [-1, 19, 18]);
    const stopped = resumed.exited(exit);
    assert.ok(stopped instanceof StoppedState);
    assert.equal(
      code(() => (stopped as ProcessState).kill(15)),
      Code.NotFound,
      'kill of an exited process',
    );
    assert.equal(
      code(() => stopped.start()),
      Code.FailedPrecondition,
    );
    const deleted = stopped.delete();
    assert.equal(deleted.exit.status, 143);
    assert.equal(
      code(() => deleted.delete()),
      Code.NotFound,
    );
  });
  test('a signal to a paused process is delivered by continuing it', () => {
    const signals: number[] = [];
    new RunningState(fakeInstance(signals)).pause().kill(15);
    assert.deepEqual(signals, [19, 15, 18]);
  });
  test('a vanished process answers NotFound', () => {
    const inst = fakeInstance([]);
    inst.signal = () => {
      throw new Error('ESRCH');
    };
    assert.equal(
      code(() => new RunningState(inst).kill(9)),
      Code.NotFound,
    );
  });
});
