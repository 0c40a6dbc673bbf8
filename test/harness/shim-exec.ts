// Running the shim binary by hand, the way containerd execs it for `start`
// and `delete`: its argv, the bundle as cwd, TTRPC_ADDRESS in its
// environment.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Containerd } from './containerd.js';
import { SHIM_BIN } from './constants.js';

export interface ShimRun {
  code: number | null;
  stdout: string;
  stderr: string;
  raw: Buffer;
}

export interface ShimRunOptions {
  /** The bundle dir containerd runs the shim in. */
  cwd: string;
  /** Default empty: a pipe, so `start` goes through Node, which records the daemon in shim.pid. */
  input?: Uint8Array;
  /** The shim's whole environment; default ours plus TTRPC_ADDRESS. */
  env?: NodeJS.ProcessEnv;
  namespace?: string;
  /** Default SHIM_BIN. */
  shim?: string;
}

/** `<shim> -namespace NS -address A -publish-binary /usr/bin/containerd ...args`. */
export function runShim(c: Containerd, args: string[], o: ShimRunOptions): ShimRun {
  const r = spawnSync(
    o.shim ?? SHIM_BIN,
    [
      '-namespace',
      o.namespace ?? c.namespace,
      '-address',
      c.address,
      '-publish-binary',
      '/usr/bin/containerd',
      ...args,
    ],
    {
      cwd: o.cwd,
      input: o.input ?? Buffer.alloc(0),
      env: o.env ?? { ...process.env, TTRPC_ADDRESS: c.ttrpcAddress },
      timeout: 20_000,
    },
  );
  return { code: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString(), raw: r.stdout };
}

export interface HandBundleOptions {
  namespace?: string;
  annotations?: Record<string, string>;
  /** process.args; default a module that never runs (a socket only needs a container id). */
  args?: string[];
  /** Give it an empty rootfs dir (root.path "rootfs"). */
  rootfs?: boolean;
}

/** A bundle of our own where containerd 1.6 puts one (<state>/io.containerd.runtime.v2.task/<ns>/<id>). */
export function writeHandBundle(c: Containerd, id: string, o: HandBundleOptions = {}): string {
  const dir = c.bundleDir(id, o.namespace);
  fs.mkdirSync(o.rootfs ? path.join(dir, 'rootfs') : dir, { recursive: true });
  const spec = {
    ociVersion: '1.0.2',
    process: { args: o.args ?? ['/x.wasm'], ...(o.rootfs ? { cwd: '/' } : {}) },
    ...(o.rootfs ? { root: { path: 'rootfs' } } : {}),
    ...(o.annotations ? { annotations: o.annotations } : {}),
  };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(spec));
  return dir;
}
