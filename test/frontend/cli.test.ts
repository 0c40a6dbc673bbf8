// The shim binary's contract with containerd: `start` with containerd's exact
// argv and cwd, the address it prints and writes, Connect/Shutdown over our
// own ttrpc client, and an idempotent `delete`. stdin is a pipe here, so
// `start` always takes the Node path (test/daemon/daemon.test.ts covers the sh
// front end's fast path); the daemon is the key's long-lived one: Shutdown
// closes one socket and removes its file, and the daemon stays.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { anyPack } from '@bufbuild/protobuf/wkt';
import {
  processAlive,
  runShim as runShimAs,
  SHIM_BIN as SHIM,
  sleep,
  socketPathFor,
  startContainerd,
  until,
  writeHandBundle,
  type Containerd,
} from '../harness/index.js';
import { TtrpcClient, createClient } from '../../src/ttrpc/client.js';
import { Task, DeleteResponseSchema } from '../../src/gen/containerd/task/v2/shim_pb.js';
import {
  BootstrapParamsSchema,
  BootstrapResultSchema,
} from '../../src/gen/containerd/runtime/bootstrap/v1/bootstrap_pb.js';
import { OptionsSchema } from '../../src/gen/runtimeoptions/v1/api_pb.js';

const NS = 'default';

let ctd: Containerd;

before(async () => {
  ctd = await startContainerd({ name: 'shim-cli' });
});
after(async () => {
  await ctd?.stop();
});

/** A bundle where containerd 1.6 puts it: <state>/io.containerd.runtime.v2.task/<ns>/<id>. */
function bundleFor(id: string, annotations: Record<string, string> = {}): string {
  return writeHandBundle(ctd, id, { annotations });
}

function runShim(args: string[], cwd: string, input?: Uint8Array) {
  return runShimAs(ctd, args, { cwd, input });
}

function expectedAddress(grouping: string): string {
  return `unix://${socketPathFor(ctd.address, NS, grouping)}`;
}

const alive = processAlive;

async function waitGone(pid: number, ms = 5000): Promise<void> {
  await until(`daemon ${pid} to leave`, () => !alive(pid), ms, 20).catch(() => undefined);
  assert.equal(alive(pid), false, `daemon ${pid} still running`);
}

/** Shutdown of a socket with no container closes it at once: its file is gone, the daemon stays. */
async function assertSocketClosed(address: string, daemonPid: number): Promise<void> {
  const socketPath = address.slice('unix://'.length);
  await until(`${socketPath} to go`, () => !fs.existsSync(socketPath), 2_000, 20).catch(() => undefined);
  assert.equal(fs.existsSync(socketPath), false, `socket ${socketPath} still there after Shutdown`);
  await sleep(200);
  assert.ok(alive(daemonPid), `the long-lived daemon ${daemonPid} left after one socket's Shutdown`);
}

async function shutdown(address: string, id: string) {
  const conn = await TtrpcClient.connect(address);
  try {
    const task = createClient(Task, conn);
    const info = await task.connect({ id });
    await task.shutdown({ id });
    return info;
  } finally {
    conn.close();
  }
}

