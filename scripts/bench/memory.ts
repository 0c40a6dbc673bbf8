// Memory of process trees: VmHWM (peak RSS) and PSS (shared pages split
// among their users), summed over shim processes and all their descendants.
import * as fs from 'node:fs';
import { descendants, listProcesses, shimDaemons } from '../../test/harness/index.js';

/** A process and all its descendants. */
export function processTree(root: number): number[] {
  return descendants([root]);
}

/** The shim daemons serving a containerd (each with its children: containers' and the warm one). */
export function daemonTrees(containerdAddress: string): number[] {
  return shimDaemons(containerdAddress).map((p) => p.pid);
}

/** runc's shims of a containerd (each with its container's processes). */
export function runcShimTrees(containerdAddress: string): number[] {
  return listProcesses(/containerd-shim-runc-v2/)
    .filter((p) => (p.argv[0] ?? '').endsWith('containerd-shim-runc-v2') && p.argv.includes(containerdAddress))
    .map((p) => p.pid);
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
