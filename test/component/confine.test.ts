// The path confinement of a component, as test/child/confine.test.ts checks a
// module's: probe.component.wasm run by the real Wasm child (the engine, no
// containerd) over a rootfs with symlinks planted in it (absolute, relative,
// in any component). preview2-shim resolves every path inside the preopen;
// these tests hold it to the guarantees the shim gives preview 1 modules.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { NodeEngine } from '../../src/daemon/engine/node-engine.js';
import { DIST, ensureBuilt, makeLinkedRootfs, MODULES } from '../harness/index.js';

const CHILD = path.join(DIST, 'wasm-child.cjs');
let tmp: string;
let root: string;
let outside: string;
let engine: NodeEngine;

before(async () => {
  await ensureBuilt();
  ({ tmp, root, outside } = makeLinkedRootfs('wasmts-cconfine-'));
  fs.copyFileSync(path.join(MODULES, 'probe.component.wasm'), path.join(root, 'probe.wasm'));
  engine = new NodeEngine({ childEntry: CHILD, componentCache: { dir: path.join(tmp, 'cache'), maxBytes: 64 << 20 } });
});

after(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function probe(args: string[]): Promise<{ out: string; status: number }> {
  const outFile = path.join(tmp, `out-${Math.random()}`);
  fs.writeFileSync(outFile, '');
  const instance = await engine.prepare({
    containerId: 'confine',
    execId: '',
    modulePath: path.join(root, 'probe.wasm'),
    exportName: '_start',
    args: ['/probe.wasm', ...args],
    env: [],
    preopens: { '/': root },
    stdout: `file://${outFile}`,
    stderr: `file://${outFile}`,
  });
  instance.run();
  const { status } = await instance.exited;
  return { out: fs.readFileSync(outFile, 'utf8'), status };
}

test(
  'intermediate and final symlinks out of the rootfs are refused, for reads and writes',
  { timeout: 120_000 },
  async () => {
    const { out } = await probe(['open', '/abs/secret.txt', '/d/rel/secret.txt', '/file-link']);
    assert.doesNotMatch(out, /host secret/);
    assert.match(out, /open \/abs\/secret.txt: fail/);
    assert.match(out, /open \/d\/rel\/secret.txt: fail/);
    assert.match(out, /open \/file-link: fail/);
    const w = await probe(['write', '/abs/planted.txt', 'x']);
    assert.notEqual(w.status, 0);
    assert.equal(fs.existsSync(path.join(outside, 'planted.txt')), false, `write escaped: ${w.out}`);
    const w2 = await probe(['write', '/d/rel/planted.txt', 'x']);
    assert.notEqual(w2.status, 0);
    assert.equal(fs.existsSync(path.join(outside, 'planted.txt')), false, `write escaped: ${w2.out}`);
  },
);

test('links that stay inside keep working', { timeout: 60_000 }, async () => {
  const { out } = await probe(['open', '/d/ok/inside.txt', '/d/sub/inside.txt', '/d/ok/../sub/inside.txt']);
  assert.match(out, /open \/d\/ok\/inside.txt: ok inside/);
  assert.match(out, /open \/d\/sub\/inside.txt: ok inside/);
  assert.match(out, /open \/d\/ok\/..\/sub\/inside.txt: ok inside/);
  // an absolute link is refused even when it points inside (preview2-shim's rule): safe, if stricter
  const absin = await probe(['open', '/absin/inside.txt']);
  assert.match(absin.out, /open \/absin\/inside.txt: (ok inside|fail .+)/);
});

test('.. never climbs above the rootfs', { timeout: 60_000 }, async () => {
  const { out } = await probe(['escape', `../../../../../../..${outside}/secret.txt`]);
  assert.doesNotMatch(out, /root:x:0:0/);
  assert.doesNotMatch(out, /host secret/);
});
