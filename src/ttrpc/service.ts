// Binds a protobuf-es service descriptor plus a plain object implementation to
// raw byte handlers, so the server core stays schema-agnostic. Interceptors run
// here, between decoding and encoding, so they see typed messages.

import {
  create,
  fromBinary,
  toBinary,
  type DescMethod,
  type DescService,
  type Message,
  type MessageShape,
} from '@bufbuild/protobuf';
import { Code, errorMessage, TtrpcError } from './status.js';
import type { CallContext, Handler, Interceptor, UnaryNext } from './types.js';

type AnyImplFn = (req: Message, ctx: CallContext) => unknown;

/**
 * One handler per RPC in desc, keyed by the proto method name (the wire name,
 * e.g. "Create", not the localName "create"). The impl method is looked up at
 * call time and invoked with impl as `this`, so class instances work.
 * `interceptors()` is read at each call (outermost first), so ones added later apply too.
 */
export function bindService(
  desc: DescService,
  impl: object,
  interceptors: () => readonly Interceptor[] = () => [],
): Map<string, Handler> {
  const handlers = new Map<string, Handler>();
  for (const method of desc.methods) {
    handlers.set(method.name, bindMethod(method, impl, interceptors));
  }
  return handlers;
}

function bindMethod(method: DescMethod, impl: object, interceptors: () => readonly Interceptor[]): Handler {
  if (method.methodKind !== 'unary') {
    return () =>
      Promise.reject(new TtrpcError(Code.Unimplemented, `${method.name}: streaming methods are not supported`));
  }
  const invoke: UnaryNext = async ({ message, ctx }) => {
    const fn: unknown = Reflect.get(impl, method.localName);
    if (typeof fn !== 'function') {
      throw new TtrpcError(Code.Unimplemented, `method ${method.name} not implemented`);
    }
    const out: unknown = await (fn as AnyImplFn).call(impl, message, ctx);
    try {
      // create() returns an existing message of this type unchanged and fills
      // an init object ({} for Empty), so impls may return either.
      return create(method.output, (out ?? {}) as never);
    } catch (err) {
      throw new TtrpcError(Code.Internal, `cannot encode ${method.output.typeName}: ${errorMessage(err)}`);
    }
  };
  return async (payload, ctx) => {
    let message: Message;
    try {
      message = fromBinary(method.input, payload);
    } catch (err) {
      throw new TtrpcError(Code.InvalidArgument, `cannot decode ${method.input.typeName}: ${errorMessage(err)}`);
    }
    const chain = interceptors().reduceRight<UnaryNext>((next, interceptor) => interceptor(next), invoke);
    // invoke made the response a message of method.output; interceptors pass it on.
    const out = await chain({ method, message, ctx });
    try {
      return toBinary(method.output, out as MessageShape<typeof method.output>);
    } catch (err) {
      throw new TtrpcError(Code.Internal, `cannot encode ${method.output.typeName}: ${errorMessage(err)}`);
    }
  };
}
