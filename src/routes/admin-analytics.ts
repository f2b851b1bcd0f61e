/**
 * Analytics in the operator API (inside /admin/api, behind its bearer token). Every call takes
 * `?appid=` (default: the first configured account); days are community days `YYYY-MM-DD`;
 * money is integer fen, rates are fractions. `format=csv` answers a series, the cohort and LTV
 * triangles and the campaigns' variant table as CSV (src/routes/analytics-csv.ts).
 *
 *   GET  analytics/metrics     the metric catalogue: unit and how days combine (sum, avg, last,
 *                              ratio: Σ numerator ÷ Σ denominator of the parts it names)
 *   GET  analytics/overview    today (live, partial) vs. yesterday vs. the same day last week
 *   GET  analytics/series      ?metric=&dim=&from=&to=&granularity=day|week|month — built days
 *                              from the rollups (a missing row is 0); today and the days after
 *                              the last built one (`asOf`) live, at most 8; null on other days
 *   GET  analytics/campaigns   ?from=&to= campaigns that ran: funnel per variant, A/B tests,
 *                              quota used, minimum-sample warnings — from the rollups: `asOf` is
 *                              the last built day, the days after it (lag, today) are read live
 *   GET  analytics/cohorts     ?grain=day|week&from=&to=&source=&segment=&maxAge= the retention
 *                              triangle, pooled curve and d1/d7/d30 against the plan's lines
 *   GET  analytics/ltv         ?grain=day|week&from=&to=&source=&maxAge= net revenue per cohort
 *                              member (fen) by age, pooled, and d0/d7/d30/d60/d90
 *   GET  analytics/fits        ?from=&to=&maxAge=&horizon= growth R(t)=R(0)e^{kt} with a forecast
 *                              and interval; retention e^{-mt} vs. b+(1-b)e^{-mt}, which fits better
 *   POST analytics/rebuild     {from, to} rebuilds past days' rollups (at most 92 days at once)
 *   GET  analytics/alerts      ?limit= open alerts and the most recent episodes (closed too)
 *   GET  analytics/advice      the optimisation rules that apply, with their figures and actions
 *   GET  analytics/alert-settings   every rule: defaults, the account's overrides, effective
 *   PUT  analytics/alert-settings   {rules: {<rule>: {threshold, enabled, windowMinutes,
 *                              minSamples, repeatMinutes} | null}, robotChats} — audited
 */
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { Kysely } from 'kysely'
import * as v from 'valibot'
import { updateAlertSettings } from '../admin/actions/alert-actions.js'
import { memberScope } from '../admin/reads/account-members.js'
import { apiActor } from '../admin/route-helpers.js'
import { advise } from '../analytics/advice.js'
import { alertRobotChats } from '../analytics/alert-delivery.js'
import {
  ALERT_RULE_KEYS,
  ALERT_RULES,
  alertSettingsPatch,
  readAlertSettings,
  readOverrides,
} from '../analytics/alert-rules.js'
import { listAlerts } from '../analytics/alerts.js'
import { analyticsFits } from '../analytics/analytics-fits.js'
import { campaignAnalytics } from '../analytics/campaigns.js'
import { ltvTriangle } from '../analytics/cohort-ltv.js'
import { buildCohortCells, cohortTriangle } from '../analytics/cohorts.js'
import { buildDay } from '../analytics/rollup.js'
import { daysBetween, liveToday, METRICS, readOverview, readSeries } from '../analytics/series.js'
import type { Locale } from '../bot/i18n.js'
import type { Clock } from '../clock.js'
import { audit } from '../community/audit-log.js'
import { addDays, localDay, localDayStart } from '../community/community-time.js'
import type { GroupRobots } from '../community/moderation.js'
import { SEGMENTS } from '../community/segments.js'
import type { Database } from '../db/schema.js'
import type { ShopSettings } from '../shop/catalog.js'
import { campaignsCsv, cohortsCsv, ltvCsv } from './analytics-csv.js'
import { csvResponse } from './csv.js'
import { pageLimit, parseBody, parseQuery, reportDay } from './validate.js'

