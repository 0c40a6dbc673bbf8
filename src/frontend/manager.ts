// The Node side of the two short-lived actions containerd execs, for what the
// sh front end (bin/containerd-shim-wasmts-v1) does not answer itself: `start`
// (hand the container to a daemon, print its address) and `delete` (clean up
// after a task, even when the daemon is gone). It loads no task code.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  bindShimSocket,
  canConnect,
  groupingFor,
  probeSocket,
  socketPathFor,
  DAEMON_ACTION,
  daemonPaths,
  keyFrom,
  requestHandoff,
} from '../handoff/index.js';
import type { StartInput } from './bootstrap.js';
import {
  encodeDeleteResponse,
  readAddress,
  readAnnotations,
  readCgroupsPath,
  readDeleteResponse,
  removeAddress,
  writeAddress,
  writeShimPid,
} from '../bundle/index.js';
import type { ShimFlags } from './flags.js';
import { killLeftoverChildren, removeCgroup, unmountRootfs } from '../host/index.js';

export interface StartEnv {
  cwd: string;
  /** What containerd wrote on stdin (containerd 2.x's bootstrap params), parsed. */
  input: StartInput;
  /** The script that runs the daemon (`serve` action). */
  daemonEntry: string;
  env: NodeJS.ProcessEnv;
}

/**
 * What the front end leaves to Node: a pod's container (its group's socket is
 * live: share it), options on stdin, no ready socket. The key's daemon, when
 * one runs, takes the container over its control socket; otherwise `start`
 * binds the socket and starts a daemon on it.
 */
export async function startShim(flags: ShimFlags, startEnv: StartEnv): Promise<string> {
  const { input } = startEnv;
  const namespace = flags.namespace || input.namespace || '';
  const containerdAddress = flags.address || input.grpcAddress || '';
  if (!namespace) throw new Error('start: -namespace is required');
  if (!flags.id) throw new Error('start: -id is required');
  if (!containerdAddress) throw new Error('start: -address is required');
  const bundle = flags.bundle || startEnv.cwd;

  const socketPath = socketPathFor(containerdAddress, namespace, groupingFor(flags.id, readAnnotations(bundle)));
  const address = `unix://${socketPath}`;
  fs.mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o711 });
  const env = { ...startEnv.env };
  if (!env.TTRPC_ADDRESS && input.ttrpcAddress) env.TTRPC_ADDRESS = input.ttrpcAddress;
  /** The address file last: containerd reads it to find the daemon again after a restart. */
  const served = (daemonPid?: number): string => {
    if (daemonPid) writeShimPid(bundle, daemonPid);
    writeAddress(bundle, address);
    return address;
  };

  if (fs.existsSync(socketPath) && (await canConnect(socketPath))) return served(); // a live daemon serves this group: share it
  const key = keyFrom(env);
  if (key) {
    const pid = await requestHandoff(daemonPaths(key).control, { socketPath, namespace, id: flags.id, bundle });
    if (pid) return served(pid);
  }

  const server = await bindShimSocket(socketPath);
  if (!server) return served(); // lost a race with another start of this group
  const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
  const args = [
    startEnv.daemonEntry,
    '-namespace',
    namespace,
    '-id',
    flags.id,
    '-address',
    containerdAddress,
    '-publish-binary',
    flags.publishBinary || input.containerdBinary || '',
    '-bundle',
    bundle,
    '-socket',
    socketPath,
    ...(flags.debug ? ['-debug'] : []),
    DAEMON_ACTION,
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
  const left = readDeleteResponse(bundle);
  if (left) return left; // the daemon deleted and cleaned the container already
  const pid = killLeftoverChildren(bundle);
  await unmountRootfs(bundle);
  await removeCgroup(readCgroupsPath(bundle));
  const address = readAddress(bundle);
  if (address) {
    const socketPath = address.replace(/^unix:\/\//, '');
    if ((await probeSocket(socketPath, 500)) === 'dead') fs.rmSync(socketPath, { force: true });
    removeAddress(bundle);
  }
  return encodeDeleteResponse(pid, SIGKILL_STATUS, Date.now());
}
