// Cleanup shared by the Delete RPC and the `delete` action: what a container
// leaves on the host is its child processes and its mounts, both recorded in
// its bundle (src/bundle/records.ts).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as fs from 'node:fs';
import { readMountRecord, readRecordedPids, removeMountRecord, rootfsPath } from '../bundle/index.js';

/** Views of rootfs for non-root users are mounted here (see container.ts userVisibleRoot). */
export const USER_ROOTS = '/run/wasmts/rootfs';
/** Marks our Wasm child processes, so a recycled pid is never killed by mistake. */
const CHILD_MARKER = 'wasm-child';

function isOurChild(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(CHILD_MARKER);
  } catch {
    return false;
  }
}

/** Kills the container's child processes recorded in the bundle; returns the init pid (0 if unknown). */
export function killLeftoverChildren(bundle: string): number {
  const pids = readRecordedPids(bundle);
  for (const pid of pids.all) {
    if (!isOurChild(pid)) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  return pids.init ?? 0;
}

/** Mount points at or below `dir`, deepest first, from /proc/self/mountinfo. */
export function mountsUnder(dir: string): string[] {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  let info: string;
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
  const mounted = new Set(mountsUnder('/'));
  for (const point of readMountRecord(bundle).reverse()) {
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
  removeMountRecord(bundle);
  const rootfs = rootfsPath(bundle);
  for (let round = 0; round < 4; round++) {
    const points = mountsUnder(rootfs);
    if (points.length === 0) return;
    for (const point of points) await umount(point);
  }
}
