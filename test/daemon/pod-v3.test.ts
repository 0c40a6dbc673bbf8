// The real shim binary in the start exchange of each containerd version (the
// inputs built as each version's source builds them, the reply read the way
// it reads it), and a CRI pod driven the way containerd 2.x drives a shim that
// answered version 3: the pod's other containers come over
// containerd.task.v3.Task on new connections, with no `start` and no `delete`
// exec, so the Delete RPC alone must leave nothing behind.
import { DELETE_RESPONSE_FILE, SHIM_PID_FILE } from '../../src/bundle/files.js';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fromBinary } from '@bufbuild/protobuf';
import { Task } from '../../src/gen/containerd/task/v2/shim_pb.js';
import { BootstrapResultSchema } from '../../src/gen/containerd/runtime/bootstrap/v1/bootstrap_pb.js';
import { TtrpcClient, createClient } from '../../src/ttrpc/client.js';
import { mountsUnder } from '../../src/host/cleanup.js';
import {
  type Containerd,
  CRI_NAMESPACE,
  MODULES,
  processAlive,
  runShim,
  startContainerd,
  TASK_SERVICE_V3,
  until,
  writeHandBundle,
  acceptReply,
  startCall,
  type ContainerdVersion,
} from '../harness/index.js';

const HELLO = path.join(MODULES, 'hello.wasm');
const NS = CRI_NAMESPACE;
const V3 = TASK_SERVICE_V3;

let ctd: Containerd;

before(async () => {
  ctd = await startContainerd({ name: 'shim-v3', namespace: NS });
});
after(async () => {
  await ctd?.stop();
});

function bundleFor(id: string, annotations: Record<string, string>, args = ['/x.wasm']): string {
  return writeHandBundle(ctd, id, { namespace: NS, annotations, args, rootfs: true });
}

/** `<shim> -namespace NS -address A -publish-binary P -id ID start` with the env and stdin containerd `version` gives it. */
function start(version: ContainerdVersion, id: string, bundle: string, env: Record<string, string> = {}) {
  const callInputs = startCall(version, {
    id,
    namespace: NS,
    grpcAddress: ctd.address,
    ttrpcAddress: ctd.ttrpcAddress,
    configPath: '/etc/wasmts.toml',
    env,
  });
  const base = { ...process.env };
  for (const k of ['MAX_SHIM_VERSION', 'WASMTS_SHIM_VERSION', 'GRPC_ADDRESS', 'NAMESPACE']) delete base[k];
  const r = runShim(ctd, ['-id', id, 'start'], {
    namespace: NS,
    cwd: bundle,
    input: callInputs.stdin,
    env: { ...base, WASMTS_SPARE: '0', ...callInputs.env },
  });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr.length, 0, 'nothing on stderr: containerd reads stdout and stderr combined');
  return { raw: new Uint8Array(r.raw), accepted: acceptReply(version, r.raw) };
}

function runDelete(id: string, bundle: string): void {
  const r = runShim(ctd, ['-id', id, '-bundle', bundle, 'delete'], { cwd: bundle, namespace: NS });
  assert.equal(r.code, 0, r.stderr);
}

const alive = processAlive;

async function taskClient(address: string, service: string) {
  const conn = await TtrpcClient.connect(address);
  return { conn, task: createClient(Task, conn, { service }) };
}

describe("the shim binary in each containerd version's start exchange", () => {
  const cases: [ContainerdVersion, Record<string, string>, string][] = [
    ['1.6', {}, 'containerd.task.v2.Task'],
    ['1.7', {}, 'containerd.task.v2.Task'],
    ['2.0', {}, 'containerd.task.v2.Task'],
    ['2.0', { WASMTS_SHIM_VERSION: '3' }, V3],
    ['2.3', {}, V3],
  ];
  let n = 0;
  for (const [version, env, service] of cases) {
    test(`${version}${env.WASMTS_SHIM_VERSION ? ' with WASMTS_SHIM_VERSION=3' : ''}: accepted, and the task API answers on ${service}`, async () => {
      const id = `v3-exchange-${n++}`;
      const bundle = bundleFor(id, {});
      const { accepted } = start(version, id, bundle, env);
      assert.equal(accepted.service, service);
      const pid = Number(fs.readFileSync(path.join(bundle, 'shim.pid'), 'utf8'));
      const { conn, task } = await taskClient(accepted.address, accepted.service);
      try {
        assert.equal((await task.connect({ id })).shimPid, pid);
        await task.shutdown({ id });
      } finally {
        conn.close();
      }
      // the key's daemon lives on; the socket it served this container on is gone
      await until(`the socket of ${id} to be removed`, () => !fs.existsSync(accepted.address.replace('unix://', '')));
      assert.ok(alive(pid), 'the shared daemon lives on');
      runDelete(id, bundle);
      fs.rmSync(bundle, { recursive: true, force: true });
    });
  }
});

