// The container's cgroup, as runc would make it from linux.cgroupsPath and
// linux.resources: the Wasm child is moved in, so memory and CPU limits hold,
// an out-of-memory module is killed by the kernel (and reported as OOM), and
// Stats reads real accounting. cgroup v1 (per-controller hierarchies) and v2
// (unified) are both handled; anything missing degrades to no cgroup.
import * as fs from 'node:fs';
import * as path from 'node:path';

import type { LinuxResources } from '../bundle/index.js';

const ROOT = '/sys/fs/cgroup';
const V1_CONTROLLERS = ['memory', 'cpu', 'cpuacct', 'pids'] as const;

export interface CgroupStats {
  memoryUsage: number;
  memoryMaxUsage: number;
  memoryLimit: number;
  memoryFailcnt: number;
  rss: number;
  cache: number;
  cpuTotalNanos: number;
  cpuUserNanos: number;
  cpuKernelNanos: number;
  pids: number;
  oomKills: number;
}

export interface Cgroup {
  readonly path: string;
  /** Moves a process in; asynchronous, because the kernel's migration can take milliseconds. */
  addProcess(pid: number): Promise<void>;
  /** Writes the limits that are set (validated by src/bundle/resources.ts); -1 lifts one, 0 or absent leaves it. */
  apply(resources: LinuxResources): void;
  stats(): CgroupStats | undefined;
  oomKills(): number;
  destroy(): Promise<void>;
}

function read(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return '';
  }
}

function num(text: string): number {
  const n = Number(text);
  return Number.isFinite(n) ? n : 0;
}

function keyed(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined) out.set(k, num(v));
  }
  return out;
}

function write(file: string, value: string | number): void {
  fs.writeFileSync(file, String(value));
}

/** A limit as a cgroup file takes it: -1 (OCI's "no limit") is "max". */
function limitOrMax(limit: number): string | number {
  return limit < 0 ? 'max' : limit;
}

/** Opens (creating) the cgroup at `cgroupsPath`; undefined when cgroups are not usable here. */
export function openCgroup(cgroupsPath: string | undefined): Cgroup | undefined {
  // systemd-style "slice:prefix:name" paths need systemd's cgroup driver: not handled.
  if (!cgroupsPath || !cgroupsPath.startsWith('/') || cgroupsPath.includes('..')) return undefined;
  if (fs.existsSync(path.join(ROOT, 'cgroup.controllers'))) return openV2(path.join(ROOT, cgroupsPath));
  if (fs.existsSync(path.join(ROOT, 'memory'))) return openV1(cgroupsPath);
  return undefined;
}

function openV1(cgroupsPath: string): Cgroup | undefined {
  const dirs = new Map<string, string>();
  for (const c of V1_CONTROLLERS) {
    const base = path.join(ROOT, c);
    if (!fs.existsSync(base)) continue;
    const dir = path.join(base, cgroupsPath);
    try {
      fs.mkdirSync(dir, { recursive: true });
      dirs.set(c, dir);
    } catch {
      // this controller is not ours to use
    }
  }
  const mem = dirs.get('memory');
  if (!mem) return undefined;
  // Charges of a process moved in (a warm child) move with it.
  try {
    write(path.join(mem, 'memory.move_charge_at_immigrate'), 3);
  } catch {
    // older kernels: only new allocations are charged
  }
  const oomKills = () => keyed(read(path.join(mem, 'memory.oom_control'))).get('oom_kill') ?? 0;
  return {
    path: cgroupsPath,
    async addProcess(pid) {
      for (const dir of dirs.values()) await fs.promises.writeFile(path.join(dir, 'cgroup.procs'), String(pid));
    },
    apply(r) {
      // v1 takes -1 for "no limit" in memory and CPU quota, "max" for pids
      if (r.memory?.limit) write(path.join(mem, 'memory.limit_in_bytes'), r.memory.limit);
      const cpu = dirs.get('cpu');
      if (cpu && r.cpu?.shares) write(path.join(cpu, 'cpu.shares'), r.cpu.shares);
      if (cpu && r.cpu?.period) write(path.join(cpu, 'cpu.cfs_period_us'), r.cpu.period);
      if (cpu && r.cpu?.quota) write(path.join(cpu, 'cpu.cfs_quota_us'), r.cpu.quota);
      const pids = dirs.get('pids');
      if (pids && r.pids?.limit) write(path.join(pids, 'pids.max'), limitOrMax(r.pids.limit));
    },
    stats() {
      const stat = keyed(read(path.join(mem, 'memory.stat')));
      const acct = dirs.get('cpuacct');
      const ticks = acct ? keyed(read(path.join(acct, 'cpuacct.stat'))) : new Map<string, number>();
      const pids = dirs.get('pids');
      return {
        memoryUsage: num(read(path.join(mem, 'memory.usage_in_bytes'))),
        memoryMaxUsage: num(read(path.join(mem, 'memory.max_usage_in_bytes'))),
        memoryLimit: num(read(path.join(mem, 'memory.limit_in_bytes'))),
        memoryFailcnt: num(read(path.join(mem, 'memory.failcnt'))),
        rss: stat.get('total_rss') ?? stat.get('rss') ?? 0,
        cache: stat.get('total_cache') ?? stat.get('cache') ?? 0,
        cpuTotalNanos: acct ? num(read(path.join(acct, 'cpuacct.usage'))) : 0,
        cpuUserNanos: ((ticks.get('user') ?? 0) * 1e9) / 100,
        cpuKernelNanos: ((ticks.get('system') ?? 0) * 1e9) / 100,
        pids: pids ? num(read(path.join(pids, 'pids.current'))) : 0,
        oomKills: oomKills(),
      };
    },
    oomKills,
    async destroy() {
      for (const dir of dirs.values()) await removeDir(dir);
    },
  };
}

