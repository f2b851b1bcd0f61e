/**
 * A bench's numeric setting from the environment: `fallback` when unset, else a finite number at
 * least `min` — anything else stops the bench with a clear error (a typo must not quietly run
 * another bench, e.g. `BENCH_BASE=1e6x` seeding no members).
 * @example const rate = envNumber('BENCH_RATE', 200, 1)
 */
export function envNumber(name: string, fallback: number, min = 0): number {
  const raw = process.env[name]
  if (raw === undefined || raw.trim() === '') return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || value < min)
    throw new Error(`${name}=${raw}: must be a number, at least ${min}`)
  return value
}