describe('containerd-shim-wasmts-v1', () => {
  test('-v prints name, version and revision', () => {
    const r = spawnSync(SHIM, ['-v']);
    assert.equal(r.status, 0);
    assert.match(r.stdout.toString(), /^containerd-shim-wasmts-v1:\n {2}Version: \d+\.\d+\.\d+.*\n {2}Revision: \S+\n/);
  });

  test('start → Connect → Shutdown → delete twice', async () => {
    const id = 'cli-basic';
    const bundle = bundleFor(id);
    const r = runShim(['-id', id, 'start'], bundle);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '', 'start must print nothing on stderr');
    assert.equal(r.stdout, expectedAddress(id));
    assert.equal(fs.readFileSync(path.join(bundle, 'address'), 'utf8'), r.stdout, 'address file, no newline');
    const socketPath = r.stdout.slice('unix://'.length);
    assert.equal(fs.statSync(socketPath).mode & 0o777, 0o600, 'socket only for its owner');
    const daemonPid = Number(fs.readFileSync(path.join(bundle, 'shim.pid'), 'utf8'));
    assert.ok(alive(daemonPid));

    const info = await shutdown(r.stdout, id);
    assert.equal(info.shimPid, daemonPid);
    assert.equal(info.taskPid, 0);
    assert.ok(info.version);
    await assertSocketClosed(r.stdout, daemonPid);

    for (let i = 0; i < 2; i++) {
      const d = runShim(['-id', id, '-bundle', bundle, 'delete'], bundle);
      assert.equal(d.code, 0, d.stderr);
      const resp = fromBinary(DeleteResponseSchema, d.raw);
      assert.equal(resp.exitStatus, 137);
      assert.ok(resp.exitedAt && resp.exitedAt.seconds > 0n);
      assert.equal(fs.existsSync(path.join(bundle, 'address')), false);
    }
  });

  test('containers of one sandbox share a socket; Shutdown closes it and keeps the daemon', async () => {
    const sandbox = 'pod-1234';
    const a = bundleFor('cli-pod-a', { 'io.kubernetes.cri.sandbox-id': sandbox });
    const b = bundleFor('cli-pod-b', { 'io.kubernetes.cri.sandbox-id': sandbox });
    const ra = runShim(['-id', 'cli-pod-a', 'start'], a);
    const rb = runShim(['-id', 'cli-pod-b', 'start'], b);
    assert.equal(ra.code, 0, ra.stderr);
    assert.equal(rb.code, 0, rb.stderr);
    assert.equal(ra.stdout, expectedAddress(sandbox));
    assert.equal(rb.stdout, ra.stdout, 'second start reuses the live daemon');
    assert.equal(
      fs.existsSync(path.join(b, 'shim.pid')),
      false,
      'the second start shared the live socket (no handoff, no new daemon)',
    );
    const pid = Number(fs.readFileSync(path.join(a, 'shim.pid'), 'utf8'));
    await shutdown(ra.stdout, 'cli-pod-a');
    await assertSocketClosed(ra.stdout, pid);
    for (const [id, dir] of [
      ['cli-pod-a', a],
      ['cli-pod-b', b],
    ] as const) {
      assert.equal(runShim(['-id', id, 'delete'], dir).code, 0);
    }
  });

  test('start tolerates runtime options and 2.3 BootstrapParams on stdin; BootstrapParams get a BootstrapResult', async () => {
    const inputs: [string, Uint8Array][] = [
      [
        'runtime options Any',
        toBinary(
          (await import('@bufbuild/protobuf/wkt')).AnySchema,
          anyPack(OptionsSchema, create(OptionsSchema, { typeUrl: 'x', configPath: '/etc/x.toml' })),
        ),
      ],
      [
        'BootstrapParams',
        toBinary(
          BootstrapParamsSchema,
          create(BootstrapParamsSchema, {
            instanceId: 'cli-boot-1',
            namespace: NS,
            containerdTtrpcAddress: `unix://${ctd.ttrpcAddress}`,
            containerdGrpcAddress: ctd.address,
          }),
        ),
      ],
      ['BootstrapParams JSON', Buffer.from(JSON.stringify({ instance_id: 'cli-boot-2', namespace: NS }))],
      ['garbage', Buffer.from([0xff, 0xff, 0xff, 0x01, 0x02])],
    ];
    let n = 0;
    const daemons = new Set<number>();
    for (const [what, input] of inputs) {
      const id = `cli-stdin-${n++}`;
      const bundle = bundleFor(id);
      const r = runShim(['-id', id, 'start'], bundle, input);
      assert.equal(r.code, 0, `${what}: ${r.stderr}`);
      assert.equal(r.stderr, '', what);
      if (what.startsWith('BootstrapParams')) {
        const result = fromBinary(BootstrapResultSchema, r.raw);
        assert.deepEqual([result.version, result.address, result.protocol], [3, expectedAddress(id), 'ttrpc'], what);
        r.stdout = result.address;
      } else {
        assert.equal(r.stdout, expectedAddress(id), what);
      }
      const pid = Number(fs.readFileSync(path.join(bundle, 'shim.pid'), 'utf8'));
      daemons.add(pid);
      const info = await shutdown(r.stdout, id);
      assert.equal(info.shimPid, pid, what);
      await assertSocketClosed(r.stdout, pid);
      assert.equal(runShim(['-id', id, 'delete'], bundle).code, 0);
    }
    assert.equal(daemons.size, 1, `every start went to the key's one daemon: ${[...daemons].join(', ')}`);
  });

  test('a stale socket left by a killed daemon is replaced; delete cleans it up', async () => {
    const id = 'cli-stale';
    const bundle = bundleFor(id);
    const first = runShim(['-id', id, 'start'], bundle);
    assert.equal(first.code, 0, first.stderr);
    const pid = Number(fs.readFileSync(path.join(bundle, 'shim.pid'), 'utf8'));
    process.kill(pid, 'SIGKILL');
    await waitGone(pid);
    const socketPath = first.stdout.slice('unix://'.length);
    assert.ok(fs.existsSync(socketPath), 'a SIGKILLed daemon leaves its socket');

    const d = runShim(['-id', id, 'delete'], bundle);
    assert.equal(d.code, 0, d.stderr);
    assert.equal(fs.existsSync(socketPath), false, 'delete removes a socket nobody serves');

    fs.writeFileSync(socketPath, ''); // a leftover file where the socket goes
    const again = runShim(['-id', id, 'start'], bundle);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, first.stdout);
    const pid2 = Number(fs.readFileSync(path.join(bundle, 'shim.pid'), 'utf8'));
    assert.notEqual(pid2, pid, 'a new daemon took over from the killed one');
    assert.ok(fs.statSync(socketPath).isSocket(), 'the leftover file was replaced by a listening socket');
    const info = await shutdown(again.stdout, id);
    assert.equal(info.shimPid, pid2);
    await assertSocketClosed(again.stdout, pid2);
    assert.equal(runShim(['-id', id, 'delete'], bundle).code, 0);
  });

  test('bad invocations fail with one line and a non-zero status', () => {
    const bundle = bundleFor('cli-bad');
    for (const [args, pattern] of [
      [['start'], /-id is required/],
      [['-id', 'x', '-bogus', 'start'], /flag provided but not defined: -bogus/],
      [['-id', 'x', 'launch'], /unknown action "launch"/],
    ] as const) {
      const r = runShim([...args], bundle);
      assert.notEqual(r.code, 0);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, pattern);
      assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
    }
  });
});
