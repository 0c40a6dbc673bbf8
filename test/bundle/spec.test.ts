// config.json parsed field by field (src/bundle/spec.ts): what is accepted
// comes back typed and rebuilt (nothing the shim does not read), and each
// refusal is a SpecError naming the file and the field.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import {
  checkProcess,
  parseSpec,
  readAnnotations,
  readAnnotationsAsync,
  readCgroupsPath,
  readSpec,
  SpecError,
} from '../../src/bundle/index.js';

const FILE = '/b/config.json';
const proc = { args: ['/m.wasm'] };

function refused(raw: unknown, pattern: RegExp): void {
  assert.throws(
    () => parseSpec(raw, FILE),
    (e: unknown) => e instanceof SpecError && pattern.test(e.message) && e.message.startsWith(FILE),
    `${JSON.stringify(raw)} should be refused with ${pattern}`,
  );
}

describe('parseSpec', () => {
  test('a full spec comes back with the fields the shim reads, and nothing else', () => {
    const spec = parseSpec(
      {
        ociVersion: '1.0.2',
        process: {
          args: ['/m.wasm', 'x'],
          env: ['A=1'],
          cwd: '/app',
          terminal: false,
          user: { uid: 1, gid: 2, umask: 18 },
        },
        root: { path: 'rootfs', readonly: true },
        mounts: [
          { destination: '/proc', type: 'proc', source: 'proc' },
          { destination: '/data', type: 'bind', source: '/src', options: ['rbind', 'ro'] },
        ],
        annotations: { 'io.kubernetes.cri.container-type': 'sandbox' },
        linux: {
          cgroupsPath: '/ns/id',
          resources: { memory: { limit: 1 << 20, swap: -1 }, devices: [{ allow: false, access: 'rwm' }] },
          namespaces: [{ type: 'pid' }],
        },
        hooks: {},
      },
      FILE,
    );
    assert.deepEqual(spec, {
      process: { args: ['/m.wasm', 'x'], env: ['A=1'], cwd: '/app', user: { uid: 1, gid: 2 } },
      root: { path: 'rootfs', readonly: true },
      mounts: [
        { destination: '/proc', type: 'proc', source: 'proc' },
        { destination: '/data', type: 'bind', source: '/src', options: ['rbind', 'ro'] },
      ],
      annotations: { 'io.kubernetes.cri.container-type': 'sandbox' },
      linux: { cgroupsPath: '/ns/id', resources: { memory: { limit: 1 << 20 } } },
    });
  });

  test('the least a spec needs is a process', () => {
    assert.deepEqual(parseSpec({ process: proc }, FILE), { process: proc });
    refused({}, /has no "process" object/);
    refused({ process: null }, /has no "process" object/);
  });

  test('not an object', () => {
    for (const raw of [null, [], 'x', 7]) refused(raw, /must hold a JSON object/);
  });

  test('root, mounts, annotations and linux of the wrong shape', () => {
    refused({ process: proc, root: 'rootfs' }, /: root must be an object$/);
    refused({ process: proc, root: { path: 7 } }, /: root\.path must be a string$/);
    refused({ process: proc, root: { readonly: 'yes' } }, /: root\.readonly must be true or false$/);
    refused({ process: proc, mounts: {} }, /: mounts must be a list of objects$/);
    refused({ process: proc, mounts: ['/data'] }, /: mounts\[0\] must be an object$/);
    refused({ process: proc, mounts: [{ destination: '/a' }, { source: '/b' }] }, /: mounts\[1\]\.destination must be/);
    refused({ process: proc, mounts: [{ destination: '/a', options: 'ro' }] }, /mounts\[0\]\.options must be a list/);
    refused({ process: proc, mounts: [{ destination: '/a', type: 1 }] }, /mounts\[0\]\.type must be a string/);
    refused({ process: proc, annotations: ['a'] }, /: annotations must map strings to strings$/);
    refused({ process: proc, annotations: { a: 1 } }, /annotations must map strings to strings/);
    refused({ process: proc, linux: [] }, /: linux must be an object$/);
    refused({ process: proc, linux: { cgroupsPath: 1 } }, /linux\.cgroupsPath must be a string/);
    refused({ process: proc, linux: { resources: 'big' } }, /linux\.resources must be an object/);
    refused(
      { process: proc, linux: { resources: { memory: { limit: '1G' } } } },
      /: linux\.resources\.memory\.limit must be -1 \(no limit\) or a byte count, not "1G"$/,
    );
  });

  test('an annotation named __proto__ stays an annotation', () => {
    const spec = parseSpec(JSON.parse('{"process":{"args":["/m"]},"annotations":{"__proto__":"x","a":"b"}}'), FILE);
    assert.deepEqual(Object.keys(spec.annotations ?? {}), ['__proto__', 'a']);
  });
});

describe('reading config.json', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wasmts-spec-'));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const bundle = (config: unknown) => {
    const dir = fs.mkdtempSync(path.join(tmp, 'b-'));
    fs.writeFileSync(path.join(dir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
    return dir;
  };
  const noConfig = () => fs.mkdtempSync(path.join(tmp, 'b-'));

  test('each bad bundle gets a sentence naming the cause', () => {
    assert.throws(
      () => readSpec(noConfig()),
      (e: Error) => e instanceof SpecError && /cannot read .*config\.json: ENOENT/.test(e.message),
    );
    assert.throws(() => readSpec(bundle('{oops')), /is not valid JSON/);
    assert.throws(() => readSpec(bundle('[1]')), /must hold a JSON object/);
    assert.throws(() => checkProcess(undefined, 'c'), /has no "process" object/);
    assert.throws(() => checkProcess({ args: [] }, 'c'), /process.args must be a non-empty list/);
    assert.throws(() => checkProcess({ args: ['a'], env: 'x' }, 'c'), /process.env/);
    assert.throws(() => checkProcess({ args: ['a'], cwd: 'rel' }, 'c'), /cwd must be an absolute path/);
    assert.throws(() => checkProcess({ args: ['a'], user: { uid: -1, gid: 0 } }, 'c'), /numeric uid and gid/);
    assert.doesNotThrow(() => checkProcess({ args: ['a'], user: { uid: 1000, gid: 1000, additionalGids: [5] } }, 'c'));
  });

  test('a huge config.json is refused before parsing', () => {
    const dir = noConfig();
    const fd = fs.openSync(path.join(dir, 'config.json'), 'w');
    fs.ftruncateSync(fd, 17 << 20);
    fs.closeSync(fd);
    assert.throws(() => readSpec(dir), /over the \d+-byte limit/);
  });

  test('readSpec names the file in each refusal', () => {
    const dir = bundle({ process: { args: [] } });
    assert.throws(() => readSpec(dir), {
      message: `${path.join(dir, 'config.json')}: process.args must be a non-empty list of strings`,
    });
  });

  test('start and delete read annotations and the cgroup path leniently, from any config', async () => {
    const ok = bundle({ annotations: { a: 'b', n: 1 }, linux: { cgroupsPath: '/x' } });
    assert.deepEqual(readAnnotations(ok), { a: 'b' });
    assert.deepEqual(await readAnnotationsAsync(ok), { a: 'b' });
    assert.equal(readCgroupsPath(ok), '/x');
    for (const config of ['{oops', '[]', { annotations: 'x', linux: { cgroupsPath: 7 } }]) {
      const dir = bundle(config);
      assert.equal(readAnnotations(dir), undefined);
      assert.equal(await readAnnotationsAsync(dir), undefined);
      assert.equal(readCgroupsPath(dir), undefined);
    }
    assert.equal(readAnnotations('/no/such/bundle'), undefined);
  });
});
