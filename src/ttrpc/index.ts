// Public API of the ttrpc library. It knows nothing about containerd tasks:
// callers bring their own service descriptors (src/gen) and implementations.

export { Code, TtrpcError, codeName, toStatus, fromStatus } from './status.js';
export {
  FrameDecoder,
  FrameType,
  HEADER_LENGTH,
  MAX_PAYLOAD,
  decodeHeader,
  encodeFrame,
  type DecodeError,
  type DecodeEvent,
  type FrameHeader,
} from './frame.js';
export { ContextValues, createContextKey, type ContextKey } from './context-values.js';
export { TtrpcServer, type ListenTarget, type ServerOptions } from './server.js';
export { TtrpcClient, createClient, socketPath, type ClientOptions } from './client.js';
export {
  ServerError,
  type CallContext,
  type CallOptions,
  type Handler,
  type Interceptor,
  type UnaryNext,
  type UnaryRequest,
  type ServerErrorKind,
  type ServerErrorLogger,
  type ServiceClient,
  type ServiceImpl,
} from './types.js';
