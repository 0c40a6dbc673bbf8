// Shared test scaffolding: temp socket paths, a server factory, and a raw
// socket client that speaks bytes so tests can send malformed frames.

import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { RequestSchema, ResponseSchema, type Response } from '../../src/gen/ttrpc/ttrpc_pb.js';
import { encodeFrame, FrameDecoder, FrameType, type FrameHeader } from '../../src/ttrpc/frame.js';
import { TtrpcServer, type ServerError } from '../../src/ttrpc/index.js';
import { until } from '../harness/index.js';

export function tempSocketPath(name = 'ttrpc.sock'): { path: string; cleanup(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wasmts-ttrpc-'));
  return { path: path.join(dir, name), cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

export const ECHO = { service: 'test.Echo', method: 'Echo' };

/** A listening server with an echo handler and an error log; close() also removes the temp dir. */
export async function startServer(setup?: (s: TtrpcServer) => void): Promise<{
  server: TtrpcServer;
  path: string;
  errors: ServerError[];
  close(): Promise<void>;
}> {
  const tmp = tempSocketPath();
  const errors: ServerError[] = [];
  const server = new TtrpcServer({ onError: (e) => errors.push(e) });
  server.register(ECHO.service, ECHO.method, (p) => Promise.resolve(p));
  setup?.(server);
  await server.listen({ path: tmp.path });
  return {
    server,
    path: tmp.path,
    errors,
    close: async () => {
      await server.close();
      tmp.cleanup();
    },
  };
}

export function requestBytes(init: {
  service: string;
  method: string;
  payload?: Uint8Array;
  timeoutNano?: bigint;
}): Uint8Array {
  return toBinary(RequestSchema, create(RequestSchema, init));
}

export function requestFrame(
  streamId: number,
  init: { service: string; method: string; payload?: Uint8Array; timeoutNano?: bigint },
): Uint8Array {
  return encodeFrame(streamId, FrameType.Request, requestBytes(init));
}

/** A raw header with an arbitrary (possibly lying) length, no payload. */
export function rawHeader(length: number, streamId: number, type: number, flags = 0): Uint8Array {
  const b = Buffer.alloc(10);
  b.writeUInt32BE(length >>> 0, 0);
  b.writeUInt32BE(streamId >>> 0, 4);
  b[8] = type;
  b[9] = flags;
  return b;
}

interface Received {
  header: FrameHeader;
  response: Response;
}

/** Byte-level client: write anything, read back decoded Response frames. */
export class RawConn {
  private readonly decoder = new FrameDecoder();
  private readonly queue: Received[] = [];
  private waiters: (() => void)[] = [];
  private ended = false;
  readonly closed: Promise<void>;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const ev of this.decoder.feed(chunk)) {
        if (ev.kind !== 'frame') throw new Error('server sent an oversized frame');
        this.queue.push({ header: ev.header, response: fromBinary(ResponseSchema, ev.payload) });
      }
      this.wake();
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      socket.on('close', () => {
        this.ended = true;
        this.wake();
        resolve();
      }),
    );
  }

  static connect(p: string): Promise<RawConn> {
    return new Promise((resolve, reject) => {
      const s = net.createConnection({ path: p });
      s.once('error', reject);
      s.once('connect', () => {
        s.off('error', reject);
        resolve(new RawConn(s));
      });
    });
  }

  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const fn of w) fn();
  }

  /** Next response frame; rejects if the connection closes first or after timeoutMs. */
  async next(timeoutMs = 3000): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = this.queue.shift();
      if (r !== undefined) return r;
      if (this.ended) throw new Error('connection closed before a response arrived');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a response');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Sends one echo request and checks it comes back on the same stream. */
  async echo(streamId: number, text: string): Promise<void> {
    this.write(requestFrame(streamId, { ...ECHO, payload: Buffer.from(text) }));
    const r = await this.next();
    if (r.header.streamId !== streamId) throw new Error(`reply on stream ${r.header.streamId}, want ${streamId}`);
    if (r.response.status !== undefined && r.response.status.code !== 0) {
      throw new Error(`echo failed: ${r.response.status.code} ${r.response.status.message}`);
    }
    const got = Buffer.from(r.response.payload).toString();
    if (got !== text) throw new Error(`echo returned ${JSON.stringify(got)}, want ${JSON.stringify(text)}`);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Polls cond every few ms; for things with no event to await (e.g. server-side bookkeeping). */
export async function waitFor(cond: () => boolean, timeoutMs = 3000): Promise<void> {
  await until('a condition of the server', cond, timeoutMs, 5);
}

/** Seeded PRNG (mulberry32) so randomized tests are reproducible. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
