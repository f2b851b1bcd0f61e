/**
 * Every five minutes: releases the points of purchases whose refund window (POINTS_FREEZE_DAYS)
 * has passed — frozen (待到账) → available, counted as earned. Runs with or without a shop
 * configured (points frozen before a shop was removed are still released).
 */
import { releaseFrozenPoints } from '../src/shop/purchase-grants.js'
import type { Job } from './types.js'

export const releasePointsJob: Job = {
  name: 'release-points',
  cron: '*/5 * * * *',
  async run({ db, clock }) {
    return { ...(await releaseFrozenPoints(db, { now: clock.now() })) }
  },
}
