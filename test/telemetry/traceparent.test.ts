import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseTraceparent,
  formatTraceparent,
  parseTraceContextEnv,
  isValidSpanContext,
} from '../../src/telemetry/traceparent.js';

const TID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SID = '00f067aa0ba902b7';
const TP = `00-${TID}-${SID}-01`;

test('parses a valid traceparent', () => {
  assert.deepEqual(parseTraceparent(TP), { traceId: TID, spanId: SID, traceFlags: 1, isRemote: true });
  assert.deepEqual(parseTraceparent(`00-${TID}-${SID}-00`), {
    traceId: TID,
    spanId: SID,
    traceFlags: 0,
    isRemote: true,
  });
  assert.equal(parseTraceparent(`  ${TP}  `)?.traceId, TID);
  assert.equal(parseTraceparent(`00-${TID}-${SID}-09`)?.traceFlags, 9);
});

test('rejects invalid traceparents', () => {
  const bad = [
    undefined,
    null,
    '',
    'garbage',
    `01-${TID}-${SID}`, // too few fields
    `ff-${TID}-${SID}-01`, // version ff is invalid
    `0-${TID}-${SID}-01`,
    `00-${TID.toUpperCase()}-${SID}-01`, // uppercase
    `00-${TID}-${SID.toUpperCase()}-01`,
    `00-${'0'.repeat(32)}-${SID}-01`, // all-zero trace id
    `00-${TID}-${'0'.repeat(16)}-01`, // all-zero span id
    `00-${TID.slice(1)}-${SID}-01`, // short
    `00-${TID}0-${SID}-01`, // long
    `00-${TID}-${SID}-1`,
    `00-${TID}-${SID}-zz`,
    `00-${TID}-${SID}-01-extra`, // version 00 has exactly four fields
    `0g-${TID}-${SID}-01`,
  ];
  for (const v of bad) assert.equal(parseTraceparent(v as string), undefined, String(v));
});

test('accepts future versions leniently (first four fields)', () => {
  assert.equal(parseTraceparent(`01-${TID}-${SID}-01`)?.spanId, SID);
  assert.equal(parseTraceparent(`cc-${TID}-${SID}-01-what-ever`)?.traceId, TID);
});

test('formats', () => {
  assert.equal(formatTraceparent({ traceId: TID, spanId: SID, traceFlags: 1 }), TP);
  assert.equal(formatTraceparent({ traceId: TID, spanId: SID, traceFlags: 0 }), `00-${TID}-${SID}-00`);
  assert.equal(formatTraceparent({ traceId: TID, spanId: SID, traceFlags: 0xab }), `00-${TID}-${SID}-ab`);
  assert.equal(formatTraceparent({ traceId: '0'.repeat(32), spanId: SID, traceFlags: 1 }), '');
  assert.equal(formatTraceparent(undefined), '');
  assert.equal(formatTraceparent(parseTraceparent(TP)), TP);
});

test('isValidSpanContext', () => {
  assert.equal(isValidSpanContext({ traceId: TID, spanId: SID, traceFlags: 1 }), true);
  assert.equal(isValidSpanContext({ traceId: TID, spanId: SID, traceFlags: 256 }), false);
  assert.equal(isValidSpanContext({ traceId: TID, spanId: SID, traceFlags: 1.5 }), false);
  assert.equal(isValidSpanContext({ traceId: TID, spanId: 'x', traceFlags: 1 }), false);
  assert.equal(isValidSpanContext(null), false);
});

test('TRACECONTEXT: plain traceparent or runwasi JSON map', () => {
  assert.equal(parseTraceContextEnv(TP)?.spanId, SID);
  assert.equal(parseTraceContextEnv(JSON.stringify({ traceparent: TP }))?.spanId, SID);
  assert.equal(parseTraceContextEnv(JSON.stringify({ traceparent: TP, tracestate: 'a=b' }))?.traceId, TID);
  assert.equal(parseTraceContextEnv(` {"Traceparent": "${TP}"} `)?.traceId, TID);
  for (const v of [
    undefined,
    '',
    '   ',
    '{',
    '{}',
    '[]',
    'null',
    JSON.stringify({ traceparent: 'nope' }),
    JSON.stringify({ traceparent: 42 }),
    JSON.stringify({ other: TP }),
    JSON.stringify([TP]),
    `"${TP}"`,
  ]) {
    assert.equal(parseTraceContextEnv(v), undefined, String(v));
  }
});
