// ttrpc client: unary calls multiplexed over one connection. Stream ids are
// odd and strictly increasing (newer ttrpc servers reject anything else), and
// once the connection is gone every pending and future call fails fast with
// Unavailable instead of hanging.

import { createConnection, type Socket } from 'node:net';
import { create, fromBinary, toBinary, type DescService } from '@bufbuild/protobuf';
import { RequestSchema, ResponseSchema, type Response } from '../gen/ttrpc/ttrpc_pb.js';
import { armDeadline, type DeadlineTimer } from './deadline.js';
import { encodeFrame, FrameDecoder, FrameType, MAX_PAYLOAD, type DecodeEvent } from './frame.js';
import { Code, errorMessage, fromStatus, TtrpcError } from './status.js';
import type { CallOptions, ServiceClient } from './types.js';

export interface ClientOptions {
  /** Give up connecting after this long (Unavailable). Default: no limit beyond the OS's. */
  connectTimeoutMs?: number;
}

interface Pending {
  resolve(payload: Uint8Array): void;
  reject(err: TtrpcError): void;
}

const MAX_STREAM_ID = 0xffffffff;
const INT64_MAX = 2n ** 63n - 1n;

/** 'unix:///run/x.sock' → '/run/x.sock'; Go's '@name' abstract-socket spelling → Node's '\0name'. */
export function socketPath(address: string): string {
  const path = address.startsWith('unix://') ? address.slice('unix://'.length) : address;
  return path.startsWith('@') ? `\0${path.slice(1)}` : path;
}

export class TtrpcClient {
  private readonly decoder = new FrameDecoder();
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  /** Set once the connection is unusable; every later call fails with it. */
  private closeReason: TtrpcError | undefined;
  private readonly closeCallbacks: ((reason: TtrpcError) => void)[] = [];

  private constructor(
    private readonly socket: Socket,
    private readonly label: string,
  ) {
    socket.on('data', (chunk: Buffer) => this.guard(() => this.onData(chunk)));
    socket.on('end', () => {
      const truncated = this.decoder.end();
      this.fail(`ttrpc: connection to ${label} closed by peer${truncated ? ` (${truncated.message})` : ''}`);
    });
    socket.on('error', (err: Error) => this.fail(`ttrpc: connection to ${label} broken: ${err.message}`));
    socket.on('close', () => this.fail(`ttrpc: connection to ${label} closed`));
  }

