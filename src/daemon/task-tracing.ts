// Traces the Task service: one root span per container (its life in this
// shim) and one server span per RPC under it. It is a ttrpc interceptor, so
// neither the RPC layer nor the service knows of telemetry; it hands Create
// and Exec the trace context of their Wasm child in the call's context values
// (CHILD_TRACE), whether or not spans are exported.
import { readAnnotationsAsync } from '../bundle/index.js';
import type { Message } from '@bufbuild/protobuf';
import type { Interceptor, UnaryNext, UnaryRequest } from '../ttrpc/types.js';
import { toTtrpcError } from './errors.js';
import { Status } from '../gen/containerd/types/task/task_pb.js';
import type { ActiveSpan, SpanRecord, Telemetry } from '../telemetry/index.js';
import { SpanStatusCode } from '../telemetry/recorder.js';
import {
  extractFromEnv,
  extractFromMetadata,
  injectEnv,
  type ChildTraceContext,
  type IncomingContext,
} from '../telemetry/propagation.js';
import { CHILD_TRACE } from './call-values.js';
import { formatTraceparent } from '../telemetry/traceparent.js';
import * as sc from '../telemetry/semconv.js';

/** What the tracer reads of a Task request or response: fields are looked up, never cast. */
function stringField(message: Message, name: string): string {
  const value: unknown = Reflect.get(message, name);
  return typeof value === 'string' ? value : '';
}

function numberField(message: Message, name: string): number | undefined {
  const value: unknown = Reflect.get(message, name);
  return typeof value === 'number' ? value : undefined;
}

/** CRI's annotation naming the image a container runs (containerd 1.6+ sets it for Kubernetes pods). */
const IMAGE_NAME_ANNOTATIONS = ['io.kubernetes.cri.image-name'];
/** Roots of deleted containers kept for late calls (Shutdown); a long-lived daemon must not keep them all. */
const MAX_ENDED_ROOTS = 64;

export interface TaskTracerOptions {
  /** The shim's environment: its TRACEPARENT / TRACESTATE / TRACECONTEXT / BAGGAGE parent every container span. */
  env: Record<string, string | undefined>;
  /** containerd namespace of the containers this service holds (may only be known once Create arrives). */
  namespace?: () => string | undefined;
  /** The ttrpc socket this service is served on (server.address), likewise. */
  socketPath?: () => string | undefined;
}

interface ContainerTrace {
  root: ActiveSpan;
  /** error.type of the init process's wasm.run (trap kind, signal), when its child reported one. */
  runErrorType?: string;
}

export class TaskTracer {
  private readonly containers = new Map<string, ContainerTrace>();
  /** Deleted containers, so Shutdown and late calls still join their trace. */
  private readonly ended = new Map<string, ContainerTrace>();
  /** Create span id → container, to pick the init process's wasm.run out of the child's spans. */
  private readonly createSpans = new Map<string, string>();
  private readonly incoming: IncomingContext;
  private readonly stopObserving: () => void;

  constructor(
    private readonly telemetry: Telemetry,
    private readonly options: TaskTracerOptions,
  ) {
    this.incoming = extractFromEnv(options.env, telemetry.config.propagators);
    this.stopObserving = telemetry.observeChildSpans((records) => this.observe(records));
  }

  /** Traces every call of the services it is installed on (TtrpcServer.use). */
  readonly interceptor: Interceptor = (next) => (req) => this.traced(req, next);

  /** Context for a process this span forks: the module's environment, and the parent of the child's spans. */
  private childTrace(span: ActiveSpan, baggage: string | undefined): ChildTraceContext | undefined {
    const env = injectEnv(span.context, baggage, this.telemetry.config.propagators);
    if (!span.isRecording()) return Object.keys(env).length > 0 ? { env } : undefined;
    const ctx = span.context;
    return {
      env,
      recordUnder: { traceparent: formatTraceparent(ctx), ...(ctx.traceState ? { tracestate: ctx.traceState } : {}) },
    };
  }

  /** Ends open container spans (the service is going away) and stops observing child spans. */
  endAll(): void {
    for (const c of this.containers.values()) c.root.end();
    this.containers.clear();
    this.stopObserving();
  }

  private observe(records: SpanRecord[]): void {
    for (const r of records) {
      if (r.name !== 'wasm.run' || !r.parentSpanId) continue;
      const id = this.createSpans.get(r.parentSpanId);
      const c = id !== undefined ? this.containers.get(id) : undefined;
      const errorType = r.attributes[sc.ATTR_ERROR_TYPE];
      if (c && typeof errorType === 'string') c.runErrorType = errorType;
    }
  }

  private startRoot(id: string, bundle: string, remote: IncomingContext): ContainerTrace {
    const root = this.telemetry.recorder.startSpan('wasmts.container', {
      parent: this.incoming.parent ?? null,
      attributes: {
        [sc.ATTR_CONTAINER_ID]: id,
        [sc.ATTR_CONTAINER_RUNTIME_NAME]: 'containerd',
        [sc.ATTR_WASMTS_NAMESPACE]: this.options.namespace?.() || undefined,
      },
      // containerd's own trace (2.x) reaches the RPC spans; the container's trace links to it.
      ...(remote.parent ? { links: [{ context: remote.parent }] } : {}),
    });
    const c: ContainerTrace = { root };
    if (root.isRecording() && bundle) void this.addImageName(root, bundle);
    return c;
  }

