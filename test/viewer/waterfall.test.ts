import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { renderWaterfall } from '../../src/viewer/waterfall.js';
import { formatDuration, layoutTrace, outcomeOf, processOf } from '../../src/viewer/tree.js';
import { stripVTControlCharacters } from 'node:util';
import type { ReceivedSpan } from '../../src/otlp/receiver.js';
import { receivedSpans, syntheticTrace, TRACE_ID, T0, MS } from '../otlp/fixtures.js';

const ESC = '\u001b';
const strip = (s: string): string => stripVTControlCharacters(s);

/** The synthetic trace, shuffled (arrival order must not matter), plus an orphan. */
function spans(): ReceivedSpan[] {
  const list = receivedSpans(syntheticTrace());
  const orphan: ReceivedSpan = {
    ...list[0],
    spanId: 'c000000000000001',
    parentSpanId: 'dddddddddddddddd',
    name: 'late.orphan',
    startTimeUnixNano: T0 + 50n * MS,
    endTimeUnixNano: T0 + 60n * MS,
    resource: { 'service.name': 'other-svc', 'process.pid': 7 },
    attributes: {},
  };
  return [list[6], list[3], orphan, list[0], list[5], list[1], list[4], list[2]];
}

/** [label column, bar] for each span line of a rendered waterfall. */
function spanLines(out: string): { label: string; line: string; barFrom: number; barTo: number }[] {
  return strip(out)
    .split('\n')
    .filter((l) => /│.*│/.test(l))
    .map((line) => {
      const bar = line.slice(line.indexOf('│') + 1, line.lastIndexOf('│'));
      const from = bar.search(/[█▓▒]/);
      const to = bar.length - [...bar].reverse().join('').search(/[█▓▒]/);
      return { label: /^(\s*\S.*?)\s{2,}/.exec(line)![1], line, barFrom: from, barTo: to };
    });
}

describe('renderWaterfall', () => {
  const out = renderWaterfall(spans(), { width: 110 });
  const lines = strip(out).split('\n');
  const rows = spanLines(out);

  test('header: trace id, span count, total duration, services', () => {
    assert.match(lines[0], new RegExp(`^trace ${TRACE_ID} · 8 spans · 100ms · services: wasmts, other-svc$`));
    assert.match(lines[1], /^SPAN\s+PROCESS\s+SERVICE\s+0\s+50\.0ms\s+100ms\s+DURATION$/);
  });

  test('spans nested by parent, children by start time, orphans at the top with a marker', () => {
    assert.deepEqual(
      rows.map((r) => r.label),
      [
        'shim.main',
        '  task.create',
        '  task.start',
        '    wasm.compile',
        '    wasm.instantiate',
        '    wasm.run',
        '  task.wait',
        '? late.orphan',
      ],
    );
    assert.match(out, /\? parent span not received: dddddddddddddddd/);
  });

  test('process column and bar glyph tell the shim and the wasm child apart', () => {
    const proc = (name: string): string => rows.find((r) => r.label.trim() === name)!.line;
    assert.match(proc('shim.main'), /^shim\.main\s+shim\s+wasmts\s+│█+│/);
    assert.match(proc('wasm.run'), /^\s+wasm\.run\s+wasm child\s+wasmts\s+│\s*▓+\s*│/);
    assert.match(proc('? late.orphan'), /pid 7\s+other-svc\s+│\s*▒+\s*│/);
    assert.match(strip(out), /█ shim {3}▓ wasm child {3}▒ other process/);
  });

  test('bars sit on a shared time axis', () => {
    const width = rows[0].line.lastIndexOf('│') - rows[0].line.indexOf('│') - 1;
    const at = (name: string) => rows.find((r) => r.label.trim() === name)!;
    // the root spans the whole trace
    assert.equal(at('shim.main').barFrom, 0);
    assert.equal(at('shim.main').barTo, width);
    // start positions follow start times (0, 5, 22, 24, 31, 35, 40, 50 ms)
    const byStart = [
      'shim.main',
      'task.create',
      'task.start',
      'wasm.compile',
      'task.wait',
      'wasm.instantiate',
      'wasm.run',
      '? late.orphan',
    ];
    const froms = byStart.map((n) => at(n).barFrom);
    for (let i = 1; i < froms.length; i++)
      assert.ok(froms[i] >= froms[i - 1], `bar starts not monotone: ${froms.join(',')}`);
    // ends follow end times too
    const byEnd = ['task.start', 'wasm.instantiate', 'late.orphan', 'wasm.run', 'task.wait', 'shim.main'].map(
      (n) => at(n === 'late.orphan' ? '? late.orphan' : n).barTo,
    );
    for (let i = 1; i < byEnd.length; i++)
      assert.ok(byEnd[i] >= byEnd[i - 1], `bar ends not monotone: ${byEnd.join(',')}`);
    // positions are proportional: wasm.run covers 40..90 ms of 100
    assert.ok(Math.abs(at('wasm.run').barFrom - 0.4 * width) <= 1);
    assert.ok(Math.abs(at('wasm.run').barTo - 0.9 * width) <= 1);
    // every span line is the same length up to its duration column
    const ends = new Set(rows.map((r) => r.line.lastIndexOf('│')));
    assert.equal(ends.size, 1);
  });

  test('durations, the error status and the exit code are shown', () => {
    const run = rows.find((r) => r.label.trim() === 'wasm.run')!.line;
    assert.match(run, /│\s+50\.0ms ✗ exit 3 · exit code 3$/);
    assert.match(rows[0].line, /│\s+100ms$/);
  });

  test('lines fit the width; colour only when asked', () => {
    for (const width of [60, 80, 110, 160]) {
      const o = renderWaterfall(spans(), { width });
      for (const l of o.split('\n').filter((x) => x.includes('│'))) {
        assert.ok(l.replace(/ ✗ .*$/, '').length <= width, `width ${width}: ${l.length} > ${width}: ${l}`);
      }
    }
    assert.ok(!out.includes(`${ESC}[`), 'no escape sequence without color');
    const colored = renderWaterfall(spans(), { width: 110, color: true });
    assert.ok(colored.includes(`${ESC}[36m█`)); // shim bars cyan
    assert.ok(colored.includes(`${ESC}[35m▓`)); // child bars magenta
    assert.equal(strip(colored), out.replace(/\n$/, '\n'));
  });

  test('edge cases: empty, a single zero-length span, long names', () => {
    assert.equal(renderWaterfall([]), 'no spans\n');
    const [one] = receivedSpans([
      { resource: {}, spans: [{ spanId: '1111111111111111', name: 'x'.repeat(200), startMs: 5, endMs: 5 }] },
    ]);
    const o = strip(renderWaterfall([one], { width: 80 }));
    assert.match(o, /1 span · 0ns/);
    assert.match(o, /x…\s+-\s+-\s+│▒+│/);
  });
});

