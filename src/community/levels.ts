/**
 * Levels, on *lifetime earned* points (what a member has ever earned, never reduced by spending), so
 * redeeming a reward never demotes anyone. Names and perks are copy in the messages files.
 */

/** One level: from `min` lifetime points, earning rules multiplied by `multiplier`. */
export interface Level {
  key: 'bronze' | 'silver' | 'gold' | 'diamond'
  min: number
  multiplier: number
}

/** Lowest first. */
export const LEVELS: readonly Level[] = [
  { key: 'bronze', min: 0, multiplier: 1 },
  { key: 'silver', min: 1_000, multiplier: 2 },
  { key: 'gold', min: 5_000, multiplier: 3 },
  { key: 'diamond', min: 20_000, multiplier: 5 },
]

/** The level for a lifetime total. */
export function levelFor(lifetime: number): Level {
  let found = LEVELS[0]!
  for (const level of LEVELS) if (lifetime >= level.min) found = level
  return found
}

/** The next level and how many points are missing, or null at the top. */
export function nextLevel(lifetime: number): { level: Level; missing: number } | null {
  const next = LEVELS.find((l) => l.min > lifetime)
  return next ? { level: next, missing: next.min - lifetime } : null
}

/** Looks a level up by key (rows store the key). */
export function levelByKey(key: string): Level {
  return LEVELS.find((l) => l.key === key) ?? LEVELS[0]!
}
