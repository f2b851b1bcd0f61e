/**
 * A bench's numeric setting from the environment: `fallback` when unset or empty, else a finite
 * number within the options (at least `min`; whole with `integer`) — anything else stops the bench
 * with a clear error (a typo must not quietly run another bench, e.g. `BENCH_BASE=1e6x` seeding no
 * members).
 * @example const rate = envNumber('BENCH_RATE', 200, { min: 1 })
 */
export function envNumber(
  name: string,
  fallback: number,
  o: { min?: number; integer?: boolean } = {},
): number {
  const raw = process.env[name]
  if (raw === undefined || raw.trim() === '') return fallback
  const value = Number(raw)
  const min = o.min ?? Number.NEGATIVE_INFINITY
  if (!Number.isFinite(value) || value < min || (o.integer && !Number.isInteger(value)))
    throw new Error(
      `${name}=${raw}: must be ${o.integer ? 'a whole number' : 'a number'}${Number.isFinite(min) ? `, at least ${min}` : ''}`,
    )
  return value
}
