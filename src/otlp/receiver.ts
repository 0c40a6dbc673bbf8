// An in-process OTLP trace receiver: OTLP/HTTP (protobuf and JSON, optionally
// gzip) on POST /v1/traces and OTLP/gRPC TraceService/Export, keeping the
// last `maxSpans` spans in memory (span-store.ts). The same HTTP server serves
// the built-in trace viewer (/, /api/traces, /api/traces/<id>), which reads
// that store.
//
// Used by tests (assert on what the shim and its child exported) and by the
// `wasmts traces` command. Importing this module is cheap: @grpc/grpc-js and
// the viewer are loaded inside startOtlpReceiver.
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import { promisify } from 'node:util';
import { create, fromBinary, toBinary, toJsonString } from '@bufbuild/protobuf';
import type * as GrpcJs from '@grpc/grpc-js';
import {
  ExportTraceServiceRequestSchema,
  ExportTraceServiceResponseSchema,
  type ExportTraceServiceRequest,
  type ExportTraceServiceResponse,
} from '../gen/opentelemetry/proto/collector/trace/v1/trace_service_pb.js';
import { StatusSchema } from '../gen/google/rpc/status_pb.js';
import { parseOtlpJson, requestToSpans, type ReceivedSpan } from './convert.js';
import { SpanStore, type TraceSummary } from './span-store.js';

export type { ReceivedSpan } from './convert.js';

export interface OtlpReceiverOptions {
  /** Address to listen on (both servers). Default 127.0.0.1. */
  host?: string;
  /** OTLP/HTTP (+ viewer) port; 0 = ephemeral (the default); null = no HTTP server. */
  httpPort?: number | null;
  /** OTLP/gRPC port; 0 = ephemeral (the default); null = no gRPC server. */
  grpcPort?: number | null;
  /** Keep at most this many spans; the oldest are dropped first. Default 10000. */
  maxSpans?: number;
  /**
   * More routes on the HTTP port (the web viewer's, from src/viewer/web.ts): answers
   * and returns true for a path it serves, false for any other. Default none.
   */
  routes?: HttpRoutes;
}

export type HttpRoutes = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  url: URL,
  store: Pick<SpanStore, 'traces' | 'trace'>,
) => boolean;

export interface OtlpReceiver {
  /** e.g. http://127.0.0.1:4318 ('' when the HTTP server is disabled). Export to `${httpUrl}/v1/traces`. */
  httpUrl: string;
  /** e.g. http://127.0.0.1:4317 ('' when the gRPC server is disabled). */
  grpcUrl: string;
  /** All stored spans, in arrival order. */
  spans(): ReceivedSpan[];
  /** One summary per trace, most recently started first. */
  traces(): TraceSummary[];
  /** The spans of one trace (hex id, any case), by start time. */
  trace(traceId: string): ReceivedSpan[];
  /** Resolves with all spans once pred(all spans) is true; rejects after timeoutMs listing what arrived. */
  waitFor(pred: (spans: ReceivedSpan[]) => boolean, timeoutMs: number): Promise<ReceivedSpan[]>;
  /** Calls cb with each accepted batch. Returns a function that unsubscribes. */
  onSpans(cb: (batch: ReceivedSpan[]) => void): () => void;
  /** Export requests accepted so far, per transport. */
  readonly requests: { http: number; grpc: number };
  close(): Promise<void>;
}

const MAX_BODY = 64 * 1024 * 1024;
const TRACE_SERVICE_EXPORT = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
const gunzip = promisify(zlib.gunzip);
const inflate = promisify(zlib.inflate);

/** Thrown for a request we refuse; `status` is the HTTP status to answer with. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Splits valid spans from ones OTLP calls invalid (ids of the wrong length or all zero). */
function validate(spans: ReceivedSpan[]): { ok: ReceivedSpan[]; rejected: number } {
  const ok = spans.filter(
    (s) =>
      /^[0-9a-f]{32}$/.test(s.traceId) &&
      /^[0-9a-f]{16}$/.test(s.spanId) &&
      /[1-9a-f]/.test(s.traceId) &&
      /[1-9a-f]/.test(s.spanId),
  );
  return { ok, rejected: spans.length - ok.length };
}

