// Deadline timers for both sides. timeout_nano is an int64, so a peer can ask
// for a deadline centuries away; Node's setTimeout silently turns anything
// above 2^31-1 ms into 1 ms, which would expire such calls at once. We re-arm
// in steps instead.

const MAX_TIMER_MS = 2 ** 31 - 1;

export interface DeadlineTimer {
  cancel(): void;
}

/** Calls fn once Date.now() >= deadline (ms epoch). Unref'd: a pending call must not keep the process alive by itself. */
export function armDeadline(deadline: number, fn: () => void): DeadlineTimer {
  let handle: NodeJS.Timeout | undefined;
  const arm = (): void => {
    const left = deadline - Date.now();
    if (left > MAX_TIMER_MS) {
      handle = setTimeout(arm, MAX_TIMER_MS);
    } else {
      // timers may fire a hair early; never less than 1 ms so we do not spin
      handle = setTimeout(() => (Date.now() >= deadline ? fn() : arm()), Math.max(1, Math.ceil(left)));
    }
    handle.unref();
  };
  arm();
  return {
    cancel: () => {
      if (handle !== undefined) clearTimeout(handle);
      handle = undefined;
    },
  };
}
