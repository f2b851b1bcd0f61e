/** The GET form of 留存与分层: grain, source and current segment (empty: all). */

import type { CohortFilter } from '../../admin/reads/cohort-filter.js'
import { COHORT_SOURCES } from '../../analytics/cohort-query.js'
import { SEGMENTS } from '../../community/segments.js'
import type { MessageKey, Translate } from '../i18n.js'
import { SelectField } from './select.js'

/** The filter form; it keeps `appid` when the page was asked for one. */
export function CohortFilterForm(p: { filter: CohortFilter; t: Translate; appid?: string }) {
  const { t, filter } = p
  const key = (k: string) => k as MessageKey
  return (
    <form
      method="get"
      action="/console/retention"
      class="filters card"
      aria-label={t('retention.filter')}
    >
      {p.appid && <input type="hidden" name="appid" value={p.appid} />}
      <SelectField
        id="f-grain"
        name="grain"
        label={t('retention.grain')}
        value={filter.grain}
        options={[
          ['day', t('retention.grain.day')],
          ['week', t('retention.grain.week')],
        ]}
      />
      <SelectField
        id="f-source"
        name="source"
        label={t('retention.source')}
        value={filter.source}
        options={[
          ['', t('retention.source.all')],
          ...COHORT_SOURCES.map((s): [string, string] => [s, t(key(`retention.source.${s}`))]),
        ]}
      />
      <SelectField
        id="f-segment"
        name="segment"
        label={t('retention.segment')}
        value={filter.segment}
        options={[
          ['', t('retention.segment.all')],
          ...SEGMENTS.map((s): [string, string] => [s, t(key(`retention.seg.${s}`))]),
        ]}
      />
      <button type="submit">{t('retention.apply')}</button>
    </form>
  )
}
