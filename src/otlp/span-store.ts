// The spans an OTLP receiver keeps: the newest `maxSpans` of them, indexed by
// trace, with a summary per trace. Shared by the receiver (which fills it) and
// the viewer (which reads it), so neither imports the other's module.
import type { ReceivedSpan } from './convert.js';
import { ATTR_PROCESS_EXIT_CODE } from '../telemetry/semconv.js';

/** One line of the trace list. */
export interface TraceSummary {
  traceId: string;
  /** The root span's name (the earliest top-level span when no parentless span arrived). */
  rootName: string;
  /** service.name of the root span's resource ('' when unset). */
  service: string;
  /** Every service.name seen in the trace. */
  services: string[];
  spanCount: number;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  durationMs: number;
  /** A span without a parent arrived. */
  hasRoot: boolean;
  /** Spans whose parent span id is set but not (yet) among the received spans. */
  orphanCount: number;
  /** Date.now() when the trace's last span arrived. */
  lastReceivedAt: number;
  /** Spans with status ERROR. */
  errorCount: number;
  /** process.exit.code of the root span (a container's exit status), when it has one. */
  exitCode?: number;
}

/** The in-memory span store behind a receiver. */
export class SpanStore {
  private all: ReceivedSpan[] = [];
  private byTrace = new Map<string, ReceivedSpan[]>();
  private lastAt = new Map<string, number>();
  private listeners = new Set<(batch: ReceivedSpan[]) => void>();

  constructor(readonly maxSpans = 10000) {
    if (!(maxSpans >= 1)) throw new RangeError(`maxSpans must be >= 1, got ${maxSpans}`);
  }

  add(batch: ReceivedSpan[]): void {
    if (batch.length === 0) return;
    const now = Date.now();
    for (const s of batch) {
      this.all.push(s);
      let list = this.byTrace.get(s.traceId);
      if (!list) this.byTrace.set(s.traceId, (list = []));
      list.push(s);
      this.lastAt.set(s.traceId, now);
    }
    const excess = this.all.length - this.maxSpans;
    if (excess > 0) {
      // Oldest first; each evicted span is also the oldest of its own trace.
      for (const s of this.all.splice(0, excess)) {
        const list = this.byTrace.get(s.traceId);
        if (!list) continue;
        list.shift();
        if (list.length === 0) {
          this.byTrace.delete(s.traceId);
          this.lastAt.delete(s.traceId);
        }
      }
    }
    for (const cb of [...this.listeners]) {
      try {
        cb(batch);
      } catch {
        // a listener's failure must not fail the export
      }
    }
  }

  spans(): ReceivedSpan[] {
    return [...this.all];
  }

  trace(traceId: string): ReceivedSpan[] {
    const list = this.byTrace.get(traceId.toLowerCase()) ?? [];
    return [...list].sort(byStart);
  }

  traces(): TraceSummary[] {
    const out: TraceSummary[] = [];
    for (const [traceId, list] of this.byTrace) out.push(summarize(traceId, list, this.lastAt.get(traceId) ?? 0));
    return out.sort((a, b) =>
      a.startTimeUnixNano === b.startTimeUnixNano ? 0 : a.startTimeUnixNano > b.startTimeUnixNano ? -1 : 1,
    );
  }

  onSpans(cb: (batch: ReceivedSpan[]) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  waitFor(pred: (spans: ReceivedSpan[]) => boolean, timeoutMs: number): Promise<ReceivedSpan[]> {
    return new Promise((resolve, reject) => {
      /** Settles once pred holds (or throws); false while it does not hold yet. */
      const settled = (): boolean => {
        try {
          if (!pred(this.spans())) return false;
          resolve(this.spans());
        } catch (err) {
          reject(err instanceof Error ? err : new Error(`waitFor: the condition threw ${String(err)}`));
        }
        return true;
      };
      if (settled()) return;
      // Both run only after off and timer are set: on a later batch, or when the timer fires.
      const off = this.onSpans(() => {
        if (!settled()) return;
        off();
        clearTimeout(timer);
      });
      const timer = setTimeout(() => {
        off();
        reject(new Error(`waitFor: condition not met within ${timeoutMs} ms; ${describeSpans(this.all)}`));
      }, timeoutMs);
    });
  }
}

function byStart(a: ReceivedSpan, b: ReceivedSpan): number {
  return a.startTimeUnixNano === b.startTimeUnixNano ? 0 : a.startTimeUnixNano < b.startTimeUnixNano ? -1 : 1;
}

function describeSpans(spans: ReceivedSpan[]): string {
  if (spans.length === 0) return 'received no spans';
  const names = spans.slice(0, 60).map((s) => `${s.name} (${s.traceId.slice(0, 8)}, ${s.protocol})`);
  return `received ${spans.length} span(s): ${names.join(', ')}${spans.length > 60 ? ', …' : ''}`;
}

function summarize(traceId: string, list: ReceivedSpan[], lastReceivedAt: number): TraceSummary {
  const ids = new Set(list.map((s) => s.spanId));
  let start = list[0]?.startTimeUnixNano ?? 0n;
  let end = list[0]?.endTimeUnixNano ?? 0n;
  let root: ReceivedSpan | undefined;
  let top: ReceivedSpan | undefined;
  let orphanCount = 0;
  let errorCount = 0;
  const services = new Set<string>();
  for (const s of list) {
    if (s.status.code === 2) errorCount++;
    if (s.startTimeUnixNano < start) start = s.startTimeUnixNano;
    if (s.endTimeUnixNano > end) end = s.endTimeUnixNano;
    const svc = s.resource['service.name'];
    if (typeof svc === 'string' && svc) services.add(svc);
    if (s.parentSpanId === '') {
      if (!root || s.startTimeUnixNano < root.startTimeUnixNano) root = s;
    } else if (!ids.has(s.parentSpanId)) {
      orphanCount++;
      if (!top || s.startTimeUnixNano < top.startTimeUnixNano) top = s;
    }
  }
  const head = root ?? top ?? list[0];
  const svc = head?.resource['service.name'];
  const exitCode = head?.attributes[ATTR_PROCESS_EXIT_CODE];
  return {
    traceId,
    rootName: head?.name ?? '',
    service: typeof svc === 'string' ? svc : '',
    services: [...services].sort(),
    spanCount: list.length,
    startTimeUnixNano: start,
    endTimeUnixNano: end,
    durationMs: Number(end - start) / 1e6,
    hasRoot: root !== undefined,
    orphanCount,
    lastReceivedAt,
    errorCount,
    ...(typeof exitCode === 'number' ? { exitCode } : {}),
  };
}
