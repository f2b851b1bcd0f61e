/**
 * Advice: the account's figures read against the plan's optimisation rules (advice-rules.ts). Each
 * piece of advice carries the figure that triggered it (in its title too), its priority and the
 * suggestions with their actions. Figures are over complete community days (up to yesterday):
 *
 *   activeVsBaseline  average daily active members of the last 7 days ÷ that of the 28 days
 *                     before (rollups: `activity.dau` of built days)
 *   conversion        members who paid in the last 30 days ÷ members active in them (facts)
 *   d7Retention       of members who first followed 8–37 days ago, those active on their 7th day
 *                     after the follow (follow_events, member_days)
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

  const { rows: conv } = await sql<{ shop: boolean; actives: number; payers: number }>`
    select exists (select 1 from products where appid = ${q.appid}) as shop,
      (select count(distinct member_id)::int from member_days
        where appid = ${q.appid} and day between ${monthAgo}::date and ${yesterday}::date) as actives,
      (select count(distinct member_id)::int from orders
        where appid = ${q.appid} and status in ('paid', 'refunded')
          and paid_at >= (${monthAgo}::date::timestamp at time zone ${q.timeZone})
          and paid_at < (${today}::date::timestamp at time zone ${q.timeZone})) as payers`.execute(
    db,
  )
  const c = conv[0]!
  const conversion =
    c.shop && Number(c.actives) > 0
      ? {
          value: Number(c.payers) / Number(c.actives),
          sample: Number(c.actives),
          params: {
            rate: pct(Number(c.payers) / Number(c.actives)),
            payers: Number(c.payers),
            actives: Number(c.actives),
          },
        }
      : null

  const { rows: ret } = await sql<{ cohort: number; retained: number }>`
    select count(*)::int as cohort, count(d.member_id)::int as retained
    from follow_events f
    left join member_days d on d.appid = f.appid and d.member_id = f.member_id
      and d.day = f.day + 7
    where f.appid = ${q.appid} and f.kind = 'follow'
      and f.day between ${addDays(today, -37)}::date and ${addDays(today, -8)}::date
      and not exists (select 1 from follow_events e where e.member_id = f.member_id
        and e.kind = 'follow' and (e.at < f.at or (e.at = f.at and e.id < f.id)))`.execute(db)
  const r = ret[0]!
  const d7Retention =
    Number(r.cohort) > 0
      ? {
          value: Number(r.retained) / Number(r.cohort),
          sample: Number(r.cohort),
          params: {
            rate: pct(Number(r.retained) / Number(r.cohort)),
            retained: Number(r.retained),
            cohort: Number(r.cohort),
          },
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
