// Files the shim reads and writes in a container's bundle, besides those
// Create and cleanup own (config.json: spec.ts; pid and mount records: cleanup.ts).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BinaryWriter } from '@bufbuild/protobuf/wire';

/** The daemon's address, for containerd to find it again after a restart. */
export const ADDRESS_FILE = 'address';
/** The pid of the daemon serving the container. */
export const SHIM_PID_FILE = 'shim.pid';
/** The FIFO containerd copies into its own log. */
export const LOG_FIFO = 'log';
/** containerd's DeleteResponse, left by the daemon once it deleted and cleaned the container; the front end's `delete` prints it. */
export const DELETE_RESPONSE_FILE = 'wasmts-delete-response';

/** Writes `<bundle>/<name>` atomically (temp file + rename), no trailing newline. */
export function writeBundleFile(bundle: string, name: string, content: string | Uint8Array): void {
  const file = path.join(bundle, name);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, content, { mode: 0o600 });
  fs.renameSync(tmp, file);
}

export function readBundleFile(bundle: string, name: string): string | undefined {
  try {
    return fs.readFileSync(path.join(bundle, name), 'utf8').trim();
  } catch {
    return undefined;
  }
}

export function readBundleBytes(bundle: string, name: string): Uint8Array | undefined {
  try {
    return fs.readFileSync(path.join(bundle, name));
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
