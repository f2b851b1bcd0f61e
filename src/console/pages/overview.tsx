/**
 * 概览: today vs. yesterday vs. the same day last week, 30-day trends, open alerts, advice, and
 * the fitted growth and retention curves — read with the functions GET /admin/api/analytics/
 * {overview,series,alerts,advice,fits} call.
 */

import { advise } from '../../analytics/advice.js'
import { listAlerts } from '../../analytics/alerts.js'
import { analyticsFits } from '../../analytics/analytics-fits.js'
import { liveToday, readOverview, readSeries } from '../../analytics/series.js'
import { addDays, localDay } from '../../community/community-time.js'
import { Chart, lineOption } from '../components/chart.js'
import { DataTable } from '../components/data-table.js'
import { growthOption, retentionOption } from '../components/fit-charts.js'
import { OpenAlerts } from '../components/open-alerts.js'
import { accountOf } from '../context.js'
import type { MessageKey } from '../i18n.js'
import type { ConsolePage } from '../page.js'
import { renderPage } from '../render.js'

const TRENDS = [
  { id: 'followers', title: 'chart.followers', metrics: ['followers.new', 'followers.net'] },
  { id: 'activity', title: 'chart.activity', metrics: ['activity.dau', 'checkins.participants'] },
  { id: 'points', title: 'chart.points', metrics: ['points.issued', 'points.spent'] },
  { id: 'gmv', title: 'chart.gmv', metrics: ['commerce.gmv_fen'] },
] as const

export const overviewPage: ConsolePage = {
  section: 'overview',
  path: '/',
  mount(app, deps) {
    const live = liveToday(deps.db, undefined, deps.shop)
    app.get('/', async (c) => {
      const { t, fmt, lang } = c.var
      const appid = accountOf(c)
      const now = deps.clock.now()
      const today = localDay(now, deps.timeZone)
      const scope = { appid, now, timeZone: deps.timeZone, live }
      const series = (metric: string, from: string, to: string) =>
        readSeries(deps.db, { ...scope, metric, from, to, granularity: 'day' })
      const fitTo = addDays(today, -1)
      const fitFrom = addDays(fitTo, -89)
      const [overview, trends, alerts, advice, fits, followers] = await Promise.all([
        readOverview(deps.db, scope),
        Promise.all(
          TRENDS.map(async (chart) => ({
            chart,
            series: await Promise.all(
              chart.metrics.map((m) => series(m, addDays(today, -30), addDays(today, -1))),
            ),
          })),
        ),
        listAlerts(deps.db, appid, { limit: 20 }),
        advise(deps.db, { appid, now, timeZone: deps.timeZone, locale: lang }),
        analyticsFits(deps.db, { appid, from: fitFrom, to: fitTo }),
        series('followers.total', fitFrom, fitTo),
      ])
      // listAlerts' row shape spreads a Record, so its columns are not typed: name the two shown.
      // null: a day neither built nor read live
      const value = (unit: string, n: number | null) =>
        n === null ? '—' : unit === 'fen' ? fmt.fen(n) : fmt.count(n)
      const growth = growthOption(fits, followers.points, t)
      const retention = retentionOption(fits, t)
      const fit = fits.growth.fit
      const pace = !fit
        ? ''
        : fit.doublingDays
          ? t('overview.doubling', { days: Math.round(fit.doublingDays) })
          : fit.halvingDays
            ? t('overview.halving', { days: Math.round(fit.halvingDays) })
            : t('overview.flat')
      return renderPage(
        c,
        { title: t('overview.title'), section: 'overview', charts: true },
        <>
          <section class="card" aria-labelledby="compare">
            <h2 id="compare">{t('overview.compare')}</h2>
            <p class="muted">{t('overview.partial', { time: fmt.time(now) })}</p>
            <DataTable
              rows={overview.metrics}
              empty={t('common.empty')}
              columns={[
                { label: t('overview.metric'), cell: (m) => t(`metric.${m.metric}` as MessageKey) },
                { label: t('overview.today'), num: true, cell: (m) => value(m.unit, m.today) },
                {
                  label: t('overview.yesterday'),
                  num: true,
                  cell: (m) => value(m.unit, m.yesterday),
                },
                {
                  label: t('overview.lastWeek'),
                  num: true,
                  cell: (m) => value(m.unit, m.sameDayLastWeek),
                },
                {
                  label: t('overview.yesterdayVsWeekBefore'),
                  num: true,
                  cell: (m) => (
                    <span
                      class={
                        m.yesterdayVsWeekBefore === null
                          ? undefined
                          : m.yesterdayVsWeekBefore >= 0
                            ? 'up'
                            : 'down'
                      }
                    >
                      {fmt.change(m.yesterdayVsWeekBefore)}
                    </span>
                  ),
                },
              ]}
            />
          </section>
          <h2>{t('overview.trends')}</h2>
          <div class="grid">
            {trends.map(({ chart, series: lines }) => (
              <section class="card" aria-label={t(chart.title)}>
                <h2>{t(chart.title)}</h2>
                <Chart
                  id={`chart-${chart.id}`}
                  label={t(chart.title)}
                  option={lineOption(
                    lines[0]!.points.map((p) => p.start.slice(5)),
                    lines.map((s) => ({
                      name: t(`metric.${s.metric}` as MessageKey),
                      data: s.points.map((p) =>
                        p.value === null
                          ? null
                          : s.unit === 'fen'
                            ? p.value / 100
                            : Math.round(p.value * 100) / 100,
                      ),
                      area: lines.length === 1,
                    })),
                  )}
                />
              </section>
            ))}
          </div>
          <div class="grid spaced">
            <OpenAlerts alerts={alerts.open} t={t} fmt={fmt} />
            <section class="card" aria-labelledby="advice">
              <h2 id="advice">{t('overview.advice')}</h2>
              {advice.advice.length === 0 ? (
                <p class="empty">{t('overview.adviceNone')}</p>
              ) : (
                <ul class="list">
                  {advice.advice.map((a) => (
                    <li>
                      <span class={`badge ${a.priority}`}>
                        {t(`overview.priority.${a.priority}`)}
                      </span>{' '}
                      {a.area} ·{a.title}
                      <ul>
                        {a.suggestions.map((s) => (
                          <li class="muted">{s.text}</li>
                        ))}
                      </ul>
                    </li>
                  ))}
                </ul>
              )}
            </section>
          </div>
          <h2 class="spaced">{t('overview.fits')}</h2>
          <div class="grid">
            <section class="card" aria-labelledby="growth">
              <h2 id="growth">{t('overview.growth')}</h2>
              {growth && fit ? (
                <>
                  <p class="muted">
                    {t('overview.growthSummary', { k: fit.k.toFixed(4), doubling: pace })}
                  </p>
                  <Chart id="chart-growth" label={t('overview.growth')} option={growth} />
                </>
              ) : (
                <p class="empty">{t('overview.growthNone')}</p>
              )}
            </section>
            <section class="card" aria-labelledby="retention">
              <h2 id="retention">{t('overview.retention')}</h2>
              {retention ? (
                <Chart
                  id="chart-retention"
                  label={t('overview.retention')}
                  option={retention}
                  percent
                />
              ) : (
                <p class="empty">{t('overview.retentionNone')}</p>
              )}
            </section>
          </div>
        </>,
      )
    })
  },
}
