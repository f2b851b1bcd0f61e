/**
 * Every 30 minutes: reconciles the bill days that are due — yesterday in Beijing once it is 10:00
 * there, and earlier days of the last week not reconciled yet (a bill still being made, a failed
 * download, downtime) — against WeChat Pay's trade and fund-flow bills (src/shop/reconcile.ts).
 * A run with nothing due reads two rows and stops. Decided from Beijing time, not the community's
 * time zone: WeChat Pay's day cut is midnight in Beijing.
 */
import { billDatesDue, type ReconcileOutcome, reconcileDay } from '../src/shop/reconcile.js'
import type { Job } from './types.js'

export const reconcileBillsJob: Job = {
  name: 'reconcile-bills',
  cron: '*/30 * * * *',
  async run({ db, clock, logger, shop, slot }) {
    if (!shop) return { skipped: 'no shop configured (PAY_* / MP_*)' }
    const due = await billDatesDue(db, shop.gateway.mchid, slot)
    const outcomes: (ReconcileOutcome & { date: string })[] = []
    for (const { date, kinds } of due) {
      const done = await reconcileDay(db, shop.gateway, shop.settings, {
        date,
        kinds,
        now: clock.now(),
        logger,
      })
      outcomes.push(...done.map((d) => ({ ...d, date })))
    }
    const count = (status: ReconcileOutcome['status']) =>
      outcomes.filter((x) => x.status === status).length
    return {
      days: due.map((d) => d.date),
      reconciled: count('reconciled'),
      pending: count('pending'),
      failed: count('failed'),
      newMismatches: outcomes.reduce(
        (n, x) => n + (x.status === 'reconciled' ? x.newMismatches : 0),
        0,
      ),
    }
  },
}