  /** Connects to a unix socket path ('unix://' prefix accepted). Rejects with TtrpcError(Unavailable). */
  static connect(address: string, opts: ClientOptions = {}): Promise<TtrpcClient> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ path: socketPath(address) });
      let timer: NodeJS.Timeout | undefined;
      const onError = (err: Error): void => {
        if (timer !== undefined) clearTimeout(timer);
        socket.destroy();
        reject(new TtrpcError(Code.Unavailable, `ttrpc: cannot connect to ${address}: ${err.message}`));
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        if (timer !== undefined) clearTimeout(timer);
        socket.off('error', onError);
        resolve(new TtrpcClient(socket, address));
      });
      if (opts.connectTimeoutMs !== undefined) {
        timer = setTimeout(
          () => onError(new Error(`timed out after ${opts.connectTimeoutMs} ms`)),
          opts.connectTimeoutMs,
        );
      }
    });
  }

  get closed(): boolean {
    return this.closeReason !== undefined;
  }

  /** Calls cb once when the connection ends, with the error pending calls got. Runs at once (async) if already closed. */
  onClose(cb: (reason: TtrpcError) => void): void {
    const reason = this.closeReason;
    if (reason !== undefined) queueMicrotask(() => safeCall(cb, reason));
    else this.closeCallbacks.push(cb);
  }

  /** Closes the connection; pending and future calls reject with Unavailable. */
  close(): void {
    this.fail('ttrpc: client closed');
  }

  /** One unary call. Rejects with TtrpcError: the server's status, or a local Unavailable/DeadlineExceeded/Canceled. */
  call(service: string, method: string, payload: Uint8Array, opts: CallOptions = {}): Promise<Uint8Array> {
    if (this.closeReason !== undefined) return Promise.reject(copyError(this.closeReason));
    if (opts.signal?.aborted) return Promise.reject(new TtrpcError(Code.Canceled, 'ttrpc: call canceled'));

    let timeoutNano = 0n;
    let deadline: number | undefined;
    if (opts.timeoutMs !== undefined && Number.isFinite(opts.timeoutMs)) {
      if (opts.timeoutMs <= 0)
        return Promise.reject(new TtrpcError(Code.DeadlineExceeded, 'context deadline exceeded'));
      deadline = Date.now() + opts.timeoutMs;
      const ns = BigInt(Math.ceil(opts.timeoutMs * 1e6));
      timeoutNano = ns > INT64_MAX ? INT64_MAX : ns;
    }

    let bytes: Uint8Array;
    try {
      bytes = toBinary(
        RequestSchema,
        create(RequestSchema, { service, method, payload, timeoutNano, metadata: metadataList(opts.metadata) }),
      );
    } catch (err) {
      // only reachable from untyped callers (e.g. a non-string metadata value)
      return Promise.reject(new TtrpcError(Code.InvalidArgument, `ttrpc: cannot encode request: ${errorMessage(err)}`));
    }
    if (bytes.length > MAX_PAYLOAD) {
      return Promise.reject(
        new TtrpcError(
          Code.ResourceExhausted,
          `ttrpc: request of ${bytes.length} bytes exceeds maximum message size of ${MAX_PAYLOAD}`,
        ),
      );
    }
    const id = this.nextId;
    if (id > MAX_STREAM_ID) {
      // Reusing ids is refused by newer servers; a fresh connection is the only way on.
      this.fail('ttrpc: stream ids exhausted on this connection');
      return Promise.reject(copyError(this.closeReason!));
    }
    this.nextId += 2;

    return new Promise<Uint8Array>((resolve, reject) => {
      let timer: DeadlineTimer | undefined;
      const onAbort = (): void => settle(() => reject(new TtrpcError(Code.Canceled, 'ttrpc: call canceled')));
      const settle = (fn: () => void): void => {
        if (!this.pending.delete(id)) return;
        timer?.cancel();
        opts.signal?.removeEventListener('abort', onAbort);
        fn();
      };
      this.pending.set(id, {
        resolve: (p) => settle(() => resolve(p)),
        reject: (e) => settle(() => reject(e)),
      });
      if (deadline !== undefined) {
        // A late response for this id is then simply ignored.
        timer = armDeadline(deadline, () =>
          settle(() => reject(new TtrpcError(Code.DeadlineExceeded, 'context deadline exceeded'))),
        );
      }
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.socket.write(encodeFrame(id, FrameType.Request, bytes));
    });
  }

  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.fail(`ttrpc: internal error on connection to ${this.label}: ${errorMessage(err)}`);
    }
  }

  private onData(chunk: Buffer): void {
    for (const ev of this.decoder.feed(chunk)) {
      if (this.closeReason !== undefined) return;
      this.onEvent(ev);
    }
  }

  private onEvent(ev: DecodeEvent): void {
    const call = this.pending.get(ev.header.streamId);
    if (call === undefined) return; // timed out, canceled, or never ours: nothing waits for it
    if (ev.kind === 'oversized') {
      call.reject(
        new TtrpcError(
          Code.ResourceExhausted,
          `message length ${ev.header.length} exceeds maximum message size of ${MAX_PAYLOAD}`,
        ),
      );
      return;
    }
    if (ev.header.type !== FrameType.Response) {
      call.reject(new TtrpcError(Code.Internal, `ttrpc: unexpected frame type ${ev.header.type} in reply`));
      return;
    }
    let resp: Response;
    try {
      resp = fromBinary(ResponseSchema, ev.payload, { readUnknownFields: false });
    } catch (err) {
      call.reject(new TtrpcError(Code.Internal, `ttrpc: unmarshal response error: ${errorMessage(err)}`));
      return;
    }
    const err = fromStatus(resp.status);
    if (err !== undefined) call.reject(err);
    else call.resolve(resp.payload);
  }

  /** Marks the connection dead (first reason wins), rejects everything pending, notifies onClose listeners. */
  private fail(message: string): void {
    if (this.closeReason !== undefined) return;
    const reason = new TtrpcError(Code.Unavailable, message);
    this.closeReason = reason;
    this.socket.destroy();
    const pending = [...this.pending.values()];
    for (const call of pending) call.reject(copyError(reason));
    for (const cb of this.closeCallbacks.splice(0)) safeCall(cb, reason);
  }
}

/**
 * A typed client for desc's unary methods, keyed by localName. `service`
 * overrides the wire service name (e.g. 'containerd.task.v3.Task').
 */
export function createClient<D extends DescService>(
  desc: D,
  client: TtrpcClient,
  opts: { service?: string } = {},
): ServiceClient<D['method']> {
  const service = opts.service ?? desc.typeName;
  const out: Record<string, (req: unknown, callOpts?: CallOptions) => Promise<unknown>> = {};
  for (const m of desc.methods) {
    if (m.methodKind !== 'unary') continue;
    out[m.localName] = async (req, callOpts) => {
      const payload = toBinary(m.input, create(m.input, req as never));
      const reply = await client.call(service, m.name, payload, callOpts);
      try {
        return fromBinary(m.output, reply);
      } catch (err) {
        throw new TtrpcError(Code.Internal, `ttrpc: cannot decode ${m.output.typeName}: ${errorMessage(err)}`);
      }
    };
  }
  return out as ServiceClient<D['method']>;
}

function metadataList(md: CallOptions['metadata']): { key: string; value: string }[] {
  if (md === undefined) return [];
  const pairs = Array.isArray(md) ? md : Object.entries(md);
  return pairs.map(([key, value]) => ({ key, value }));
}

/** Each rejection gets its own Error (own stack), same code and message. */
function copyError(err: TtrpcError): TtrpcError {
  return new TtrpcError(err.code, err.message);
}

function safeCall(cb: (reason: TtrpcError) => void, reason: TtrpcError): void {
  try {
    cb(reason);
  } catch {
    // a listener's failure must not stop the others or escape a socket event
  }
}
