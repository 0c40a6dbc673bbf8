// Traces the Task service: one root span per container (its life in this
// shim) and one server span per RPC under it. Wraps the service from the
// outside, so the RPC layer itself stays free of telemetry.
import type { DescService } from '@bufbuild/protobuf';
import type { CallContext, ServiceImpl } from '../ttrpc/types.js';
import { TtrpcError, codeName } from '../ttrpc/status.js';
import type { ActiveSpan, SpanContextLike, Telemetry } from '../telemetry/index.js';
import { parseTraceContextEnv, parseTraceparent } from '../telemetry/traceparent.js';

type AnyRequest = { id?: string; execId?: string };
type AnyResponse = { pid?: number; exitStatus?: number } | undefined;
type Method = (req: AnyRequest, ctx: CallContext) => Promise<AnyResponse>;

export class TaskTracer {
  private readonly roots = new Map<string, ActiveSpan>();
  /** Roots of deleted containers, so Shutdown and late calls still join their trace. */
  private readonly lastRoots = new Map<string, ActiveSpan>();
  /** The span that forks a process (create or exec) — its traceparent becomes the child's TRACECONTEXT. */
  private readonly forking = new Map<string, ActiveSpan>();
  private readonly shimParent: SpanContextLike | undefined;

  constructor(private readonly telemetry: Telemetry, env: NodeJS.ProcessEnv) {
    this.shimParent = parseTraceContextEnv(env.TRACECONTEXT);
  }

  /** TRACECONTEXT for a process being forked now. */
  traceparentFor(containerId: string, execId: string): string | undefined {
    return this.forking.get(`${containerId}/${execId}`)?.traceparent() || undefined;
  }

  /** Wraps every RPC of `desc` found on `impl` with a span. */
  wrap<D extends DescService>(desc: D, impl: object): ServiceImpl<D['method']> {
    const wrapped: Record<string, Method> = {};
    for (const method of desc.methods) {
      const target = (impl as Record<string, unknown>)[method.localName];
      if (typeof target !== 'function') continue;
      const call = (target as Method).bind(impl);
      wrapped[method.localName] = (req, ctx) => this.traced(method.name, call, req, ctx);
    }
    return wrapped as unknown as ServiceImpl<D["method"]>;
  }

  /** Ends open container spans (daemon exit). */
  endAll(): void {
    for (const root of this.roots.values()) root.end();
    this.roots.clear();
  }

  private async traced(name: string, call: Method, req: AnyRequest, ctx: CallContext): Promise<AnyResponse> {
    const id = req.id ?? '';
    const execId = req.execId ?? '';
    const recorder = this.telemetry.recorder;
    let root = this.roots.get(id);
    if (!root && name === 'Create' && id) {
      this.lastRoots.delete(id);
      root = recorder.startSpan('wasmts.container', {
        parent: this.shimParent ?? null,
        attributes: { 'container.id': id, 'wasmts.shim.pid': process.pid },
      });
      this.roots.set(id, root);
    }
    // A deleted container's late calls (Shutdown) still belong to its trace.
    root ??= this.lastRoots.get(id);
    const remote = parseTraceparent(ctx.metadata.get('traceparent')?.[0] ?? '');
    const parent = remote ?? root?.context ?? this.shimParent ?? null;
    const span = recorder.startSpan(`${ctx.service}/${name}`, {
      kind: 'server',
      parent,
      ...(remote && root ? { links: [{ context: root.context }] } : {}),
      attributes: {
        'rpc.system': 'ttrpc',
        'rpc.service': ctx.service,
        'rpc.method': name,
        'container.id': id || undefined,
        'wasmts.exec_id': execId || undefined,
      },
    });
    const forkKey = `${id}/${execId}`;
    if (name === 'Create' || name === 'Exec') this.forking.set(forkKey, span);
    try {
      const res = await call(req, ctx);
      if (res?.pid) span.setAttribute('process.pid', res.pid);
      if (res && 'exitStatus' in res && res.exitStatus !== undefined) span.setAttribute('wasmts.exit_status', res.exitStatus);
      if (name === 'Create' && res?.pid) root?.setAttribute('process.pid', res.pid);
      if (name === 'Delete' && !execId && root) {
        root.setAttribute('wasmts.exit_status', res?.exitStatus ?? 0);
        this.endRootAfter(id, root, span);
        return res;
      }
      return res;
    } catch (err) {
      const code = err instanceof TtrpcError ? err.code : 2;
      span.setAttribute('rpc.grpc.status_code', code);
      span.setAttribute('wasmts.error.code', codeName(code));
      span.recordException(err);
      if (name === 'Create' && root) {
        root.recordException(err);
        this.endRootAfter(id, root, span);
      }
      throw err;
    } finally {
      if (name === 'Create' || name === 'Exec') this.forking.delete(forkKey);
      span.end();
    }
  }

  private endRootAfter(id: string, root: ActiveSpan, last: ActiveSpan): void {
    // Later RPCs (Shutdown) may still hang under an ended root; only the map entry goes.
    queueMicrotask(() => {
      last.end();
      root.end();
    });
    this.roots.delete(id);
    this.lastRoots.set(id, root);
  }
}
