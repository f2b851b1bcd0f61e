/**
 * Advice: the account's figures read against the plan's optimisation rules (advice-rules.ts). Each
 * piece of advice carries the figure that triggered it (in its title too), its priority and the
 * suggestions with their actions. Figures are over complete community days (up to yesterday):
 *
 *   activeVsBaseline  average daily active members of the last 7 days ÷ that of the 28 days
 *                     before (rollups: `activity.dau` of built days)
 *   conversion        members who paid in the 30 days ending with the last built day ÷ members
 *                     active in them (rollup `activity.mau` of that day; payers from the orders)
 *   d7Retention       of members who first followed 8–37 days ago, those active on their 7th day
 *                     after the follow (the cohort cells at age 7, `cohort_retention`)
 *
 * Before the nightly job has built a day (a new install), conversion and d7Retention are read
 * from the facts instead — the only reads that scan them, and only while there is little to scan.
 *   aovFen            GMV ÷ orders over the last 30 days (rollups: `commerce.*`)
 *
 * A figure is not judged below its rule's sample (too few to mean anything), and conversion only
 * for an account with a shop (any product).
 */
import { type Kysely, sql } from 'kysely'
import type { Locale } from '../bot/i18n.js'
import { addDays, localDay } from '../community/community-time.js'
import type { Database } from '../db/schema.js'
import { ADVICE_RULES, type AdviceKey } from './advice-rules.js'
import { dayText } from './series.js'

/** A figure with the counts behind it; `sample` is what the rule's `minSample` is compared with. */
export interface AdviceFigure {
  value: number
  sample: number
  params: Record<string, string | number>
}

export type AdviceFigures = Record<
  'activeVsBaseline' | 'conversion' | 'd7Retention' | 'aovFen',
  AdviceFigure | null
>

/** One piece of advice. */
export interface Advice {
  rule: AdviceKey
  area: string
  priority: 'high' | 'medium'
  figure: { name: string; value: number; threshold: number; sample: number }
  title: string
  suggestions: {
    text: string
    action: { label: string; api?: { method: string; path: string }; console: string }
  }[]
}

const pct = (x: number) => `${(Math.round(x * 10_000) / 100).toFixed(2)}%`
const yuan = (fen: number) => (Math.round(fen) / 100).toFixed(2)

/** The advice that applies to `figures`, high priority first. */
export function adviseFrom(figures: AdviceFigures, o: { appid: string; locale: Locale }): Advice[] {
  const out: Advice[] = []
  for (const rule of ADVICE_RULES) {
    const f = figures[rule.figure]
    if (!f || f.sample < rule.minSample || !(f.value < rule.below)) continue
    out.push({
      rule: rule.key,
      area: rule.area[o.locale],
      priority: f.value < rule.severe ? 'high' : 'medium',
      figure: { name: rule.figure, value: f.value, threshold: rule.below, sample: f.sample },
      title: rule.title[o.locale].replace(/\{(\w+)\}/g, (m, k: string) =>
        k in f.params ? String(f.params[k]) : m,
      ),
      suggestions: rule.suggestions.map((s) => ({
        text: s.text[o.locale],
        action: {
          label: s.action.label[o.locale],
          ...(s.action.api
            ? {
                api: {
                  method: s.action.api.method,
                  path: `/admin/api/accounts/${o.appid}/${s.action.api.path}`,
                },
              }
            : {}),
          console: s.action.console,
        },
      })),
    })
  }
  return out.sort((a, b) => (a.priority === b.priority ? 0 : a.priority === 'high' ? -1 : 1))
}

/** Reads the figures advice is judged on (see the file comment). */
export async function readAdviceFigures(
  db: Kysely<Database>,
  q: { appid: string; now: Date; timeZone: string },
): Promise<AdviceFigures> {
  const today = localDay(q.now, q.timeZone)
  const yesterday = addDays(today, -1)
  const monthAgo = addDays(today, -30)

  const dau = await db
    .selectFrom('analytics_daily as a')
    .innerJoin('analytics_days as b', (j) =>
      j.onRef('b.appid', '=', 'a.appid').onRef('b.day', '=', 'a.day'),
    )
    .select([
      sql<number>`avg(a.value) filter (where a.day >= ${addDays(today, -7)}::date)`.as('recent'),
      sql<number>`count(*) filter (where a.day >= ${addDays(today, -7)}::date)`.as('recent_days'),
      sql<number>`avg(a.value) filter (where a.day < ${addDays(today, -7)}::date)`.as('baseline'),
      sql<number>`count(*) filter (where a.day < ${addDays(today, -7)}::date)`.as('baseline_days'),
    ])
    .where('a.appid', '=', q.appid)
    .where('a.metric', '=', 'activity.dau')
    .where('a.dim', '=', '')
    .where('a.day', '>=', addDays(today, -35))
    .where('a.day', '<=', yesterday)
    .executeTakeFirstOrThrow()
  const recent = Number(dau.recent ?? 0)
  const baseline = Number(dau.baseline ?? 0)
  const activeVsBaseline =
    Number(dau.recent_days) >= 5 && Number(dau.baseline_days) >= 14 && baseline > 0
      ? {
          value: recent / baseline,
          sample: baseline,
          params: {
            recent: recent.toFixed(1),
            baseline: baseline.toFixed(1),
            ratio: pct(recent / baseline),
          },
        }
      : null

  const c = await conversionCounts(db, { ...q, today, yesterday })
  const conversion =
    c.shop && c.actives > 0
      ? {
          value: c.payers / c.actives,
          sample: c.actives,
          params: { rate: pct(c.payers / c.actives), payers: c.payers, actives: c.actives },
        }
      : null

  const r = await d7Counts(db, { appid: q.appid, today })
  const d7Retention =
    r.cohort > 0
      ? {
          value: r.retained / r.cohort,
          sample: r.cohort,
          params: { rate: pct(r.retained / r.cohort), retained: r.retained, cohort: r.cohort },
        }
      : null

  const money = await db
    .selectFrom('analytics_daily')
    .select([
      sql<number>`coalesce(sum(value) filter (where metric = 'commerce.gmv_fen'), 0)`.as('gmv'),
      sql<number>`coalesce(sum(value) filter (where metric = 'commerce.orders'), 0)`.as('orders'),
    ])
    .where('appid', '=', q.appid)
    .where('metric', 'in', ['commerce.gmv_fen', 'commerce.orders'])
    .where('dim', '=', '')
    .where('day', '>=', monthAgo)
    .where('day', '<=', yesterday)
    .executeTakeFirstOrThrow()
  const orders = Number(money.orders)
  const aovFen =
    orders > 0
      ? {
          value: Number(money.gmv) / orders,
          sample: orders,
          params: { aov: yuan(Number(money.gmv) / orders), orders },
        }
      : null

  return { activeVsBaseline, conversion, d7Retention, aovFen }
}

