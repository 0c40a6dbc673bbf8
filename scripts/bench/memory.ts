// Memory of process trees: VmHWM (peak RSS) and PSS (shared pages split
// among their users), summed over shim processes and all their descendants.
import * as fs from 'node:fs';
import { isShimDaemon } from '../../src/handoff/handoff.js';

function children(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[] = [];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tasks) {
    try {
      const list = fs.readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim();
      if (list) out.push(...list.split(/\s+/).map(Number));
    } catch {
      // thread gone
    }
  }
  return out;
}

/** A process and all its descendants. */
export function processTree(root: number): number[] {
  const all = [root];
  for (let i = 0; i < all.length; i++) all.push(...children(all[i]));
  return all;
}

function argvOf(pid: number): string[] {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0$/, '').split('\0');
  } catch {
    return [];
  }
}

/** The shim daemons serving a containerd (each with its children: containers' and the warm one). */
export function daemonTrees(containerdAddress: string): number[] {
  return fs
    .readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((pid) => {
      const argv = argvOf(pid);
      return isShimDaemon(argv) && argv.includes(containerdAddress);
    });
}

/** runc's shims of a containerd (each with its container's processes). */
export function runcShimTrees(containerdAddress: string): number[] {
  return fs
    .readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((pid) => {
      const argv = argvOf(pid);
      return (argv[0] ?? '').endsWith('containerd-shim-runc-v2') && argv.includes(containerdAddress);
    });
}

function kb(text: string, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

export interface TreeMemory {
  processes: number;
  vmHwmMiB: number;
  pssMiB: number;
}

export function treeMemory(...roots: number[]): TreeMemory {
  let hwm = 0;
  let pss = 0;
  const pids = roots.flatMap(processTree);
  for (const pid of pids) {
    try {
      hwm += kb(fs.readFileSync(`/proc/${pid}/status`, 'utf8'), 'VmHWM');
      pss += kb(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'), 'Pss');
    } catch {
      // exited while we looked
    }
  }
  return { processes: pids.length, vmHwmMiB: hwm / 1024, pssMiB: pss / 1024 };
}
