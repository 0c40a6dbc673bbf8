// Publishes task events to containerd's ttrpc Events service. Events go out in
// order through one queue; a failed send is retried with backoff and, after a
// bound, dropped with a log line. Publishing never fails the caller's RPC.
import { create, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { anyPack, timestampFromMs } from '@bufbuild/protobuf/wkt';
import { EnvelopeSchema, ForwardRequestSchema } from '../gen/containerd/services/events/ttrpc/v1/events_pb.js';
import { TtrpcClient } from '../ttrpc/client.js';
import type { Logger } from './log.js';

const SERVICE = 'containerd.services.events.ttrpc.v1.Events';
const MAX_QUEUE = 4096;

export interface EventSink {
  /** `namespace` defaults to the publisher's own (a shared daemon names each container's). */
  publish<D extends DescMessage>(topic: string, schema: D, event: MessageShape<D>, namespace?: string): void;
  /** Resolves when the queue is empty or `timeoutMs` passed. */
  drain(timeoutMs: number): Promise<void>;
}

interface Pending {
  topic: string;
  payload: Uint8Array;
  firstTry: number;
}

export interface PublisherOptions {
  address: string;
  namespace: string;
  log: Logger;
  /** How long one event is retried before it is dropped. */
  giveUpAfterMs?: number;
}

/** One Forward call to containerd; a slower one is retried. */
const CALL_TIMEOUT_MS = 5_000;

export class EventPublisher implements EventSink {
  private readonly queue: Pending[] = [];
  private client: TtrpcClient | undefined;
  private running = false;
  private readonly idle: (() => void)[] = [];
  private readonly giveUpAfterMs: number;

  constructor(private readonly options: PublisherOptions) {
    this.giveUpAfterMs = options.giveUpAfterMs ?? 60_000;
  }

  publish<D extends DescMessage>(
    topic: string,
    schema: D,
    event: MessageShape<D>,
    namespace = this.options.namespace,
  ): void {
    if (!this.options.address) return; // started without containerd (tests): nobody to tell
    const now = Date.now();
    const envelope = create(EnvelopeSchema, {
      timestamp: timestampFromMs(now),
      namespace,
      topic,
      event: anyPack(schema, event),
    });
    // containerd 1.6 resolves only bare type names, not type.googleapis.com/…
    envelope.event!.typeUrl = schema.typeName;
    const payload = toBinary(ForwardRequestSchema, create(ForwardRequestSchema, { envelope }));
    if (this.queue.length >= MAX_QUEUE) {
      const dropped = this.queue.shift()!;
      this.options.log.warn(`event queue full: dropped ${dropped.topic}`);
    }
    this.queue.push({ topic, payload, firstTry: now });
    void this.pump();
  }

  drain(timeoutMs: number): Promise<void> {
    if (this.queue.length === 0 && !this.running) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.idle.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  close(): void {
    this.client?.close();
    this.client = undefined;
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    let backoff = 50;
    while (this.queue.length > 0) {
      const head = this.queue[0];
      try {
        const client = await this.connect();
        await client.call(SERVICE, 'Forward', head.payload, { timeoutMs: CALL_TIMEOUT_MS });
        this.queue.shift();
        backoff = 50;
      } catch (err) {
        this.client?.close();
        this.client = undefined;
        if (Date.now() - head.firstTry > this.giveUpAfterMs) {
          this.queue.shift();
          this.options.log.error(
            `dropped event ${head.topic} after ${this.giveUpAfterMs} ms of failures: ${(err as Error).message}`,
          );
          continue;
        }
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 2_000);
      }
    }
    this.running = false;
    for (const wake of this.idle.splice(0)) wake();
  }

  private async connect(): Promise<TtrpcClient> {
    if (!this.client) this.client = await TtrpcClient.connect(this.options.address);
    return this.client;
  }
}

/** A view of `sink` that publishes in the namespace `namespace()` names at the time of each event. */
export function inNamespace(sink: EventSink, namespace: () => string): EventSink {
  return {
    publish: (topic, schema, event) => sink.publish(topic, schema, event, namespace()),
    drain: (timeoutMs) => sink.drain(timeoutMs),
  };
}
