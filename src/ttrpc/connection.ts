// One accepted ttrpc connection on the server side.
//
// Every request runs as its own promise, so a handler that blocks (Wait) never
// delays other requests on the same connection. Every socket callback and
// promise continuation goes through guard(): nothing thrown here may escape
// into Node's event loop and take the shim down with it.

import type { Socket } from 'node:net';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { RequestSchema, ResponseSchema, type Request } from '../gen/ttrpc/ttrpc_pb.js';
import type { Status } from '../gen/google/rpc/status_pb.js';
import { armDeadline, type DeadlineTimer } from './deadline.js';
import { encodeFrame, FrameDecoder, FrameType, MAX_PAYLOAD, type DecodeEvent } from './frame.js';
import { Code, errorMessage, toStatus, TtrpcError } from './status.js';
import { ContextValues } from './context-values.js';
import { ServerError, type CallContext, type Handler, type ServerErrorKind } from './types.js';

/** What a connection needs from its server. */
export interface ConnectionHost {
  /** The handler, or the Unimplemented message naming what is missing. */
  resolve(service: string, method: string): Handler | string;
  report(err: ServerError): void;
  removed(conn: ServerConnection): void;
}

interface ActiveCall {
  readonly abort: AbortController;
  timer: DeadlineTimer | undefined;
  /** Set once a response was sent or the call was abandoned; later results are dropped. */
  done: boolean;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** How long close() lets already-written responses drain before destroying the socket. */
const CLOSE_GRACE_MS = 1000;

export class ServerConnection {
  private readonly decoder = new FrameDecoder();
  private readonly calls = new Map<number, ActiveCall>();
  private closing = false;
  private readPaused = false;
  private resolveClosed!: () => void;
  /** Resolves once the socket is fully closed and every call abandoned. */
  readonly closed = new Promise<void>((resolve) => (this.resolveClosed = resolve));

  constructor(
    private readonly socket: Socket,
    private readonly host: ConnectionHost,
  ) {
    socket.on('data', (chunk: Buffer) => this.guard(() => this.onData(chunk)));
    socket.on('end', () => this.guard(() => this.onEnd()));
    socket.on('error', (err: Error) => this.guard(() => this.onSocketError(err)));
    socket.on('close', () => this.guard(() => this.onClose()));
    socket.on('drain', () => this.guard(() => this.onDrain()));
  }

