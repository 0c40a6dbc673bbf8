// ttrpc framing: a 10-byte big-endian header (uint32 payload length, uint32
// stream id, uint8 type, uint8 flags) followed by the payload.
//
// The decoder is a byte-at-a-time-safe state machine: it never buffers more
// than one frame's payload (at most MAX_PAYLOAD), skips the payload of an
// oversized frame as it streams past, and never throws on input. At the
// framing level every byte sequence is valid; the only possible failure is a
// stream that ends in the middle of a frame, which end() reports.

export const HEADER_LENGTH = 10;

/** Largest payload either side may send or accept (ttrpc's messageLengthMax). */
export const MAX_PAYLOAD = 4 << 20;

export enum FrameType {
  Request = 1,
  Response = 2,
  /** Streaming data (ttrpc >= 1.2); unused by the unary task API. */
  Data = 3,
}

export interface FrameHeader {
  /** Payload length in bytes, as announced (may exceed MAX_PAYLOAD on input). */
  length: number;
  streamId: number;
  /** The type byte as received: may be a value outside FrameType. */
  type: FrameType;
  flags: number;
}

export type DecodeEvent =
  | { kind: 'frame'; header: FrameHeader; payload: Uint8Array }
  /**
   * Announced length > MAX_PAYLOAD. Emitted as soon as the header is read so the
   * caller can answer on that stream; the payload is then dropped as it arrives.
   */
  | { kind: 'oversized'; header: FrameHeader };

/** The stream ended inside a frame; the only protocol error framing can have. */
export interface DecodeError {
  kind: 'truncated';
  message: string;
  /** Stream id of the partial frame, when its header was complete. */
  streamId?: number;
}

const UINT32_MAX = 0xffffffff;

/**
 * One contiguous buffer (header + payload), so a frame is a single socket write
 * and cannot interleave with another response. Throws RangeError for values
 * the sender must never produce (oversized payload, out-of-range fields): that
 * is a bug in our code, not a peer's fault.
 */
/** `type` is a FrameType; a plain number is accepted so tests can forge unknown types. */
export function encodeFrame(streamId: number, type: FrameType | number, payload: Uint8Array, flags = 0): Uint8Array {
  if (payload.length > MAX_PAYLOAD) {
    throw new RangeError(`ttrpc: frame payload of ${payload.length} bytes exceeds ${MAX_PAYLOAD}`);
  }
  if (!Number.isInteger(streamId) || streamId < 0 || streamId > UINT32_MAX) {
    throw new RangeError(`ttrpc: invalid stream id ${streamId}`);
  }
  const out = new Uint8Array(HEADER_LENGTH + payload.length);
  const view = new DataView(out.buffer, out.byteOffset, HEADER_LENGTH);
  view.setUint32(0, payload.length);
  view.setUint32(4, streamId);
  view.setUint8(8, type & 0xff);
  view.setUint8(9, flags & 0xff);
  out.set(payload, HEADER_LENGTH);
  return out;
}

export function decodeHeader(b: Uint8Array): FrameHeader {
  return {
    // >>> 0 keeps the top bit as magnitude instead of a sign
    length: ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0,
    streamId: ((b[4] << 24) | (b[5] << 16) | (b[6] << 8) | b[7]) >>> 0,
    type: b[8],
    flags: b[9],
  };
}

export class FrameDecoder {
  private readonly headerBuf = new Uint8Array(HEADER_LENGTH);
  private headerFill = 0;
  /** Current frame once its header is complete; undefined while reading a header. */
  private header: FrameHeader | undefined;
  /** Payload being assembled (allocated at the announced, already-capped size). */
  private payload: Uint8Array | undefined;
  private payloadFill = 0;
  /** Bytes of an oversized payload still to drop. */
  private skipRemaining = 0;

  /** Feeds one chunk; returns the events it completed, in order. Never throws. */
  feed(chunk: Uint8Array): DecodeEvent[] {
    const events: DecodeEvent[] = [];
    let off = 0;
    const len = chunk.length;
    while (off < len) {
      if (this.header === undefined) {
        const n = Math.min(HEADER_LENGTH - this.headerFill, len - off);
        this.headerBuf.set(chunk.subarray(off, off + n), this.headerFill);
        this.headerFill += n;
        off += n;
        if (this.headerFill < HEADER_LENGTH) break;
        this.headerFill = 0;
        const header = decodeHeader(this.headerBuf);
        if (header.length > MAX_PAYLOAD) {
          events.push({ kind: 'oversized', header });
          this.header = header;
          this.skipRemaining = header.length;
        } else if (header.length === 0) {
          events.push({ kind: 'frame', header, payload: new Uint8Array(0) });
        } else if (len - off >= header.length) {
          // Whole payload already here: one copy, no staging buffer. Copy (not
          // subarray) so callers may keep it however the chunk is reused. Not
          // chunk.slice(): on a Buffer that is a view, not a copy.
          events.push({ kind: 'frame', header, payload: new Uint8Array(chunk.subarray(off, off + header.length)) });
          off += header.length;
        } else {
          this.header = header;
          this.payload = new Uint8Array(header.length);
          this.payloadFill = 0;
        }
      } else if (this.payload === undefined) {
        // skipping an oversized payload
        const n = Math.min(this.skipRemaining, len - off);
        this.skipRemaining -= n;
        off += n;
        if (this.skipRemaining === 0) this.header = undefined;
      } else {
        const n = Math.min(this.payload.length - this.payloadFill, len - off);
        this.payload.set(chunk.subarray(off, off + n), this.payloadFill);
        this.payloadFill += n;
        off += n;
        if (this.payloadFill === this.payload.length) {
          events.push({ kind: 'frame', header: this.header, payload: this.payload });
          this.header = undefined;
          this.payload = undefined;
          this.payloadFill = 0;
        }
      }
    }
    return events;
  }

  /** True when no partial frame is pending (a clean place for the stream to end). */
  get idle(): boolean {
    return this.header === undefined && this.headerFill === 0;
  }

  /**
   * Call at end of stream: undefined when it ended between frames, otherwise a
   * description of the truncated frame. Resets the decoder either way.
   */
  end(): DecodeError | undefined {
    let err: DecodeError | undefined;
    if (this.header !== undefined) {
      const got = this.payload !== undefined ? this.payloadFill : this.header.length - this.skipRemaining;
      err = {
        kind: 'truncated',
        message: `stream ended after ${got} of ${this.header.length} payload bytes of frame on stream ${this.header.streamId}`,
        streamId: this.header.streamId,
      };
    } else if (this.headerFill > 0) {
      err = { kind: 'truncated', message: `stream ended after ${this.headerFill} of ${HEADER_LENGTH} header bytes` };
    }
    this.headerFill = 0;
    this.header = undefined;
    this.payload = undefined;
    this.payloadFill = 0;
    this.skipRemaining = 0;
    return err;
  }
}
