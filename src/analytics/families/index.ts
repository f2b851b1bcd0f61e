/**
 * The metric families the daily rollup runs, by name, and the catalogue they make: every metric
 * a family writes, with its unit, how its days combine and what it counts. A metric belongs to
 * exactly one family (the one a live read of it runs).
 */
import { activities } from './activities.js'
import { activity, reach } from './activity.js'
import { campaigns } from './campaigns.js'
import { checkins } from './checkins.js'
import { commerce } from './commerce.js'
import type { Family, MetricSpec, Stock } from './day-scope.js'
import { followers } from './followers.js'
import { invites } from './invites.js'
import { pointsFamily } from './points.js'
import { levels, segmentSizes, segments } from './segments.js'

/** Every family by name (snapshot families included). */
export const FAMILIES: Record<string, Family> = {
  followers,
  activity,
  reach,
  checkins,
  points: pointsFamily,
  invites,
  commerce,
  segments,
  activities,
  campaigns,
  levels,
  segmentSizes,
}

/** Every metric the rollup writes, with its family. */
export const CATALOGUE: Record<string, MetricSpec & { family: string }> = {}
for (const [family, f] of Object.entries(FAMILIES))
  for (const [metric, spec] of Object.entries(f.metrics)) {
    if (metric in CATALOGUE) throw new Error(`metric ${metric} is written by two families`)
    CATALOGUE[metric] = { ...spec, family }
  }

/** Every family's stocks by metric (day-scope.ts `stock`). */
export const STOCKS: Record<string, Stock> = Object.assign(
  {},
  ...Object.values(FAMILIES).map((f) => f.stocks ?? {}),
)
