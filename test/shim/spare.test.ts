// Spare daemons: a daemon leaves one booted spare behind for the next
// container of the same containerd and environment; `start` hands it the
// container; the spare goes away with its containerd, and WASMTS_SPARE=0
// turns the whole thing off.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { packImage } from '../../src/image/oci.js';
import { listProcesses, startContainerd, type Containerd } from '../helpers/containerd.js';

const SHIM = path.resolve('bin/containerd-shim-wasmts-v1');
let tmp: string;
let image: string;

before(async () => {
  execFileSync('bash', ['scripts/build-modules.sh'], { stdio: 'ignore' });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wasmts-spare-'));
  image = path.join(tmp, 'hello.tar');
  await packImage({ module: path.resolve('build/modules/hello.wasm'), ref: 'spare-hello:1', output: image });
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const sparesOf = (ctd: Containerd) =>
  listProcesses(/ spare$/).filter((p) => p.argv.includes(ctd.address));

async function waitFor<T>(what: string, fn: () => T | undefined, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function run(ctd: Containerd, id: string): Promise<void> {
  const r = await ctd.ctr(['run', '--rm', '--runtime', SHIM, 'docker.io/library/spare-hello:1', id]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'hello from wasm\n');
}

test('the next container is served by the spare the previous daemon left', async () => {
  const ctd = await startContainerd({ name: 'spare-on' });
  try {
    await ctd.importImage(image);
    await run(ctd, 'sp-1');
    const spare = await waitFor('a spare', () => (sparesOf(ctd).length === 1 ? sparesOf(ctd)[0] : undefined));
    // It must be listening before the next start (it boots niced in the background).
    await waitFor('its control socket', () => (fs.readdirSync('/run/containerd/s').some((f) => f.startsWith('wasmts-spare-')) ? true : undefined));
    await new Promise((r) => setTimeout(r, 500));
    const detached = await ctd.ctr(['run', '-d', '--runtime', SHIM, 'docker.io/library/spare-hello:1', 'sp-2']);
    assert.equal(detached.code, 0, detached.stderr);
    const bundle = path.join(ctd.state, 'io.containerd.runtime.v2.task', ctd.namespace, 'sp-2');
    assert.equal(Number(fs.readFileSync(path.join(bundle, 'shim.pid'), 'utf8')), spare.pid, 'start adopted the spare');
    const st = await ctd.ctr(['shim', '--id', 'sp-2', 'state']);
    assert.equal(st.code, 0, st.stderr);
    await ctd.ctr(['task', 'delete', 'sp-2']);
    await ctd.ctr(['container', 'delete', 'sp-2']);
    await waitFor('at most one spare', () => (sparesOf(ctd).length <= 1 ? true : undefined));
  } finally {
    const left = sparesOf(ctd);
    await ctd.stop();
    // Without its containerd, a spare leaves by itself (it watches the socket).
    for (const p of left) await waitFor(`spare ${p.pid} to exit`, () => (listProcesses(/ spare$/).some((q) => q.pid === p.pid) ? undefined : true), 15_000);
  }
});

test('WASMTS_SPARE=0 in containerd\'s environment: no spare is ever booted', async () => {
  const ctd = await startContainerd({ name: 'spare-off', env: { WASMTS_SPARE: '0' } });
  try {
    await ctd.importImage(image);
    await run(ctd, 'nosp-1');
    await new Promise((r) => setTimeout(r, 2_500));
    assert.deepEqual(sparesOf(ctd), []);
  } finally {
    await ctd.stop();
  }
});
