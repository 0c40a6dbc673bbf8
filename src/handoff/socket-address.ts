// Where a shim listens, computed exactly as containerd's shim library does,
// so `start` for a second container of the same group finds the first daemon.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

export const SOCKET_DIR = '/run/containerd/s';
const GROUP_ANNOTATIONS = ['io.kubernetes.cri.sandbox-id', 'io.containerd.runc.v2.group'];

export function socketPathFor(containerdAddress: string, namespace: string, grouping: string): string {
  // Go's filepath.Join cleans the result; path.join does the same for these inputs.
  const joined = path.join(containerdAddress, namespace, grouping);
  return `${SOCKET_DIR}/${createHash('sha256').update(joined).digest('hex')}`;
}

export function groupingFor(id: string, annotations: Record<string, string> | undefined): string {
  for (const key of GROUP_ANNOTATIONS) {
    const value = annotations?.[key];
    if (value) return value;
  }
  return id;
}

function listen(socketPath: string): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ path: socketPath, backlog: 128 }, () => {
      server.removeListener('error', reject);
      resolve(server);
    });
  });
}

/**
 * Binds a shim's socket, readable by root only; a file left by a dead daemon
 * is replaced. Undefined when a live daemon already listens there.
 */
export async function bindShimSocket(socketPath: string): Promise<net.Server | undefined> {
  let server: net.Server;
  try {
    server = await listen(socketPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    // Only a refused connection proves the file dead: a daemon slow to accept under load is alive.
    if ((await probeSocket(socketPath)) !== 'dead') return undefined;
    fs.rmSync(socketPath, { force: true });
    server = await listen(socketPath);
  }
  fs.chmodSync(socketPath, 0o600);
  return server;
}

export type SocketState = 'live' | 'dead' | 'unknown';

/** live: something accepted a connection; dead: refused or no such file; unknown: no answer within timeoutMs. */
export function probeSocket(socketPath: string, timeoutMs = 1000): Promise<SocketState> {
  return new Promise((resolve) => {
    const socket = net.connect(socketPath);
    const done = (state: SocketState) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(state);
    };
    const timer = setTimeout(() => done('unknown'), timeoutMs);
    socket.once('connect', () => done('live'));
    socket.once('error', () => done('dead'));
  });
}

/** True when something accepts connections on the unix socket `socketPath`. */
export async function canConnect(socketPath: string, timeoutMs = 1000): Promise<boolean> {
  return (await probeSocket(socketPath, timeoutMs)) === 'live';
}
