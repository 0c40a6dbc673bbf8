// Telemetry configuration from the standard OTEL_* environment variables.
//
// Pure and cheap: no OpenTelemetry import. The daemon and the Wasm child read it
// on their hot path; the heavy SDK is only loaded (in a worker thread) when the
// result says `enabled: true`.

import { readPropagators, type Propagators } from './propagation.js';

export type OtlpProtocol = 'http/protobuf' | 'grpc' | 'http/json';

export type SamplerName =
  | 'always_on'
  | 'always_off'
  | 'traceidratio'
  | 'parentbased_always_on'
  | 'parentbased_always_off'
  | 'parentbased_traceidratio';

export interface SamplerConfig {
  name: SamplerName;
  /** Probability in [0, 1]; only used by the *traceidratio samplers. */
  ratio: number;
}

export type ResourceAttributes = Record<string, string>;

export interface EnabledTelemetryConfig {
  enabled: true;
  protocol: OtlpProtocol;
  /** The traces endpoint by the spec's rules, for log lines (the exporter resolves the same from the environment). */
  endpoint: string;
  serviceName: string;
  /** From OTEL_RESOURCE_ATTRIBUTES (percent-decoded); service.name is reflected in serviceName. */
  resourceAttributes: ResourceAttributes;
  sampler: SamplerConfig;
  /** OTEL_PROPAGATORS: independent of whether spans are exported. */
  propagators: Propagators;
  /** Informational: the export timeout the exporter will apply (it reads the env itself). */
  exportTimeoutMs: number;
  warnings: string[];
}

export interface DisabledTelemetryConfig {
  enabled: false;
  reason: string;
  serviceName: string;
  sampler: SamplerConfig;
  propagators: Propagators;
  warnings: string[];
}

export type TelemetryConfig = EnabledTelemetryConfig | DisabledTelemetryConfig;

export const DEFAULT_SERVICE_NAME = 'containerd-shim-wasmts';
const DEFAULT_HTTP_ENDPOINT = 'http://localhost:4318/v1/traces';
const DEFAULT_GRPC_ENDPOINT = 'http://localhost:4317';
const DEFAULT_EXPORT_TIMEOUT_MS = 10_000;

type Env = Record<string, string | undefined>;

/** Spec: an empty value is treated as unset. Values are trimmed. */
function get(env: Env, name: string): string | undefined {
  const v = env[name];
  if (v === undefined) return undefined;
  const t = v.trim();
  return t === '' ? undefined : t;
}

const PROTOCOLS: readonly OtlpProtocol[] = ['http/protobuf', 'grpc', 'http/json'];

function readProtocol(env: Env, warnings: string[]): OtlpProtocol {
  for (const name of ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL']) {
    const raw = get(env, name);
    if (raw === undefined) continue;
    const v = raw.toLowerCase();
    if ((PROTOCOLS as readonly string[]).includes(v)) return v as OtlpProtocol;
    warnings.push(`${name}=${raw} is not supported; using http/protobuf`);
    return 'http/protobuf';
  }
  return 'http/protobuf';
}

/** Append the traces signal path to a generic OTLP/HTTP endpoint without doubling slashes. */
export function appendSignalPath(base: string): string {
  return base.replace(/\/+$/, '') + '/v1/traces';
}

function isValidUrl(s: string): boolean {
  try {
    new URL(s);
    return true;
  } catch {
    return false;
  }
}

const SAMPLERS: readonly SamplerName[] = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
];

function readSamplerConfig(env: Env, warnings: string[] = []): SamplerConfig {
  const raw = get(env, 'OTEL_TRACES_SAMPLER');
  let name: SamplerName = 'parentbased_always_on';
  if (raw !== undefined) {
    const v = raw.toLowerCase();
    if ((SAMPLERS as readonly string[]).includes(v)) name = v as SamplerName;
    else warnings.push(`OTEL_TRACES_SAMPLER=${raw} is not supported; using parentbased_always_on`);
  }
  let ratio = 1;
  if (name === 'traceidratio' || name === 'parentbased_traceidratio') {
    const arg = get(env, 'OTEL_TRACES_SAMPLER_ARG');
    if (arg !== undefined) {
      const n = Number(arg);
      if (Number.isFinite(n) && n >= 0 && n <= 1) ratio = n;
      else warnings.push(`OTEL_TRACES_SAMPLER_ARG=${arg} is not a probability in [0, 1]; using 1.0`);
    }
  }
  return { name, ratio };
}

