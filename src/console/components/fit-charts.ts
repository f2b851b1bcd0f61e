/**
 * Chart options for the fitted curves of src/analytics/analytics-fits.ts: follower growth
 * (observed, fitted R(0)·e^{kt}, forecast with its interval) and retention (observed shares, the
 * better fitted model, and the plan's reference points d1 25 %, d7 15 %, d30 8 %).
 */
import type { AnalyticsFits } from '../../analytics/analytics-fits.js'
import { daysBetween } from '../../analytics/series.js'
import type { Translate } from '../i18n.js'
import { lineOption } from './chart.js'

/** The growth chart over the fit's days and its forecast; null when there is no fit. */
export function growthOption(
  fits: AnalyticsFits,
  observed: { start: string; value: number | null }[],
  t: Translate,
): Record<string, unknown> | null {
  const fit = fits.growth.fit
  if (!fit) return null
  const days = daysBetween(fits.from, fits.to)
  const forecast = fits.growth.forecast?.points ?? []
  const x = [...days, ...forecast.map((p) => p.day)]
  const byDay = new Map(observed.map((p) => [p.start, p.value]))
  const round = (v: number) => Math.round(v * 10) / 10
  const fitted = x.map((_, i) => round(fit.r0 * Math.exp(fit.k * i)))
  const pad = days.map(() => null)
  return lineOption(x, [
    // A day without followers has no logarithm: the fit leaves it out, and so does the line.
    { name: t('overview.series.observed'), data: days.map((d) => byDay.get(d) || null) },
    { name: t('overview.series.fitted'), data: fitted, dashed: true },
    { name: t('overview.series.forecast'), data: [...pad, ...forecast.map((p) => round(p.value))] },
    {
      name: `${t('overview.series.forecast')} ↑`,
      data: [...pad, ...forecast.map((p) => round(p.upper))],
      dashed: true,
    },
    {
      name: `${t('overview.series.forecast')} ↓`,
      data: [...pad, ...forecast.map((p) => round(p.lower))],
      dashed: true,
    },
  ])
}

/** The retention chart (ages 1 … maxAge); null without observed cohorts. */
export function retentionOption(fits: AnalyticsFits, t: Translate): Record<string, unknown> | null {
  const r = fits.retention
  const observed = r.points.filter((p) => p.t >= 1 && p.weight > 0)
  if (observed.length === 0) return null
  const ages = Array.from({ length: r.maxAge }, (_, i) => i + 1)
  const model = r.better === 'floor' ? r.floor : (r.exponentialOnShares ?? r.floor)
  const share = new Map(observed.map((p) => [p.t, p.share]))
  const ref: Record<number, number> = {
    1: fits.reference.d1,
    7: fits.reference.d7,
    30: fits.reference.d30,
  }
  const round = (v: number) => Math.round(v * 10_000) / 10_000
  const series = [
    { name: t('overview.series.observed'), data: ages.map((a) => share.get(a) ?? null) },
    ...(model
      ? [
          {
            name: `${t('overview.series.fitted')} (${model.model})`,
            data: ages.map((a) => round(model.b + (1 - model.b) * Math.exp(-model.m * a))),
            dashed: true,
          },
        ]
      : []),
    {
      name: t('overview.series.reference'),
      data: ages.map((a) => ref[a] ?? null),
      dashed: true,
    },
  ]
  const option = lineOption(
    ages.map((a) => t('overview.age', { days: a })),
    series,
    { yAxis: { type: 'value', min: 0, max: 1 } },
  )
  // The reference has three points: draw them joined, with their markers.
  const refSeries = (option.series as Record<string, unknown>[]).at(-1)!
  Object.assign(refSeries, { connectNulls: true, showSymbol: true, symbolSize: 8 })
  return option
}
