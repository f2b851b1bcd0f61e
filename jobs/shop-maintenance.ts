/**
 * Every minute: expire unpaid orders, fail unfilled group buys (refunding them), resend refunds,
 * send and check cashback transfers.
 */
import { translator } from '../src/bot/i18n.js'
import { runShopMaintenance } from '../src/shop/maintenance.js'
import type { Job } from './types.js'

export const shopMaintenanceJob: Job = {
  name: 'shop-maintenance',
  cron: '* * * * *',
  async run({ db, clock, logger, config, shop }) {
    if (!shop) return { skipped: 'no shop configured (PAY_* / MP_*)' }
    return runShopMaintenance(db, shop, {
      now: clock.now(),
      timeZone: config.timeZone,
      logger,
      t: translator(config.locale),
    })
  },
}
