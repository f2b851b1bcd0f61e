/**
 * Nightly: every account's item popularity and item-item similarities (src/community/recommendations.ts),
 * rebuilt in one transaction of set-based statements; what 兑换 and campaign `{{rec}}` read.
 */
import { recomputeRecommendations } from '../src/community/recommendations.js'
import type { Job } from './types.js'

export const recomputeRecommendationsJob: Job = {
  name: 'recompute-recommendations',
  cron: '50 3 * * *',
  async run({ db, clock }) {
    const started = Date.now()
    const r = await recomputeRecommendations(db, { now: clock.now() })
    return { ...r, ms: Date.now() - started }
  },
}
