// The bundle's files (src/bundle/files.ts, records.ts): written owner-only
// under the names the sh front end and containerd know, and read back as
// untrusted, so a damaged record counts as none rather than as a wrong pid or
// mount point.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import {
  readAddress,
  readDeleteResponse,
  readMountRecord,
  readRecordedPids,
  recordMount,
  removeAddress,
  removeExecPid,
  removeInitPid,
  removeMountRecord,
  rootfsPath,
  writeAddress,
  writeDeleteResponse,
  writeExecPid,
  writeInitPid,
  writePauseModule,
  writeShimPid,
} from '../../src/bundle/index.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wasmts-files-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const tmpBundle = () => fs.mkdtempSync(path.join(tmp, 'b-'));
const mode = (file: string) => fs.statSync(file).mode & 0o777;

test('the names containerd, the sh front end and the tests rely on; owner-only, no temp file left', () => {
  const b = tmpBundle();
  writeAddress(b, 'unix:///run/containerd/s/abc');
  writeShimPid(b, 41);
  writeInitPid(b, 42);
  writeExecPid(b, 'e1', 43);
  writeDeleteResponse(b, 42, 137, 1_700_000_000_123);
  recordMount(b, '/run/x');
  const pause = writePauseModule(b, new Uint8Array([0, 0x61, 0x73, 0x6d]));
  assert.equal(pause, path.join(b, 'wasmts-pause.wasm'));
  assert.deepEqual(fs.readdirSync(b).sort(), [
    'address',
    'exec-e1.pid',
    'init.pid',
    'shim.pid',
    'wasmts-delete-response',
    'wasmts-mounts.json',
    'wasmts-pause.wasm',
  ]);
  for (const f of fs.readdirSync(b)) assert.equal(mode(path.join(b, f)), 0o600, f);
  assert.equal(fs.readFileSync(path.join(b, 'address'), 'utf8'), 'unix:///run/containerd/s/abc');
  assert.equal(readAddress(b), 'unix:///run/containerd/s/abc');
  assert.ok(readDeleteResponse(b)?.length);
  removeAddress(b);
  assert.equal(readAddress(b), undefined);
  assert.equal(readDeleteResponse(tmpBundle()), undefined);
});

test('rootfs: the spec root.path relative to the bundle, or <bundle>/rootfs', () => {
  assert.equal(rootfsPath('/b'), '/b/rootfs');
  assert.equal(rootfsPath('/b', ''), '/b/rootfs');
  assert.equal(rootfsPath('/b', 'fs'), '/b/fs');
  assert.equal(rootfsPath('/b', '/elsewhere'), '/elsewhere');
});

test('recorded pids: init and execs; a damaged pid file counts as none', () => {
  const b = tmpBundle();
  assert.deepEqual(readRecordedPids(b), { init: undefined, all: [] });
  writeInitPid(b, 100);
  writeExecPid(b, 'a', 101);
  writeExecPid(b, 'b', 102);
  let r = readRecordedPids(b);
  assert.equal(r.init, 100);
  assert.deepEqual([...r.all].sort(), [100, 101, 102]);
  removeExecPid(b, 'a');
  for (const [name, text] of [
    ['exec-x.pid', '-3'],
    ['exec-y.pid', '12abc'],
    ['exec-z.pid', '99999999999'],
    ['exec-w.pid', ''],
    ['other.pid', '7'],
  ])
    fs.writeFileSync(path.join(b, name), text);
  r = readRecordedPids(b);
  assert.deepEqual([...r.all].sort(), [100, 102]);
  fs.writeFileSync(path.join(b, 'init.pid'), '0');
  assert.equal(readRecordedPids(b).init, undefined);
  removeInitPid(b);
  assert.deepEqual(readRecordedPids(b).all, [102]);
  assert.deepEqual(readRecordedPids('/no/such/bundle'), { init: undefined, all: [] });
});

test('an exec id never names a file outside the bundle', () => {
  const b = tmpBundle();
  writeExecPid(b, '../../escape', 5);
  assert.deepEqual(fs.readdirSync(b), ['exec-..%2F..%2Fescape.pid']);
  assert.deepEqual(readRecordedPids(b).all, [5]);
  removeExecPid(b, '../../escape');
  assert.deepEqual(fs.readdirSync(b), []);
});

test('the mounts record: in order; damaged or relative entries are not trusted', () => {
  const b = tmpBundle();
  assert.deepEqual(readMountRecord(b), []);
  recordMount(b, '/a');
  recordMount(b, '/a/b');
  assert.deepEqual(readMountRecord(b), ['/a', '/a/b']);
  fs.writeFileSync(path.join(b, 'wasmts-mounts.json'), JSON.stringify(['/x', 'relative', 7, null, '/y']));
  assert.deepEqual(readMountRecord(b), ['/x', '/y']);
  for (const junk of ['{', '{"a":1}', '"/x"']) {
    fs.writeFileSync(path.join(b, 'wasmts-mounts.json'), junk);
    assert.deepEqual(readMountRecord(b), []);
  }
  recordMount(b, '/z'); // a damaged record is replaced, not appended to
  assert.deepEqual(readMountRecord(b), ['/z']);
  removeMountRecord(b);
  assert.equal(fs.existsSync(path.join(b, 'wasmts-mounts.json')), false);
});
