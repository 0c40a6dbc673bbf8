// A containerd's task bundles and the shim sockets of its containers, where
// containerd 1.6 and its shim library put them.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { SOCKET_DIR } from './constants.js';

/** <state>/io.containerd.runtime.v2.task: containerd's bundles, one dir per namespace. */
export function taskStateDir(state: string): string {
  return path.join(state, 'io.containerd.runtime.v2.task');
}

export function bundleDirIn(state: string, namespace: string, id: string): string {
  return path.join(taskStateDir(state), namespace, id);
}

/** The shim socket of a container (or a pod's sandbox id), as the shim library computes it. */
export function socketPathFor(address: string, namespace: string, grouping: string): string {
  return `${SOCKET_DIR}/${createHash('sha256')
    .update(path.join(address, namespace, grouping))
    .digest('hex')}`;
}

export function readdirOrEmpty(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

export interface BundleInfo {
  ns: string;
  id: string;
  dir: string;
  /** The shim's socket path, from the bundle's address file. */
  socket?: string;
}

/** Every task bundle in a containerd's state dir. */
export function listBundles(state: string): BundleInfo[] {
  const out: BundleInfo[] = [];
  const base = taskStateDir(state);
  for (const ns of readdirOrEmpty(base)) {
    for (const id of readdirOrEmpty(path.join(base, ns))) {
      const dir = path.join(base, ns, id);
      let socket: string | undefined;
      try {
        const a = readFileSync(path.join(dir, 'address'), 'utf8').trim();
        if (a.startsWith('unix://')) socket = a.slice('unix://'.length);
      } catch {
        /* no address file */
      }
      out.push({ ns, id, dir, ...(socket ? { socket } : {}) });
    }
  }
  return out;
}
