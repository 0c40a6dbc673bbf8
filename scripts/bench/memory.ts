// Memory of a process tree: VmHWM (peak RSS) and PSS (shared pages split
// among their users), summed over a shim daemon and all its descendants.
import * as fs from 'node:fs';

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

function isSpare(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0$/, '').endsWith('\0spare');
  } catch {
    return false;
  }
}

/** A daemon and its descendants, without the spare daemon it may have launched for the next container. */
export function processTree(root: number): number[] {
  const all = [root];
  for (let i = 0; i < all.length; i++) all.push(...children(all[i]!).filter((pid) => !isSpare(pid)));
  return all;
}

/** Idle spare daemons of a containerd: the pids holding a spare lock (an adopted spare holds none). */
export function spareTrees(containerdAddress: string): number[] {
  const dir = '/run/containerd/s';
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir).filter((n) => n.startsWith('wasmts-spare-') && n.endsWith('.lock'));
  } catch {
    return [];
  }
  return names.map((n) => Number(fs.readFileSync(`${dir}/${n}`, 'utf8'))).filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(containerdAddress) && isSpare(pid);
    } catch {
      return false;
    }
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

export function treeMemory(root: number): TreeMemory {
  let hwm = 0;
  let pss = 0;
  const pids = processTree(root);
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