const DAY = reportDay
const MAX_SERIES_DAYS = 731
const MAX_REBUILD_DAYS = 92

const appidQuery = { appid: v.optional(v.string()) }
const format = v.optional(v.picklist(['json', 'csv'] as const), 'json')
const seriesQuery = v.strictObject({
  ...appidQuery,
  metric: v.picklist(Object.keys(METRICS), 'must be a metric of GET analytics/metrics'),
  dim: v.optional(v.pipe(v.string(), v.maxLength(80)), ''),
  from: v.optional(DAY),
  to: v.optional(DAY),
  granularity: v.optional(v.picklist(['day', 'week', 'month'] as const), 'day'),
  format,
})
const rebuildBody = v.strictObject({ appid: v.optional(v.string()), from: DAY, to: DAY })
const alertsQuery = v.strictObject({
  ...appidQuery,
  limit: pageLimit(200),
})
const settingsBody = v.strictObject({
  appid: v.optional(v.string()),
  ...alertSettingsPatch.entries,
})

export function analyticsAdminRoutes(o: {
  db: Kysely<Database>
  clock: Clock
  timeZone: string
  appids: string[]
  /** Language of alert messages and advice. */
  locale?: Locale
  /** Group robots (the chats alerts may be posted to). */
  robots?: GroupRobots
  /** The shop: its account's figures count its mini program's members (points). */
  shop?: { settings: Pick<ShopSettings, 'appid' | 'mpAppid'> }
}): Hono {
  const locale = o.locale ?? 'zh-CN'
  const robots = o.robots ?? { keys: {}, baseUrl: '' }
  const app = new Hono()
  const live = liveToday(o.db, undefined, o.shop)
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
    if (q.format === 'csv')
      return csvResponse(
        c,
        `${series.metric}${series.dim ? `-${series.dim}` : ''}-${from}-${to}.csv`,
        ['start', 'value', 'partial'],
        series.points.map((p) => [p.start, p.value, p.partial]),
      )
    return c.json(series)
  })

  app.get('/campaigns', async (c) => {
    const q = parseQuery(
      c,
      v.strictObject({ ...appidQuery, from: v.optional(DAY), to: v.optional(DAY), format }),
    )
    const today = localDay(o.clock.now(), o.timeZone)
    const to = q.to ?? today
    const from = q.from ?? addDays(to, -29)
    if (from > to) throw new HTTPException(400, { message: 'from must not be after to' })
    const list = await campaignAnalytics(o.db, {
      appid: account(q.appid),
      from: localDayStart(from, o.timeZone),
      to: localDayStart(addDays(to, 1), o.timeZone),
      today,
      timeZone: o.timeZone,
      live,
    })
    if (q.format === 'csv') return campaignsCsv(c, `campaigns-${from}-${to}.csv`, list.campaigns)
    return c.json({ from, to, asOf: list.asOf, campaigns: list.campaigns })
  })

  /** A RangeError from the analytics functions is the caller's input: 400 with its message. */
  const input = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn()
    } catch (error) {
      if (error instanceof RangeError) throw new HTTPException(400, { message: error.message })
      throw error
    }
  }
  /** A cohort request's defaults: yesterday back 30 days (12 weeks), ages 30 days (8 weeks). */
  const cohortQuery = <Q extends { appid?: string; grain: 'day' | 'week'; maxAge?: number }>(
    q: Q & { from?: string; to?: string },
  ) => {
    const to = q.to ?? addDays(localDay(o.clock.now(), o.timeZone), -1)
    return {
      ...q,
      appid: account(q.appid),
      from: q.from ?? addDays(to, q.grain === 'week' ? -7 * 11 : -29),
      to,
      maxAge: q.maxAge ?? (q.grain === 'week' ? 8 : 30),
    }
  }
  const whole = (min: number, max: number) =>
    v.optional(
      v.pipe(
        v.string(),
        v.regex(/^\d{1,4}$/, 'must be a whole number'),
        v.transform(Number),
        v.minValue(min, `must be at least ${min}`),
        v.maxValue(max, `must be at most ${max}`),
      ),
    )

  /** The query of the cohort tables (cohorts, ltv). */
  const cohortEntries = {
    ...appidQuery,
    grain: v.optional(v.picklist(['day', 'week'] as const), 'day'),
    from: v.optional(DAY),
    to: v.optional(DAY),
    source: v.optional(v.picklist(['invite', 'qr', 'organic'] as const)),
    maxAge: whole(0, 90),
    format,
  }

  app.get('/cohorts', async (c) => {
    const q = parseQuery(
      c,
      v.strictObject({ ...cohortEntries, segment: v.optional(v.picklist([...SEGMENTS])) }),
    )
    const t = await input(() => cohortTriangle(o.db, cohortQuery(q)))
    if (q.format === 'csv') return cohortsCsv(c, t)
    return c.json(t)
  })

  app.get('/ltv', async (c) => {
    const q = parseQuery(c, v.strictObject(cohortEntries))
    const t = await input(() => ltvTriangle(o.db, cohortQuery(q)))
    if (q.format === 'csv') return ltvCsv(c, t)
    return c.json(t)
  })

  app.get('/fits', async (c) => {
    const q = parseQuery(
      c,
      v.strictObject({
        ...appidQuery,
        from: v.optional(DAY),
        to: v.optional(DAY),
        maxAge: whole(1, 90),
        horizon: whole(0, 365),
      }),
    )
    const today = localDay(o.clock.now(), o.timeZone)
    const to = q.to ?? addDays(today, -1)
    const from = q.from ?? addDays(to, -89)
    return c.json(
      await input(() =>
        analyticsFits(o.db, {
          appid: account(q.appid),
          from,
          to,
          maxAge: q.maxAge,
          horizon: q.horizon,
        }),
      ),
    )
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
    for (const day of days) {
      await buildDay(o.db, {
        appid,
        day,
        timeZone: o.timeZone,
        now,
        today,
        mpAppids: memberScope(appid, o.shop).mpAppids,
      })
      await buildCohortCells(o.db, { appid, day, timeZone: o.timeZone })
    }
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

  app.get('/alerts', async (c) => {
    const q = parseQuery(c, alertsQuery)
    return c.json(await listAlerts(o.db, account(q.appid), { limit: q.limit }))
  })

  app.get('/advice', async (c) => {
    const q = parseQuery(c, v.strictObject(appidQuery))
    const appid = account(q.appid)
    return c.json(await advise(o.db, { appid, now: o.clock.now(), timeZone: o.timeZone, locale }))
  })

  const settingsView = async (appid: string) => {
    const effective = await readAlertSettings(o.db, appid)
    const stored = await readOverrides(o.db, appid)
    return {
      rules: Object.fromEntries(
        ALERT_RULE_KEYS.map((k) => {
          const { unit, compare, scope, bounds, defaults } = ALERT_RULES[k]
          return [
            k,
            {
              unit,
              compare,
              scope,
              bounds,
              defaults,
              overrides: stored.rules[k] ?? {},
              effective: effective.rules[k],
            },
          ]
        }),
      ),
      robotChats: {
        configured: Object.keys(robots.keys),
        override: stored.robotChats ?? null,
        effective: await alertRobotChats(o.db, robots, effective.robotChats),
      },
    }
  }

  app.get('/alert-settings', async (c) => {
    const q = parseQuery(c, v.strictObject(appidQuery))
    return c.json(await settingsView(account(q.appid)))
  })

  app.put('/alert-settings', async (c) => {
    const { appid: chosen, ...patch } = await parseBody(c, settingsBody)
    const appid = account(chosen)
    const done = await updateAlertSettings(o, apiActor(c), {
      appid,
      patch,
      robotChats: Object.keys(robots.keys),
    })
    if (done.status === 'unknown_robot_chats')
      throw new HTTPException(400, {
        message: `robotChats: no group robot is configured for ${done.chats.join(', ')}`,
      })
    return c.json(await settingsView(appid))
  })

  return app
}
