// Terminal waterfall of one trace:
//
//   trace 4bf9…4736 · 5 spans · 12.3ms · services: wasmts
//   SPAN               PROCESS     SERVICE  0            6.15ms           12.3ms DURATION
//   shim.main          shim        wasmts   │████████████████████████████████│   12.3ms
//     task.start       shim        wasmts   │  ████████████████████████      │   8.00ms
//       wasm.run       wasm child  wasmts   │     ▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓           │   5.00ms
//
// Spans are nested by parent (children by start time), orphans (parent not
// received) sit at the top level marked with "?", and the shim's spans and the
// wasm child's are told apart by the PROCESS column, the bar glyph and colour.
import type { ReceivedSpan } from '../otlp/convert.js';
import { formatDuration, layoutTrace, outcomeOf, processOf, serviceOf, type ProcessKind } from './tree.js';

export interface WaterfallOptions {
  /** Total line width in columns. Default 100. */
  width?: number;
  /** ANSI colours. Default false. */
  color?: boolean;
}

const GLYPH: Record<ProcessKind, string> = { shim: '█', child: '▓', other: '▒' };
const COLOR: Record<ProcessKind, string> = { shim: '36', child: '35', other: '33' };
const ORPHAN = '?';

function clip(s: string, w: number): string {
  return s.length <= w ? s.padEnd(w) : `${s.slice(0, Math.max(0, w - 1))}…`;
}

export function renderWaterfall(spans: ReceivedSpan[], opts: WaterfallOptions = {}): string {
  const width = Math.max(60, Math.floor(opts.width ?? 100));
  const color = opts.color ?? false;
  const paint = (code: string, s: string): string => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
  if (spans.length === 0) return 'no spans\n';

  const rows = layoutTrace(spans);
  let t0 = rows[0].span.startTimeUnixNano;
  let t1 = rows[0].span.endTimeUnixNano;
  for (const { span } of rows) {
    if (span.startTimeUnixNano < t0) t0 = span.startTimeUnixNano;
    if (span.endTimeUnixNano > t1) t1 = span.endTimeUnixNano;
  }
  const total = t1 > t0 ? t1 - t0 : 0n;
  const traceIds = [...new Set(rows.map((r) => r.span.traceId))];
  const services = [...new Set(rows.map((r) => serviceOf(r.span)).filter(Boolean))];

  const labels = rows.map((r) => `${'  '.repeat(r.depth)}${r.orphan ? `${ORPHAN} ` : ''}${r.span.name || '(unnamed)'}`);
  const procs = rows.map((r) => processOf(r.span));
  const svcs = rows.map((r) => serviceOf(r.span) || '-');
  const durs = rows.map((r) => formatDuration(r.span.endTimeUnixNano - r.span.startTimeUnixNano));

  let nameW = Math.min(Math.max(16, ...labels.map((l) => l.length)), Math.floor(width * 0.32));
  let procW = Math.max(7, ...procs.map((p) => p.label.length));
  let svcW = Math.min(Math.max(7, ...svcs.map((s) => s.length)), 16);
  const durW = Math.max(8, ...durs.map((d) => d.length));
  // name␣␣proc␣␣svc␣␣│bar│␣dur (+ error mark); keep at least 10 columns of bar.
  let over = nameW + procW + svcW + durW + 11 + 10 - width;
  const take = (w: number, min: number): number => {
    const d = Math.max(0, Math.min(over, w - min));
    over -= d;
    return w - d;
  };
  svcW = take(svcW, 5);
  nameW = take(nameW, 10);
  procW = take(procW, 5);
  const barW = Math.max(10, width - (nameW + procW + svcW + durW + 11));
  const prefixW = nameW + 2 + procW + 2 + svcW + 2;

  const out: string[] = [];
  const head = `trace ${traceIds.join(', ')} · ${rows.length} span${rows.length === 1 ? '' : 's'} · ${formatDuration(total)}${services.length ? ` · services: ${services.join(', ')}` : ''}`;
  out.push(color ? `\x1b[1m${head}\x1b[0m` : head);

  // Column titles, with the time axis (0, middle, end) over the bars.
  const axis = Array.from({ length: barW + 2 }, () => ' ');
  const taken: [number, number][] = [];
  const put = (at: number, text: string): void => {
    const from = Math.max(0, Math.min(axis.length - text.length, at));
    const to = from + text.length;
    if (taken.some(([a, b]) => from < b + 2 && a < to + 2)) return; // would touch another label
    taken.push([from, to]);
    for (let i = 0; i < text.length; i++) axis[from + i] = text[i]!;
  };
  const mid = formatDuration(total / 2n);
  put(1, '0');
  put(barW + 1 - formatDuration(total).length, formatDuration(total));
  put(1 + Math.floor(barW / 2) - Math.floor(mid.length / 2), mid);
  out.push(
    paint(
      '2',
      `${'SPAN'.padEnd(nameW)}  ${'PROCESS'.padEnd(procW)}  ${'SERVICE'.padEnd(svcW)}  ${axis.join('')} ${'DURATION'.padStart(durW)}`,
    ),
  );

  rows.forEach((r, i) => {
    const s = r.span;
    const kind = procs[i].kind;
    let from = 0;
    let to = barW;
    if (total > 0n) {
      from = Math.floor((Number(s.startTimeUnixNano - t0) / Number(total)) * barW);
      to = Math.ceil((Number(s.endTimeUnixNano - t0) / Number(total)) * barW);
    }
    from = Math.min(Math.max(0, from), barW - 1);
    to = Math.min(Math.max(from + 1, to), barW);
    const bar = ' '.repeat(from) + paint(COLOR[kind], GLYPH[kind].repeat(to - from)) + ' '.repeat(barW - to);
    const outcome = outcomeOf(s);
    const error = outcome.error;
    const name = clip(labels[i], nameW);
    const proc = paint(COLOR[kind], clip(procs[i].label || '-', procW));
    const mark = outcome.text ? ` ${error ? paint('31', outcome.text) : outcome.text}` : '';
    out.push(
      `${error ? paint('31', name) : name}  ${proc}  ${clip(svcs[i], svcW)}  │${bar}│ ${durs[i].padStart(durW)}${mark}`.trimEnd(),
    );
  });

  const kinds = new Set(procs.map((p) => p.kind));
  const legend = (['shim', 'child', 'other'] as const)
    .filter((k) => kinds.has(k))
    .map((k) =>
      paint(COLOR[k], `${GLYPH[k]} ${k === 'shim' ? 'shim' : k === 'child' ? 'wasm child' : 'other process'}`),
    );
  out.push(`${' '.repeat(prefixW)}${legend.join('   ')}`.trimEnd());
  const missing = [
    ...new Set(
      rows
        .filter((r) => r.orphan)
        .map((r) => r.span.parentSpanId)
        .filter(Boolean),
    ),
  ];
  if (missing.length) out.push(`${ORPHAN} parent span not received: ${missing.join(', ')}`);
  return `${out.join('\n')}\n`;
}
