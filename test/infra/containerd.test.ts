// End-to-end check of the test infrastructure itself: a private containerd,
// images built by src/image/oci.ts, runc running the native hello, a wasm
// image listed with its platform, restart(), and stop() leaving nothing behind.
// Needs root, containerd, runc, clang/cc (scripts/ensure-deps.sh).

import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { packImage } from '../../src/image/oci.js';
import { type Containerd, listMounts, listProcesses, startContainerd } from '../harness/index.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const modules = path.join(repo, 'build/modules');

const which = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const skip =
  process.getuid?.() !== 0
    ? 'needs root'
    : !which('containerd') || !which('runc')
      ? 'needs containerd and runc (scripts/ensure-deps.sh)'
      : false;

describe('private containerd harness', { skip }, () => {
  let c: Containerd | undefined;
  let work: string;
  // a namespace of our own: runc state and cgroups are keyed by namespace/id machine-wide
  const ns = `infra-${process.pid}`;
  let taskPid = 0;

  before(async () => {
    const b = spawnSync(path.join(repo, 'scripts/build-modules.sh'), { encoding: 'utf8' });
    assert.equal(b.status, 0, `build-modules.sh failed:\n${b.stdout}${b.stderr}`);
    work = mkdtempSync(path.join(tmpdir(), 'wasmts-infra-'));
    c = await startContainerd({ name: 'infra', namespace: ns });
  });

  after(async () => {
    await c?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('answers on its own sockets', async () => {
    assert.ok(existsSync(c!.address));
    assert.ok(existsSync(c!.ttrpcAddress));
    assert.ok(c!.address.startsWith(c!.tmp + '/'));
    const r = await c!.ctrOk(['version']);
    assert.match(r.stdout, /Server:\s+Version:\s+\S+/);
    assert.ok(['overlayfs', 'native'].includes(c!.snapshotter));
  });

  it('runs the native hello under runc', async (t) => {
    const tar = path.join(work, 'hello-native.tar');
    await packImage({
      module: path.join(modules, 'hello.native'),
      ref: 'infra/hello-native:latest',
      platform: { os: 'linux', architecture: 'amd64' },
      output: tar,
    });
    await c!.importImage(tar);
    const r = await c!.ctr([
      'run',
      '--rm',
      '--runtime',
      'io.containerd.runc.v2',
      'docker.io/infra/hello-native:latest',
      't1',
    ]);
    if (r.code !== 0) t.diagnostic(c!.log(4000));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hello from wasm\n');
    assert.deepEqual(listMounts(c!.state), []);
  });

  it('imports a wasm image with platform wasip1/wasm', async () => {
    const tar = path.join(work, 'hello-wasm.tar');
    const res = await packImage({ module: path.join(modules, 'hello.wasm'), ref: 'infra/hello:latest', output: tar });
    await c!.importImage(tar);
    const r = await c!.ctrOk(['image', 'ls']);
    const line = r.stdout.split('\n').find((l) => l.startsWith('docker.io/infra/hello:latest '));
    assert.ok(line, r.stdout);
    assert.ok(line.includes(res.digest), line);
    assert.match(line, /\swasip1\/wasm\s/);
  });

  it('ctr() times out with a clear error', async () => {
    await assert.rejects(c!.ctr(['events'], { timeoutMs: 300 }), /ctr events timed out after 300 ms/);
  });

  it('restart() keeps running tasks; stop() cleans them up', async () => {
    const tar = path.join(work, 'probe-native.tar');
    await packImage({
      module: path.join(modules, 'probe.native'),
      ref: 'infra/probe-native:latest',
      platform: { os: 'linux', architecture: 'amd64' },
      output: tar,
    });
    await c!.importImage(tar);
    await c!.ctrOk(['run', '-d', '--null-io', 'docker.io/infra/probe-native:latest', 'd1', '/probe.native', 'daemon']);
    const before = c!.pid;
    await c!.restart();
    assert.notEqual(c!.pid, before);
    const r = await c!.ctrOk(['task', 'ls']);
    const m = /^d1\s+(\d+)\s+RUNNING$/m.exec(r.stdout);
    assert.ok(m, r.stdout);
    taskPid = Number(m[1]);
    assert.equal(listProcesses(new RegExp(`containerd-shim-runc-v2 .*-address ${c!.address}`)).length, 1);
    assert.ok(listMounts(c!.tmp).length > 0, 'rootfs mounted while the task runs');
  });

  it('stop() leaves no process, mount or temp dir behind', async () => {
    const { tmp } = c!;
    const pid = c!.pid;
    await c!.stop();
    await c!.stop(); // idempotent
    assert.deepEqual(listProcesses(new RegExp(tmp.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))), []);
    assert.ok(taskPid > 0 && !existsSync(`/proc/${taskPid}`), 'task process gone');
    assert.ok(
      !existsSync(`/proc/${pid}`) || !/containerd/.test(spawnSync('cat', [`/proc/${pid}/cmdline`]).stdout.toString()),
      'containerd gone',
    );
    assert.deepEqual(listMounts(tmp), []);
    assert.ok(!existsSync(tmp));
    assert.ok(!existsSync(`/run/containerd/runc/${ns}/d1`), 'runc state removed');
    c = undefined;
  });
});
