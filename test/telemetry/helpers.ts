// Test helpers for the telemetry suite.
import http from 'node:http';
import zlib from 'node:zlib';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { LogLevel } from '../../src/telemetry/index.js';
import { listenLocal } from '../harness/index.js';

export interface CapturedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  /** Decompressed body. */
  body: Buffer;
  rawLength: number;
}

export interface CaptureServer {
  url: string;
  requests: CapturedRequest[];
  close(): Promise<void>;
}

/** A bare HTTP server that records every request and answers 200 with an empty body (after delayMs). */
export async function startCaptureServer(opts: { delayMs?: number } = {}): Promise<CaptureServer> {
  const requests: CapturedRequest[] = [];
  const srv = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      let body = raw;
      try {
        if (req.headers['content-encoding'] === 'gzip') body = zlib.gunzipSync(raw);
      } catch {
        /* keep raw */
      }
      requests.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body,
        rawLength: raw.length,
      });
      const json = String(req.headers['content-type'] ?? '').includes('json');
      setTimeout(() => {
        res.writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf' });
        res.end(json ? '{}' : '');
      }, opts.delayMs ?? 0);
    });
  });
  const port = await listenLocal(srv);
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((r) => {
        srv.close(() => r());
        srv.closeAllConnections();
      }),
  };
}

export interface LogLine {
  level: LogLevel;
  msg: string;
}

export function collectLogs(): { logs: LogLine[]; log: (level: LogLevel, msg: string) => void } {
  const logs: LogLine[] = [];
  return { logs, log: (level, msg) => logs.push({ level, msg }) };
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  wallMs: number;
}

/** Run a TypeScript fixture in a child Node process (with the same tsx loader as this one). */
export function runFixture(
  name: string,
  args: string[],
  env: Record<string, string | undefined>,
  extraExecArgv: string[] = [],
  timeoutMs = 20_000,
): Promise<RunResult> {
  const file = fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
  const t0 = performance.now();
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [...process.execArgv, ...extraExecArgv, file, ...args], {
      env: env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, wallMs: performance.now() - t0 });
    });
  });
}
