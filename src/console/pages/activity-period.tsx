/** An occurrence (`period`: its first day) in words, and the occurrences before and after it. */
import { occurrenceOf } from '../../community/activities.js'
import { addDays } from '../../community/community-time.js'
import type { Translate } from '../i18n.js'

type Cadence = 'daily' | 'weekly' | 'monthly'

/** The first day of the occurrence after `period`'s. */
export function nextPeriod(cadence: Cadence, period: string) {
  return occurrenceOf(
    cadence,
    addDays(period, cadence === 'daily' ? 1 : cadence === 'weekly' ? 7 : 32),
  )
}

/** The first day of the occurrence before `period`'s. */
export const previousPeriod = (cadence: Cadence, period: string) =>
  occurrenceOf(cadence, addDays(period, -1))

/** `12-02`, `11-30 至 12-06 这周` or `2026-12 月`. */
export function PeriodLabel(p: { t: Translate; cadence: Cadence; period: string }) {
  const { t, period } = p
  if (p.cadence === 'daily') return <>{t('activities.periodDaily', { day: period })}</>
  if (p.cadence === 'weekly')
    return (
      <>
        {t('activities.periodWeekly', { from: period.slice(5), to: addDays(period, 6).slice(5) })}
      </>
    )
  return <>{t('activities.periodMonthly', { month: period.slice(0, 7) })}</>
}
