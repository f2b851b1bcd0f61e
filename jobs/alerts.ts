/**
 * Every minute: each account's alert rules (src/analytics/alerts.ts) — episodes opened, repeated at
 * most every `repeatMinutes`, closed on recovery, delivered to moderators through the outbox and the
 * group robots. Deployment-wide rules (jobs) are evaluated on the first account. Also prunes what
 * the rules keep, hourly: samples after 8 days, traffic counts after 2 days, closed alerts after
 * 180 days.
 */
import { evaluateAlerts } from '../src/analytics/alerts.js'
import { pruneTraffic } from '../src/analytics/traffic-counter.js'
import type { Job } from './types.js'

const DAY = 86_400_000

export const alertsJob: Job = {
  name: 'alerts',
  cron: '* * * * *',
  async run({ db, clock, config, slot, logger }) {
    // Live figures: measured now (a run caught up late still judges the present).
    const now = clock.now()
    // The registry imports this file: read it when running, not when loading.
    const { jobs } = await import('./index.js')
    const summary: Record<string, unknown> = {}
    for (const [i, { appid, secret }] of config.accounts.entries()) {
      const outcomes = await evaluateAlerts({
        db,
        appid,
        now,
        timeZone: config.timeZone,
        locale: config.locale,
        quietHours: config.campaigns.quietHours,
        robots: config.robots,
        jobs: i === 0 ? jobs : undefined,
        sends: Boolean(secret),
      })
      const counts: Record<string, number> = {}
      for (const o of outcomes) counts[o.event] = (counts[o.event] ?? 0) + 1
      const failed = outcomes.filter((o) => o.event === 'failed')
      for (const f of failed)
        logger.warn('alert rule not evaluated', { code: 'ALERT_CHECK_FAILED', appid, ...f })
      summary[appid] = failed.length > 0 ? { ...counts, failures: failed } : counts
    }
    // Pruning, once an hour: the tables are small (a row per account and minute at most).
    if (slot.getUTCMinutes() === 0) {
      await db
        .deleteFrom('alert_samples')
        .where('at', '<', new Date(now.getTime() - 8 * DAY))
        .execute()
      await pruneTraffic(db, new Date(now.getTime() - 2 * DAY))
      await db
        .deleteFrom('alerts')
        .where('status', '=', 'closed')
        .where('closed_at', '<', new Date(now.getTime() - 180 * DAY))
        .execute()
    }
    return summary
  },
}