function openV2(dir: string): Cgroup | undefined {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch {
    return undefined;
  }
  const oomKills = () => keyed(read(path.join(dir, 'memory.events'))).get('oom_kill') ?? 0;
  return {
    path: dir,
    addProcess(pid) {
      return fs.promises.writeFile(path.join(dir, 'cgroup.procs'), String(pid));
    },
    apply(r) {
      if (r.memory?.limit) write(path.join(dir, 'memory.max'), limitOrMax(r.memory.limit));
      // cgroup v2 weight from v1 shares, as runc converts it.
      if (r.cpu?.shares)
        write(
          path.join(dir, 'cpu.weight'),
          Math.max(1, Math.min(10000, 1 + Math.round(((r.cpu.shares - 2) * 9999) / 262142))),
        );
      if (r.cpu?.quota) write(path.join(dir, 'cpu.max'), `${limitOrMax(r.cpu.quota)} ${r.cpu.period || 100000}`);
      if (r.pids?.limit) write(path.join(dir, 'pids.max'), limitOrMax(r.pids.limit));
    },
    stats() {
      const stat = keyed(read(path.join(dir, 'memory.stat')));
      const cpu = keyed(read(path.join(dir, 'cpu.stat')));
      const max = read(path.join(dir, 'memory.max'));
      return {
        memoryUsage: num(read(path.join(dir, 'memory.current'))),
        memoryMaxUsage: num(read(path.join(dir, 'memory.peak'))),
        memoryLimit: max === 'max' ? 0 : num(max),
        memoryFailcnt: keyed(read(path.join(dir, 'memory.events'))).get('max') ?? 0,
        rss: stat.get('anon') ?? 0,
        cache: stat.get('file') ?? 0,
        cpuTotalNanos: (cpu.get('usage_usec') ?? 0) * 1000,
        cpuUserNanos: (cpu.get('user_usec') ?? 0) * 1000,
        cpuKernelNanos: (cpu.get('system_usec') ?? 0) * 1000,
        pids: num(read(path.join(dir, 'pids.current'))),
        oomKills: oomKills(),
      };
    },
    oomKills,
    destroy() {
      return removeDir(dir);
    },
  };
}

/** A cgroup directory goes with rmdir once empty; its processes may take a moment to leave. */
async function removeDir(dir: string): Promise<void> {
  for (let i = 0; i < 20; i++) {
    try {
      fs.rmdirSync(dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY') return;
      await new Promise((r) => setTimeout(r, 5)); // without blocking the daemon's other containers
    }
  }
}

/** Removes a container's cgroup directories if they are there (cleanup after a dead daemon). */
export async function removeCgroup(cgroupsPath: string | undefined): Promise<void> {
  if (!cgroupsPath || !cgroupsPath.startsWith('/') || cgroupsPath.includes('..')) return;
  if (fs.existsSync(path.join(ROOT, 'cgroup.controllers'))) return removeDir(path.join(ROOT, cgroupsPath));
  for (const c of V1_CONTROLLERS) await removeDir(path.join(ROOT, c, cgroupsPath));
}
