// The WASI path confinement: symlinks planted in an image (absolute, relative,
// in any component) never lead a module outside its rootfs.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { WASI } from 'node:wasi';
import { confinePaths } from '../../src/child/confine.js';
import { ensureBuilt, makeLinkedRootfs, MODULES } from '../harness/index.js';

const PROBE = path.join(MODULES, 'probe.wasm');
let tmp: string;
let root: string;
let outside: string;

before(async () => {
  await ensureBuilt();
  ({ tmp, root, outside } = makeLinkedRootfs('wasmts-confine-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function probe(args: string[]): Promise<string> {
  const outFile = path.join(os.tmpdir(), `wasmts-confine-out-${process.pid}-${Math.random()}`);
  const fd = fs.openSync(outFile, 'w+');
  try {
    const wasi = new WASI({
      version: 'preview1',
      args: ['probe', ...args],
      env: {},
      preopens: { '/': root },
      stdout: fd,
      stderr: fd,
      returnOnExit: true,
    });
    const imports = wasi.getImportObject() as {
      wasi_snapshot_preview1: Record<string, (...a: (number | bigint)[]) => number>;
    };
    const confinement = confinePaths(imports.wasi_snapshot_preview1, root, ['/']);
    const module = await WebAssembly.compile(fs.readFileSync(PROBE));
    const instance = await WebAssembly.instantiate(module, imports);
    confinement.setMemory(instance.exports.memory as WebAssembly.Memory);
    wasi.start(instance);
    return fs.readFileSync(outFile, 'utf8');
  } finally {
    fs.closeSync(fd);
    fs.rmSync(outFile, { force: true });
  }
}

test('intermediate symlinks out of the rootfs are refused, for reads and writes', async () => {
  const out = await probe(['open', '/abs/secret.txt', '/d/rel/secret.txt', '/file-link']);
  assert.doesNotMatch(out, /host secret/);
  assert.match(out, /open \/abs\/secret.txt: fail/);
  assert.match(out, /open \/d\/rel\/secret.txt: fail/);
  assert.match(out, /open \/file-link: fail/);
  const w = await probe(['write', '/abs/planted.txt', 'x']);
  assert.equal(fs.existsSync(path.join(outside, 'planted.txt')), false, `write escaped: ${w}`);
});

test('links that stay inside keep working', async () => {
  const out = await probe(['open', '/d/ok/inside.txt', '/d/sub/inside.txt']);
  assert.match(out, /open \/d\/ok\/inside.txt: ok inside/);
  assert.match(out, /open \/d\/sub\/inside.txt: ok inside/);
});

test('.. never climbs above the rootfs', async () => {
  const out = await probe(['escape']);
  assert.doesNotMatch(out, /root:x:0:0/);
});
