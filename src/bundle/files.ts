// Every file the shim reads or writes in a container's bundle: their names
// live here and nowhere else, and other modules reach them only through the
// functions below (see index.ts). Keep in step with the sh front end,
// bin/containerd-shim-wasmts-v1, which reads config.json and
// wasmts-delete-response and writes address itself.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BinaryWriter } from '@bufbuild/protobuf/wire';

/** containerd's OCI runtime spec for the container (read by spec.ts). */
const CONFIG_FILE = 'config.json';
/** Where the rootfs is when the spec's root.path does not say. */
const DEFAULT_ROOTFS = 'rootfs';
/** The daemon's address, for containerd to find it again after a restart; the sh front end writes it too. */
const ADDRESS_FILE = 'address';
/** The pid of the daemon serving the container. */
export const SHIM_PID_FILE = 'shim.pid';
/** The FIFO containerd copies into its own log. */
const LOG_FIFO = 'log';
/** The Wasm pause module a pod sandbox runs instead of its image's native pause binary. */
const PAUSE_MODULE_FILE = 'wasmts-pause.wasm';
/** containerd's DeleteResponse, left by the daemon once it deleted and cleaned the container; the front end's `delete` prints it (the sh front end reads it by this name). */
export const DELETE_RESPONSE_FILE = 'wasmts-delete-response';
/** The init process's Wasm child (records.ts). */
export const INIT_PID_FILE = 'init.pid';
/** An exec's Wasm child: `exec-<exec id>.pid` (records.ts). */
export const EXEC_PID_FILE = { prefix: 'exec-', suffix: '.pid' } as const;
/** The mount points Create made, in order (records.ts). */
export const MOUNTS_FILE = 'wasmts-mounts.json';

/** `<bundle>/<name>`: for this folder's modules only (records.ts). */
export function bundleFile(bundle: string, name: string): string {
  return path.join(bundle, name);
}

/** Writes `<bundle>/<name>` owner-only and atomically (temp file + rename), no trailing newline. */
export function writeBundleFile(bundle: string, name: string, content: string | Uint8Array): void {
  const file = path.join(bundle, name);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, content, { mode: 0o600 });
  fs.renameSync(tmp, file);
}

/** `<bundle>/<name>` as trimmed text; undefined when it cannot be read. */
export function readBundleFile(bundle: string, name: string): string | undefined {
  try {
    return fs.readFileSync(path.join(bundle, name), 'utf8').trim();
  } catch {
    return undefined;
  }
}

export function removeBundleFile(bundle: string, name: string): void {
  fs.rmSync(path.join(bundle, name), { force: true });
}

/** The rootfs on the host: the spec's root.path (relative to the bundle), or `<bundle>/rootfs`. */
export function rootfsPath(bundle: string, rootPath?: string): string {
  return path.resolve(bundle, rootPath || DEFAULT_ROOTFS);
}

/**
 * The containerd namespace a bundle belongs to, from its path: containerd keeps
 * bundles at <state>/io.containerd.runtime.v2.task/<namespace>/<id> (1.6 sends no
 * namespace metadata with its calls).
 */
export function namespaceOfBundle(bundle: string): string {
  return path.basename(path.dirname(bundle));
}

export function configPath(bundle: string): string {
  return path.join(bundle, CONFIG_FILE);
}

export function logFifoPath(bundle: string): string {
  return path.join(bundle, LOG_FIFO);
}

export function writeAddress(bundle: string, address: string): void {
  writeBundleFile(bundle, ADDRESS_FILE, address);
}

export function readAddress(bundle: string): string | undefined {
  return readBundleFile(bundle, ADDRESS_FILE);
}

export function removeAddress(bundle: string): void {
  removeBundleFile(bundle, ADDRESS_FILE);
}

export function writeShimPid(bundle: string, pid: number): void {
  writeBundleFile(bundle, SHIM_PID_FILE, String(pid));
}

/** Writes the pause module into the bundle; returns its host path. */
export function writePauseModule(bundle: string, module: Uint8Array): string {
  writeBundleFile(bundle, PAUSE_MODULE_FILE, module);
  return path.join(bundle, PAUSE_MODULE_FILE);
}

export function writeDeleteResponse(bundle: string, pid: number, exitStatus: number, exitedAtMs: number): void {
  writeBundleFile(bundle, DELETE_RESPONSE_FILE, encodeDeleteResponse(pid, exitStatus, exitedAtMs));
}

/** The DeleteResponse the daemon left, byte for byte; undefined when there is none. */
export function readDeleteResponse(bundle: string): Uint8Array | undefined {
  try {
    return fs.readFileSync(path.join(bundle, DELETE_RESPONSE_FILE));
  } catch {
    return undefined;
  }
}

/** containerd.task.v2.DeleteResponse{pid 1, exit_status 2, exited_at 3}, by hand to keep `delete` light. */
export function encodeDeleteResponse(pid: number, exitStatus: number, exitedAtMs: number): Uint8Array {
  const ts = new BinaryWriter()
    .tag(1, 0)
    .int64(Math.floor(exitedAtMs / 1000))
    .tag(2, 0)
    .int32((exitedAtMs % 1000) * 1_000_000)
    .finish();
  const w = new BinaryWriter();
  if (pid) w.tag(1, 0).uint32(pid);
  w.tag(2, 0).uint32(exitStatus);
  w.tag(3, 2).bytes(ts);
  return w.finish();
}
