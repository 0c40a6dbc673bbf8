// Daemon log lines in logrus' text format, written to the bundle's `log` FIFO
// that containerd copies into its own log. Never blocks: a full or missing
// FIFO drops the line.
import * as fs from 'node:fs';
import { logFifoPath } from '../bundle/index.js';

export type Level = 'debug' | 'info' | 'warn' | 'error';
const RANK: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

function quote(value: unknown): string {
  const s = typeof value === 'string' ? value : JSON.stringify(value);
  return /^[\w./:@-]+$/.test(s) ? s : JSON.stringify(s);
}

function formatLine(level: Level, msg: string, fields: Record<string, unknown>): string {
  const extra = Object.entries(fields)
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => ` ${k}=${quote(v)}`)
    .join('');
  return `time="${new Date().toISOString()}" level=${level} msg=${JSON.stringify(msg)}${extra}\n`;
}

export function openLogFifo(bundle: string): number | undefined {
  const file = logFifoPath(bundle);
  try {
    // O_NONBLOCK: containerd opened the read end already; if not, we log nowhere rather than hang.
    return fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
}

export function createLogger(fd: number | undefined, debug: boolean, base: Record<string, unknown> = {}): Logger {
  const min = debug ? RANK.debug : RANK.info;
  const write = (level: Level, msg: string, fields?: Record<string, unknown>) => {
    if (fd === undefined || RANK[level] < min) return;
    try {
      fs.writeSync(fd, formatLine(level, msg, { ...base, ...fields }));
    } catch {
      // EAGAIN (reader slow) or EPIPE (containerd gone): drop the line
    }
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
  };
}
