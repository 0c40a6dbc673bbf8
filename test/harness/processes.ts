// What /proc says about processes: which ones match, their descendants,
// whether they live, what they hold open, their memory and ids.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export interface ProcessInfo {
  pid: number;
  /** argv joined with spaces. */
  cmdline: string;
  argv: string[];
}

export function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function pidEntries(): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number);
}

/** Processes (other than this one) whose command line matches pattern. */
export function listProcesses(pattern: RegExp): ProcessInfo[] {
  const out: ProcessInfo[] = [];
  for (const pid of pidEntries()) {
    if (pid === process.pid) continue;
    let raw: Buffer;
    try {
      raw = readFileSync(`/proc/${pid}/cmdline`);
    } catch {
      continue; // gone, or a kernel thread we cannot read
    }
    if (raw.length === 0) continue; // kernel thread or zombie
    const argv = raw.toString('utf8').replace(/\0$/, '').split('\0');
    const cmdline = argv.join(' ');
    pattern.lastIndex = 0;
    if (pattern.test(cmdline)) out.push({ pid, cmdline, argv });
  }
  return out;
}

/** Processes whose command line names a path at or below dir. */
export function processesUnder(dir: string): ProcessInfo[] {
  return listProcesses(new RegExp(`${escapeRegExp(dir)}/`));
}

/** pids plus all their descendants (from /proc/<pid>/stat ppid). */
export function descendants(pids: number[]): number[] {
  const children = new Map<number, number[]>();
  for (const pid of pidEntries()) {
    try {
      const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), pid]);
    } catch {
      /* gone */
    }
  }
  const out = new Set<number>();
  const queue = [...pids];
  for (let p = queue.pop(); p !== undefined; p = queue.pop()) {
    if (out.has(p)) continue;
    out.add(p);
    queue.push(...(children.get(p) ?? []));
  }
  return [...out];
}

/** Running, not gone and not a zombie waiting to be reaped. */
export function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

export function killQuiet(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

/** SIGKILL pid and everything it started (collected first, so reparenting cannot hide any). */
export function killTree(pids: number[]): void {
  for (const pid of descendants(pids)) killQuiet(pid, 'SIGKILL');
}

/** Where each open fd of pid points; empty once pid is gone. */
export function openFiles(pid: number): string[] {
  const out: string[] = [];
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out; // gone
  }
  for (const fd of fds) {
    try {
      out.push(readlinkSync(`/proc/${pid}/fd/${fd}`));
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** True when pid has a file open at or below one of dirs (a bundle's log FIFO, a rootfs). */
export function holdsFileUnder(pid: number, dirs: string[]): boolean {
  return openFiles(pid)
    .map((target) => target.replace(/ \(deleted\)$/, ''))
    .some((target) => dirs.some((d) => target === d || target.startsWith(`${d}/`)));
}

export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Where each fd of pid points, as "fd -> target" (for messages). */
export function fdTargets(pid: number): string[] {
  const out: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      out.push(`${fd} -> ${readlinkSync(`/proc/${pid}/fd/${fd}`)}`);
    } catch {
      /* closed meanwhile */
    }
  }
  return out;
}

/** The direct children of pid (over all its threads). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      const list = readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim();
      if (list) out.push(...list.split(/\s+/).map(Number));
    }
  } catch {
    // gone
  }
  return out;
}

function statusField(pid: number, field: string): string {
  const m = new RegExp(`^${field}:\\s+(.*)$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return m[1].trim();
}

/** A memory figure of /proc/<pid>/status in KiB; 0 once pid is gone. */
export function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    return Number(statusField(pid, field).split(/\s+/)[0]);
  } catch {
    return 0;
  }
}

/** Resident set size in KiB; throws when pid is gone. */
export function rssKb(pid: number): number {
  return Number(statusField(pid, 'VmRSS').split(/\s+/)[0]);
}

/** [real, effective, saved, fs] uids, gids, and the supplementary groups. */
export function credentials(pid: number): { uid: number[]; gid: number[]; groups: number[] } {
  const nums = (s: string) => s.split(/\s+/).filter(Boolean).map(Number);
  return {
    uid: nums(statusField(pid, 'Uid')),
    gid: nums(statusField(pid, 'Gid')),
    groups: nums(statusField(pid, 'Groups')),
  };
}
