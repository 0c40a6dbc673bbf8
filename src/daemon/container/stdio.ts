// The container's stdio as containerd hands it over: paths of FIFOs that ctr
// (or CRI) already opened, `file://` URIs, or empty for no IO.
import * as fs from 'node:fs';
import * as net from 'node:net';
import type { Readable } from 'node:stream';
import { invalidArgument } from '../errors.js';

export interface StdioPaths {
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
}

export function checkStdio(io: StdioPaths, who: string): void {
  if (io.terminal) throw invalidArgument(`${who}: terminals are not supported (run without -t/--tty)`);
  for (const target of [io.stdin, io.stdout, io.stderr]) {
    if (target.startsWith('binary://')) {
      throw invalidArgument(`${who}: binary:// log drivers are not supported, use a FIFO or file:// path`);
    }
  }
  for (const [name, target] of [
    ['stdout', io.stdout],
    ['stderr', io.stderr],
  ] as const) {
    if (target && !target.startsWith('file://') && !fs.existsSync(target)) {
      throw invalidArgument(`${who}: ${name} ${target} does not exist`);
    }
  }
}

/**
 * Opens the stdout/stderr FIFOs for the life of the process, as runc's shim
 * does: ctr's blocked open of each FIFO returns at once (not only when the
 * child gets to it), so output of a short-lived module is never missed by a
 * reader still opening. O_RDWR|O_NONBLOCK never blocks. Returns the release.
 */
export function holdOutputs(io: StdioPaths): () => void {
  const fds: number[] = [];
  for (const target of new Set([io.stdout, io.stderr])) {
    if (!target || target.startsWith('file://')) continue;
    try {
      fds.push(fs.openSync(target, fs.constants.O_RDWR | fs.constants.O_NONBLOCK));
    } catch {
      // the child reports an unusable FIFO itself
    }
  }
  return () => {
    for (const fd of fds.splice(0)) fs.close(fd, () => undefined);
  };
}

/**
 * Opens the stdin FIFO without blocking (nobody may ever write to it) and as a
 * non-blocking stream, so reading it never ties up the daemon.
 */
export function openStdin(target: string, who: string): Readable | undefined {
  if (!target) return undefined;
  if (target.startsWith('file://')) return fs.createReadStream(decodeURIComponent(target.slice(7)));
  let fd: number;
  try {
    fd = fs.openSync(target, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (err) {
    throw invalidArgument(`${who}: cannot open stdin ${target}: ${(err as NodeJS.ErrnoException).code}`, {
      cause: err,
    });
  }
  const stream = new net.Socket({ fd, readable: true, writable: false });
  stream.on('error', () => undefined);
  return stream;
}
