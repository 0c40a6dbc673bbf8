// The two short-lived actions containerd execs: `start` (find or launch the
// daemon, print its address) and `delete` (clean up after a task, even when
// the daemon is gone). Nothing else lives here: this is every container's
// critical path, so it loads no protobuf descriptors and no task code.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { bindShimSocket, canConnect, groupingFor, socketPathFor, writeFileAtomic } from './address.js';
import { parseStartInput } from './bootstrap.js';
import type { ShimFlags } from './flags.js';
import { readAnnotations, readCgroupsPath } from './spec.js';
import { adoptSpare, spareSocketPath } from './spare.js';
import { killLeftoverChildren, unmountRootfs } from './cleanup.js';
import { removeCgroup } from './cgroup.js';

export interface StartEnv {
  cwd: string;
  stdin: Uint8Array;
  /** The script that runs the daemon (`serve` action). */
  daemonEntry: string;
  env: NodeJS.ProcessEnv;
}

export async function startShim(flags: ShimFlags, startEnv: StartEnv): Promise<string> {
  const input = parseStartInput(startEnv.stdin);
  const namespace = flags.namespace || input.namespace || '';
  const containerdAddress = flags.address || input.grpcAddress || '';
  if (!namespace) throw new Error('start: -namespace is required');
  if (!flags.id) throw new Error('start: -id is required');
  if (!containerdAddress) throw new Error('start: -address is required');
  const bundle = flags.bundle || startEnv.cwd;

  const socketPath = socketPathFor(containerdAddress, namespace, groupingFor(flags.id, readAnnotations(bundle)));
  const address = `unix://${socketPath}`;
  fs.mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o711 });
  const publishBinary = flags.publishBinary || input.containerdBinary || '';
  const env = { ...startEnv.env };
  if (!env.TTRPC_ADDRESS && input.ttrpcAddress) env.TTRPC_ADDRESS = input.ttrpcAddress;
  /** The address file last: containerd reads it to find the daemon again after a restart. */
  const served = (daemonPid?: number): string => {
    if (daemonPid) writeFileAtomic(path.join(bundle, 'shim.pid'), String(daemonPid));
    writeFileAtomic(path.join(bundle, 'address'), address);
    return address;
  };

  if (fs.existsSync(socketPath) && (await canConnect(socketPath))) return served(); // a live daemon serves this group: share it
  if (env.WASMTS_SPARE !== '0') {
    const daemonCode = path.join(path.dirname(startEnv.daemonEntry), 'daemon.cjs');
    const pid = await adoptSpare(spareSocketPath(containerdAddress, env, daemonCode), {
      socketPath, namespace, id: flags.id, address: containerdAddress, publishBinary, bundle, debug: flags.debug,
    });
    if (pid) return served(pid);
  }

  const server = await bindShimSocket(socketPath);
  if (!server) return served(); // lost a race with another start of this group
  const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
  const args = [
    startEnv.daemonEntry,
    '-namespace', namespace,
    '-id', flags.id,
    '-address', containerdAddress,
    '-publish-binary', publishBinary,
    '-socket', socketPath,
    ...(flags.debug ? ['-debug'] : []),
    'serve',
  ];
  const child = spawn(process.execPath, args, {
    cwd: bundle,
    env,
    detached: true,
    stdio: ['ignore', 'ignore', 'ignore', fd],
  });
  child.unref();
  if (!child.pid) throw new Error('start: could not spawn the shim daemon');
  // Do not close `server`: libuv would unlink the socket file the daemon now owns.
  return served(child.pid);
}

const SIGKILL_STATUS = 128 + 9;

/**
 * containerd runs `delete` after every teardown and after a shim died. It must
 * be idempotent: kill what a dead daemon left running, unmount the rootfs,
 * remove a socket nobody serves, and report the task as killed.
 */
export async function deleteShim(flags: ShimFlags, cwd: string): Promise<Uint8Array> {
  const bundle = flags.bundle || cwd;
  const pid = killLeftoverChildren(bundle);
  unmountRootfs(bundle);
  removeCgroup(readCgroupsPath(bundle));
  const addressFile = path.join(bundle, 'address');
  let address = '';
  try {
    address = fs.readFileSync(addressFile, 'utf8').trim();
  } catch {
    // already cleaned up
  }
  if (address) {
    const socketPath = address.replace(/^unix:\/\//, '');
    if (!(await canConnect(socketPath, 500))) fs.rmSync(socketPath, { force: true });
    fs.rmSync(addressFile, { force: true });
  }
  return encodeDeleteResponse(pid, SIGKILL_STATUS, Date.now());
}

/** containerd.task.v2.DeleteResponse{pid 1, exit_status 2, exited_at 3}, by hand to keep `delete` light. */
export function encodeDeleteResponse(pid: number, exitStatus: number, exitedAtMs: number): Uint8Array {
  const ts = new BinaryWriter()
    .tag(1, 0).int64(Math.floor(exitedAtMs / 1000))
    .tag(2, 0).int32((exitedAtMs % 1000) * 1_000_000)
    .finish();
  const w = new BinaryWriter();
  if (pid) w.tag(1, 0).uint32(pid);
  w.tag(2, 0).uint32(exitStatus);
  w.tag(3, 2).bytes(ts);
  return w.finish();
}
