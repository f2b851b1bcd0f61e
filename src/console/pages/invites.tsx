/**
 * 邀请裂变: the period's invite funnel (QR issued → follows → attributed → qualified → day-7
 * retained), its totals and K-factor, the top inviters (inviteReport, as GET /admin/api/…/invites/
 * report), the K-factor trend with its three factors over 30 or 90 days (`invites.*` rollups), and
 * the longest invite chains or one inviter's tree (at most five levels).
 */
import * as v from 'valibot'
import {
  CHAIN_LEVELS,
  inviteTree,
  longestInviteChains,
  TREE_LIMIT,
} from '../../admin/reads/invite-chains.js'
import { inviteFunnel } from '../../admin/reads/invite-funnel.js'
import { invitePeriod, invitePeriodInput } from '../../admin/reads/invite-period.js'
import { liveToday, readSeries } from '../../analytics/series.js'
import { addDays, localDay } from '../../community/community-time.js'
import { inviteReport } from '../../community/invite-report.js'
import { funnelOption } from '../components/analytics-charts.js'
import { Chart, lineOption } from '../components/chart.js'
import { DataTable } from '../components/data-table.js'
import { Field } from '../components/form.js'
import { InviteTree, inviterName } from '../components/invite-tree.js'
import { SelectField } from '../components/select.js'
import { accountOf, ConsoleRefusal } from '../context.js'
import type { ConsolePage } from '../page.js'
import { renderPage } from '../render.js'

/** The page's query: the report's period, the trend's days and the inviter whose tree is shown. */
export const invitesPageInput = v.object({
  ...invitePeriodInput.entries,
  days: v.optional(v.picklist(['30', '90'] as const, 'must be 30 or 90'), '30'),
  inviter: v.optional(v.pipe(v.string(), v.maxLength(128, 'must be at most 128 characters'))),
})

/**
 * The trend's lines: K and its factors. K, the share rate and the conversion are ratios, drawn
 * in percent on the left axis (`Chart percent`); invites per sharer, a count per person, last,
 * on its own axis.
 */
const TREND = [
  { metric: 'invites.k_factor', name: 'invites.k' },
  { metric: 'invites.share_rate', name: 'invites.shareRate' },
  { metric: 'invites.conversion', name: 'invites.conversion' },
  { metric: 'invites.per_sharer', name: 'invites.perSharer' },
] as const