/**
 * Parse OTEL_RESOURCE_ATTRIBUTES ("k1=v1,k2=v2", values percent-encoded). Per the
 * spec, a malformed value discards the whole variable (with a warning).
 */
export function parseResourceAttributes(raw: string | undefined, warnings: string[] = []): ResourceAttributes {
  const out: ResourceAttributes = {};
  if (raw === undefined || raw.trim() === '') return out;
  for (const part of raw.split(',')) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) {
      warnings.push(`OTEL_RESOURCE_ATTRIBUTES is malformed (entry "${part.trim()}"); ignoring it`);
      return {};
    }
    const key = part.slice(0, eq).trim();
    const rawValue = part.slice(eq + 1).trim();
    if (key === '') {
      warnings.push(`OTEL_RESOURCE_ATTRIBUTES is malformed (empty key); ignoring it`);
      return {};
    }
    try {
      out[decodeURIComponent(key)] = decodeURIComponent(rawValue);
    } catch {
      warnings.push(`OTEL_RESOURCE_ATTRIBUTES has an invalid percent-encoding in "${key}"; ignoring it`);
      return {};
    }
  }
  return out;
}

function readTimeout(env: Env, warnings: string[]): number {
  for (const name of ['OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', 'OTEL_EXPORTER_OTLP_TIMEOUT']) {
    const raw = get(env, name);
    if (raw === undefined) continue;
    const n = Number(raw);
    if (Number.isFinite(n) && n > 0) return n;
    warnings.push(`${name}=${raw} is not a positive number of milliseconds; ignoring it`);
  }
  return DEFAULT_EXPORT_TIMEOUT_MS;
}

export function readTelemetryConfig(env: Env = process.env): TelemetryConfig {
  const warnings: string[] = [];
  const resourceAttributes = parseResourceAttributes(get(env, 'OTEL_RESOURCE_ATTRIBUTES'), warnings);
  const serviceName = get(env, 'OTEL_SERVICE_NAME') ?? resourceAttributes['service.name'] ?? DEFAULT_SERVICE_NAME;
  delete resourceAttributes['service.name'];
  const sampler = readSamplerConfig(env, warnings);
  const propagators = readPropagators(env, warnings);
  const off = (reason: string): DisabledTelemetryConfig => ({
    enabled: false,
    reason,
    serviceName,
    sampler,
    propagators,
    warnings,
  });

  const sdkDisabled = get(env, 'OTEL_SDK_DISABLED');
  if (sdkDisabled !== undefined && sdkDisabled.toLowerCase() === 'true') {
    return off('OTEL_SDK_DISABLED=true');
  }

  const exportersRaw = get(env, 'OTEL_TRACES_EXPORTER');
  const exporters =
    exportersRaw
      ?.split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean) ?? [];
  if (exporters.includes('none')) return off(`OTEL_TRACES_EXPORTER=${exportersRaw}`);
  const unsupportedExporters = exporters.filter((e) => e !== 'otlp');
  if (unsupportedExporters.length > 0) {
    warnings.push(`OTEL_TRACES_EXPORTER: ${unsupportedExporters.join(', ')} not supported; only otlp is available`);
  }

  const tracesEndpoint = get(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  const genericEndpoint = get(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  if (tracesEndpoint === undefined && genericEndpoint === undefined && !exporters.includes('otlp')) {
    return off(
      'no OTLP endpoint configured (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_TRACES_EXPORTER=otlp)',
    );
  }

  const protocol = readProtocol(env, warnings);
  const isHttp = protocol !== 'grpc';
  let endpoint: string;
  let source: string;
  if (tracesEndpoint !== undefined) {
    endpoint = tracesEndpoint;
    source = 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT';
  } else if (genericEndpoint !== undefined) {
    endpoint = isHttp ? appendSignalPath(genericEndpoint) : genericEndpoint;
    source = 'OTEL_EXPORTER_OTLP_ENDPOINT';
  } else {
    endpoint = isHttp ? DEFAULT_HTTP_ENDPOINT : DEFAULT_GRPC_ENDPOINT;
    source = 'default';
  }
  if (isHttp && !isValidUrl(endpoint)) {
    const reason = `${source}=${tracesEndpoint ?? genericEndpoint} is not a valid URL`;
    warnings.push(`${reason}; spans are not exported (trace context is still propagated)`);
    return off(reason);
  }

  return {
    enabled: true,
    protocol,
    endpoint,
    serviceName,
    resourceAttributes,
    sampler,
    propagators,
    exportTimeoutMs: readTimeout(env, warnings),
    warnings,
  };
}
