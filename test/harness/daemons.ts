// The shim processes of one containerd: the short-lived `start`/`delete` and
// the long-lived daemons (recognised by src/handoff's isShimDaemon, the one
// test the shim, tests, bench and soak share), and what an idle daemon must
// not hold.
import { readFileSync } from 'node:fs';
import { daemonPaths, isShimDaemon, keyFrom } from '../../src/handoff/handoff.js';
import { childPids, escapeRegExp, listProcesses, openFiles, type ProcessInfo } from './processes.js';

/** `-address <address>` as a word of a command line: what containerd passes every shim it starts. */
export function addressArgPattern(address: string): RegExp {
  return new RegExp(`(^|\\s)-address ${escapeRegExp(address)}(\\s|$)`);
}

export interface ShimProcess extends ProcessInfo {
  /** The long-lived daemon (isShimDaemon), not a `start` or `delete`. */
  daemon: boolean;
}

/** Every shim process of the containerd at `address` (`start`, `delete`, daemons); containerdPid is left out. */
export function shimProcesses(address: string, containerdPid?: number): ShimProcess[] {
  return listProcesses(addressArgPattern(address))
    .filter((p) => p.pid !== containerdPid)
    .map((p) => ({ ...p, daemon: isShimDaemon(p.argv) }));
}

/** The long-lived shim daemons of the containerd at `address` (see src/handoff/handoff.ts). */
export function shimDaemons(address: string): ProcessInfo[] {
  return listProcesses(/shim\.cjs/).filter((p) => isShimDaemon(p.argv) && p.argv.includes(address));
}

/** The key a daemon serves (its _WASMTS_KEY); undefined for a standalone daemon or one that is gone. */
export function daemonKey(pid: number): string | undefined {
  try {
    const env: Record<string, string> = {};
    for (const kv of readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
      const eq = kv.indexOf('=');
      if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
    return keyFrom(env);
  } catch {
    return undefined;
  }
}

/** The state dirs (/run/wasmts/<key>) of the running daemons of the containerd at `address`. */
export function daemonStateDirs(address: string): string[] {
  return shimDaemons(address)
    .map((d) => daemonKey(d.pid))
    .filter((k): k is string => k !== undefined)
    .map((k) => daemonPaths(k).dir);
}

/**
 * What idle daemons must not hold once their containers are gone: a file
 * under `dir` (a bundle's log FIFO, a rootfs), or a child besides the one
 * warm Wasm child; and one key must not keep two daemons (a second one, not
 * holding the key's lock, leaves with its last socket).
 */
export function busyDaemonProblems(address: string, dir: string): string[] {
  const problems: string[] = [];
  const daemons = shimDaemons(address);
  const byKey = new Map<string, number[]>();
  for (const d of daemons) {
    const key = daemonKey(d.pid) ?? `standalone ${d.pid}`;
    byKey.set(key, [...(byKey.get(key) ?? []), d.pid]);
  }
  for (const [key, pids] of byKey)
    if (pids.length > 1) problems.push(`${pids.length} daemons for key ${key.slice(0, 12)}: ${pids.join(', ')}`);
  for (const d of daemons) {
    for (const target of openFiles(d.pid)) {
      if (target.startsWith(`${dir}/`)) problems.push(`daemon ${d.pid} still holds ${target}`);
    }
    const kids = childPids(d.pid);
    if (kids.length > 1)
      problems.push(`daemon ${d.pid} has ${kids.length} children (one warm Wasm child expected): ${kids.join(', ')}`);
  }
  return problems;
}

/** Wasm children holding a file at or below dir (every running child holds its rootfs preopen). */
export function wasmChildrenUnder(dir: string): ProcessInfo[] {
  return listProcesses(/wasm-child/).filter((p) => openFiles(p.pid).some((t) => t.startsWith(`${dir}/`)));
}
