// The daemon's side of a Wasm child's spans. The child hands over finished
// spans, and announces wasm.run when it starts; a child killed while running
// never ends that span, so the daemon ends it for it, marked with how the
// process died: a killed workload still shows as a failed wasm.run.
import { hrLess, SpanStatusCode, toHrTime, type HrTime, type SpanRecord } from './recorder.js';
import { ATTR_ERROR_TYPE, ATTR_PROCESS_EXIT_CODE } from './semconv.js';

export interface ChildExit {
  /** 0–255; 128 + signal number when killed. */
  status: number;
  /** The signal that killed the process (e.g. SIGKILL), if any. */
  signal: string | null;
  exitedAt: Date;
}

export class ChildSpanRelay {
  private readonly open = new Map<string, SpanRecord>();

  constructor(private readonly deliver: (records: SpanRecord[]) => void) {}

  /** A span the child started and may not live to end. */
  opened(span: SpanRecord): void {
    if (this.open.size < 16) this.open.set(span.spanId, span);
  }

  finished(records: SpanRecord[]): void {
    for (const r of records) this.open.delete(r.spanId);
    if (records.length > 0) this.deliver(records);
  }

  /** The child is gone (and its IPC drained): spans it never ended end now, as failed by how it exited. */
  childExited(exit: ChildExit): void {
    if (this.open.size === 0) return;
    const endTime: HrTime = toHrTime(exit.exitedAt);
    const how = exit.signal
      ? `was killed by ${exit.signal}`
      : `exited with status ${exit.status} before ending the span`;
    const ended: SpanRecord[] = [];
    for (const span of this.open.values()) {
      ended.push({
        ...span,
        endTime: hrLess(endTime, span.startTime) ? span.startTime : endTime,
        attributes: {
          ...span.attributes,
          [ATTR_PROCESS_EXIT_CODE]: exit.status,
          [ATTR_ERROR_TYPE]: exit.signal ?? String(exit.status),
        },
        status: { code: SpanStatusCode.ERROR, message: `the Wasm process ${how}` },
      });
    }
    this.open.clear();
    this.deliver(ended);
  }
}
