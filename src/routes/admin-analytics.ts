/**
 * Analytics in the operator API (inside /admin/api, behind its bearer token). Every call takes
 * `?appid=` (default: the first configured account); days are community days `YYYY-MM-DD`;
 * money is integer fen, rates are fractions. `format=csv` answers any series as CSV.
 *
 *   GET  analytics/metrics     the metric catalogue: unit and how days combine (sum, avg, last)
 *   GET  analytics/overview    today (live, partial) vs. yesterday vs. the same day last week
 *   GET  analytics/series      ?metric=&dim=&from=&to=&granularity=day|week|month — zero-filled
 *   GET  analytics/campaigns   ?from=&to= campaigns that ran: funnel per variant, A/B tests,
 *                              quota used, minimum-sample warnings
 *   POST analytics/rebuild     {from, to} rebuilds past days' rollups (at most 92 days at once)
 */
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { Kysely } from 'kysely'
import * as v from 'valibot'
import { campaignAnalytics } from '../analytics/campaigns.js'
import { buildDay } from '../analytics/rollup.js'
import { daysBetween, liveToday, METRICS, readOverview, readSeries } from '../analytics/series.js'
import type { Clock } from '../clock.js'
import { audit } from '../community/audit-log.js'
import { addDays, localDay, localDayStart } from '../community/community-time.js'
import type { Database } from '../db/schema.js'
import { parseBody, parseQuery } from './validate.js'

const DAY = v.pipe(
  v.string(),
  v.isoDate('must be a day, YYYY-MM-DD'),
  v.check((d) => d >= '2000-01-01' && d <= '2100-12-31', 'must be a day between 2000 and 2100'),
)
const MAX_SERIES_DAYS = 731
const MAX_REBUILD_DAYS = 92

const appidQuery = { appid: v.optional(v.string()) }
const seriesQuery = v.strictObject({
  ...appidQuery,
  metric: v.picklist(Object.keys(METRICS), 'must be a metric of GET analytics/metrics'),
  dim: v.optional(v.pipe(v.string(), v.maxLength(80)), ''),
  from: v.optional(DAY),
  to: v.optional(DAY),
  granularity: v.optional(v.picklist(['day', 'week', 'month'] as const), 'day'),
  format: v.optional(v.picklist(['json', 'csv'] as const), 'json'),
})
const rebuildBody = v.strictObject({ appid: v.optional(v.string()), from: DAY, to: DAY })

export function analyticsAdminRoutes(o: {
  db: Kysely<Database>
  clock: Clock
  timeZone: string
  appids: string[]
}): Hono {
  const app = new Hono()
  const live = liveToday(o.db)
  const account = (appid: string | undefined) => {
    const chosen = appid ?? o.appids[0]
    if (!chosen || !o.appids.includes(chosen))
      throw new HTTPException(404, { message: 'unknown account' })
    return chosen
  }

  app.get('/metrics', (c) => c.json({ metrics: METRICS }))

  app.get('/overview', async (c) => {
    const q = parseQuery(c, v.strictObject(appidQuery))
    return c.json(
      await readOverview(o.db, {
        appid: account(q.appid),
        now: o.clock.now(),
        timeZone: o.timeZone,
        live,
      }),
    )
  })

  app.get('/series', async (c) => {
    const q = parseQuery(c, seriesQuery)
    const now = o.clock.now()
    const today = localDay(now, o.timeZone)
    const to = q.to ?? today
    const from = q.from ?? addDays(to, -29)
    if (from > to) throw new HTTPException(400, { message: 'from must not be after to' })
    if (daysBetween(from, to).length > MAX_SERIES_DAYS)
      throw new HTTPException(400, { message: `at most ${MAX_SERIES_DAYS} days at once` })
    const series = await readSeries(o.db, {
      appid: account(q.appid),
      metric: q.metric,
      dim: q.dim,
      from,
      to,
      granularity: q.granularity,
      now,
      timeZone: o.timeZone,
      live,
    })
    if (q.format === 'csv') {
      const lines = [
        'start,value,partial',
        ...series.points.map((p) => `${p.start},${p.value},${p.partial}`),
      ]
      c.header('content-type', 'text/csv; charset=utf-8')
      c.header(
        'content-disposition',
        `attachment; filename="${series.metric}${series.dim ? `-${series.dim}` : ''}-${from}-${to}.csv"`,
      )
      return c.body(`${lines.join('\n')}\n`)
    }
    return c.json(series)
  })

  app.get('/campaigns', async (c) => {
    const q = parseQuery(
      c,
      v.strictObject({ ...appidQuery, from: v.optional(DAY), to: v.optional(DAY) }),
    )
    const today = localDay(o.clock.now(), o.timeZone)
    const to = q.to ?? today
    const from = q.from ?? addDays(to, -29)
    if (from > to) throw new HTTPException(400, { message: 'from must not be after to' })
    return c.json({
      from,
      to,
      campaigns: await campaignAnalytics(o.db, {
        appid: account(q.appid),
        from: localDayStart(from, o.timeZone),
        to: localDayStart(addDays(to, 1), o.timeZone),
      }),
    })
  })

  app.post('/rebuild', async (c) => {
    const b = await parseBody(c, rebuildBody)
    const appid = account(b.appid)
    const now = o.clock.now()
    const today = localDay(now, o.timeZone)
    if (b.from > b.to) throw new HTTPException(400, { message: 'from must not be after to' })
    if (b.to >= today)
      throw new HTTPException(400, { message: 'only past days are built (today is read live)' })
    const days = daysBetween(b.from, b.to)
    if (days.length > MAX_REBUILD_DAYS)
      throw new HTTPException(400, { message: `at most ${MAX_REBUILD_DAYS} days at once` })
    for (const day of days) await buildDay(o.db, { appid, day, timeZone: o.timeZone, now, today })
    await audit(o.db, {
      appid,
      actor: 'operator',
      action: 'analytics.rebuild',
      target: `${b.from}..${b.to}`,
      details: { days: days.length },
      now,
      clientAddress: c.var.clientAddress,
    })
    return c.json({ rebuilt: days.length })
  })

  return app
}
