// Unit tests for the OCI image tool (src/image/oci.ts, src/cli/image.ts).
// No containerd or clang needed: modules are synthesised here.

import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { imageMain } from '../../src/cli/image.js';
import { isObject, isStringArray, isStringRecord, parseJsonAs, sleep } from '../harness/index.js';
import {
  ImageError,
  packImage,
  parseReference,
  writeTar,
  type PackImageOptions,
  type TarEntry,
} from '../../src/image/oci.js';
import { readTar } from './tar-reader.js';

// The smallest valid module: magic + version 1.
const WASM = Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);

let dir: string;
let wasm: string;

before(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'wasmts-image-test-'));
  wasm = path.join(dir, 'app.wasm');
  writeFileSync(wasm, WASM);
});
after(() => rmSync(dir, { recursive: true, force: true }));

function sha(b: Buffer): string {
  return 'sha256:' + createHash('sha256').update(b).digest('hex');
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface OciIndex {
  schemaVersion: number;
  manifests: Descriptor[];
}
interface OciManifest {
  schemaVersion: number;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}
interface OciConfig {
  os: string;
  architecture: string;
  config: { Entrypoint?: string[]; Cmd?: string[]; Env?: string[]; Labels?: Record<string, string> };
  rootfs: { type: string; diff_ids: string[] };
}

const optional = (v: unknown, check: (x: unknown) => boolean): boolean => v === undefined || check(v);

function isDescriptor(v: unknown): v is Descriptor {
  return (
    isObject(v) &&
    typeof v.mediaType === 'string' &&
    typeof v.digest === 'string' &&
    typeof v.size === 'number' &&
    optional(v.platform, isStringRecord) &&
    optional(v.annotations, isStringRecord)
  );
}
const isIndex = (v: unknown): v is OciIndex =>
  isObject(v) && typeof v.schemaVersion === 'number' && Array.isArray(v.manifests) && v.manifests.every(isDescriptor);
const isManifest = (v: unknown): v is OciManifest =>
  isObject(v) &&
  typeof v.schemaVersion === 'number' &&
  isDescriptor(v.config) &&
  Array.isArray(v.layers) &&
  v.layers.every(isDescriptor) &&
  optional(v.annotations, isStringRecord);
function isConfig(v: unknown): v is OciConfig {
  if (!isObject(v) || !isObject(v.config) || !isObject(v.rootfs)) return false;
  const c = v.config;
  return (
    typeof v.os === 'string' &&
    typeof v.architecture === 'string' &&
    [c.Entrypoint, c.Cmd, c.Env].every((x) => optional(x, isStringArray)) &&
    optional(c.Labels, isStringRecord) &&
    typeof v.rootfs.type === 'string' &&
    isStringArray(v.rootfs.diff_ids)
  );
}

interface Unpacked {
  files: Map<string, TarEntry>;
  index: OciIndex;
  manifest: OciManifest;
  config: OciConfig;
  layer: Map<string, TarEntry>;
  blob(digest: string): Buffer;
}

function unpack(tarPath: string): Unpacked {
  const files = new Map(readTar(readFileSync(tarPath)).map((e) => [e.name, e]));
  const blob = (d: string) => {
    const e = files.get(`blobs/sha256/${d.replace(/^sha256:/, '')}`);
    assert.ok(e?.data, `blob ${d} present`);
    assert.equal(sha(e.data), d, 'blob content matches its digest');
    return e.data;
  };
  const index = parseJsonAs(files.get('index.json')!.data!.toString(), isIndex, 'index.json');
  const manifest = parseJsonAs(blob(index.manifests[0].digest).toString(), isManifest, 'the manifest');
  const config = parseJsonAs(blob(manifest.config.digest).toString(), isConfig, 'the image config');
  const layer = new Map(readTar(blob(manifest.layers[0].digest)).map((e) => [e.name, e]));
  return { files, index, manifest, config, layer, blob };
}

function listDir(d: string): string[] {
  return readdirSync(d).sort();
}

describe('parseReference', () => {
  const ok: [string, string][] = [
    ['hello', 'docker.io/library/hello:latest'],
    ['hello:latest', 'docker.io/library/hello:latest'],
    ['hello:v1.2_3-rc', 'docker.io/library/hello:v1.2_3-rc'],
    ['docker.io/library/hello:latest', 'docker.io/library/hello:latest'],
    ['index.docker.io/foo/bar:1', 'docker.io/foo/bar:1'],
    ['foo/bar:1', 'docker.io/foo/bar:1'],
    ['ghcr.io/org/sub/img:tag', 'ghcr.io/org/sub/img:tag'],
    ['localhost:5000/a:b', 'localhost:5000/a:b'],
    ['localhost/a', 'localhost/a:latest'],
    ['my-reg.example.com:443/a.b/c__d:x', 'my-reg.example.com:443/a.b/c__d:x'],
    ['wasm-test/probe-1:latest', 'docker.io/wasm-test/probe-1:latest'],
  ];
  for (const [input, want] of ok) {
    it(`${input} -> ${want}`, () => assert.equal(parseReference(input).fullName, want));
  }
  it('splits tag and path', () => {
    assert.deepEqual(parseReference('hello:v2'), {
      domain: 'docker.io',
      path: 'library/hello',
      tag: 'v2',
      fullName: 'docker.io/library/hello:v2',
    });
  });
  const bad: [string, RegExp][] = [
    ['', /empty/],
    ['Hello:latest', /must be lowercase/],
    ['docker.io/Library/x', /must be lowercase/],
    ['hello:', /bad tag/],
    ['hello:-x', /bad tag/],
    ['hello:' + 'a'.repeat(129), /bad tag/],
    ['hello@sha256:' + '0'.repeat(64), /digest/],
    ['a//b', /empty path component/],
    ['a/b/', /empty path component/],
    ['-a', /bad path component/],
    ['a..b', /bad path component/],
    ['has space', /whitespace/],
    ['bad_host.:5000/x', /bad registry/],
    ['x/' + 'a'.repeat(260), /longer than 255/],
  ];
  for (const [input, re] of bad) {
    it(`rejects ${JSON.stringify(input.length > 40 ? input.slice(0, 40) + '…' : input)}`, () => {
      assert.throws(
        () => parseReference(input),
        (e: unknown) => e instanceof ImageError && re.test(e.message) && e.message.includes('invalid reference'),
      );
    });
  }
});

describe('tar writer/reader', () => {
  it('round-trips files, dirs, long names and is readable by tar(1)', () => {
    const long = 'd/' + 'x'.repeat(120) + '/' + 'y'.repeat(110) + '.txt'; // > 255: needs pax
    const mid = 'm/' + 'z'.repeat(120) + '/f.txt'; // > 100: ustar prefix
    const entries: TarEntry[] = [
      { name: 'a', type: 'dir', mode: 0o755 },
      { name: 'a/b.txt', type: 'file', mode: 0o640, data: Buffer.from('hello\n') },
      { name: 'empty', type: 'file', mode: 0o600, data: Buffer.alloc(0) },
      { name: 'big', type: 'file', mode: 0o644, data: Buffer.alloc(1025, 7) },
      { name: long, type: 'file', mode: 0o644, data: Buffer.from('long') },
      { name: mid, type: 'file', mode: 0o644, data: Buffer.from('mid') },
    ];
    const buf = writeTar(entries);
    assert.equal(buf.length % 512, 0);
    const back = readTar(buf);
    assert.deepEqual(
      back.map((e) => e.name),
      ['a/', 'a/b.txt', 'empty', 'big', long, mid],
    );
    assert.equal(back[1].mode, 0o640);
    assert.equal(back[1].data!.toString(), 'hello\n');
    assert.equal(back[3].data!.length, 1025);
    assert.equal(back[4].data!.toString(), 'long');
    const f = path.join(dir, 'rt.tar');
    writeFileSync(f, buf);
    const r = spawnSync('tar', ['-tf', f], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['a/', 'a/b.txt', 'empty', 'big', long, mid]);
  });
});

describe('packImage', () => {
  it('writes an OCI layout tar that tar(1) lists and that parses back', async () => {
    const extra = path.join(dir, 'extra');
    mkdirSync(path.join(extra, 'sub'), { recursive: true });
    writeFileSync(path.join(extra, 'a.txt'), 'A');
    writeFileSync(path.join(extra, 'sub', 'b.sh'), '#!/bin/sh\n');
    chmodSync(path.join(extra, 'sub', 'b.sh'), 0o700);
    const cfg = path.join(dir, 'cfg.json');
    writeFileSync(cfg, '{}');
    const out = path.join(dir, 'ok.tar');
    const res = await packImage({
      module: wasm,
      ref: 'hello:v1',
      output: out,
      files: [
        { src: cfg, dest: '/etc/app/config.json' },
        { src: extra, dest: 'data' },
      ],
      cmd: ['--flag'],
      env: ['A=1', 'B=x=y'],
      annotations: { 'org.example.k': 'v' },
    });
    assert.equal(res.output, out);
    assert.equal(res.name, 'docker.io/library/hello:v1');
    assert.match(res.digest, /^sha256:[0-9a-f]{64}$/);

    const r = spawnSync('tar', ['-tf', out], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const names = r.stdout.trim().split('\n');
    assert.deepEqual(names.slice(0, 4), ['oci-layout', 'index.json', 'blobs/', 'blobs/sha256/']);
    assert.equal(names.length, 7);

    const u = unpack(out);
    assert.deepEqual(JSON.parse(u.files.get('oci-layout')!.data!.toString()), { imageLayoutVersion: '1.0.0' });
    assert.equal(u.index.schemaVersion, 2);
    assert.equal(u.index.manifests.length, 1);
    const desc = u.index.manifests[0];
    assert.equal(desc.digest, res.digest);
    assert.equal(desc.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.deepEqual(desc.platform, { architecture: 'wasm', os: 'wasip1' });
    assert.deepEqual(desc.annotations, {
      'io.containerd.image.name': 'docker.io/library/hello:v1',
      'org.opencontainers.image.ref.name': 'v1',
    });
    assert.equal(desc.size, u.blob(desc.digest).length);

    assert.equal(u.manifest.schemaVersion, 2);
    assert.equal(u.manifest.config.mediaType, 'application/vnd.oci.image.config.v1+json');
    assert.equal(u.manifest.layers.length, 1);
    assert.equal(u.manifest.layers[0].mediaType, 'application/vnd.oci.image.layer.v1.tar');
    assert.deepEqual(u.manifest.annotations, { 'org.example.k': 'v' });

    assert.equal(u.config.os, 'wasip1');
    assert.equal(u.config.architecture, 'wasm');
    assert.deepEqual(u.config.config.Entrypoint, ['/app.wasm']);
    assert.deepEqual(u.config.config.Cmd, ['--flag']);
    assert.deepEqual(u.config.config.Env, ['A=1', 'B=x=y']);
    assert.deepEqual(u.config.config.Labels, { 'org.example.k': 'v' });
    assert.deepEqual(u.config.rootfs, { type: 'layers', diff_ids: [u.manifest.layers[0].digest] });

    assert.deepEqual(
      [...u.layer.keys()],
      ['app.wasm', 'data/', 'data/a.txt', 'data/sub/', 'data/sub/b.sh', 'etc/', 'etc/app/', 'etc/app/config.json'],
    );
    const mod = u.layer.get('app.wasm')!;
    assert.equal(mod.mode, 0o755);
    assert.deepEqual(mod.data, WASM);
    assert.equal(u.layer.get('etc/')!.type, 'dir');
    assert.equal(u.layer.get('data/sub/b.sh')!.mode, 0o700);
    assert.equal(u.layer.get('etc/app/config.json')!.data!.toString(), '{}');
    assert.deepEqual(
      listDir(dir).filter((f) => f.endsWith('.tmp')),
      [],
    );
  });

  it('is deterministic', async () => {
    const a = path.join(dir, 'det-a.tar');
    const b = path.join(dir, 'det-b.tar');
    await packImage({ module: wasm, ref: 'det:1', output: a });
    await sleep(20);
    await packImage({ module: wasm, ref: 'det:1', output: b });
    assert.deepEqual(readFileSync(a), readFileSync(b));
  });

  it('honours entrypoint, moduleDest, labels, platform and overwrites an existing output', async () => {
    const native = path.join(dir, 'tool');
    writeFileSync(native, '\x7fELF not really');
    const out = path.join(dir, 'native.tar');
    writeFileSync(out, 'old');
    await packImage({
      module: native,
      moduleDest: '/usr/bin/tool',
      ref: 'registry.local:5000/x/tool:2',
      platform: { os: 'linux', architecture: 'amd64' },
      entrypoint: ['/usr/bin/tool', 'run'],
      labels: { l: '1' },
      output: out,
    });
    const u = unpack(out);
    assert.deepEqual(u.index.manifests[0].platform, { architecture: 'amd64', os: 'linux' });
    assert.equal(u.index.manifests[0].annotations?.['io.containerd.image.name'], 'registry.local:5000/x/tool:2');
    assert.deepEqual(u.config.config.Entrypoint, ['/usr/bin/tool', 'run']);
    assert.deepEqual(u.config.config.Labels, { l: '1' });
    assert.equal(u.manifest.annotations, undefined);
    assert.deepEqual([...u.layer.keys()], ['usr/', 'usr/bin/', 'usr/bin/tool']);
  });

  describe('rejects bad input with a clear error and leaves no file', () => {
    const cases: [string, () => Partial<PackImageOptions>, RegExp][] = [
      ['missing module', () => ({ module: path.join(dir, 'nope.wasm') }), /^module .*nope\.wasm does not exist$/],
      ['module is a directory', () => ({ module: dir }), /is not a regular file/],
      [
        'not wasm',
        () => ({ module: path.join(dir, 'cfg.json') }),
        /cfg\.json is not a WebAssembly module \(no \\0asm magic\)$/,
      ],
      ['empty module', () => ({ module: path.join(dir, 'empty.wasm') }), /is not a WebAssembly module/],
      [
        'uppercase ref',
        () => ({ ref: 'Hello:latest' }),
        /invalid reference "Hello:latest": repository name must be lowercase/,
      ],
      ['bad tag', () => ({ ref: 'hello:bad!tag' }), /invalid reference .*bad tag/],
      [
        'missing extra file',
        () => ({ files: [{ src: path.join(dir, 'missing.txt'), dest: '/x' }] }),
        /file .*missing\.txt does not exist/,
      ],
      [
        'escaping dest',
        () => ({ files: [{ src: path.join(dir, 'cfg.json'), dest: '../etc/passwd' }] }),
        /must not contain '\.\.'/,
      ],
      ['root dest', () => ({ files: [{ src: path.join(dir, 'cfg.json'), dest: '/' }] }), /names the image root/],
      [
        'duplicate dest',
        () => ({ files: [{ src: path.join(dir, 'cfg.json'), dest: '/app.wasm' }] }),
        /duplicate destination \/app\.wasm/,
      ],
      [
        'file over dir',
        () => ({
          files: [
            { src: path.join(dir, 'cfg.json'), dest: '/a/b' },
            { src: path.join(dir, 'cfg.json'), dest: '/a' },
          ],
        }),
        /duplicate destination \/a/,
      ],
      [
        'dir over file',
        () => ({
          files: [
            { src: path.join(dir, 'cfg.json'), dest: '/a' },
            { src: path.join(dir, 'cfg.json'), dest: '/a/b' },
          ],
        }),
        /a is both a file and a directory/,
      ],
      ['bad platform', () => ({ platform: { os: 'Linux', architecture: 'amd64' } }), /invalid platform os "Linux"/],
      ['bad env', () => ({ env: ['NOEQUALS'] }), /bad env entry "NOEQUALS"/],
    ];
    before(() => {
      writeFileSync(path.join(dir, 'empty.wasm'), '');
      writeFileSync(path.join(dir, 'cfg.json'), '{}');
    });
    for (const [title, mk, re] of cases) {
      it(title, async () => {
        const outDir = mkdtempSync(path.join(dir, 'bad-'));
        const output = path.join(outDir, 'img.tar');
        await assert.rejects(packImage({ module: wasm, ref: 'hello:latest', output, ...mk() }), (e: unknown) => {
          assert.ok(e instanceof ImageError, `ImageError, got ${String(e)}`);
          assert.match(e.message, re);
          assert.ok(!e.message.includes('\n'), 'one line');
          return true;
        });
        assert.deepEqual(listDir(outDir), []);
      });
    }
    it('missing output directory', async () => {
      await assert.rejects(
        packImage({ module: wasm, ref: 'a:b', output: path.join(dir, 'no-such-dir', 'x.tar') }),
        /output directory .*no-such-dir does not exist/,
      );
      assert.ok(!listDir(dir).includes('no-such-dir'));
    });
    it('output is a directory', async () => {
      const outDir = mkdtempSync(path.join(dir, 'bad-'));
      mkdirSync(path.join(outDir, 'x.tar'));
      await assert.rejects(
        packImage({ module: wasm, ref: 'a:b', output: path.join(outDir, 'x.tar') }),
        /is a directory/,
      );
      assert.deepEqual(listDir(outDir), ['x.tar']);
    });
  });
});

describe('imageMain (CLI)', () => {
  async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const out: string[] = [];
    const err: string[] = [];
    const code = await imageMain(argv, {
      stdout: { write: (s: string) => out.push(s) },
      stderr: { write: (s: string) => err.push(s) },
    });
    return { code, stdout: out.join(''), stderr: err.join('') };
  }

  it('--help', async () => {
    const r = await run(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^usage: wasmts image/);
  });

  it('builds an image from flags', async () => {
    const cfg = path.join(dir, 'cli-cfg.json');
    writeFileSync(cfg, '{"k":1}');
    const out = path.join(dir, 'cli.tar');
    const r = await run([
      '--ref',
      'cli/test:v1',
      '--out',
      out,
      '--file',
      `${cfg}:/etc/cfg.json`,
      '--entrypoint',
      '["/app.wasm","x"]',
      '--cmd',
      'a',
      '--cmd',
      'b',
      '--env',
      'K=V',
      '--annotation',
      'k=v=w',
      '--platform',
      'wasip1/wasm',
      wasm,
    ]);
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
    assert.match(r.stdout, /cli\.tar docker\.io\/cli\/test:v1 sha256:[0-9a-f]{64}\n$/);
    const u = unpack(out);
    assert.deepEqual(u.config.config.Entrypoint, ['/app.wasm', 'x']);
    assert.deepEqual(u.config.config.Cmd, ['a', 'b']);
    assert.deepEqual(u.config.config.Env, ['K=V']);
    assert.deepEqual(u.manifest.annotations, { k: 'v=w' });
    assert.equal(u.layer.get('etc/cfg.json')!.data!.toString(), '{"k":1}');
  });

  const bad: [string, string[], RegExp][] = [
    ['no module', ['--ref', 'a:b', '--out', 'x.tar'], /no module given/],
    ['no ref', ['--out', 'x.tar', 'm.wasm'], /--ref is required/],
    ['no out', ['--ref', 'a:b', 'm.wasm'], /--out is required/],
    ['unknown flag', ['--bogus'], /bogus/],
    [
      'bad annotation',
      ['--ref', 'a:b', '--out', 'x.tar', '--annotation', 'novalue', 'm.wasm'],
      /--annotation wants KEY=VALUE/,
    ],
    ['bad platform', ['--ref', 'a:b', '--out', 'x.tar', '--platform', 'linux', 'm.wasm'], /--platform wants OS\/ARCH/],
    ['missing module file', ['--ref', 'a:b', '--out', 'OUT', 'MISSING'], /module .*missing\.wasm does not exist/],
    ['not wasm', ['--ref', 'a:b', '--out', 'OUT', 'NOTWASM'], /is not a WebAssembly module \(no \\0asm magic\)/],
    ['bad ref', ['--ref', 'UPPER:x', '--out', 'OUT', 'WASM'], /invalid reference "UPPER:x"/],
  ];
  for (const [title, args, re] of bad) {
    it(`error: ${title}`, async () => {
      const outDir = mkdtempSync(path.join(dir, 'cli-bad-'));
      const notWasm = path.join(outDir, '..', 'cli-notwasm.txt');
      writeFileSync(notWasm, 'text');
      const argv = args.map((a) =>
        a === 'OUT'
          ? path.join(outDir, 'o.tar')
          : a === 'MISSING'
            ? path.join(dir, 'missing.wasm')
            : a === 'NOTWASM'
              ? notWasm
              : a === 'WASM'
                ? wasm
                : a,
      );
      const r = await run(argv);
      assert.notEqual(r.code, 0);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /^wasmts image: [^\n]+\n$/);
      assert.match(r.stderr, re);
      assert.deepEqual(listDir(outDir), []);
    });
  }
});
