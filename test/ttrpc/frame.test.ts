import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decodeHeader,
  encodeFrame,
  FrameDecoder,
  FrameType,
  HEADER_LENGTH,
  MAX_PAYLOAD,
  type DecodeEvent,
} from '../../src/ttrpc/frame.js';
import { rawHeader } from './helpers.js';

function feedAll(d: FrameDecoder, bytes: Uint8Array, step: number): DecodeEvent[] {
  const out: DecodeEvent[] = [];
  for (let i = 0; i < bytes.length; i += step) out.push(...d.feed(bytes.subarray(i, i + step)));
  return out;
}

describe('frame encoding', () => {
  it('writes a 10-byte big-endian header', () => {
    const f = encodeFrame(0x01020304, FrameType.Response, new Uint8Array([9, 8, 7]), 0x05);
    assert.deepEqual([...f], [0, 0, 0, 3, 1, 2, 3, 4, 2, 5, 9, 8, 7]);
    assert.deepEqual(decodeHeader(f), { length: 3, streamId: 0x01020304, type: 2, flags: 5 });
  });

  it('decodes uint32 values with the top bit set', () => {
    assert.deepEqual(decodeHeader(rawHeader(0xffffffff, 0xfffffffe, 255, 255)), {
      length: 0xffffffff,
      streamId: 0xfffffffe,
      type: 255,
      flags: 255,
    });
  });

  it('refuses to encode an oversized payload or a bad stream id', () => {
    assert.throws(() => encodeFrame(1, FrameType.Request, new Uint8Array(MAX_PAYLOAD + 1)), RangeError);
    assert.doesNotThrow(() => encodeFrame(1, FrameType.Request, new Uint8Array(MAX_PAYLOAD)));
    assert.throws(() => encodeFrame(-1, FrameType.Request, new Uint8Array(0)), RangeError);
    assert.throws(() => encodeFrame(2 ** 32, FrameType.Request, new Uint8Array(0)), RangeError);
  });
});

describe('FrameDecoder', () => {
  const frames = [
    encodeFrame(1, FrameType.Request, new Uint8Array([1, 2, 3])),
    encodeFrame(3, FrameType.Request, new Uint8Array(0)),
    encodeFrame(5, FrameType.Response, new Uint8Array(1000).fill(7)),
  ];
  const stream = Buffer.concat(frames);

  for (const step of [1, 3, 10, 11, 64, stream.length]) {
    it(`reassembles frames fed in ${step}-byte chunks`, () => {
      const d = new FrameDecoder();
      const evs = feedAll(d, stream, step);
      assert.equal(evs.length, 3);
      assert.deepEqual(
        evs.map((e) => (e.kind === 'frame' ? [e.header.streamId, e.header.type, e.payload.length] : e.kind)),
        [
          [1, 1, 3],
          [3, 1, 0],
          [5, 2, 1000],
        ],
      );
      assert.equal(d.idle, true);
      assert.equal(d.end(), undefined);
    });
  }

  it('does not alias the input buffer', () => {
    const d = new FrameDecoder();
    const buf = Buffer.from(encodeFrame(1, FrameType.Request, new Uint8Array([1, 2, 3])));
    const [ev] = d.feed(buf);
    buf.fill(0);
    assert.ok(ev !== undefined && ev.kind === 'frame');
    assert.deepEqual([...ev.payload], [1, 2, 3]);
  });

  it('reports an oversized frame at its header, skips its payload, then continues', () => {
    const d = new FrameDecoder();
    const len = MAX_PAYLOAD + 10;
    const evs: DecodeEvent[] = [...d.feed(rawHeader(len, 7, FrameType.Request))];
    assert.deepEqual(evs, [{ kind: 'oversized', header: { length: len, streamId: 7, type: 1, flags: 0 } }]);
    // payload arrives in pieces and is dropped, never buffered
    const piece = new Uint8Array(64 * 1024);
    let sent = 0;
    while (sent + piece.length <= len) {
      assert.deepEqual(d.feed(piece), []);
      sent += piece.length;
    }
    const rest = len - sent;
    const next = encodeFrame(9, FrameType.Request, new Uint8Array([42]));
    const tail = Buffer.concat([new Uint8Array(rest), next]);
    const after = d.feed(tail);
    assert.equal(after.length, 1);
    assert.ok(after[0].kind === 'frame' && after[0].header.streamId === 9);
    assert.equal(d.end(), undefined);
  });

  it('reports truncation at end of stream, in the header or the payload', () => {
    const d = new FrameDecoder();
    d.feed(new Uint8Array([0, 0, 0]));
    assert.equal(d.idle, false);
    const e1 = d.end();
    assert.equal(e1?.kind, 'truncated');
    assert.equal(e1?.streamId, undefined);
    assert.equal(d.idle, true);

    d.feed(encodeFrame(11, FrameType.Request, new Uint8Array(20)).subarray(0, HEADER_LENGTH + 5));
    const e2 = d.end();
    assert.equal(e2?.streamId, 11);
    assert.match(e2.message, /5 of 20/);

    d.feed(rawHeader(MAX_PAYLOAD + 1, 13, 1));
    assert.equal(d.end()?.streamId, 13);
  });
});