function exportResponse(rejected: number): ExportTraceServiceResponse {
  return create(
    ExportTraceServiceResponseSchema,
    rejected
      ? {
          partialSuccess: {
            rejectedSpans: BigInt(rejected),
            errorMessage: 'spans with an invalid trace_id or span_id were dropped',
          },
        }
      : {},
  );
}

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer): void => {
      size += c.length;
      if (size > MAX_BODY) {
        // Stop reading; the caller answers 413 and then drops the connection.
        req.off('data', onData);
        req.pause();
        reject(new HttpError(413, `body larger than ${MAX_BODY} bytes`));
        return;
      }
      chunks.push(c);
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

async function decodeBody(req: http.IncomingMessage, body: Buffer): Promise<Buffer> {
  const enc = String(req.headers['content-encoding'] ?? 'identity')
    .trim()
    .toLowerCase();
  try {
    if (enc === 'gzip' || enc === 'x-gzip') return await gunzip(body, { maxOutputLength: MAX_BODY });
    if (enc === 'deflate') return await inflate(body, { maxOutputLength: MAX_BODY });
  } catch (err) {
    throw new HttpError(400, `cannot decompress ${enc} body: ${(err as Error).message}`);
  }
  if (enc === 'identity' || enc === '') return body;
  throw new HttpError(415, `unsupported Content-Encoding ${JSON.stringify(enc)} (use gzip or none)`);
}

export async function startOtlpReceiver(opts: OtlpReceiverOptions = {}): Promise<OtlpReceiver> {
  const host = opts.host ?? '127.0.0.1';
  const httpPort = opts.httpPort === undefined ? 0 : opts.httpPort;
  const grpcPort = opts.grpcPort === undefined ? 0 : opts.grpcPort;
  const store = new SpanStore(opts.maxSpans ?? 10000);
  const requests = { http: 0, grpc: 0 };

  let httpServer: http.Server | undefined;
  let grpcServer: GrpcJs.Server | undefined;
  let httpUrl = '';
  let grpcUrl = '';

  const receiver: OtlpReceiver = {
    get httpUrl() {
      return httpUrl;
    },
    get grpcUrl() {
      return grpcUrl;
    },
    spans: () => store.spans(),
    traces: () => store.traces(),
    trace: (id) => store.trace(id),
    waitFor: (pred, ms) => store.waitFor(pred, ms),
    onSpans: (cb) => store.onSpans(cb),
    requests,
    close: async () => {
      await Promise.all([closeHttp(), closeGrpc()]);
    },
  };

  const closeHttp = (): Promise<void> =>
    new Promise((resolve) => {
      if (!httpServer?.listening) return resolve();
      httpServer.close(() => resolve());
      httpServer.closeAllConnections();
    });

  const closeGrpc = (): Promise<void> =>
    new Promise((resolve) => {
      const srv = grpcServer;
      if (!srv) return resolve();
      grpcServer = undefined;
      const timer = setTimeout(() => {
        srv.forceShutdown();
        resolve();
      }, 1000);
      srv.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });

  try {
    if (httpPort !== null) {
      httpServer = http.createServer((req, res) => {
        handleHttp(req, res).catch((err: unknown) => {
          if (!res.headersSent) {
            res.writeHead(500, { 'content-type': 'text/plain' });
            res.end(`internal error: ${(err as Error)?.message ?? err}\n`);
          } else res.destroy();
        });
      });
      httpServer.keepAliveTimeout = 5000;

      const handleHttp = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
        const url = new URL(req.url ?? '/', 'http://receiver');
        if (url.pathname === '/v1/traces') return handleExport(req, res);
        if (opts.routes?.(req, res, url, store)) return;
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end(`not found: ${url.pathname} (OTLP traces go to POST /v1/traces)\n`);
      };

      const handleExport = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
        const cors = { 'access-control-allow-origin': '*' };
        if (req.method === 'OPTIONS') {
          res.writeHead(204, {
            ...cors,
            'access-control-allow-methods': 'POST',
            'access-control-allow-headers': 'content-type, content-encoding',
          });
          res.end();
          return;
        }
        const type = String(req.headers['content-type'] ?? '')
          .split(';')[0]
          .trim()
          .toLowerCase();
        const json = type === 'application/json';
        const reply = (status: number, payload: Uint8Array | string): void => {
          res.writeHead(status, { ...cors, 'content-type': json ? 'application/json' : 'application/x-protobuf' });
          res.end(payload);
        };
        const fail = (status: number, message: string): void => {
          const st = create(StatusSchema, {
            code: status === 400 ? 3 /* INVALID_ARGUMENT */ : 2 /* UNKNOWN */,
            message,
          });
          reply(status, json ? toJsonString(StatusSchema, st) : toBinary(StatusSchema, st));
        };
        if (req.method !== 'POST') {
          res.setHeader('allow', 'POST, OPTIONS');
          return fail(405, `${req.method} not allowed on /v1/traces (use POST)`);
        }
        let request: ExportTraceServiceRequest;
        try {
          if (!json && type !== 'application/x-protobuf' && type !== 'application/protobuf') {
            throw new HttpError(
              415,
              `unsupported Content-Type ${JSON.stringify(type)} (use application/x-protobuf or application/json)`,
            );
          }
          const body = await decodeBody(req, await readBody(req));
          try {
            request = json ? parseOtlpJson(body.toString('utf8')) : fromBinary(ExportTraceServiceRequestSchema, body);
          } catch (err) {
            throw new HttpError(
              400,
              `malformed ${json ? 'OTLP/JSON' : 'OTLP/protobuf'} ExportTraceServiceRequest: ${(err as Error).message}`,
            );
          }
        } catch (err) {
          if (err instanceof HttpError) {
            fail(err.status, err.message);
            if (err.status === 413) res.once('finish', () => req.destroy());
            return;
          }
          throw err;
        }
        const { ok, rejected } = validate(requestToSpans(request, 'http'));
        requests.http++;
        store.add(ok);
        const resp = exportResponse(rejected);
        reply(
          200,
          json
            ? toJsonString(ExportTraceServiceResponseSchema, resp)
            : toBinary(ExportTraceServiceResponseSchema, resp),
        );
      };

      await new Promise<void>((resolve, reject) => {
        const srv = httpServer!;
        const onError = (err: NodeJS.ErrnoException): void => reject(listenError('OTLP/HTTP', host, httpPort, err));
        srv.once('error', onError);
        srv.listen(httpPort, host, () => {
          srv.off('error', onError);
          resolve();
        });
      });
      httpUrl = `http://${urlHost(host)}:${(httpServer.address() as AddressInfo).port}`;
    }

    if (grpcPort !== null) {
      const mod = (await import('@grpc/grpc-js')) as typeof GrpcJs & { default?: typeof GrpcJs };
      const grpc: typeof GrpcJs = mod.default?.Server ? mod.default : mod;
      const server = new grpc.Server({ 'grpc.max_receive_message_length': MAX_BODY });
      const definition: GrpcJs.ServiceDefinition = {
        Export: {
          path: TRACE_SERVICE_EXPORT,
          requestStream: false,
          responseStream: false,
          // Decode in the handler, so a malformed message is INVALID_ARGUMENT rather than an internal error.
          requestSerialize: (b: Buffer) => b,
          requestDeserialize: (b: Buffer) => b,
          responseSerialize: (m: ExportTraceServiceResponse) =>
            Buffer.from(toBinary(ExportTraceServiceResponseSchema, m)),
          responseDeserialize: (b: Buffer) => fromBinary(ExportTraceServiceResponseSchema, b),
          originalName: 'export',
        },
      };
      server.addService(definition, {
        Export: (
          call: GrpcJs.ServerUnaryCall<Buffer, ExportTraceServiceResponse>,
          cb: GrpcJs.sendUnaryData<ExportTraceServiceResponse>,
        ) => {
          let request: ExportTraceServiceRequest;
          try {
            request = fromBinary(ExportTraceServiceRequestSchema, call.request);
          } catch (err) {
            cb(
              {
                code: grpc.status.INVALID_ARGUMENT,
                details: `malformed ExportTraceServiceRequest: ${(err as Error).message}`,
              },
              null,
            );
            return;
          }
          const { ok, rejected } = validate(requestToSpans(request, 'grpc'));
          requests.grpc++;
          store.add(ok);
          cb(null, exportResponse(rejected));
        },
      });
      grpcServer = server;
      // grpc-js logs its own bind failure to the console; find a taken port first.
      if (grpcPort !== 0) await probePort(host, grpcPort);
      const bound = await new Promise<number>((resolve, reject) => {
        const addr = `${host.includes(':') ? `[${host}]` : host}:${grpcPort}`;
        server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), (err, port) => {
          if (err) reject(listenError('OTLP/gRPC', host, grpcPort, err));
          else resolve(port);
        });
      });
      grpcUrl = `http://${urlHost(host)}:${bound}`;
    }
  } catch (err) {
    await receiver.close().catch(() => {});
    throw err;
  }
  return receiver;
}

/** Rejects with a listen error when host:port cannot be bound right now. */
function probePort(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => reject(listenError('OTLP/gRPC', host, port, err)));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}

function listenError(what: string, host: string, port: number, err: Error & { code?: string }): Error {
  const inUse = err.code === 'EADDRINUSE' || /address already in use|EADDRINUSE|No address added/i.test(err.message);
  const reason = inUse ? 'address already in use' : err.code === 'EACCES' ? 'permission denied' : err.message;
  const e = new Error(`cannot listen for ${what} on ${host}:${port}: ${reason}`);
  (e as Error & { code?: string }).code = inUse ? 'EADDRINUSE' : err.code;
  return e;
}
