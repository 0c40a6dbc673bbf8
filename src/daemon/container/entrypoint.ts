// Finds the module a container runs: process.args[0] inside the rootfs, with
// runwasi's `module.wasm#export` syntax, checked to really be WebAssembly.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { inRootfs, SpecError } from '../../bundle/index.js';

export interface Entrypoint {
  /** Host path of the module. */
  hostPath: string;
  /** Path the module sees (argv[0]). */
  guestPath: string;
  exportName: string;
}

const WASM_MAGIC = [0x00, 0x61, 0x73, 0x6d];

export function resolveEntrypoint(rootfs: string, arg0: string, cwd: string, env: string[]): Entrypoint {
  const hash = arg0.lastIndexOf('#');
  const name = hash >= 0 ? arg0.slice(0, hash) : arg0;
  const exportName = hash >= 0 && hash < arg0.length - 1 ? arg0.slice(hash + 1) : '_start';
  if (!name) throw new SpecError(`process.args[0] "${arg0}" names no module`);

  const candidates = name.includes('/')
    ? [path.posix.resolve(cwd, name)]
    : [...searchPath(env).map((dir) => path.posix.join(dir, name)), path.posix.resolve(cwd, name)];
  let lastError = '';
  for (const guestPath of candidates) {
    const hostPath = inRootfs(rootfs, guestPath);
    let stat: fs.Stats;
    try {
      stat = fs.statSync(hostPath);
    } catch {
      lastError = `module ${guestPath} not found in the container's rootfs (${hostPath})`;
      continue;
    }
    if (stat.isDirectory()) throw new SpecError(`entrypoint ${guestPath} is a directory, not a WebAssembly module`);
    checkMagic(hostPath, guestPath);
    return { hostPath, guestPath, exportName };
  }
  throw new SpecError(lastError);
}

function searchPath(env: string[]): string[] {
  const entry = env.find((e) => e.startsWith('PATH='));
  const value = entry ? entry.slice(5) : '/usr/local/bin:/usr/bin:/bin';
  return value.split(':').filter((d) => d.startsWith('/'));
}

function checkMagic(hostPath: string, guestPath: string): void {
  const head = Buffer.alloc(4);
  let n: number;
  const fd = fs.openSync(hostPath, 'r');
  try {
    n = fs.readSync(fd, head, 0, 4, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (n === 4 && WASM_MAGIC.every((b, i) => head[i] === b)) return;
  const kind =
    n === 4 && head.toString('latin1') === '\x7fELF'
      ? ' (it is an ELF executable; wasmts runs WASI preview1 modules and WASI 0.2 components)'
      : '';
  throw new SpecError(`${guestPath} is not a WebAssembly module: no \\0asm magic${kind}`);
}
