/** Every minute: start or continue due campaign runs, and mark conversions. */
import { translator } from '../src/bot/i18n.js'
import { markConversions } from '../src/community/campaign-report.js'
import { dispatchCampaigns } from '../src/community/campaigns.js'
import type { Job } from './types.js'

export const campaignsJob: Job = {
  name: 'campaigns',
  cron: '* * * * *',
  catchUp: 'every',
  async run({ db, clock, config, slot }) {
    const now = clock.now()
    const dispatched = await dispatchCampaigns(db, {
      // The scheduled minute being run: a caught-up slot lies in the past.
      slot,
      now,
      settings: config.campaigns,
      t: translator(config.locale),
    })
    return { ...dispatched, converted: await markConversions(db, now) }
  },
}
