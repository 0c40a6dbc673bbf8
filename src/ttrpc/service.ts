// Binds a protobuf-es service descriptor plus a plain object implementation to
// raw byte handlers, so the server core stays schema-agnostic.

import { create, fromBinary, toBinary, type DescMethod, type DescService } from '@bufbuild/protobuf';
import { Code, errorMessage, TtrpcError } from './status.js';
import type { CallContext, Handler } from './types.js';

type AnyImplFn = (req: unknown, ctx: CallContext) => unknown;

/**
 * One handler per RPC in desc, keyed by the proto method name (the wire name,
 * e.g. "Create", not the localName "create"). The impl method is looked up at
 * call time and invoked with impl as `this`, so class instances work.
 */
export function bindService(desc: DescService, impl: object): Map<string, Handler> {
  const handlers = new Map<string, Handler>();
  for (const method of desc.methods) {
    handlers.set(method.name, bindMethod(method, impl));
  }
  return handlers;
}

function bindMethod(method: DescMethod, impl: object): Handler {
  if (method.methodKind !== 'unary') {
    return () =>
      Promise.reject(new TtrpcError(Code.Unimplemented, `${method.name}: streaming methods are not supported`));
  }
  return async (payload, ctx) => {
    const fn = (impl as Record<string, unknown>)[method.localName];
    if (typeof fn !== 'function') {
      throw new TtrpcError(Code.Unimplemented, `method ${method.name} not implemented`);
    }
    let req: unknown;
    try {
      req = fromBinary(method.input, payload);
    } catch (err) {
      throw new TtrpcError(Code.InvalidArgument, `cannot decode ${method.input.typeName}: ${errorMessage(err)}`);
    }
    const out = await (fn as AnyImplFn).call(impl, req, ctx);
    try {
      // create() returns an existing message of this type unchanged and fills
      // an init object ({} for Empty), so impls may return either.
      return toBinary(method.output, create(method.output, (out ?? {}) as never));
    } catch (err) {
      throw new TtrpcError(Code.Internal, `cannot encode ${method.output.typeName}: ${errorMessage(err)}`);
    }
  };
}
