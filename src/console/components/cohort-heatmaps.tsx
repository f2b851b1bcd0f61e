/**
 * The cohort triangles as heat maps (one row per cohort, one column per age; an age not over yet
 * is left blank), and the LTV section: its heat map in yuan per member, pooled d0 … d90, CSV.
 */
import type { LtvTriangle } from '../../analytics/cohort-ltv.js'
import type { CohortGrain } from '../../analytics/cohorts.js'
import type { Format } from '../format.js'
import type { Translate } from '../i18n.js'
import { heatmapOption } from './analytics-charts.js'
import { Chart } from './chart.js'
import { DataTable } from './data-table.js'

/** A triangle's heat map; `scale` turns a value into what is shown (100: share → %). */
export function TriangleHeatmap(p: {
  id: string
  t: Translate
  grain: CohortGrain
  maxAge: number
  rows: { start: string; values: (number | null)[] }[]
  scale: number
  label: string
  empty: string
}) {
  if (p.rows.length === 0) return <p class="empty">{p.empty}</p>
  const round = (v: number) => Math.round(v * p.scale * 100) / 100
  const cells: [number, number, number][] = []
  p.rows.forEach((r, y) => {
    r.values.forEach((v, x) => {
      if (v !== null) cells.push([x, y, round(v)])
    })
  })
  // Age 0 is every member's follow day (a share of ~100 %): colour by the later ages.
  const later = cells.filter((c) => c[0] > 0).map((c) => c[2])
  const max = Math.max(0, ...(later.length > 0 ? later : cells.map((c) => c[2])))
  const ages = Array.from({ length: p.maxAge + 1 }, (_, n) =>
    p.t(p.grain === 'week' ? 'retention.age.week' : 'retention.age.day', { n }),
  )
  return (
    <Chart
      id={p.id}
      label={p.label}
      height={Math.max(240, 100 + 18 * p.rows.length)}
      option={heatmapOption({
        x: ages,
        y: p.rows.map((r) => r.start.slice(5)),
        cells,
        max,
        ends: [p.t('retention.high'), p.t('retention.low')],
      })}
    />
  )
}

/** The LTV heat map (¥ per member), its pooled figures and the CSV link. */
export function LtvSection(p: {
  ltv: LtvTriangle
  t: Translate
  fmt: Format
  /** Whether a segment filter is set (LTV ignores it: say so). */
  segment: boolean
  csv: URLSearchParams
}) {
  const { t, fmt, ltv } = p
  const csv = new URLSearchParams(p.csv)
  csv.delete('segment')
  const summary = (['d0', 'd7', 'd30', 'd60', 'd90'] as const).map((key) => ({
    key,
    ...ltv.summary[key],
  }))
  return (
    <section class="card" aria-labelledby="ltv">
      <h2 id="ltv">{t('retention.ltv')}</h2>
      {p.segment && <p class="muted">{t('retention.ltvNoSegment')}</p>}
      <TriangleHeatmap
        id="chart-ltv"
        t={t}
        grain={ltv.grain}
        maxAge={ltv.maxAge}
        rows={ltv.cohorts.map((r) => ({ start: r.start, values: r.perMemberFen }))}
        scale={0.01}
        label={t('retention.ltv')}
        empty={t('retention.ltvNone')}
      />
      <DataTable
        rows={ltv.cohorts.length === 0 ? [] : summary}
        empty={t('common.empty')}
        columns={[
          {
            label: t('retention.ltvAge'),
            cell: (r) => t('retention.age.day', { n: r.key.slice(1) }),
          },
          {
            label: t('retention.ltvPerMember'),
            num: true,
            cell: (r) => (r.perMemberFen === null ? '—' : fmt.fen(r.perMemberFen)),
          },
          // No cohort of the range has reached the age: nothing to sum (not ¥0).
          {
            label: t('retention.ltvRevenue'),
            num: true,
            cell: (r) => (r.cohorts === 0 ? '—' : fmt.fen(r.revenueFen)),
          },
          {
            label: t('retention.ltvPayers'),
            num: true,
            cell: (r) => (r.cohorts === 0 ? '—' : fmt.count(r.payers)),
          },
          {
            label: t('retention.ltvSize'),
            num: true,
            cell: (r) => (r.cohorts === 0 ? '—' : fmt.count(r.size)),
          },
        ]}
      />
      <p>
        <a href={`/console/retention/ltv.csv?${csv}`} download>
          {t('retention.csv')}
        </a>
      </p>
    </section>
  )
}
