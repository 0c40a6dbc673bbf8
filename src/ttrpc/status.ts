// ttrpc carries errors as google.rpc.Status with gRPC code numbering; containerd
// maps the codes back to its errdefs (NotFound, AlreadyExists, ...), so the
// numbers below must match gRPC exactly.

import { create } from '@bufbuild/protobuf';
import { StatusSchema, type Status } from '../gen/google/rpc/status_pb.js';

export enum Code {
  OK = 0,
  Canceled = 1,
  Unknown = 2,
  InvalidArgument = 3,
  DeadlineExceeded = 4,
  NotFound = 5,
  AlreadyExists = 6,
  PermissionDenied = 7,
  ResourceExhausted = 8,
  FailedPrecondition = 9,
  Aborted = 10,
  OutOfRange = 11,
  Unimplemented = 12,
  Internal = 13,
  Unavailable = 14,
  DataLoss = 15,
  Unauthenticated = 16,
}

/** An RPC failure with a status code; what handlers throw and clients reject with. */
export class TtrpcError extends Error {
  constructor(
    readonly code: Code,
    message: string,
  ) {
    super(message);
    this.name = 'TtrpcError';
  }

  /** Go's status.Error format, handy in logs that are compared with runc shim logs. */
  override toString(): string {
    return `rpc error: code = ${codeName(this.code)} desc = ${this.message}`;
  }
}

/** Name of a code for messages; codes outside the enum (a peer may send any int32) stay numeric. */
export function codeName(code: number): string {
  const name = (Code as unknown as Record<number, string | undefined>)[code];
  return name ?? `Code(${code})`;
}

/**
 * Converts anything a handler threw into a wire status. Only TtrpcError picks its
 * code; everything else is Unknown, keeping the message so the caller sees why.
 */
export function toStatus(err: unknown): Status {
  if (err instanceof TtrpcError) {
    return create(StatusSchema, { code: err.code, message: err.message });
  }
  return create(StatusSchema, { code: Code.Unknown, message: errorMessage(err) });
}

/**
 * Converts a received status into an error; undefined for success (no status or
 * code 0). Unknown numeric codes are kept as-is rather than squashed, so logs
 * show what the peer actually sent.
 */
export function fromStatus(status: Status | undefined): TtrpcError | undefined {
  if (status === undefined) return undefined;
  const code: Code = status.code; // any int32 the peer sent; codeName() shows an unknown one as a number
  if (code === Code.OK) return undefined;
  return new TtrpcError(code, status.message);
}

/** Best-effort text of any thrown value (handlers may throw strings or objects). */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === 'string') return err;
  try {
    return String(err);
  } catch {
    // e.g. Object.create(null) has no toString
    return 'unknown error';
  }
}
