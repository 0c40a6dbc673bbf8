// What a container leaves in its bundle for whoever cleans up after it (the
// daemon's Delete, or the front end's `delete` once the daemon is gone): the
// pids of its Wasm children and the mount points its Create made. Read back
// as untrusted: a record that does not parse counts as no record.
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  EXEC_PID_FILE,
  INIT_PID_FILE,
  MOUNTS_FILE,
  bundleFile,
  readBundleFile,
  removeBundleFile,
  writeBundleFile,
} from './files.js';

/** The exec id as a file name: containerd's ids are left as they are, anything else cannot leave the bundle. */
function execPidFile(execId: string): string {
  return `${EXEC_PID_FILE.prefix}${encodeURIComponent(execId)}${EXEC_PID_FILE.suffix}`;
}

export function writeInitPid(bundle: string, pid: number): void {
  writeBundleFile(bundle, INIT_PID_FILE, String(pid));
}

export function removeInitPid(bundle: string): void {
  removeBundleFile(bundle, INIT_PID_FILE);
}

export function writeExecPid(bundle: string, execId: string, pid: number): void {
  writeBundleFile(bundle, execPidFile(execId), String(pid));
}

export function removeExecPid(bundle: string, execId: string): void {
  removeBundleFile(bundle, execPidFile(execId));
}

export interface RecordedPids {
  /** The init process's child, when recorded. */
  init: number | undefined;
  /** Every recorded child: init's and the execs'. */
  all: number[];
}

function pidIn(bundle: string, name: string): number | undefined {
  const text = readBundleFile(bundle, name);
  if (text === undefined || !/^[1-9][0-9]{0,9}$/.test(text)) return undefined;
  const pid = Number(text);
  return pid < 2 ** 31 ? pid : undefined;
}

/** The pids of the container's Wasm children as its bundle records them. */
export function readRecordedPids(bundle: string): RecordedPids {
  let names: string[];
  try {
    names = fs.readdirSync(bundle);
  } catch {
    return { init: undefined, all: [] };
  }
  const isExec = (n: string) => n.startsWith(EXEC_PID_FILE.prefix) && n.endsWith(EXEC_PID_FILE.suffix);
  const init = names.includes(INIT_PID_FILE) ? pidIn(bundle, INIT_PID_FILE) : undefined;
  const execs = names.filter(isExec).map((n) => pidIn(bundle, n));
  return { init, all: [init, ...execs].filter((p) => p !== undefined) };
}

/** The mount points recorded so far, in the order they were made; [] when none or unreadable. */
export function readMountRecord(bundle: string): string[] {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(bundleFile(bundle, MOUNTS_FILE), 'utf8'));
  } catch {
    return [];
  }
  if (!Array.isArray(raw)) return [];
  return raw.filter((p): p is string => typeof p === 'string' && path.isAbsolute(p));
}

/**
 * Adds a mount point as it is made, so teardown (even `delete` after a dead
 * daemon) unmounts exactly those, also when the rootfs is a directory of the
 * user's (ctr --rootfs).
 */
export function recordMount(bundle: string, point: string): void {
  writeBundleFile(bundle, MOUNTS_FILE, JSON.stringify([...readMountRecord(bundle), point]));
}

export function removeMountRecord(bundle: string): void {
  removeBundleFile(bundle, MOUNTS_FILE);
}
