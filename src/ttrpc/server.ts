// The ttrpc server: a registry of handlers keyed by (service, method) plus the
// listeners feeding it connections. Protocol handling per connection lives in
// connection.ts; typed protobuf binding in service.ts.

import { createServer, type Server, type Socket } from 'node:net';
import type { DescService } from '@bufbuild/protobuf';
import { ServerConnection, type ConnectionHost } from './connection.js';
import { bindService } from './service.js';
import { errorMessage } from './status.js';
import { ServerError, type Handler, type Interceptor, type ServerErrorLogger, type ServiceImpl } from './types.js';

export type ListenTarget = { path: string } | { fd: number } | { server: Server };

export interface ServerOptions {
  onError?: ServerErrorLogger;
}

interface Listener {
  server: Server;
  onConnection: (socket: Socket) => void;
  onError: (err: Error) => void;
}

export class TtrpcServer {
  private readonly services = new Map<string, Map<string, Handler>>();
  private readonly listeners = new Set<Listener>();
  private readonly conns = new Set<ServerConnection>();
  private readonly interceptors: Interceptor[] = [];
  private logger: ServerErrorLogger | undefined;
  private closed = false;
  private readonly host: ConnectionHost = {
    resolve: (service, method) => this.resolve(service, method),
    report: (err) => this.report(err),
    removed: (conn) => this.conns.delete(conn),
  };

  constructor(opts: ServerOptions = {}) {
    this.logger = opts.onError;
  }

  /** Sets the logger for protocol and socket problems (see ServerError.kind). Without one they are dropped. */
  onError(logger: ServerErrorLogger | undefined): this {
    this.logger = logger;
    return this;
  }

  /**
   * Adds an interceptor around every call of the typed services (registerService),
   * outermost first; raw handlers (register) are not intercepted.
   */
  use(interceptor: Interceptor): this {
    this.interceptors.push(interceptor);
    return this;
  }

  /** Registers a raw handler. Throws on a duplicate (service, method): that is a wiring bug. */
  register(service: string, method: string, handler: Handler): this {
    let methods = this.services.get(service);
    if (methods === undefined) {
      methods = new Map();
      this.services.set(service, methods);
    }
    if (methods.has(method)) throw new Error(`ttrpc: ${service}/${method} registered twice`);
    methods.set(method, handler);
    return this;
  }

  /**
   * Serves every RPC of desc from impl (methods keyed by localName). `name`
   * overrides the wire service name, e.g. to serve the v2 Task messages as
   * containerd.task.v3.Task too.
   */
  registerService<D extends DescService>(desc: D, impl: ServiceImpl<D['method']>, opts: { name?: string } = {}): this {
    const service = opts.name ?? desc.typeName;
    for (const [method, handler] of bindService(desc, impl, () => this.interceptors))
      this.register(service, method, handler);
    return this;
  }

  /** Number of open connections. */
  get connections(): number {
    return this.conns.size;
  }

  /**
   * Starts accepting on a socket path, an inherited listening fd, or an
   * existing net.Server (which the TtrpcServer then owns and closes). May be
   * called more than once. Resolves once listening (immediately for a server).
   */
  async listen(target: ListenTarget): Promise<void> {
    if (this.closed) throw new Error('ttrpc: server is closed');
    if ('server' in target) {
      this.attach(target.server);
      return;
    }
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const done = (): void => {
        server.off('error', reject);
        resolve();
      };
      if ('path' in target) server.listen(target.path, done);
      else server.listen({ fd: target.fd }, done);
    }).catch((err: unknown) => {
      server.close();
      throw err;
    });
    if (this.closed) {
      // close() ran while we were binding
      server.close();
      throw new Error('ttrpc: server is closed');
    }
    this.attach(server);
  }

  /** Serves one already-connected socket (e.g. one end of a socketpair). */
  serveSocket(socket: Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    this.conns.add(new ServerConnection(socket, this.host));
  }

  /** Stops accepting, abandons in-flight calls and closes every connection. */
  async close(): Promise<void> {
    this.closed = true;
    const waits: Promise<unknown>[] = [];
    for (const l of this.listeners) {
      l.server.off('connection', l.onConnection);
      // keep the error listener: an 'error' without one would be uncaught
      waits.push(new Promise<void>((resolve) => l.server.close(() => resolve())));
    }
    this.listeners.clear();
    for (const conn of this.conns) {
      conn.shutdown();
      waits.push(conn.closed);
    }
    await Promise.all(waits);
  }

  private attach(server: Server): void {
    const l: Listener = {
      server,
      onConnection: (socket) => {
        try {
          this.serveSocket(socket);
        } catch (err) {
          this.report(
            new ServerError('internal', `ttrpc: cannot serve connection: ${errorMessage(err)}`, undefined, {
              cause: err,
            }),
          );
          socket.destroy();
        }
      },
      onError: (err) =>
        this.report(
          new ServerError('listener-error', `ttrpc: listener error: ${err.message}`, undefined, { cause: err }),
        ),
    };
    server.on('connection', l.onConnection);
    server.on('error', l.onError);
    this.listeners.add(l);
  }

  private resolve(service: string, method: string): Handler | string {
    const methods = this.services.get(service);
    if (methods === undefined) return `service ${service}: unknown service`;
    const handler = methods.get(method);
    if (handler === undefined) return `method ${method}: unknown method of service ${service}`;
    return handler;
  }

  private report(err: ServerError): void {
    if (this.logger === undefined) return;
    try {
      this.logger(err);
    } catch {
      // a broken logger must not break the connection that reported
    }
  }
}
