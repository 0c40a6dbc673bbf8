// Taking down what a private containerd's containers left: tasks through ctr
// while containerd runs, then shims, runc state, mounts, sockets, daemon
// state dirs and the temp dir by hand.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmdirSync, rmSync, statSync, unlinkSync } from 'node:fs';
import * as path from 'node:path';
import { daemonPaths, lockHolder } from '../../src/handoff/handoff.js';
import { listBundles } from './bundles.js';
import { ctrLines, type CtrOptions, type CtrResult } from './ctr.js';
import { addressArgPattern, daemonKey, shimDaemons } from './daemons.js';
import { unmountAll } from './mounts.js';
import { descendants, escapeRegExp, killQuiet, listProcesses, processAlive, type ProcessInfo } from './processes.js';
import { sleep } from './wait.js';

export interface SweepTarget {
  tmp: string;
  address: string;
  state: string;
  containerdPid(): number | undefined;
}

type Ctr = (args: string[], o?: CtrOptions) => Promise<CtrResult>;

/**
 * Kills and deletes every task and container, in every namespace; resolves
 * with the namespaces (or `fallback` when containerd does not list them).
 */
export async function removeTasks(ctr: Ctr, fallback: string[]): Promise<string[]> {
  const quiet = (args: string[], namespace: string, timeoutMs: number) =>
    ctr(args, { namespace, timeoutMs }).catch(() => undefined);
  const listed = await ctr(['namespaces', 'ls', '-q'], { timeoutMs: 5_000 }).catch(() => undefined);
  const namespaces = listed?.code === 0 ? ctrLines(listed) : fallback;
  for (const ns of namespaces) {
    const tasks = ctrLines(await quiet(['tasks', 'ls', '-q'], ns, 5_000));
    await Promise.all(tasks.map((t) => quiet(['tasks', 'kill', '--all', '-s', 'SIGKILL', t], ns, 5_000)));
    await Promise.all(tasks.map((t) => quiet(['tasks', 'delete', '--force', t], ns, 10_000)));
    const containers = ctrLines(await quiet(['containers', 'ls', '-q'], ns, 5_000));
    if (containers.length) await quiet(['containers', 'delete', ...containers], ns, 10_000);
  }
  return namespaces;
}

/** Shims (and anything else) still referring to our socket or temp dir. */
function leftovers(t: SweepTarget): ProcessInfo[] {
  const pattern = new RegExp(`${addressArgPattern(t.address).source}|${escapeRegExp(t.tmp)}/`);
  return listProcesses(pattern).filter((p) => p.pid !== t.containerdPid());
}

/**
 * Shims of tasks we could not delete keep running without containerd:
 * SIGTERM them, then SIGKILL them and everything they started (collected
 * before any signal, so reparenting cannot hide them).
 */
export async function killShims(t: SweepTarget): Promise<void> {
  const shims = leftovers(t);
  const tree = descendants(shims.map((p) => p.pid));
  if (tree.length === 0) return;
  for (const p of shims) killQuiet(p.pid, 'SIGTERM');
  for (let i = 0; i < 5 && tree.some(processAlive); i++) await sleep(50);
  for (const pid of tree) killQuiet(pid, 'SIGKILL');
}

/**
 * Notes the state dirs (/run/wasmts/<key>) of the containerd's running
 * daemons: its temp address makes every key new, so a dir left by a killed
 * daemon would never be used again.
 */
export function noteDaemonDirs(address: string, into: Set<string>): void {
  for (const d of shimDaemons(address)) {
    const key = daemonKey(d.pid);
    if (key) into.add(daemonPaths(key).dir);
  }
}

/**
 * runc keeps its state in /run/containerd/runc/<ns>/<id> and ctr puts cgroups
 * at /<ns>/<id>; runc removes the <id> level but leaves the empty <ns> dirs.
 * Remove those (rmdir only succeeds when empty) for namespaces other than
 * "default", which other containerds on the machine are likely to share.
 */
function removeNamespaceDirs(namespaces: string[]): void {
  let controllers: string[] = [];
  try {
    controllers = readdirSync('/sys/fs/cgroup');
  } catch {
    /* no cgroupfs */
  }
  for (const ns of namespaces) {
    if (ns === 'default' || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(ns)) continue;
    const dirs = [
      `/run/containerd/runc/${ns}`,
      `/sys/fs/cgroup/${ns}`,
      ...controllers.map((c) => `/sys/fs/cgroup/${c}/${ns}`),
    ];
    for (const d of dirs) {
      try {
        rmdirSync(d);
      } catch {
        /* absent, not empty, or not ours */
      }
    }
  }
}

/** runc state of our tasks (runc keeps it outside our temp dir); only where it names our bundle. */
function deleteRuncState(bundles: { ns: string; id: string; dir: string }[]): void {
  for (const b of bundles) {
    const runcRoot = `/run/containerd/runc/${b.ns}`;
    try {
      if (!readFileSync(path.join(runcRoot, b.id, 'state.json'), 'utf8').includes(`"bundle=${b.dir}"`)) continue;
    } catch {
      continue;
    }
    spawnSync('runc', ['--root', runcRoot, 'delete', '--force', b.id], { stdio: 'ignore', timeout: 10_000 });
  }
}

/** The synchronous last step: kill what is left, release runc state, mounts, sockets, daemon dirs, the temp dir. */
export function sweep(t: SweepTarget, namespaces: string[], daemonDirs: Set<string>): void {
  const bundles = listBundles(t.state);
  for (const pid of descendants(leftovers(t).map((p) => p.pid))) killQuiet(pid, 'SIGKILL');
  deleteRuncState(bundles);
  unmountAll(t.tmp);
  for (const b of bundles) {
    try {
      if (b.socket && statSync(b.socket).isSocket()) unlinkSync(b.socket);
    } catch {
      /* gone */
    }
  }
  for (const dir of daemonDirs)
    if (lockHolder(path.join(dir, 'lock')) === undefined) rmSync(dir, { recursive: true, force: true });
  rmSync(t.tmp, { recursive: true, force: true });
  removeNamespaceDirs([...new Set([...namespaces, ...bundles.map((b) => b.ns)])]);
}
