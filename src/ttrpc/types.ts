// Types shared by the server, its connections and the typed service binding.

import type { DescMessage, DescMethod, Message, MessageInitShape, MessageShape } from '@bufbuild/protobuf';
import type { ContextValues } from './context-values.js';

export interface CallContext {
  /** Service name as it arrived on the wire (an alias if the impl was registered under one). */
  service: string;
  method: string;
  /** Request metadata; keys lower-cased (ttrpc's MD.Get is case-insensitive), values in arrival order. */
  metadata: ReadonlyMap<string, string[]>;
  /** Absolute deadline in ms since the epoch, from timeout_nano; absent when the client set none. */
  deadline?: number;
  /** Aborted (with a TtrpcError reason) when the deadline passes or the connection closes. */
  signal: AbortSignal;
  /** Values this call's interceptors and its handler share; fresh for every call. */
  values: ContextValues;
}

/** A raw unary handler: request payload bytes in, response payload bytes out. Throw TtrpcError to pick a status code. */
export type Handler = (payload: Uint8Array, ctx: CallContext) => Promise<Uint8Array>;

/** A decoded unary call as interceptors see it. */
export interface UnaryRequest {
  readonly method: DescMethod;
  /** The decoded request (of method.input). */
  readonly message: Message;
  readonly ctx: CallContext;
}

/** The rest of the chain: later interceptors, then the handler; resolves to the response (of method.output). */
export type UnaryNext = (req: UnaryRequest) => Promise<Message>;

/**
 * Wraps every call of the typed services a server serves (registerService),
 * after decoding and before encoding, as connect-es's interceptors do: tracing,
 * error mapping and metadata reading stay out of the services themselves.
 */
export type Interceptor = (next: UnaryNext) => UnaryNext;

/** Why the server is telling its logger something; stable strings callers may switch on. */
export type ServerErrorKind =
  /** A frame announced more than MAX_PAYLOAD; answered ResourceExhausted, payload skipped. */
  | 'oversized-frame'
  /** Client-initiated streams must be odd; answered InvalidArgument. */
  | 'even-stream-id'
  /** A request reused the id of a call still in flight; answered InvalidArgument. */
  | 'duplicate-stream-id'
  /** A frame other than Request reached the server; answered InvalidArgument. */
  | 'unexpected-frame-type'
  /** A Request frame whose payload is not a ttrpc.Request; answered InvalidArgument. */
  | 'bad-request'
  /** Service or method not registered; answered Unimplemented. */
  | 'unimplemented'
  /** The connection ended in the middle of a frame; the connection is closed. */
  | 'truncated-frame'
  /** The socket failed (other than the peer simply going away); the connection is closed. */
  | 'socket-error'
  /** The listening socket failed. */
  | 'listener-error'
  /** A handler's response would exceed MAX_PAYLOAD; ResourceExhausted was sent instead. */
  | 'response-too-large'
  /** A handler threw something other than TtrpcError (answered Unknown) or returned a non-Uint8Array (Internal). */
  | 'handler-error'
  /** A bug in this library, caught at a socket boundary; the connection is closed. */
  | 'internal';

export class ServerError extends Error {
  constructor(
    readonly kind: ServerErrorKind,
    message: string,
    /** Stream the problem concerns, when known. */
    readonly streamId?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ServerError';
  }
}

export type ServerErrorLogger = (err: ServerError) => void;

/** Keys of M that can be called as unary RPCs ("unary" possible for the plain DescService index signature too). */
type UnaryKeys<M> = {
  [K in keyof M]: M[K] extends { methodKind: infer Kind } ? ('unary' extends Kind ? K : never) : never;
}[keyof M];

type InputOf<T> = T extends { input: infer I extends DescMessage } ? I : DescMessage;
type OutputOf<T> = T extends { output: infer O extends DescMessage } ? O : DescMessage;

/**
 * An implementation of a service's unary methods, keyed by localName (e.g. `create`).
 * Every method is optional: a missing one answers Unimplemented. Results may be a
 * full message or an init object (e.g. `{}` for google.protobuf.Empty).
 */
export type ServiceImpl<M> = {
  [K in UnaryKeys<M>]?: (
    req: MessageShape<InputOf<M[K]>>,
    ctx: CallContext,
  ) => Promise<MessageInitShape<OutputOf<M[K]>>> | MessageInitShape<OutputOf<M[K]>>;
};

/** Per-call options for clients. */
export interface CallOptions {
  /** Relative deadline: sent as timeout_nano and enforced locally (DeadlineExceeded). <= 0 fails at once. */
  timeoutMs?: number;
  metadata?: Record<string, string> | [string, string][];
  /** Cancels the call locally with Canceled (ttrpc has no cancel frame; the server keeps running it). */
  signal?: AbortSignal;
}

/** A typed client: one async method per unary RPC, keyed by localName. */
export type ServiceClient<M> = {
  [K in UnaryKeys<M>]: (
    req: MessageInitShape<InputOf<M[K]>>,
    opts?: CallOptions,
  ) => Promise<MessageShape<OutputOf<M[K]>>>;
};
