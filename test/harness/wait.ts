// Waiting: for a time, or until something holds.

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Polls fn every everyMs until it returns something truthy, and resolves with
 * it; rejects naming `what` after timeoutMs.
 */
export async function until<T>(
  what: string,
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 15_000,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** A stream's bytes so far, as text (the stdout of a long-running ctr, e.g. `ctr events`). */
export function collect(stream: NodeJS.ReadableStream | null | undefined): { text(): string } {
  const chunks: Buffer[] = [];
  stream?.on('data', (b: Buffer) => chunks.push(b));
  return { text: () => Buffer.concat(chunks).toString('utf8') };
}

/**
 * Polls fn until done(value) holds or timeoutMs passed, and resolves with the
 * last value: for checks that then report whatever is left.
 */
export async function settled<T>(
  fn: () => T | Promise<T>,
  done: (v: T) => boolean,
  timeoutMs: number,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let v = await fn();
  while (!done(v) && Date.now() < deadline) {
    await sleep(everyMs);
    v = await fn();
  }
  return v;
}