  /**
   * Stops serving: abandons in-flight calls (their signals abort), flushes what
   * was already written, then closes. Used by TtrpcServer.close().
   */
  shutdown(): void {
    if (this.socket.destroyed) return;
    this.abandonCalls('server is shutting down');
    this.closing = true;
    // A peer that never reads would keep 'finish' from firing: bound the wait.
    const timer = setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS);
    timer.unref();
    this.socket.end(() => this.socket.destroy());
  }

  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.report('internal', `ttrpc: unexpected error, closing connection: ${errorMessage(err)}`, undefined, err);
      try {
        this.socket.destroy();
      } catch {
        // nothing left to do
      }
    }
  }

  private report(kind: ServerErrorKind, message: string, streamId?: number, cause?: unknown): void {
    this.host.report(new ServerError(kind, message, streamId, cause === undefined ? undefined : { cause }));
  }

  private onData(chunk: Buffer): void {
    if (this.closing) return;
    const events = this.decoder.feed(chunk);
    for (const ev of events) {
      if (this.closing) return;
      this.onEvent(ev);
    }
  }

  private onEvent(ev: DecodeEvent): void {
    const id = ev.header.streamId;
    if (ev.kind === 'oversized') {
      const msg = `message length ${ev.header.length} exceeds maximum message size of ${MAX_PAYLOAD}`;
      this.report('oversized-frame', msg, id);
      this.sendError(id, Code.ResourceExhausted, msg);
      return;
    }
    if (ev.header.type !== FrameType.Request) {
      const msg = `unexpected frame type ${ev.header.type} on stream ${id}: only requests are accepted`;
      this.report('unexpected-frame-type', msg, id);
      this.sendError(id, Code.InvalidArgument, msg);
      return;
    }
    if (id % 2 !== 1) {
      const msg = 'StreamID must be odd for client initiated streams';
      this.report('even-stream-id', `${msg} (got ${id})`, id);
      this.sendError(id, Code.InvalidArgument, msg);
      return;
    }
    let req: Request;
    try {
      req = fromBinary(RequestSchema, ev.payload, { readUnknownFields: false });
    } catch (err) {
      const msg = `unmarshal request error: ${errorMessage(err)}`;
      this.report('bad-request', msg, id, err);
      this.sendError(id, Code.InvalidArgument, msg);
      return;
    }
    if (this.calls.has(id)) {
      // Two responses on one id would be ambiguous for the client.
      const msg = `StreamID ${id} is already in use by a call in flight`;
      this.report('duplicate-stream-id', msg, id);
      this.sendError(id, Code.InvalidArgument, msg);
      return;
    }
    this.dispatch(id, req);
  }

  private dispatch(id: number, req: Request): void {
    const handler = this.host.resolve(req.service, req.method);
    if (typeof handler === 'string') {
      this.report('unimplemented', handler, id);
      this.sendError(id, Code.Unimplemented, handler);
      return;
    }

    let deadline: number | undefined;
    if (req.timeoutNano !== 0n) {
      // Negative means the client's deadline had already passed when it sent
      // the request (Go computes deadline - now): expire without running it.
      if (req.timeoutNano < 0n) {
        this.sendError(id, Code.DeadlineExceeded, 'deadline exceeded before the request was handled');
        return;
      }
      deadline = Date.now() + Number(req.timeoutNano) / 1e6;
    }

    const call: ActiveCall = { abort: new AbortController(), timer: undefined, done: false };
    this.calls.set(id, call);
    if (deadline !== undefined) {
      call.timer = armDeadline(deadline, () => this.guard(() => this.expire(id, call)));
    }

    const ctx: CallContext = {
      service: req.service,
      method: req.method,
      metadata: metadataMap(req),
      signal: call.abort.signal,
      values: new ContextValues(),
    };
    if (deadline !== undefined) ctx.deadline = deadline;

    // The executor runs the handler now; what it throws synchronously becomes a rejection.
    const result = new Promise<unknown>((resolve) => resolve(handler(req.payload, ctx)));
    result.then(
      (value) => this.guard(() => this.finish(id, call, { ok: true, value })),
      (error: unknown) => this.guard(() => this.finish(id, call, { ok: false, error })),
    );
  }

  private finish(id: number, call: ActiveCall, outcome: Outcome): void {
    if (call.done) return; // deadline passed or connection closed: late result dropped
    call.done = true;
    call.timer?.cancel();
    this.calls.delete(id);
    if (!outcome.ok) {
      if (!(outcome.error instanceof TtrpcError)) {
        this.report(
          'handler-error',
          `handler for stream ${id} threw: ${errorMessage(outcome.error)}`,
          id,
          outcome.error,
        );
      }
      this.sendResponse(id, toStatus(outcome.error), undefined);
    } else if (!(outcome.value instanceof Uint8Array)) {
      const msg = `handler returned ${typeof outcome.value} instead of Uint8Array`;
      this.report('handler-error', msg, id);
      this.sendError(id, Code.Internal, msg);
    } else {
      this.sendResponse(id, undefined, outcome.value);
    }
  }

  private expire(id: number, call: ActiveCall): void {
    if (call.done) return;
    call.done = true;
    this.calls.delete(id);
    this.sendError(id, Code.DeadlineExceeded, 'context deadline exceeded');
    call.abort.abort(new TtrpcError(Code.DeadlineExceeded, 'context deadline exceeded'));
  }

  private sendError(id: number, code: Code, message: string): void {
    this.sendResponse(id, toStatus(new TtrpcError(code, message)), undefined);
  }

  private sendResponse(id: number, status: Status | undefined, payload: Uint8Array | undefined): void {
    if (this.closing || this.socket.destroyed || !this.socket.writable) return;
    let bytes = toBinary(ResponseSchema, create(ResponseSchema, { status, payload }));
    if (bytes.length > MAX_PAYLOAD) {
      // containerd 1.6's client cannot survive an oversized frame: never send one.
      const msg = `response of ${bytes.length} bytes exceeds maximum message size of ${MAX_PAYLOAD}`;
      this.report('response-too-large', msg, id);
      bytes = toBinary(
        ResponseSchema,
        create(ResponseSchema, { status: toStatus(new TtrpcError(Code.ResourceExhausted, msg)) }),
      );
    }
    const flushed = this.socket.write(encodeFrame(id, FrameType.Response, bytes));
    if (!flushed && !this.readPaused) {
      // Modest backpressure: a peer that does not read its responses gets no
      // new requests read from it until the kernel buffer drains.
      this.readPaused = true;
      this.socket.pause();
    }
  }

  private onDrain(): void {
    if (!this.readPaused) return;
    this.readPaused = false;
    if (!this.closing) this.socket.resume();
  }

  private onEnd(): void {
    const truncated = this.decoder.end();
    if (truncated !== undefined) this.report('truncated-frame', `ttrpc: ${truncated.message}`, truncated.streamId);
    // Like upstream, EOF from the client ends the connection: nobody is left to
    // read responses, so in-flight handlers are told to stop.
    this.abandonCalls('client closed the connection');
    this.closing = true;
    this.socket.end();
  }

  private onSocketError(err: Error): void {
    const code = (err as NodeJS.ErrnoException).code;
    // The peer vanishing is routine (containerd restarts, killed clients).
    if (code !== 'ECONNRESET' && code !== 'EPIPE') {
      this.report('socket-error', `ttrpc: connection error: ${err.message}`, undefined, err);
    }
    this.abandonCalls(`connection error: ${err.message}`);
    this.closing = true;
    this.socket.destroy();
  }

  private onClose(): void {
    this.closing = true;
    this.abandonCalls('connection closed');
    this.host.removed(this);
    this.resolveClosed();
  }

  private abandonCalls(reason: string): void {
    if (this.calls.size === 0) return;
    const calls = [...this.calls.values()];
    this.calls.clear();
    for (const call of calls) {
      call.done = true;
      call.timer?.cancel();
    }
    // Abort after bookkeeping: listeners run synchronously and may re-enter.
    // (A throwing abort listener is reported by Node itself, not thrown here.)
    for (const call of calls) call.abort.abort(new TtrpcError(Code.Canceled, reason));
  }
}

function metadataMap(req: Request): Map<string, string[]> {
  const md = new Map<string, string[]>();
  for (const kv of req.metadata) {
    const key = kv.key.toLowerCase();
    const list = md.get(key);
    if (list === undefined) md.set(key, [kv.value]);
    else list.push(kv.value);
  }
  return md;
}
