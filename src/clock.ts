/** Injected time, so tests control day boundaries, streaks and deadlines. */
export interface Clock {
  now(): Date
}

/** The real clock. */
export const systemClock: Clock = { now: () => new Date() }

/** Resolves after `ms` milliseconds (setTimeout exists on Node and Workers). */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