export const invitesPage: ConsolePage = {
  section: 'invites',
  path: '/invites',
  mount(app, deps) {
    const live = liveToday(deps.db, undefined, deps.shop)
    app.get('/invites', async (c) => {
      const { t, fmt } = c.var
      // An empty form field means "not given".
      const given = Object.entries(c.req.query()).filter(([, x]) => x !== '')
      const parsed = v.safeParse(invitesPageInput, Object.fromEntries(given))
      if (!parsed.success) {
        const field = String(parsed.issues[0].path?.[0]?.key ?? '')
        const key = field === 'days' || field === 'inviter' ? field : 'date'
        throw new ConsoleRefusal(400, `invites.error.${key}`)
      }
      const q = parsed.output
      const appid = accountOf(c)
      const now = deps.clock.now()
      const today = localDay(now, deps.timeZone)
      const period = invitePeriod(q, today)
      if ('problem' in period)
        throw new ConsoleRefusal(
          400,
          period.problem.startsWith('from') ? 'invites.error.backwards' : 'invites.error.tooLong',
        )
      const scope = { appid, now, timeZone: deps.timeZone, live }
      const days = Number(q.days)
      // The trend's complete days: it ends yesterday (the summary may include today so far).
      const trendSpan = { from: addDays(today, -days), to: addDays(today, -1) }
      const [funnel, report, trend, chains, tree] = await Promise.all([
        inviteFunnel(deps.db, { ...scope, ...period }),
        inviteReport(deps.db, { appid, ...period, timeZone: deps.timeZone, now, live }),
        Promise.all(
          TREND.map(({ metric }) =>
            readSeries(deps.db, {
              ...scope,
              metric,
              ...trendSpan,
              granularity: 'day',
            }),
          ),
        ),
        longestInviteChains(deps.db, { appid, limit: 10 }),
        q.inviter ? inviteTree(deps.db, { appid, openid: q.inviter }) : null,
      ])
      const stageName = (s: string) => t(`invites.stage.${s}` as 'invites.stage.qualified')
      const treeLink = (openid: string) => {
        const p = new URLSearchParams(given)
        p.set('inviter', openid)
        return `/console/invites?${p}#tree`
      }
      const trendOption = lineOption(
        trend[0]!.points.map((p) => p.start.slice(5)),
        trend.map((s, i) => ({
          name: t(TREND[i]!.name),
          // null (no figure, or no denominator that day) is a gap in the line
          data: s.points.map((p) =>
            p.value === null ? null : Math.round(p.value * 10_000) / 10_000,
          ),
        })),
        { yAxis: [{ type: 'value' }, { type: 'value', splitLine: { show: false } }] },
      )
      // Invites per sharer is a count per person, not a ratio: its own axis on the right.
      Object.assign((trendOption.series as Record<string, unknown>[]).at(-1)!, { yAxisIndex: 1 })
      const totals = report.totals
      const ratio = (x: number | null) => (x === null ? '—' : fmt.percent(x))
      const figures = [
        [t('invites.sharers'), fmt.count(totals.sharers)],
        [t('invites.invites'), fmt.count(totals.invites)],
        [t('invites.conversions'), fmt.count(totals.conversions)],
        [
          t('invites.activeMemberDays'),
          report.activeMemberDays === null ? '—' : fmt.count(report.activeMemberDays),
        ],
        [t('invites.shareRate'), ratio(totals.shareRate)],
        [
          t('invites.perSharer'),
          totals.invitesPerSharer === null ? '—' : String(totals.invitesPerSharer),
        ],
        [t('invites.conversion'), ratio(totals.conversionRate)],
        [t('invites.k'), totals.k === null ? '—' : String(totals.k)],
      ]
      return renderPage(
        c,
        { title: t('invites.title'), section: 'invites', charts: true },
        <>
          <form
            method="get"
            action="/console/invites"
            class="filters card"
            aria-label={t('invites.period')}
          >
            {c.req.query('appid') && <input type="hidden" name="appid" value={appid} />}
            <Field id="f-from" label={t('invites.from')}>
              <input id="f-from" type="date" name="from" value={period.from} />
            </Field>
            <Field id="f-to" label={t('invites.to')}>
              <input id="f-to" type="date" name="to" value={period.to} />
            </Field>
            <SelectField
              id="f-days"
              name="days"
              label={t('invites.days')}
              value={q.days}
              options={[
                ['30', t('invites.days.30')],
                ['90', t('invites.days.90')],
              ]}
            />
            <button type="submit">{t('invites.apply')}</button>
          </form>
          <div class="grid">
            <section class="card" aria-labelledby="funnel">
              <h2 id="funnel">{t('invites.funnel', period)}</h2>
              {funnel.some((s) => s.members === null) ? (
                // a day of the period not built yet: no stage drawn short of it
                <p class="empty">{t('invites.funnelGap')}</p>
              ) : funnel.every((s) => s.members === 0) ? (
                <p class="empty">{t('invites.funnelNone')}</p>
              ) : (
                <>
                  <Chart
                    id="chart-funnel"
                    label={t('invites.funnel', period)}
                    option={funnelOption(
                      funnel.map((s) => ({ name: stageName(s.stage), value: s.members ?? 0 })),
                    )}
                  />
                  <p class="muted">{t('invites.funnelNote')}</p>
                </>
              )}
            </section>
            <section class="card" aria-labelledby="totals">
              <h2 id="totals">
                {period.to >= today
                  ? t('invites.totalsToNow', period)
                  : t('invites.totals', period)}
              </h2>
              <DataTable
                rows={figures}
                empty={t('common.empty')}
                columns={[
                  { label: t('retention.figure'), cell: (r) => r[0] },
                  { label: t('invites.period'), num: true, cell: (r) => r[1] },
                ]}
              />
              <p class="muted">{t('invites.kNote')}</p>
            </section>
          </div>
          <section class="card spaced" aria-labelledby="trend">
            <h2 id="trend">{t('invites.trend', trendSpan)}</h2>
            <Chart
              id="chart-k"
              label={t('invites.trend', trendSpan)}
              option={trendOption}
              percent
            />
            <p class="muted">{t('invites.trendNote')}</p>
          </section>
          <div class="grid">
            <section class="card" aria-labelledby="top">
              <h2 id="top">{t('invites.top')}</h2>
              <DataTable
                rows={report.topInviters}
                empty={t('invites.topNone')}
                columns={[
                  { label: t('invites.inviter'), cell: (r) => r.openid },
                  { label: t('invites.invites'), num: true, cell: (r) => fmt.count(r.invites) },
                  {
                    label: t('invites.conversions'),
                    num: true,
                    cell: (r) => fmt.count(r.conversions),
                  },
                  { label: '', cell: (r) => <a href={treeLink(r.openid)}>{t('invites.tree')}</a> },
                ]}
              />
            </section>
            <section class="card" aria-labelledby="chains">
              <h2 id="chains">{t('invites.chains')}</h2>
              <p class="muted">{t('invites.chainNote', { levels: CHAIN_LEVELS })}</p>
              <DataTable
                rows={chains}
                empty={t('invites.chainsNone')}
                columns={[
                  {
                    label: t('invites.chainRoot'),
                    cell: (r) => <a href={treeLink(r.openid)}>{r.name ?? r.openid}</a>,
                  },
                  { label: t('invites.chainDepth'), num: true, cell: (r) => r.depth },
                  {
                    label: t('invites.chainMembers'),
                    num: true,
                    cell: (r) => fmt.count(r.members),
                  },
                ]}
              />
            </section>
          </div>
          {q.inviter && (
            <section class="card spaced" id="tree" aria-labelledby="tree-title">
              <h2 id="tree-title">
                {t('invites.treeOf', { name: tree ? inviterName(tree.root) : q.inviter })}
              </h2>
              {!tree || tree.members === 0 ? (
                <p class="empty">{t('invites.treeNone')}</p>
              ) : (
                <>
                  <p class="muted">
                    {t('invites.treeMembers', { n: fmt.count(tree.members), levels: CHAIN_LEVELS })}
                    {tree.truncated && ` · ${t('invites.treeTruncated', { n: TREE_LIMIT })}`}
                  </p>
                  <InviteTree root={tree.root} t={t} />
                </>
              )}
            </section>
          )}
        </>,
      )
    })
  },
}