describe('a CRI pod under containerd 2.x, after version 3', () => {
  test("the pod's container: Create/Start/Wait/Delete over v3 with no start or delete exec; Delete leaves no mount, process or file of its own", async () => {
    const pod = 'podv3';
    const sandboxId = 'podv3-sandbox';
    const sandbox = bundleFor(
      sandboxId,
      { 'io.kubernetes.cri.container-type': 'sandbox', 'io.kubernetes.cri.sandbox-id': pod },
      ['/pause'],
    );
    // The sandbox ("pause") container is started with `start` (containerd 2.3's exchange) ...
    const { raw, accepted } = start('2.3', sandboxId, sandbox);
    assert.equal(fromBinary(BootstrapResultSchema, raw).version, 3);
    const daemonPid = Number(fs.readFileSync(path.join(sandbox, 'shim.pid'), 'utf8'));
    const s = await taskClient(accepted.address, V3);
    await s.task.create({ id: sandboxId, bundle: sandbox });
    await s.task.start({ id: sandboxId });

    // ... the pod's container is not: containerd reuses the sandbox's bootstrap.json address.
    const appId = 'podv3-app';
    const app = bundleFor(
      appId,
      { 'io.kubernetes.cri.container-type': 'container', 'io.kubernetes.cri.sandbox-id': pod },
      ['/hello.wasm'],
    );
    const image = path.join(ctd.tmp, 'podv3-image');
    fs.mkdirSync(image, { recursive: true });
    fs.copyFileSync(HELLO, path.join(image, 'hello.wasm'));
    const stdout = path.join(ctd.tmp, 'podv3-app.out');
    const c = await taskClient(accepted.address, V3); // loadShim: a connection of its own
    try {
      const created = await c.task.create({
        id: appId,
        bundle: app,
        stdout: `file://${stdout}`,
        rootfs: [{ type: 'bind', source: image, target: '', options: ['rbind', 'rw'] }],
      });
      assert.ok(alive(created.pid));
      assert.deepEqual(mountsUnder(path.join(app, 'rootfs')), [path.join(app, 'rootfs')], 'Create mounted the rootfs');
      await c.task.start({ id: appId });
      const waited = await c.task.wait({ id: appId });
      assert.equal(waited.exitStatus, 0);
      assert.equal(fs.readFileSync(stdout, 'utf8'), 'hello from wasm\n');
      const deleted = await c.task.delete({ id: appId });
      assert.equal(deleted.exitStatus, 0);
      // What `delete` would otherwise have cleaned: nothing is left for it.
      assert.deepEqual(mountsUnder(app), [], 'rootfs unmounted');
      assert.equal(alive(created.pid), false, 'the Wasm child is gone');
      // shim.pid (the daemon's) and the DeleteResponse left for a `delete` exec are the shim's records, not leftovers
      const left = fs
        .readdirSync(app)
        .filter((f) => f !== SHIM_PID_FILE && f !== DELETE_RESPONSE_FILE)
        .sort();
      assert.deepEqual(left, ['config.json', 'rootfs'], 'no pid file, mount record or address file');
      await assert.rejects(c.task.state({ id: appId }), /not found/);
      // 2.x sends no Shutdown for a sandboxed container; the sandbox keeps the daemon.
      assert.ok(alive(daemonPid));
    } finally {
      c.conn.close();
    }

    // The sandbox goes the ordinary way: Kill, Delete, Shutdown, then `delete` (it came through `start`).
    try {
      await s.task.kill({ id: sandboxId, signal: 9 });
      assert.equal((await s.task.wait({ id: sandboxId })).exitStatus, 137);
      await s.task.delete({ id: sandboxId });
      await s.task.shutdown({ id: sandboxId });
    } finally {
      s.conn.close();
    }
    await until('the pod socket to be removed', () => !fs.existsSync(accepted.address.slice('unix://'.length)));
    runDelete(sandboxId, sandbox);
    assert.equal(fs.existsSync(accepted.address.slice('unix://'.length)), false, 'socket removed');
    assert.deepEqual(mountsUnder(sandbox), []);
    fs.rmSync(sandbox, { recursive: true, force: true });
    fs.rmSync(app, { recursive: true, force: true });
  });
});
