// A private containerd with its CRI plugin on, as a Kubernetes node would run
// it for wasmts: the runtime handler `wasmts` → io.containerd.wasmts.v1 (the
// checkout's bin/ on containerd's PATH), a locally built pause image as the
// sandbox image, and a Wasm image of the probe module, both packed by
// `wasmts image` and imported with ctr into CRI's namespace (k8s.io).
//
//   const node = await startCriNode();
//   try { await node.cri.runtime.runPodSandbox(…) } finally { await node.teardown(); }
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import {
  type Containerd,
  CRI_NAMESPACE,
  ensureBuilt,
  MODULES,
  REPO,
  RUNTIME,
  startContainerd,
} from '../harness/index.js';
import { connectCri, type CriClient } from './client.js';

const run = promisify(execFile);

export const HANDLER = 'wasmts';
export const RUNTIME_TYPE = RUNTIME;
export { CRI_NAMESPACE };
export const PAUSE_IMAGE = 'docker.io/wasmts-test/pause:cri';
export const PROBE_IMAGE = 'docker.io/wasmts-test/probe:cri';

export interface CriNode {
  readonly c: Containerd;
  readonly cri: CriClient;
  teardown(): Promise<void>;
}

/** `bin/wasmts image …`, the command a user packs an image with. */
async function wasmtsImage(args: string[]): Promise<void> {
  try {
    await run(path.join(REPO, 'bin', 'wasmts'), ['image', ...args], { timeout: 30_000 });
  } catch (err) {
    throw new Error(
      `wasmts image ${args.join(' ')} failed: ${String((err as { stderr?: string }).stderr ?? (err as Error).message).trim()}`,
      { cause: err },
    );
  }
}

export async function startCriNode(): Promise<CriNode> {
  await ensureBuilt();
  const c = await startContainerd({
    name: 'cri',
    namespace: CRI_NAMESPACE,
    shimDir: path.join(REPO, 'bin'),
    cri: { sandboxImage: PAUSE_IMAGE, runtimes: { [HANDLER]: RUNTIME_TYPE } },
  });
  let cri: CriClient | undefined;
  try {
    const images = path.join(c.tmp, 'images');
    fs.mkdirSync(images);
    const pauseTar = path.join(images, 'pause.tar');
    const probeTar = path.join(images, 'probe.tar');
    // A native pause image, as a cluster's sandbox image is; wasmts never runs its binary.
    await wasmtsImage([
      '--platform',
      'linux/amd64',
      '--ref',
      PAUSE_IMAGE,
      '--module-dest',
      '/pause',
      '--out',
      pauseTar,
      path.join(MODULES, 'pause.native'),
    ]);
    await wasmtsImage(['--ref', PROBE_IMAGE, '--env', 'PATH=/', '--out', probeTar, path.join(MODULES, 'probe.wasm')]);
    await c.importImage(pauseTar);
    await c.importImage(probeTar);
    cri = connectCri(c.address);
  } catch (err) {
    await c.stop();
    throw err;
  }
  const client = cri;
  return {
    c,
    cri: client,
    async teardown() {
      client.close();
      await c.stop();
    },
  };
}