  /** container.image.name from the bundle's annotations, when the client (CRI) named the image. */
  private async addImageName(root: ActiveSpan, bundle: string): Promise<void> {
    // no readable spec: Create reports that itself
    const annotations = await readAnnotationsAsync(bundle);
    for (const key of IMAGE_NAME_ANNOTATIONS) {
      const name = annotations?.[key];
      if (name) return void root.setAttribute(sc.ATTR_CONTAINER_IMAGE_NAME, name);
    }
  }

  private async traced(req: UnaryRequest, next: UnaryNext): Promise<Message> {
    const { ctx, message } = req;
    const name = req.method.name;
    const id = stringField(message, 'id');
    const execId = stringField(message, 'execId');
    const propagators = this.telemetry.config.propagators;
    const remote = extractFromMetadata((key) => ctx.metadata.get(key)?.[0], propagators);
    let c = this.containers.get(id);
    if (!c && name === 'Create' && id) {
      this.ended.delete(id);
      c = this.startRoot(id, stringField(message, 'bundle'), remote);
      this.containers.set(id, c);
    }
    // A deleted container's late calls (Shutdown) still belong to its trace.
    c ??= this.ended.get(id);
    const root = c?.root;
    const parent = remote.parent ?? root?.context ?? this.incoming.parent ?? null;
    const fullMethod = `${ctx.service}/${name}`;
    const span = this.telemetry.recorder.startSpan(fullMethod, {
      kind: 'server',
      parent,
      ...(remote.parent && root ? { links: [{ context: root.context }] } : {}),
      attributes: {
        [sc.ATTR_RPC_SYSTEM_NAME]: 'ttrpc',
        [sc.ATTR_RPC_METHOD]: fullMethod,
        [sc.ATTR_SERVER_ADDRESS]: this.options.socketPath?.() || undefined,
        [sc.ATTR_NETWORK_TRANSPORT]: 'unix',
        [sc.ATTR_CONTAINER_ID]: id || undefined,
        [sc.ATTR_WASMTS_EXEC_ID]: execId || undefined,
      },
    });
    if (name === 'Create' || name === 'Exec')
      ctx.values.set(CHILD_TRACE, this.childTrace(span, remote.baggage ?? this.incoming.baggage));
    if (name === 'Create' && c && span.isRecording()) this.createSpans.set(span.context.spanId, id);
    try {
      const res = await next(req);
      const pid = numberField(res, 'pid');
      const exitStatus = numberField(res, 'exitStatus');
      span.setAttribute(sc.ATTR_RPC_STATUS_CODE, 'OK');
      if (pid && (name === 'Create' || name === 'Start' || name === 'Exec' || name === 'Delete'))
        span.setAttribute(sc.ATTR_WASMTS_TASK_PID, pid);
      if (name === 'Create' && pid) root?.setAttribute(sc.ATTR_WASMTS_TASK_PID, pid);
      // An exit code only once the process has exited: Wait and Delete answer after it, State only when stopped.
      const exited =
        name === 'Wait' || name === 'Delete' || (name === 'State' && numberField(res, 'status') === Status.STOPPED);
      if (exited && exitStatus !== undefined) span.setAttribute(sc.ATTR_PROCESS_EXIT_CODE, exitStatus);
      if (name === 'Delete' && !execId && c) this.endContainer(id, c, span, exitStatus ?? 0);
      return res;
    } catch (err) {
      const code = toTtrpcError(err).code;
      const status = sc.grpcStatusName(code);
      span.setAttribute(sc.ATTR_RPC_STATUS_CODE, status);
      // A normal negative answer (NOT_FOUND on a Delete after a failed Create, …) is no error of this
      // server: its message is kept as an event, without the ERROR status.
      if (sc.isServerError(code)) {
        span.setAttribute(sc.ATTR_ERROR_TYPE, status);
        span.recordException(err);
      } else {
        span.addEvent('exception', {
          [sc.ATTR_EXCEPTION_TYPE]: (err as Error)?.name || 'Error',
          [sc.ATTR_EXCEPTION_MESSAGE]: (err as Error)?.message ?? String(err),
        });
      }
      if (name === 'Create' && c && this.containers.get(id) === c) {
        // The container failed to come up: that is an error of the container, whatever the code.
        c.root.setAttribute(sc.ATTR_ERROR_TYPE, status);
        c.root.recordException(err);
        this.endContainer(id, c, span, undefined);
      }
      throw err;
    } finally {
      // A socket claimed by the front end learns its path from its first Create.
      const address = this.options.socketPath?.();
      if (address) span.setAttribute(sc.ATTR_SERVER_ADDRESS, address);
      span.end();
    }
  }

  /** Ends the root after the RPC that ends the container; exitStatus is undefined when it never ran. */
  private endContainer(id: string, c: ContainerTrace, last: ActiveSpan, exitStatus: number | undefined): void {
    const root = c.root;
    if (exitStatus !== undefined) {
      root.setAttribute(sc.ATTR_PROCESS_EXIT_CODE, exitStatus);
      if (exitStatus !== 0) {
        root.setAttribute(sc.ATTR_ERROR_TYPE, c.runErrorType ?? String(exitStatus));
        root.setStatus(
          SpanStatusCode.ERROR,
          c.runErrorType
            ? `the module failed: ${c.runErrorType} (exit status ${exitStatus})`
            : `the module exited with status ${exitStatus}`,
        );
      }
    }
    // Later RPCs (Shutdown) may still hang under an ended root; only the map entry goes.
    queueMicrotask(() => {
      last.end();
      root.end();
    });
    this.containers.delete(id);
    for (const [spanId, cid] of this.createSpans) if (cid === id) this.createSpans.delete(spanId);
    this.ended.set(id, c);
    if (this.ended.size > MAX_ENDED_ROOTS) this.ended.delete(this.ended.keys().next().value as string);
  }
}
