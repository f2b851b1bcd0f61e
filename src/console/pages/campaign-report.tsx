/**
 * 推送 → 报告: one campaign's funnel per variant (chart and table), the A/B two-proportion test on
 * conversions in plain words, the minimum-sample warnings, and a link to edit it while it has not
 * started sending — read with `campaignReportView`
 * (GET campaigns/:id/report) and the sample rules of the campaign analytics. Its reach counts
 * members once however many runs they were in — a large campaign's as last counted, "as of" that
 * time, or "being counted" before the first count (campaign-reach.ts: a view never waits for
 * it); the funnel counts pushes (summed over the runs),
 * its rates over enqueued pushes, and says so in its labels. Every enqueued
 * recipient is in one column: sent, failed, or — shown when a variant has any — opted out before
 * sending, cancelled, outcome unknown, queued.
 */
import {
  campaignReportView,
  editableCampaigns,
  findCampaign,
  requestWaitUntil,
} from '../../admin/reads/campaign-views.js'
import { MIN_VARIANT_SAMPLE, requiredSample } from '../../analytics/campaigns.js'
import type { CampaignReach, MemberReach } from '../../community/campaign-counts.js'
import { Chart } from '../components/chart.js'
import { DataTable } from '../components/data-table.js'
import { accountOf, ConsoleRefusal } from '../context.js'
import type { Format } from '../format.js'
import type { Translate } from '../i18n.js'
import type { ConsolePage } from '../page.js'
import { renderPage } from '../render.js'
import { audienceLabel, scheduleLabel } from './campaigns.js'

type Report = Awaited<ReturnType<typeof campaignReportView>>
type Variant = Report['variants'][number]
const STEPS = ['enqueued', 'sent', 'delivered', 'clicked', 'converted'] as const
/** The reach table's counts of distinct members. */
const REACH = ['audience', 'enqueued', 'sent', 'converted'] as const

/** The reach rows: one per variant, and the total when there are several. */
const reachRows = (r: CampaignReach): MemberReach[] =>
  r.variants.length > 1 ? [...r.variants, r.total] : r.variants

/** When cached reach was counted: the time of day (`17:05`), with the date unless it is today's. */
const asOfLabel = (asOf: Date, now: Date, fmt: Format) =>
  fmt.dateTime(asOf).slice(0, 10) === fmt.dateTime(now).slice(0, 10)
    ? fmt.time(asOf)
    : fmt.dateTime(asOf)

/** The outcomes of enqueued pushes besides sent and failed, each with its count. */
const UNSENT = [
  ['report.withdrawnOptedOut', (x: Variant) => x.withdrawn.optedOut],
  ['report.cancelled', (x: Variant) => x.withdrawn.cancelled],
  ['report.unknown', (x: Variant) => x.unknown],
  ['report.queued', (x: Variant) => x.queued],
] as const

/** The A/B verdict and the sample warnings, in words. */
export function abVerdict(r: Pick<Report, 'variants' | 'abTest'>, t: Translate) {
  const [a, b] = r.variants
  const test = r.abTest?.conversion
  const smallest = Math.min(...r.variants.map((x) => x.enqueued))
  const warnings: string[] = []
  if (r.variants.length > 1 && smallest < MIN_VARIANT_SAMPLE)
    warnings.push(t('report.minSample', { min: MIN_VARIANT_SAMPLE, n: smallest }))
  if (!a || !b || !test || a.conversionRate === null || b.conversionRate === null)
    return { verdict: t('report.noTest'), warnings }
  const needed = requiredSample(a.conversionRate, b.conversionRate)
  if (needed !== null && smallest < needed)
    warnings.push(t('report.neededSample', { needed, n: smallest }))
  if (needed === null) return { verdict: t('report.equal'), warnings }
  const points = (b.conversionRate - a.conversionRate) * 100
  const words = {
    a: a.variant,
    b: b.variant,
    dir: t(points > 0 ? 'report.higher' : 'report.lower'),
    diff: Math.abs(points).toFixed(1),
    p: test.pValue < 0.001 ? '< 0.001' : String(Math.round(test.pValue * 1000) / 1000),
  }
  if (test.significant) return { verdict: t('report.significant', words), warnings }
  const more = Math.max(0, needed - smallest)
  const verdict = t('report.notSignificant', words)
  return { verdict: more ? `${verdict}，${t('report.needMore', { n: more })}` : verdict, warnings }
}

