// The daemon's one error type, after containerd's errdefs: daemon logic says
// what kind of failure it met, and the service boundary turns that into a
// ttrpc status once (toTtrpcError), so no status code is chosen in between.
import { Code, errorMessage, TtrpcError } from '../ttrpc/status.js';
import type { Interceptor } from '../ttrpc/types.js';

export type ErrorKind =
  'invalid-argument' | 'not-found' | 'already-exists' | 'failed-precondition' | 'not-implemented' | 'unknown';

/** A failure of the daemon's logic; the message is what the client sees. */
export class ShimError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'ShimError';
  }
}

/** The request (its ids, spec, stdio, resources) cannot be served as it stands. */
export const invalidArgument = (message: string, options?: ErrorOptions) =>
  new ShimError('invalid-argument', message, options);
/** The container or process it names does not exist (any more). */
export const notFound = (message: string) => new ShimError('not-found', message);
export const alreadyExists = (message: string) => new ShimError('already-exists', message);
/** Legal in another state: a transition the process's current state refuses. */
export const failedPrecondition = (message: string, options?: ErrorOptions) =>
  new ShimError('failed-precondition', message, options);
/** Something a Wasm instance cannot do (checkpoints). */
export const notImplemented = (message: string) => new ShimError('not-implemented', message);

const CODES: Record<ErrorKind, Code> = {
  'invalid-argument': Code.InvalidArgument,
  'not-found': Code.NotFound,
  'already-exists': Code.AlreadyExists,
  'failed-precondition': Code.FailedPrecondition,
  'not-implemented': Code.Unimplemented,
  unknown: Code.Unknown,
};

/**
 * The ttrpc status for anything a handler threw: a ShimError's kind picks the
 * code, a TtrpcError (already a status) passes through, and anything else is
 * Unknown with its message kept, so the caller still sees why.
 */
export function toTtrpcError(err: unknown): TtrpcError {
  if (err instanceof TtrpcError) return err;
  if (err instanceof ShimError) return new TtrpcError(CODES[err.kind], err.message);
  return new TtrpcError(Code.Unknown, errorMessage(err));
}

/** The service boundary: every error a Task handler throws leaves as a ttrpc status (toTtrpcError). */
export const errorsToStatus: Interceptor = (next) => async (req) => {
  try {
    return await next(req);
  } catch (err) {
    throw toTtrpcError(err);
  }
};
