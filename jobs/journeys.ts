/** Every 5 minutes: lifecycle journeys — start, stop, convert and send their due steps (src/community/journeys.ts). */
import { translator } from '../src/bot/i18n.js'
import { runJourneys } from '../src/community/journeys.js'
import type { Job } from './types.js'

export const journeysJob: Job = {
  name: 'journeys',
  cron: '*/5 * * * *',
  async run({ db, clock, config, slot, budget }) {
    const started = Date.now()
    const r = await runJourneys(db, {
      slot,
      now: clock.now(),
      settings: config.campaigns,
      t: translator(config.locale),
      budget,
    })
    return { ...r, ms: Date.now() - started }
  },
}