/**
 * The A/B test on redemptions in words (a variant with {{rec}} against one without: the
 * recommendations' uplift), or undefined while there is no test or no redemption.
 */
export function redemptionVerdict(r: Pick<Report, 'variants' | 'abTest'>, t: Translate) {
  const [a, b] = r.variants
  const test = r.abTest?.redemption
  if (!a || !b || !test || a.redemptionRate === null || b.redemptionRate === null) return undefined
  if (a.redeemed + b.redeemed === 0) return undefined
  const points = (b.redemptionRate - a.redemptionRate) * 100
  return t('report.redemption', {
    a: a.variant,
    b: b.variant,
    dir: t(points >= 0 ? 'report.higher' : 'report.lower'),
    diff: Math.abs(points).toFixed(1),
    p: test.pValue < 0.001 ? '< 0.001' : String(Math.round(test.pValue * 1000) / 1000),
    sig: t(test.significant ? 'report.redemption.significant' : 'report.redemption.notYet'),
  })
}

export const campaignReportPage: ConsolePage = {
  section: 'campaigns',
  path: '/campaigns/:id',
  mount(app, deps) {
    app.get('/campaigns/:id{[0-9]+}', async (c) => {
      const { t, fmt } = c.var
      const appid = accountOf(c)
      const row = await findCampaign(deps.db, appid, c.req.param('id'))
      if (!row) throw new ConsoleRefusal(404, 'campaigns.unknown')
      const now = deps.clock.now()
      const report = await campaignReportView(deps.db, row, now, {
        waitUntil: requestWaitUntil(c),
        logger: deps.logger,
        ...deps.reportCounts,
      })
      const reach = report.reach
      // how often a large campaign's figures are recounted, in whole minutes
      const recountMinutes = Math.ceil((report.reachRecountAgeMs ?? 60_000) / 60_000)
      const { verdict, warnings } = abVerdict(report, t)
      const redemption = redemptionVerdict(report, t)
      const rate = (x: number | null) => (x === null ? '—' : fmt.percent(x))
      const k = report.campaign
      const canEdit =
        c.var.session.operator.role !== 'viewer' &&
        (await editableCampaigns(deps.db, [k])).has(k.id)
      return renderPage(
        c,
        { title: t('report.title', { name: k.name }), section: 'campaigns', charts: true },
        <>
          <p>
            <a href="/console/campaigns">{t('report.back')}</a>
            {canEdit && (
              <>
                {' · '}
                <a href={`/console/campaigns/${k.id}/edit`}>{t('campaignEdit.link')}</a>
              </>
            )}
          </p>
          <p class="muted">
            {t(`campaigns.status.${k.status}` as 'campaigns.status.draft')} ·{' '}
            {scheduleLabel(k, t, fmt, { now: deps.clock.now(), zone: deps.timeZone })} ·{' '}
            {audienceLabel(k.audience, t)}
          </p>
          {report.quotaPausedUntil && (
            <p class="notice error" role="alert">
              {t('report.quotaPaused', { time: fmt.dateTime(report.quotaPausedUntil) })}
            </p>
          )}
          <section class="card" aria-labelledby="ab">
            <h2 id="ab">{t('report.test')}</h2>
            <p data-verdict>{report.counting ? t('report.counts.computing') : verdict}</p>
            {redemption && <p data-redemption>{redemption}</p>}
            {warnings.length > 0 && (
              <ul class="list" aria-label={t('report.warnings')}>
                {warnings.map((w) => (
                  <li class="down">{w}</li>
                ))}
              </ul>
            )}
          </section>
          <section class="card" aria-labelledby="reach">
            <h2 id="reach">{t('report.reach')}</h2>
            {reach ? (
              <p class="muted" data-reach-note>
                {t('report.reach.note', { runs: fmt.count(reach.runs) })}
                {reach.prunedRuns > 0 &&
                  ` ${t('report.reach.pruned', { n: fmt.count(reach.prunedRuns) })}`}
              </p>
            ) : (
              <p class="muted" data-reach-computing>
                {t('report.reach.computing')}
              </p>
            )}
            {reach && report.reachAsOf && (
              <p class="muted" data-reach-as-of>
                {t('report.reach.asOf', {
                  time: asOfLabel(report.reachAsOf, now, fmt),
                  minutes: fmt.count(recountMinutes),
                })}
                {report.reachRefreshing && ` ${t('report.reach.refreshing')}`}
              </p>
            )}
            {reach && (
              <DataTable
                rows={reachRows(reach)}
                empty={t('common.empty')}
                columns={[
                  {
                    label: t('report.variant'),
                    cell: (x) => x.variant ?? t('report.reach.total'),
                  },
                  ...REACH.map((s) => ({
                    label: t(`report.reach.${s}`),
                    num: true,
                    cell: (x: MemberReach) => fmt.count(x[s]),
                  })),
                  {
                    label: t('report.reach.conversionRate'),
                    num: true,
                    cell: (x) => rate(x.conversionRate),
                  },
                ]}
              />
            )}
          </section>
          <section class="card" aria-labelledby="funnel">
            <h2 id="funnel">{t('report.chart')}</h2>
            {report.countsAsOf && (
              <p class="muted" data-counts-as-of>
                {t('report.reach.asOf', {
                  time: asOfLabel(report.countsAsOf, now, fmt),
                  minutes: fmt.count(recountMinutes),
                })}
                {report.reachRefreshing && ` ${t('report.reach.refreshing')}`}
              </p>
            )}
            {report.counting && (
              <p class="muted" data-counts-computing>
                {t('report.counts.computing')}
              </p>
            )}
            {report.variants.length > 0 && (
              <Chart
                id="chart-funnel"
                label={t('report.chart')}
                option={{
                  animation: false,
                  tooltip: { trigger: 'axis' },
                  legend: { top: 0 },
                  grid: { left: 8, right: 16, top: 36, bottom: 8, containLabel: true },
                  xAxis: { type: 'category', data: STEPS.map((s) => t(`report.${s}`)) },
                  yAxis: { type: 'value' },
                  series: report.variants.map((x) => ({
                    name: x.variant,
                    type: 'bar',
                    data: STEPS.map((s) => x[s]),
                  })),
                }}
              />
            )}
            {!report.counting && (
              <DataTable
                rows={report.variants}
                empty={t('common.empty')}
                columns={[
                  { label: t('report.variant'), cell: (x) => x.variant },
                  { label: t('report.audience'), num: true, cell: (x) => fmt.count(x.audience) },
                  {
                    label: t('report.skipped'),
                    num: true,
                    cell: (x) =>
                      fmt.count(x.skipped.capped + x.skipped.optedOut + x.skipped.unreachable),
                  },
                  ...STEPS.map((s) => ({
                    label: t(`report.${s}`),
                    num: true,
                    cell: (x: Variant) => fmt.count(x[s]),
                  })),
                  { label: t('report.failed'), num: true, cell: (x) => fmt.count(x.failed) },
                  // the other outcomes of enqueued pushes, where a variant has one
                  ...UNSENT.filter(([, n]) => report.variants.some((x) => n(x) !== 0)).map(
                    ([label, n]) => ({
                      label: t(label),
                      num: true,
                      cell: (x: Variant) => fmt.count(n(x)),
                    }),
                  ),
                  { label: t('report.clickRate'), num: true, cell: (x) => rate(x.clickRate) },
                  {
                    label: t('report.conversionRate'),
                    num: true,
                    cell: (x) => rate(x.conversionRate),
                  },
                  { label: t('report.redeemed'), num: true, cell: (x) => fmt.count(x.redeemed) },
                  {
                    label: t('report.redemptionRate'),
                    num: true,
                    cell: (x) => rate(x.redemptionRate),
                  },
                ]}
              />
            )}
          </section>
        </>,
      )
    })
  },
}
