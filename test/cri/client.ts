// A small CRI client (runtime.v1 over gRPC on a unix socket), as a kubelet
// speaks to containerd: one typed function per unary RPC of RuntimeService and
// ImageService, generated from the service descriptors in src/gen/cri/.
//
//   const cri = connectCri('/tmp/…/containerd.sock');
//   const { podSandboxId } = await cri.runtime.runPodSandbox({ config, runtimeHandler: 'wasmts' });
//   cri.close();
//
// Every call has a deadline (30 s unless given); a failed RPC rejects with an
// Error naming the RPC, the gRPC status and containerd's message.
import * as grpc from '@grpc/grpc-js';
import {
  create,
  fromBinary,
  toBinary,
  type DescMessage,
  type DescMethod,
  type DescService,
  type MessageInitShape,
  type MessageShape,
} from '@bufbuild/protobuf';
import { ImageService, RuntimeService } from '../../src/gen/cri/runtime/v1/api_pb.js';

const DEFAULT_DEADLINE_MS = 30_000;

type Unary<M> = M extends {
  methodKind: 'unary';
  input: infer I extends DescMessage;
  output: infer O extends DescMessage;
}
  ? (request: MessageInitShape<I>, opts?: { timeoutMs?: number }) => Promise<MessageShape<O>>
  : never;

export type ServiceClient<S extends { method: Record<string, unknown> }> = {
  [K in keyof S['method']]: Unary<S['method'][K]>;
};

export class CriError extends Error {
  override name = 'CriError';
  constructor(
    readonly rpc: string,
    readonly code: grpc.status,
    readonly details: string,
  ) {
    super(`${rpc}: ${grpc.status[code] ?? code}: ${details}`);
  }
}

export interface CriClient {
  readonly runtime: ServiceClient<typeof RuntimeService>;
  readonly image: ServiceClient<typeof ImageService>;
  close(): void;
}

function unary(client: grpc.Client, service: DescService, method: DescMethod) {
  const rpcPath = `/${service.typeName}/${method.name}`;
  return (request: MessageInitShape<DescMessage>, opts: { timeoutMs?: number } = {}) =>
    new Promise<unknown>((resolve, reject) => {
      const message = create(method.input, request);
      client.makeUnaryRequest(
        rpcPath,
        (m: typeof message) => Buffer.from(toBinary(method.input, m)),
        (bytes: Buffer) => fromBinary(method.output, bytes),
        message,
        new grpc.Metadata(),
        { deadline: Date.now() + (opts.timeoutMs ?? DEFAULT_DEADLINE_MS) },
        (err, reply) => {
          if (err) reject(new CriError(`${service.name}.${method.name}`, err.code, err.details));
          else resolve(reply);
        },
      );
    });
}

function serviceClient<S extends DescService & { method: Record<string, unknown> }>(
  client: grpc.Client,
  service: S,
): ServiceClient<S> {
  const out: Record<string, unknown> = {};
  for (const method of service.methods) {
    if (method.methodKind !== 'unary') continue; // the subset in proto/cri has only unary RPCs
    out[method.localName] = unary(client, service, method);
  }
  return out as ServiceClient<S>;
}

/** A client for the CRI plugin of the containerd listening on `socketPath` (its gRPC address). */
export function connectCri(socketPath: string): CriClient {
  const client = new grpc.Client(`unix://${socketPath}`, grpc.credentials.createInsecure());
  return {
    runtime: serviceClient(client, RuntimeService),
    image: serviceClient(client, ImageService),
    close: () => client.close(),
  };
}
