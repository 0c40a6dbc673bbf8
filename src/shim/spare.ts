// A spare daemon: a shim process booted ahead of time, with its code loaded
// and a Wasm child warm, waiting on a control socket. `start` hands it the
// next container's socket instead of spawning a daemon and waiting for Node
// to boot, which takes Node's start-up off every container's critical path.
// Spares are keyed by containerd's address, the exact environment a daemon
// would get and the installed daemon code, so one only ever serves a start it
// is identical for (an upgrade leaves old spares to idle out).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { setPriority } from 'node:os';
import { SOCKET_DIR } from './address.js';

export interface Handoff {
  socketPath: string;
  namespace: string;
  id: string;
  address: string;
  publishBinary: string;
  bundle: string;
  debug: boolean;
}

export type HandoffReply = { ok: true; pid: number } | { ok: false; error: string };

/** Environment variables that differ between otherwise identical shim starts. */
const VOLATILE_ENV = new Set(['_', 'OLDPWD', 'PWD', 'SHLVL']);

export function spareSocketPath(containerdAddress: string, env: NodeJS.ProcessEnv, daemonCode: string): string {
  const hash = createHash('sha256').update(containerdAddress).update('\0');
  try {
    const st = fs.statSync(daemonCode);
    hash.update(`${daemonCode}:${st.size}:${st.mtimeMs}\0`);
  } catch {
    hash.update(`${daemonCode}:missing\0`);
  }
  for (const key of Object.keys(env).filter((k) => !VOLATILE_ENV.has(k)).sort()) hash.update(`${key}=${env[key]}\0`);
  return `${SOCKET_DIR}/wasmts-spare-${hash.digest('hex').slice(0, 32)}`;
}

/**
 * Asks the spare at `controlPath` (if any) to take the container. Resolves
 * with its pid once it listens on handoff.socketPath, or undefined when there
 * is no spare or it declined: the caller then starts a daemon itself.
 */
export function adoptSpare(controlPath: string, handoff: Handoff, timeoutMs = 2_000): Promise<number | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect(controlPath);
    let buffer = '';
    const done = (pid: number | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(pid);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.once('error', () => done(undefined));
    socket.once('connect', () => socket.write(`${JSON.stringify(handoff)}\n`));
    socket.on('data', (chunk) => {
      buffer += chunk.toString('utf8');
      if (!buffer.includes('\n')) return;
      try {
        const reply = JSON.parse(buffer) as HandoffReply;
        done(reply.ok ? reply.pid : undefined);
      } catch {
        done(undefined);
      }
    });
    socket.once('end', () => done(undefined));
  });
}

/** Niceness a spare boots at, so it only takes CPU that containers leave idle. */
export const SPARE_BOOT_NICENESS = 19;

/** Launches a spare for the next container, detached, with this process's environment. */
export function launchSpare(entry: string, flags: { address: string; publishBinary: string; debug: boolean }): void {
  const args = [entry, '-address', flags.address, '-publish-binary', flags.publishBinary, ...(flags.debug ? ['-debug'] : []), 'spare'];
  const child = spawn(process.execPath, args, { cwd: '/', env: process.env, detached: true, stdio: 'ignore' });
  child.on('error', () => undefined);
  child.unref();
  try {
    if (child.pid) setPriority(child.pid, SPARE_BOOT_NICENESS);
  } catch {
    // not permitted: it boots at normal priority
  }
}
