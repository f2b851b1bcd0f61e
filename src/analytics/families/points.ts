/**
 * The points ledger of a day: what was issued, spent and expired by rule, purchase points released
 * from frozen, the stocks at the day's end (available = the liability, frozen = purchase points
 * not yet released), and the activities' participation awards (the ledger entries
 * `awardParticipants` writes, keyed `activity:<id>:<occurrence>:<member>`) — one pass over the
 * day's ledger for all.
 *
 * Issued, spent and expired are available entries only: frozen purchase points (待到账) are issued
 * when released (rule `points_release`), and the outstanding stock is Σ `points_balance`, which
 * frozen points are not part of; the frozen stock is Σ `points_frozen`. Points expire when
 * POINTS_EXPIRY is on: the `expire-points` job writes one `points_expiry` entry per member and day
 * (src/community/points-expiry.ts), counted in `points.expired` and not in `points.spent` — a
 * member spent nothing.
 */
import { sql } from 'kysely'
import {
  changeRange,
  type DailyFigure,
  type Family,
  type MetricSpec,
  pointsAppids,
  type Stock,
  stock,
} from './day-scope.js'

const points = (about: string, agg: MetricSpec['agg'] = 'sum'): MetricSpec => ({
  unit: 'points',
  agg,
  about,
})

/** A balance of the members' (`points_balance`, `points_frozen`): Σ now, or Σ its ledger entries. */
const balance = (
  column: 'points_balance' | 'points_frozen',
  state: 'available' | 'frozen',
): Stock => ({
  now: () => sql`coalesce(sum(${sql.ref(column)}), 0)`,
  change: (s, from, through) => sql`(select coalesce(sum(delta), 0) from points_ledger
    where appid in ${pointsAppids(s)} and state = ${state} and ${changeRange(from, through)})`,
})
const POINTS_STOCKS = {
  'points.outstanding': balance('points_balance', 'available'),
  'points.frozen': balance('points_frozen', 'frozen'),
}

export const pointsFamily: Family = {
  metrics: {
    'points.issued': points(
      'available points added [ledger rule: checkin, daily_login, friend_invite, grant, ' +
        'points_release (purchase points when released), activity_<key>, redeem_refund, mp_link_in …]',
    ),
    'points.spent': points(
      'available points taken, expiry aside [ledger rule: redeem (redeemed for rewards), ' +
        'checkin_makeup, deduct, moderator_deduct, purchase_refund, mp_link_out …]',
    ),
    'points.expired': points(
      'available points that expired that day (POINTS_EXPIRY; ledger rule points_expiry)',
    ),
    'points.released': points('frozen purchase points released to members that day'),
    'points.frozen': points(
      'frozen purchase points not yet released at the end of the day',
      'last',
    ),
    'points.outstanding': points('available points held by members at the end of the day', 'last'),
    'activities.awarded': {
      unit: 'count',
      agg: 'sum',
      about: 'participation awards: members awarded for an occurrence [activity key]',
    },
    'activities.points_awarded': points('points awarded to participants [activity key]'),
  },
  query: (s) => {
    // The account's ledger and members, its mini program's too (their purchase points, frozen
    // and released, and what they earn there are the account's, as their orders are).
    const appids = pointsAppids(s)
    return sql<DailyFigure>`
    with l as (
      select rule, delta, state, idempotency_key like 'activity:%' as award from points_ledger
      where appid in ${appids} and day = ${s.day}::date
    ), a as (
      select rule, delta, award from l where state = 'available'
    ), aw as (
      select substr(rule, 10) as activity, delta from a where award and delta > 0
    )
    select 'points.issued' as metric, coalesce(rule, '') as dim, sum(delta)::float8 as value
    from a where delta > 0 group by grouping sets ((), (rule))
    having count(*) > 0
    union all
    select 'points.spent', coalesce(rule, ''), sum(-delta)::float8
    from a where delta < 0 and rule <> 'points_expiry' group by grouping sets ((), (rule))
    having count(*) > 0
    union all
    select 'points.expired', '', coalesce(sum(-delta), 0)::float8
    from a where rule = 'points_expiry'
    union all
    select 'points.released', '', coalesce(sum(delta), 0)::float8
    from a where rule = 'points_release'
    union all
    select 'points.outstanding', '', ${stock(
      s,
      'points.outstanding',
      POINTS_STOCKS['points.outstanding'],
      sql`(select coalesce(sum(delta), 0) from a)`,
    )}
    union all
    select 'points.frozen', '', ${stock(
      s,
      'points.frozen',
      POINTS_STOCKS['points.frozen'],
      sql`(select coalesce(sum(delta), 0) from l where state = 'frozen')`,
    )}
    union all
    select 'activities.awarded', coalesce(activity, ''), count(*)::float8
    from aw group by grouping sets ((), (activity))
    having count(*) > 0 or grouping(activity) = 1
    union all
    select 'activities.points_awarded', coalesce(activity, ''), coalesce(sum(delta), 0)::float8
    from aw group by grouping sets ((), (activity))
    having count(*) > 0 or grouping(activity) = 1`
  },
  stocks: POINTS_STOCKS,
}
