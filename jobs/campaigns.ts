/**
 * Every minute: start or continue due campaign runs, and mark conversions. A run walks its
 * audience in batches with its cursor in `campaign_runs` (src/community/campaigns.ts); once the
 * invocation's budget is spent it is given back there (`released`) and the next minute's run
 * continues it, so this job never pauses its own slot.
 */
import { translator } from '../src/bot/i18n.js'
import { markConversions } from '../src/community/campaign-report.js'
import { dispatchCampaigns } from '../src/community/campaigns.js'
import type { Job } from './types.js'

export const campaignsJob: Job = {
  name: 'campaigns',
  cron: '* * * * *',
  catchUp: 'every',
  async run({ db, clock, config, slot, budget, logger }) {
    const now = clock.now()
    const dispatched = await dispatchCampaigns(db, {
      // The scheduled minute being run: a caught-up slot lies in the past.
      slot,
      now,
      settings: config.campaigns,
      t: translator(config.locale),
      budget,
      logger,
    })
    return { ...dispatched, converted: await markConversions(db, now) }
  },
}