/** The account's advice now, with the figures it was judged on. */
export async function advise(
  db: Kysely<Database>,
  q: { appid: string; now: Date; timeZone: string; locale: Locale },
) {
  const figures = await readAdviceFigures(db, q)
  return { figures, advice: adviseFrom(figures, q) }
}

/**
 * Payers ÷ actives over the 30 days ending with the last built day (≤ yesterday): actives are that
 * day's `activity.mau`; with no day built, the 30 days before today counted from the facts.
 */
async function conversionCounts(
  db: Kysely<Database>,
  q: { appid: string; timeZone: string; today: string; yesterday: string },
): Promise<{ shop: boolean; actives: number; payers: number }> {
  const mau = await db
    .selectFrom('analytics_daily')
    .select(['day', 'value'])
    .where('appid', '=', q.appid)
    .where('metric', '=', 'activity.mau')
    .where('dim', '=', '')
    .where('day', '<=', q.yesterday)
    .orderBy('day', 'desc')
    .limit(1)
    .executeTakeFirst()
  const end = mau ? dayText(mau.day) : q.yesterday
  const start = addDays(end, -29)
  const actives = mau
    ? sql`${mau.value}::float8`
    : sql`(select count(distinct member_id) from member_days
        where appid = ${q.appid} and day between ${start}::date and ${end}::date)`
  const { rows } = await sql<{ shop: boolean; actives: number; payers: number }>`
    select exists (select 1 from products where appid = ${q.appid}) as shop,
      ${actives}::int as actives,
      (select count(distinct member_id)::int from orders
        where appid = ${q.appid} and status in ('paid', 'refunded')
          and paid_at >= (${start}::date::timestamp at time zone ${q.timeZone})
          and paid_at < ((${end}::date + 1)::timestamp at time zone ${q.timeZone})) as payers`.execute(
    db,
  )
  const r = rows[0]!
  return { shop: r.shop, actives: Number(r.actives), payers: Number(r.payers) }
}

/**
 * Members who first followed 8–37 days ago and those of them active on their 7th day: the day
 * cells at age 7 (all sources) of the cohorts built; with none built, counted from the facts.
 */
async function d7Counts(
  db: Kysely<Database>,
  q: { appid: string; today: string },
): Promise<{ cohort: number; retained: number }> {
  const from = addDays(q.today, -37)
  const to = addDays(q.today, -8)
  const built = await db
    .selectFrom('cohort_days')
    .select('day')
    .where('appid', '=', q.appid)
    .where('cells_built_at', 'is not', null)
    .limit(1)
    .executeTakeFirst()
  const { rows } = built
    ? await sql<{ cohort: number; retained: number }>`
      select coalesce(sum(cohort_size), 0)::int as cohort, coalesce(sum(retained), 0)::int as retained
      from cohort_retention
      where appid = ${q.appid} and grain = 'day' and source = '' and age = 7
        and cohort_start between ${from}::date and ${to}::date`.execute(db)
    : await sql<{ cohort: number; retained: number }>`
      select count(*)::int as cohort, count(d.member_id)::int as retained
      from follow_events f
      left join member_days d on d.appid = f.appid and d.member_id = f.member_id
        and d.day = f.day + 7
      where f.appid = ${q.appid} and f.kind = 'follow'
        and f.day between ${from}::date and ${to}::date
        and not exists (select 1 from follow_events e where e.member_id = f.member_id
          and e.kind = 'follow' and (e.at < f.at or (e.at = f.at and e.id < f.id)))`.execute(db)
  const r = rows[0]!
  return { cohort: Number(r.cohort), retained: Number(r.retained) }
}
