/** Nightly: every member's lifecycle segment and its transitions, in one set-based statement (src/community/segments.ts). */
import { recomputeSegments } from '../src/community/segments.js'
import type { Job } from './types.js'

export const recomputeSegmentsJob: Job = {
  name: 'recompute-segments',
  cron: '30 3 * * *',
  async run({ db, clock, config }) {
    const started = Date.now()
    const changed = await recomputeSegments(db, {
      now: clock.now(),
      thresholds: config.segments,
      timeZone: config.timeZone,
    })
    return { changed, ms: Date.now() - started }
  },
}
