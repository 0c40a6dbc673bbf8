// Values the daemon's ttrpc interceptors hand to the Task service for one call.
import { createContextKey } from '../ttrpc/context-values.js';
import type { ChildTraceContext } from '../telemetry/propagation.js';

/** The trace context a process forked by this call (Create, Exec) runs under; set by the tracing interceptor. */
export const CHILD_TRACE = createContextKey<ChildTraceContext | undefined>(undefined, {
  description: 'wasmts child trace context',
});
