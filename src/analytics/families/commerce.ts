/**
 * Commerce: paid orders, GMV, paying members, AOV, ARPU (per DAU), ARPPU, the repeat-purchase
 * rate (payers of the day who had paid before) and successful refunds. Money is integer fen.
 */
import { sql } from 'kysely'
import {
  count,
  type DailyFigure,
  dayWindow,
  type Family,
  type MetricSpec,
  ratio,
} from './day-scope.js'

const fen = (about: string, agg: MetricSpec['agg'] = 'sum'): MetricSpec => ({
  unit: 'fen',
  agg,
  about,
})

export const commerce: Family = {
  metrics: {
    'commerce.orders': count('orders paid that day (refunded later included)'),
    'commerce.gmv_fen': fen('their paid total'),
    'commerce.paying_members': count('distinct members who paid'),
    'commerce.aov_fen': ratio('GMV ÷ orders', ['commerce.gmv_fen', 'commerce.orders'], {
      unit: 'fen',
    }),
    'commerce.arpu_fen': ratio('GMV ÷ DAU', ['commerce.gmv_fen', 'activity.dau'], { unit: 'fen' }),
    'commerce.arppu_fen': ratio(
      'GMV ÷ paying members',
      ['commerce.gmv_fen', 'commerce.paying_members'],
      { unit: 'fen' },
    ),
    'commerce.repeat_rate': ratio('paying members who had paid before ÷ paying members', [
      null,
      'commerce.paying_members',
    ]),
    'commerce.refunds': count('refunds that succeeded that day'),
    'commerce.refunds_fen': fen('their amount'),
  },
  query: (s) => {
    const w = dayWindow(s)
    return sql<DailyFigure>`
    with o as (
      select member_id, coalesce(paid_total_fen, amount_fen) as fen from orders
      where appid = ${s.appid} and paid_at >= ${w.start} and paid_at < ${w.end}
        and status in ('paid', 'refunded')
    ), r as (
      select r.amount_fen from refunds r join orders o on o.id = r.order_id
      where o.appid = ${s.appid} and r.status = 'success'
        and r.updated_at >= ${w.start} and r.updated_at < ${w.end}
    ), repeat as (
      select count(distinct o.member_id) as n from o
      where exists (select 1 from orders p where p.member_id = o.member_id
        and p.status in ('paid', 'refunded') and p.paid_at < ${w.start})
    ), d as (
      select ${s.dau}::float8 as dau
    ), t as (
      select count(*) as orders, coalesce(sum(fen), 0) as gmv, count(distinct member_id) as payers
      from o
    )
    select 'commerce.orders' as metric, '' as dim, orders::float8 as value from t
    union all select 'commerce.gmv_fen', '', gmv::float8 from t
    union all select 'commerce.paying_members', '', payers::float8 from t
    union all select 'commerce.aov_fen', '', case when orders = 0 then 0 else gmv::float8 / orders end from t
    union all select 'commerce.arppu_fen', '', case when payers = 0 then 0 else gmv::float8 / payers end from t
    union all select 'commerce.arpu_fen', '', case when d.dau = 0 then 0 else t.gmv::float8 / d.dau end from t, d
    union all select 'commerce.repeat_rate', '',
      case when t.payers = 0 then 0 else repeat.n::float8 / t.payers end from t, repeat
    union all select 'commerce.refunds', '', count(*)::float8 from r
    union all select 'commerce.refunds_fen', '', coalesce(sum(amount_fen), 0)::float8 from r`
  },
}
