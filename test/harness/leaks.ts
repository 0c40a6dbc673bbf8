// Leak checks: what one private containerd's finished containers left on the
// host. The long-lived shared daemon may stay, holding nothing of them.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readdirOrEmpty, socketPathFor, taskStateDir } from './bundles.js';
import type { Containerd } from './containerd.js';
import { busyDaemonProblems, shimProcesses, wasmChildrenUnder } from './daemons.js';
import { listMounts } from './mounts.js';
import { settled } from './wait.js';

export interface Census {
  /** `start` or `delete` processes still running (they exit at once). */
  shims: string[];
  /** What the long-lived daemons still hold of finished containers (busyDaemonProblems). */
  daemons: string[];
  /** Wasm children holding a file below the containerd's temp dir. */
  children: string[];
  mounts: string[];
  /** Bundle directories left in containerd's state dir. */
  bundles: string[];
  /** Sockets left in /run/containerd/s for the given groupings. */
  sockets: string[];
}

/** What one containerd's tasks left on the host; `groupings` are the ids (or sandbox ids) whose sockets must be gone. */
export function census(c: Containerd, groupings: Iterable<string> = [], ns = c.namespace): Census {
  const base = taskStateDir(c.state);
  const bundles = readdirOrEmpty(base).flatMap((n) => readdirOrEmpty(path.join(base, n)).map((id) => `${n}/${id}`));
  const sockets = [...groupings]
    .map((g) => [g, socketPathFor(c.address, ns, g)])
    .filter(([, p]) => fs.existsSync(p))
    .map(([g, p]) => `${g}: ${p}`);
  return {
    shims: shimProcesses(c.address, c.pid)
      .filter((p) => !p.daemon)
      .map((p) => `${p.pid} ${p.cmdline}`),
    daemons: busyDaemonProblems(c.address, c.tmp),
    children: wasmChildrenUnder(c.tmp).map((p) => `${p.pid} ${p.cmdline}`),
    mounts: listMounts(c.tmp).map((m) => `${m.mountPoint} (${m.fsType})`),
    bundles,
    sockets,
  };
}

export function censusProblems(x: Census): string[] {
  return [
    ...x.shims.map((s) => `shim process left: ${s}`),
    ...x.daemons,
    ...x.children.map((s) => `wasm child left: ${s}`),
    ...x.mounts.map((s) => `mount left: ${s}`),
    ...x.bundles.map((s) => `bundle dir left: ${s}`),
    ...x.sockets.map((s) => `shim socket left: ${s}`),
  ];
}

/** Polls the census until it is clean (a daemon lets go of a finished container's files within moments). */
export async function settledProblems(
  c: Containerd,
  groupings: Iterable<string>,
  timeoutMs = 10_000,
): Promise<string[]> {
  const list = [...groupings];
  return settled(
    () => censusProblems(census(c, list)),
    (p) => p.length === 0,
    timeoutMs,
  );
}
