// The test image: probe.wasm as the entrypoint, packed as an OCI image tar
// (src/image, what `wasmts image` does) for `ctr image import`.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { packImage } from '../../src/image/oci.js';
import { ensureBuilt } from './build.js';
import { MODULES } from './constants.js';

/** Text of /data/greeting.txt in the standard image. */
export const GREETING = 'greetings from the image layer';
/** Env baked into the standard image's config. */
export const IMAGE_ENV = 'WASMTS_IMAGE_ENV=from-image';

export interface ImageFile {
  src: string;
  dest: string;
}

/** The other test modules beside /probe.wasm. */
export function moduleFiles(names: string[]): ImageFile[] {
  return names.map((n) => ({ src: path.join(MODULES, n), dest: n }));
}

/** The standard image's files, staged under dir: modules, /data, /app, /scratch and a native ELF. */
export function standardImageFiles(dir: string): ImageFile[] {
  fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'data', 'greeting.txt'), `${GREETING}\n`);
  fs.mkdirSync(path.join(dir, 'app'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'app', 'marker.txt'), 'app marker\n');
  fs.mkdirSync(path.join(dir, 'scratch'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'scratch', '.keep'), '');
  return [
    ...moduleFiles(['hello.wasm', 'fib.wasm', 'reactor.wasm', 'probe.native']),
    ...['data', 'app', 'scratch'].map((d) => ({ src: path.join(dir, d), dest: d })),
  ];
}

export interface TestImage {
  ref: string;
  tar: string;
  /** Temp dir holding the tar; removed by dispose(). */
  dir: string;
  /** sha256 and size of /probe.wasm, the image's module. */
  probe: { size: number; sha256: string };
  dispose(): void;
}

export interface TestImageOptions {
  /** Files beside /probe.wasm, given the image's staging dir; default standardImageFiles. */
  files?: (stageDir: string) => ImageFile[];
  /** The image config's env; default PATH=/ and IMAGE_ENV. */
  env?: string[];
  /** Where the tar goes (a dir the caller removes); default a new temp dir, removed by dispose(). */
  dir?: string;
}

/** docker.io/wasmts-test/<name>:v1, holding probe.wasm (the entrypoint) and the given files. */
export async function packTestImage(name: string, o: TestImageOptions = {}): Promise<TestImage> {
  await ensureBuilt();
  const dir = o.dir ?? fs.mkdtempSync(path.join(tmpdir(), `wasmts-img-${name}-`));
  const ref = `docker.io/wasmts-test/${name}:v1`;
  const tar = path.join(dir, `${name}-image.tar`);
  const probePath = path.join(MODULES, 'probe.wasm');
  await packImage({
    module: probePath,
    files: (o.files ?? standardImageFiles)(path.join(dir, 'image-stage')),
    ref,
    env: o.env ?? ['PATH=/', IMAGE_ENV],
    output: tar,
  });
  const bytes = fs.readFileSync(probePath);
  return {
    ref,
    tar,
    dir,
    probe: { size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') },
    dispose: () => {
      if (!o.dir) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
