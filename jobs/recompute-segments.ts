/** Nightly: every member's lifecycle segment, in one set-based UPDATE (src/community/segments.ts). */
import { recomputeSegments } from '../src/community/segments.js'
import type { Job } from './types.js'

export const recomputeSegmentsJob: Job = {
  name: 'recompute-segments',
  cron: '30 3 * * *',
  async run({ db, clock, config }) {
    const started = Date.now()
    const changed = await recomputeSegments(db, { now: clock.now(), thresholds: config.segments })
    return { changed, ms: Date.now() - started }
  },
}
