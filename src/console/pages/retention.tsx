/**
 * 留存与分层: the retention triangle as a heat map (by day or week, filtered by source and by
 * current segment) beside the plan's d1/d7/d30 reference, the LTV triangle, members per segment
 * and the last built day's moves between segments as a Sankey — read with the functions the
 * operator API's analytics routes call; the two triangles also download as CSV under the session.
 */

import { cohortFilterInput, cohortFilterQuery } from '../../admin/reads/cohort-filter.js'
import { segmentFlow } from '../../admin/reads/segment-flow.js'
import { ltvTriangle } from '../../analytics/cohort-ltv.js'
import { cohortTriangle } from '../../analytics/cohorts.js'
import { addDays, localDay } from '../../community/community-time.js'
import { SEGMENTS, segmentCounts } from '../../community/segments.js'
import { cohortsCsv, ltvCsv } from '../../routes/analytics-csv.js'
import { parseQuery } from '../../routes/validate.js'
import { barOption, sankeyOption } from '../components/analytics-charts.js'
import { Chart } from '../components/chart.js'
import { CohortFilterForm } from '../components/cohort-filter-form.js'
import { LtvSection, TriangleHeatmap } from '../components/cohort-heatmaps.js'
import { DataTable } from '../components/data-table.js'
import { accountOf, type ConsoleContext, type ConsoleDeps } from '../context.js'
import type { MessageKey } from '../i18n.js'
import type { ConsolePage } from '../page.js'
import { renderPage } from '../render.js'

/** The filter of a request and the cohort query it makes. */
function request(c: ConsoleContext, deps: ConsoleDeps) {
  const filter = parseQuery(c, cohortFilterInput)
  const today = localDay(deps.clock.now(), deps.timeZone)
  return { filter, today, query: cohortFilterQuery(filter, accountOf(c), today) }
}

export const retentionPage: ConsolePage = {
  section: 'retention',
  path: '/retention',
  mount(app, deps) {
    app.get('/retention/cohorts.csv', async (c) =>
      cohortsCsv(c, await cohortTriangle(deps.db, request(c, deps).query)),
    )
    app.get('/retention/ltv.csv', async (c) => {
      const { segment: _, ...query } = request(c, deps).query
      return ltvCsv(c, await ltvTriangle(deps.db, query))
    })
    app.get('/retention', async (c) => {
      const { t, fmt } = c.var
      const { filter, today, query } = request(c, deps)
      const { segment: _, ...ltvQuery } = query
      const flowDay = addDays(today, -1)
      const [triangle, ltv, counts, moves] = await Promise.all([
        cohortTriangle(deps.db, query),
        ltvTriangle(deps.db, ltvQuery),
        segmentCounts(deps.db, query.appid),
        segmentFlow(deps.db, { appid: query.appid, day: flowDay }),
      ])
      const segName = (s: string) => t(`retention.seg.${s}` as MessageKey)
      const shown = [...SEGMENTS, ...(counts.uncomputed ? ['uncomputed'] : [])]
      const sized = shown.some((s) => (counts[s] ?? 0) > 0)
      const params = new URLSearchParams({
        ...(c.req.query('appid') ? { appid: query.appid } : {}),
        grain: filter.grain,
        ...(filter.source ? { source: filter.source } : {}),
        ...(filter.segment ? { segment: filter.segment } : {}),
      })
      const summary = (['d1', 'd7', 'd30'] as const).map((key) => ({
        key,
        figure: triangle.summary[key],
        reference: triangle.reference[key],
      }))
      return renderPage(
        c,
        { title: t('retention.title'), section: 'retention', charts: true },
        <>
          <CohortFilterForm filter={filter} t={t} appid={c.req.query('appid')} />
          <p class="muted">
            {t('retention.range', {
              from: triangle.from,
              to: triangle.to,
              built: triangle.builtThrough ?? t('retention.notBuilt'),
            })}
          </p>
          <section class="card" aria-labelledby="triangle">
            <h2 id="triangle">{t('retention.triangle')}</h2>
            <TriangleHeatmap
              id="chart-cohorts"
              t={t}
              grain={triangle.grain}
              maxAge={triangle.maxAge}
              rows={triangle.cohorts.map((r) => ({ start: r.start, values: r.shares }))}
              scale={100}
              label={t('retention.triangle')}
              empty={t('retention.triangleNone')}
            />
            <p>
              <a href={`/console/retention/cohorts.csv?${params}`} download>
                {t('retention.csv')}
              </a>
            </p>
          </section>
          <section class="card" aria-labelledby="summary">
            <h2 id="summary">{t('retention.summary')}</h2>
            <DataTable
              rows={summary}
              empty={t('common.empty')}
              columns={[
                { label: t('retention.figure'), cell: (r) => t(`retention.${r.key}`) },
                {
                  label: t('retention.pooled'),
                  num: true,
                  cell: (r) => (r.figure.share === null ? '—' : fmt.percent(r.figure.share)),
                },
                {
                  label: t('retention.reference'),
                  num: true,
                  cell: (r) => fmt.percent(r.reference),
                },
                {
                  label: t('retention.members'),
                  num: true,
                  cell: (r) => `${fmt.count(r.figure.retained)} / ${fmt.count(r.figure.size)}`,
                },
                {
                  label: '',
                  cell: (r) =>
                    r.figure.share === null ? null : r.figure.share >= r.reference ? (
                      <span class="up">{t('retention.above')}</span>
                    ) : (
                      <span class="down">{t('retention.below')}</span>
                    ),
                },
              ]}
            />
          </section>
          <LtvSection ltv={ltv} t={t} fmt={fmt} segment={!!filter.segment} csv={params} />
          <div class="grid">
            <section class="card" aria-labelledby="sizes">
              <h2 id="sizes">{t('retention.sizes')}</h2>
              {sized ? (
                <Chart
                  id="chart-segments"
                  label={t('retention.sizes')}
                  option={barOption(
                    shown.map(segName),
                    t('retention.flowMembers'),
                    shown.map((s) => counts[s] ?? 0),
                  )}
                />
              ) : (
                <p class="empty">{t('retention.sizesNone')}</p>
              )}
            </section>
            <section class="card" aria-labelledby="flow">
              <h2 id="flow">{t('retention.flow', { day: flowDay })}</h2>
              {moves.length === 0 ? (
                <p class="empty">{t('retention.flowNone')}</p>
              ) : (
                <>
                  <Chart
                    id="chart-flow"
                    label={t('retention.flow', { day: flowDay })}
                    option={sankeyOption(
                      moves,
                      (s) => t('retention.flowFrom', { segment: segName(s) }),
                      (s) => t('retention.flowTo', { segment: segName(s) }),
                    )}
                  />
                  <DataTable
                    rows={moves.slice(0, 8)}
                    empty={t('common.empty')}
                    columns={[
                      { label: t('retention.flowFromCol'), cell: (m) => segName(m.from) },
                      { label: t('retention.flowToCol'), cell: (m) => segName(m.to) },
                      {
                        label: t('retention.flowMembers'),
                        num: true,
                        cell: (m) => fmt.count(m.members),
                      },
                    ]}
                  />
                </>
              )}
            </section>
          </div>
        </>,
      )
    })
  },
}