describe('layoutTrace / processOf / formatDuration', () => {
  test('duplicate span ids and parent cycles do not loop or vanish', () => {
    const [a, b] = receivedSpans([
      {
        resource: {},
        spans: [
          { spanId: '1111111111111111', parent: '2222222222222222', name: 'a', startMs: 0, endMs: 1 },
          { spanId: '2222222222222222', parent: '1111111111111111', name: 'b', startMs: 1, endMs: 2 },
        ],
      },
    ]);
    const rows = layoutTrace([a, b, a]);
    assert.deepEqual(
      rows.map((r) => [r.span.name, r.depth, r.orphan]),
      [
        ['a', 0, true],
        ['b', 1, false],
      ],
    );
  });

  test('processOf reads wasmts.process from the span or the resource, else process.pid', () => {
    const [s] = receivedSpans([
      { resource: {}, spans: [{ spanId: '1111111111111111', name: 'a', startMs: 0, endMs: 1 }] },
    ]);
    assert.deepEqual(processOf({ ...s, attributes: { 'wasmts.process': 'child' } }), {
      kind: 'child',
      label: 'wasm child',
    });
    assert.deepEqual(processOf({ ...s, resource: { 'wasmts.process': 'shim' } }), { kind: 'shim', label: 'shim' });
    assert.deepEqual(processOf({ ...s, resource: { 'process.pid': 12 } }), { kind: 'other', label: 'pid 12' });
    assert.deepEqual(processOf(s), { kind: 'other', label: '' });
  });

  test('outcomeOf: exit code, error status and error.type as an operator reads them', () => {
    const [s] = receivedSpans([
      { resource: {}, spans: [{ spanId: '1111111111111111', name: 'a', startMs: 0, endMs: 1 }] },
    ]);
    const ok = { code: 0, message: '' };
    const err = (message: string) => ({ code: 2, message });
    assert.deepEqual(outcomeOf(s), { error: false, text: '' });
    assert.deepEqual(outcomeOf({ ...s, attributes: { 'process.exit.code': 0 }, status: ok }), {
      error: false,
      exitCode: 0,
      text: 'exit 0',
    });
    assert.equal(
      outcomeOf({
        ...s,
        attributes: { 'process.exit.code': 3, 'error.type': '3' },
        status: err('the module exited with status 3'),
      }).text,
      '✗ exit 3 · the module exited with status 3',
    );
    assert.equal(
      outcomeOf({
        ...s,
        attributes: { 'process.exit.code': 134, 'error.type': 'unreachable' },
        status: err('unreachable'),
      }).text,
      '✗ exit 134 · unreachable',
    );
    assert.equal(
      outcomeOf({
        ...s,
        attributes: { 'process.exit.code': 137, 'error.type': 'SIGKILL' },
        status: err('the Wasm process was killed by SIGKILL'),
      }).text,
      '✗ exit 137 · SIGKILL · the Wasm process was killed by SIGKILL',
    );
    assert.equal(outcomeOf({ ...s, attributes: { 'error.type': 'INTERNAL' }, status: err('') }).text, '✗ INTERNAL');
    assert.equal(outcomeOf({ ...s, status: err('') }).text, '✗ error');
  });

  test('formatDuration', () => {
    assert.equal(formatDuration(850n), '850ns');
    assert.equal(formatDuration(312_400n), '312µs');
    assert.equal(formatDuration(12_345_678n), '12.3ms');
    assert.equal(formatDuration(1_250_000_000n), '1.25s');
    assert.equal(formatDuration(125_000_000_000n), '2m05s');
  });
});
