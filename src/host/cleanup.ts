// Cleanup shared by the Delete RPC and the `delete` action: what a container
// leaves on the host is its child processes and its mounts under the bundle.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const PID_FILE = 'init.pid';
/** Views of rootfs for non-root users are mounted here (see rootfs.ts). */
export const USER_ROOTS = '/run/wasmts/rootfs';
/** Mount points Create made, in order (see rootfs.ts recordMount). */
export const MOUNTS_FILE = 'wasmts-mounts.json';
/** Marks our Wasm child processes, so a recycled pid is never killed by mistake. */
export const CHILD_MARKER = 'wasm-child';

export function isOurChild(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(CHILD_MARKER);
  } catch {
    return false;
  }
}

/** Kills the container's child processes recorded in the bundle; returns the init pid (0 if unknown). */
export function killLeftoverChildren(bundle: string): number {
  let initPid = 0;
  for (const name of pidFiles(bundle)) {
    const pid = Number(readOr(path.join(bundle, name), ''));
    if (!Number.isInteger(pid) || pid <= 0) continue;
    if (name === PID_FILE) initPid = pid;
    if (isOurChild(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  return initPid;
}

function pidFiles(bundle: string): string[] {
  try {
    return fs.readdirSync(bundle).filter((n) => n === PID_FILE || /^exec-.*\.pid$/.test(n));
  } catch {
    return [];
  }
}

function readOr(file: string, fallback: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return fallback;
  }
}

/** Mount points at or below `dir`, deepest first, from /proc/self/mountinfo. */
export function mountsUnder(dir: string): string[] {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  let info = '';
  try {
    info = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const points = new Set<string>();
  for (const line of info.split('\n')) {
    const field = line.split(' ')[4];
    if (!field) continue;
    const point = field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (point === dir || point.startsWith(prefix)) points.add(point);
  }
  return [...points].sort((a, b) => b.length - a.length);
}

const run = promisify(execFile);

/** Asynchronous: the daemon serves other containers meanwhile. */
async function umount(point: string): Promise<void> {
  try {
    await run('umount', [point]);
  } catch {
    try {
      await run('umount', ['-l', point]);
    } catch {
      // reported by the caller's leak checks; never throw from cleanup
    }
  }
}

/**
 * Unmounts what Create mounted (the points recorded in the bundle, last
 * first, so a rootfs outside the bundle is handled too), then anything still
 * at or below `<bundle>/rootfs`; lazily when busy, so cleanup never hangs.
 */
export async function unmountRootfs(bundle: string): Promise<void> {
  const file = path.join(bundle, MOUNTS_FILE);
  let recorded: string[] = [];
  try {
    recorded = JSON.parse(fs.readFileSync(file, 'utf8')) as string[];
  } catch {
    // nothing recorded
  }
  const mounted = new Set(mountsUnder('/'));
  for (const point of [...recorded].reverse()) {
    if (mounted.has(point)) await umount(point);
    // a mount point of our own making (a non-root user's view of the rootfs) goes too
    if (point.startsWith(`${USER_ROOTS}/`)) {
      try {
        fs.rmdirSync(point); // only once empty, i.e. really unmounted
      } catch {
        // still busy: left for the next cleanup
      }
    }
  }
  fs.rmSync(file, { force: true });
  const rootfs = path.join(bundle, 'rootfs');
  for (let round = 0; round < 4; round++) {
    const points = mountsUnder(rootfs);
    if (points.length === 0) return;
    for (const point of points) await umount(point);
  }
}
