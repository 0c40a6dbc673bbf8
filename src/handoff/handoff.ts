// The handoff: how a container reaches the long-lived daemon of its key.
//
// One daemon serves every container of a containerd whose start shares its
// key (containerd's address, the OTEL_*/WASMTS_* variables, the shim build and
// -debug; the sh front end, bin/containerd-shim-wasmts-v1, computes it and
// passes it on as KEY_ENV). The daemon of a key keeps, in its state dir:
//   lock           its pid (O_EXCL): exactly one daemon per key prepares sockets
//   ready-<pid>-<n> listening sockets bound ahead; the front end's `start`
//                  renames one onto the container's socket path (atomic: one
//                  claimant wins) and the daemon learns the container from its
//                  first requests
//   control        a unix socket where Node's `start` hands over a container
//                  whose socket it could not claim (a JSON line each way)
//   daemon.log     what the daemon logs outside any container
// The daemon answers Delete by leaving containerd's DeleteResponse in the
// bundle (src/bundle/files.ts), which the front end's `delete` prints.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

export const STATE_ROOT = '/run/wasmts';
/** Set by the front end for the Node fallback and inherited by the daemon it starts. */
const KEY_ENV = '_WASMTS_KEY';
/** The action a daemon runs as (its last argument): how tests, bench and soak recognise one. */
export const DAEMON_ACTION = 'serve';
const READY_PREFIX = 'ready-';
const KEY = /^[0-9a-f]{64}$/;

export interface DaemonPaths {
  dir: string;
  lock: string;
  control: string;
  log: string;
}

/** The key the front end passed, if it is one. */
export function keyFrom(env: NodeJS.ProcessEnv): string | undefined {
  const key = env[KEY_ENV];
  return key && KEY.test(key) ? key : undefined;
}

const DIR_NAME_LENGTH = 32;

export function daemonPaths(key: string): DaemonPaths {
  const dir = path.join(STATE_ROOT, key.slice(0, DIR_NAME_LENGTH));
  return { dir, lock: path.join(dir, 'lock'), control: path.join(dir, 'control'), log: path.join(dir, 'daemon.log') };
}

/** A name never used twice: closing a claimed server unlinks its old name, which must not be a new socket's. */
export function readySocketPath(paths: DaemonPaths, serial: number): string {
  return path.join(paths.dir, `${READY_PREFIX}${process.pid}-${serial}`);
}

/** A daemon's state dir in STATE_ROOT (which holds other things too). */
export function isDaemonDirName(name: string): boolean {
  return name.length === DIR_NAME_LENGTH && /^[0-9a-f]+$/.test(name);
}

export function isReadySocketName(name: string): boolean {
  return name.startsWith(READY_PREFIX);
}

/** True for the command line (argv, as in /proc/<pid>/cmdline) of a shim daemon. */
export function isShimDaemon(argv: readonly string[]): boolean {
  return argv.length > 2 && argv[argv.length - 1] === DAEMON_ACTION && argv.some((a) => a.endsWith('shim.cjs'));
}

// ---- the lock -------------------------------------------------------------

/** The live pid in a lock file, if any. */
export function lockHolder(lockPath: string): number | undefined {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(lockPath, 'utf8'));
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z' ? undefined : pid;
  } catch {
    return undefined;
  }
}

/** Takes the key's lock for this process, replacing one whose holder is gone. */
export function takeLock(lockPath: string): boolean {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lockPath, `${process.pid}\n`, { flag: 'wx', mode: 0o644 });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return false;
      if (lockHolder(lockPath) !== undefined) return false;
      fs.rmSync(lockPath, { force: true }); // its daemon died without cleaning up
    }
  }
  return false;
}

// ---- the control socket ---------------------------------------------------

/** A container handed to the daemon by Node's `start`: the daemon binds its socket. */
export interface Handoff {
  socketPath: string;
  namespace: string;
  id: string;
  bundle: string;
}

export type HandoffReply = { ok: true; pid: number } | { ok: false; error: string };

const isString = (v: unknown): v is string => typeof v === 'string';
const isObject = (v: unknown): v is Readonly<Record<string, unknown>> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const isAbsolutePath = (v: unknown): v is string => isString(v) && path.isAbsolute(v) && !v.includes('\0');

function parseLine(line: string, what: string): unknown {
  try {
    return JSON.parse(line);
  } catch (err) {
    throw new Error(`${what}: not JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** A handoff request line, rebuilt from checked fields; throws naming the bad one. */
export function parseHandoff(line: string): Handoff {
  const raw = parseLine(line, 'handoff');
  if (!isObject(raw)) throw new Error('handoff: not an object');
  const { socketPath, namespace, id, bundle } = raw;
  if (!isAbsolutePath(socketPath)) throw new Error('handoff: socketPath must be an absolute path');
  if (!isString(namespace) || !namespace || !isString(id) || !id)
    throw new Error('handoff: namespace and id are required');
  if (!isAbsolutePath(bundle)) throw new Error('handoff: bundle must be an absolute path');
  return { socketPath, namespace, id, bundle };
}

/** The daemon's reply line; anything but a well-formed success is a refusal. */
export function parseHandoffReply(line: string): HandoffReply {
  const raw = parseLine(line, 'handoff reply');
  if (!isObject(raw)) return { ok: false, error: 'malformed reply' };
  if (raw.ok === true && Number.isSafeInteger(raw.pid) && typeof raw.pid === 'number' && raw.pid > 0)
    return { ok: true, pid: raw.pid };
  return { ok: false, error: isString(raw.error) ? raw.error : 'malformed reply' };
}

/** Reads one newline-terminated line from a socket, bounded in size. */
function readLine(socket: net.Socket, onLine: (line: string) => void): void {
  let buffer = '';
  socket.on('data', (chunk) => {
    buffer += chunk.toString('utf8');
    const nl = buffer.indexOf('\n');
    if (nl >= 0) onLine(buffer.slice(0, nl));
    else if (buffer.length > 64 * 1024) socket.destroy();
  });
}

/**
 * Asks the daemon on `controlPath` to serve a container. Resolves with its pid
 * once it listens on handoff.socketPath, or undefined when there is no daemon
 * or it declined: the caller then starts a daemon itself.
 */
export function requestHandoff(controlPath: string, handoff: Handoff, timeoutMs = 10_000): Promise<number | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect(controlPath);
    const done = (pid: number | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(pid);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.once('error', () => done(undefined));
    socket.once('end', () => done(undefined));
    socket.once('connect', () => socket.write(`${JSON.stringify(handoff)}\n`));
    readLine(socket, (line) => {
      try {
        const reply = parseHandoffReply(line);
        done(reply.ok ? reply.pid : undefined);
      } catch {
        done(undefined);
      }
    });
  });
}

/** Serves handoffs on `server`: `accept` binds and serves the container's socket, or throws. */
export function serveHandoffs(server: net.Server, accept: (handoff: Handoff) => Promise<void>): void {
  server.on('connection', (socket) => {
    socket.on('error', () => undefined);
    const reply = (r: HandoffReply) => socket.end(`${JSON.stringify(r)}\n`);
    readLine(socket, (line) => {
      let handoff: Handoff;
      try {
        handoff = parseHandoff(line);
      } catch (err) {
        return reply({ ok: false, error: (err as Error).message });
      }
      accept(handoff).then(
        () => reply({ ok: true, pid: process.pid }),
        (err: unknown) => reply({ ok: false, error: (err as Error)?.message ?? String(err) }),
      );
    });
  });
}
