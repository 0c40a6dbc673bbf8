// Keeping the test runner's own OpenTelemetry settings out of what it starts.

/** The environment carriers of trace context the shim reads. */
export const CARRIERS = ['TRACECONTEXT', 'TRACEPARENT', 'TRACESTATE', 'BAGGAGE'];

/** An OTEL_* variable or a trace-context carrier: what a traced process reads. */
export function isOtelVariable(name: string): boolean {
  return name.startsWith('OTEL_') || CARRIERS.includes(name);
}

/**
 * `env` plus every OTEL_* / carrier variable of this process blanked (empty =
 * unset for OTEL): what a containerd's environment gets, added to ours.
 */
export function isolatedOtelEnv(env: Record<string, string> = {}): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(process.env)) if (isOtelVariable(k)) out[k] = '';
  return { ...out, ...env };
}

/** This process's environment without any OTEL_* or trace-context carrier variable: a child's whole environment. */
export function envWithoutOtel(): Record<string, string | undefined> {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !isOtelVariable(k)));
}
