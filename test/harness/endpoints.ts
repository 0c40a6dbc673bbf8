// OTLP endpoints that misbehave, for the exporter's error paths: nothing
// listening, junk answers, no answer at all, a certificate nobody signed.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import zlib from 'node:zlib';
import { fromBinary } from '@bufbuild/protobuf';
import { ExportTraceServiceRequestSchema } from '../../src/gen/opentelemetry/proto/collector/trace/v1/trace_service_pb.js';
import { requestToSpans, type ReceivedSpan } from '../../src/otlp/convert.js';

/** Listens on a free port of 127.0.0.1 and resolves with it. */
export function listenLocal(srv: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      if (address === null || typeof address === 'string') reject(new Error('not a TCP listener'));
      else resolve(address.port);
    });
  });
}

function closeServer(srv: net.Server): Promise<void> {
  return new Promise<void>((r) => srv.close(() => r()));
}

/** A port nothing listens on (bound once, then closed). */
export async function deadPort(): Promise<number> {
  const dead = net.createServer();
  const port = await listenLocal(dead);
  await closeServer(dead);
  return port;
}

export interface BadEndpoints {
  /** Nothing listens there (connection refused). */
  deadPort: number;
  deadUrl: string;
  /** Accepts, writes junk bytes (not HTTP, not HTTP/2) and closes. */
  garbagePort: number;
  garbageUrl: string;
  /** Accepts, reads the request, never answers (keeps the connection open; HTTP/2 too). */
  hangPort: number;
  hangUrl: string;
  /** Export requests the never-answering endpoint read in full (OTLP/HTTP protobuf), decoded: the spans the shim tried to send. */
  hungSpans(): ReceivedSpan[];
  /** Connections each endpoint accepted. */
  readonly connections: { garbage: number; hang: number };
  close(): Promise<void>;
}

export async function startBadEndpoints(): Promise<BadEndpoints> {
  const sockets = new Set<net.Socket>();
  const connections = { garbage: 0, hang: 0 };
  const hung: ReceivedSpan[] = [];
  const track = (s: net.Socket): void => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  };
  const garbage = net.createServer((s) => {
    connections.garbage++;
    track(s);
    s.on('data', () => undefined);
    s.end(Buffer.from('\x00\xffgarbage \x01\x02 not http at all\r\n\r\n\xde\xad\xbe\xef', 'latin1'));
  });
  // An HTTP server that reads each request and never writes a byte back.
  const hang = http.createServer((req) => {
    const chunks: Buffer[] = [];
    req.on('data', (b: Buffer) => chunks.push(b));
    req.on('end', () => {
      try {
        let body = Buffer.concat(chunks);
        if (req.headers['content-encoding'] === 'gzip') body = zlib.gunzipSync(body);
        hung.push(...requestToSpans(fromBinary(ExportTraceServiceRequestSchema, body), 'http'));
      } catch {
        /* not an OTLP protobuf request: still never answered */
      }
    });
  });
  // What HTTP/1 cannot parse (gRPC's HTTP/2 preface) is not answered either: the socket just stays open.
  hang.on('clientError', () => undefined);
  hang.on('connection', (s: net.Socket) => {
    connections.hang++;
    track(s);
  });
  hang.requestTimeout = 0;
  hang.headersTimeout = 0;
  hang.keepAliveTimeout = 0;
  const [garbagePort, hangPort, dead] = await Promise.all([listenLocal(garbage), listenLocal(hang), deadPort()]);
  return {
    deadPort: dead,
    deadUrl: `http://127.0.0.1:${dead}`,
    garbagePort,
    garbageUrl: `http://127.0.0.1:${garbagePort}`,
    hangPort,
    hangUrl: `http://127.0.0.1:${hangPort}`,
    hungSpans: () => [...hung],
    connections,
    close: async () => {
      for (const s of sockets) s.destroy();
      await Promise.all([closeServer(garbage), closeServer(hang)]);
    },
  };
}

export interface UntrustedTlsEndpoint {
  /** https://127.0.0.1:<port>, served with a self-signed certificate no CA the shim knows has signed. */
  url: string;
  /** TCP connections accepted (TLS handshakes the exporter then refuses). */
  readonly connections: number;
  close(): Promise<void>;
}

/** An OTLP/HTTPS endpoint whose certificate the exporter must refuse (the wrong-CA case). */
export async function startUntrustedTlsEndpoint(): Promise<UntrustedTlsEndpoint> {
  const dir = fs.mkdtempSync(path.join(tmpdir(), 'wasmts-tls-'));
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  const subject = ['-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'];
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', ...subject],
    { stdio: 'ignore' },
  );
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const srv = https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, (req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end());
  });
  srv.on('connection', (s: net.Socket) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  srv.on('tlsClientError', () => undefined);
  const port = await listenLocal(srv);
  return {
    url: `https://127.0.0.1:${port}`,
    get connections() {
      return connections;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await closeServer(srv);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
