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
