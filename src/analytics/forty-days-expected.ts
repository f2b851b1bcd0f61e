/**
 * The figures the 40-day script (forty-days-script.ts) must produce, computed from the script in
 * plain TypeScript — the definitions of rollup.ts, cohorts.ts, fit.ts and advice.ts restated, not
 * their SQL run again.
 */
import { addDays, weekStart } from '../community/community-time.js'
import { actor, DAYS, dayName, PRICES, type Script, type Source } from './forty-days-script.js'

const ACTIONS = new Set(['follow', 'checkin', 'text', 'click', 'share'])
const MESSAGES = new Set(['checkin', 'text', 'share'])
const range = (from: number, to: number) =>
  Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i)

/** Who did what on which day, read off the script. */
export function factsOf(script: Script) {
  const byDay = range(0, DAYS - 1).map((d) => script.steps.filter((s) => s.day === d))
  const member = new Map(script.members.map((m) => [m.openid, m]))
  const orders = script.steps.flatMap((s) => (s.kind === 'order' ? [s] : []))
  /** member_days: a member action through the webhook, or a paid order. */
  const active = byDay.map(
    (steps) =>
      new Set(steps.flatMap((s) => (ACTIONS.has(s.kind) || s.kind === 'order' ? [actor(s)] : []))),
  )
  const checkins = byDay.map((steps) => steps.filter((s) => s.kind === 'checkin').map(actor))
  const firstCheckin = new Map<string, number>()
  checkins.forEach((list, d) => {
    for (const o of list) if (!firstCheckin.has(o)) firstCheckin.set(o, d)
  })
  return { byDay, member, orders, active, checkins, firstCheckin }
}
export type Facts = ReturnType<typeof factsOf>

/** `metric|dim` → value for one day, the metrics of rollup.ts this test checks. */
export function expectedDay(f: Facts, d: number): Map<string, number> {
  const out = new Map<string, number>()
  const add = (metric: string, dim: string, v: number) =>
    out.set(`${metric}|${dim}`, (out.get(`${metric}|${dim}`) ?? 0) + v)
  const steps = f.byDay[d]!
  // followers
  let total = 0
  for (let x = 0; x <= d; x++)
    for (const s of f.byDay[x]!) total += s.kind === 'follow' ? 1 : s.kind === 'unfollow' ? -1 : 0
  let net = 0
  for (const s of steps)
    if (s.kind === 'follow' || s.kind === 'unfollow') {
      const metric = s.kind === 'follow' ? 'followers.new' : 'followers.unfollowed'
      add(metric, '', 1)
      add(metric, f.member.get(actor(s))!.source, 1)
      net += s.kind === 'follow' ? 1 : -1
    }
  add('followers.net', '', net)
  add('followers.total', '', total)
  // activity
  const dau = f.active[d]!.size
  const distinct = (from: number) =>
    new Set(range(Math.max(0, from), d).flatMap((x) => [...f.active[x]!])).size
  const texts = steps.filter((s) => MESSAGES.has(s.kind))
  const messaging = new Set(texts.map(actor)).size
  add('activity.dau', '', dau)
  add('activity.wau', '', distinct(d - 6))
  add('activity.mau', '', distinct(d - 29))
  add('activity.messages', '', texts.length)
  add('activity.messages_per_active', '', messaging === 0 ? 0 : texts.length / messaging)
  add('checkins.participants', '', f.checkins[d]!.length)
  // points issued (available entries), by rule
  const issue = (rule: string, n: number) => {
    add('points.issued', '', n)
    add('points.issued', rule, n)
  }
  const logins = new Set(steps.filter((s) => ACTIONS.has(s.kind)).map(actor)).size
  if (logins > 0) issue('daily_login', 10 * logins)
  for (const o of f.checkins[d]!) {
    issue('checkin', 5)
    let streak = 1
    while (f.checkins[d - streak]?.includes(o)) streak++
    if (streak === 7) issue('streak_bonus', 20)
    if (streak === 30) issue('streak_bonus', 100)
    const inviter = f.member.get(o)!.inviter
    if (inviter && f.firstCheckin.get(o) === d) issue('friend_invite', 50)
  }
  // commerce
  const paid = f.orders.filter((o) => o.day === d)
  const gmv = paid.reduce((n, o) => n + PRICES[o.sku], 0)
  const payers = new Set(paid.map((o) => o.openid))
  const repeat = [...payers].filter((p) => f.orders.some((o) => o.openid === p && o.day < d))
  add('commerce.orders', '', paid.length)
  add('commerce.gmv_fen', '', gmv)
  add('commerce.paying_members', '', payers.size)
  add('commerce.aov_fen', '', paid.length ? gmv / paid.length : 0)
  add('commerce.repeat_rate', '', payers.size ? repeat.length / payers.size : 0)
  const refunds = steps.flatMap((s) => (s.kind === 'refund' ? [s] : []))
  add('commerce.refunds', '', refunds.length)
  add(
    'commerce.refunds_fen',
    '',
    refunds.reduce((n, r) => n + r.fen, 0),
  )
  // invites: K = i × conv × c (rollup.ts): c = sharers / DAU, i = attributed / sharers,
  // conv = qualified that day / attributed that day
  const sharers = new Set(steps.filter((s) => s.kind === 'share').map(actor)).size
  const attributed = steps.filter(
    (s) => s.kind === 'follow' && f.member.get(actor(s))!.inviter,
  ).length
  const qualified = f.checkins[d]!.filter(
    (o) => f.member.get(o)!.inviter && f.firstCheckin.get(o) === d,
  ).length
  const c = dau === 0 ? 0 : sharers / dau
  const i = sharers === 0 ? 0 : attributed / sharers
  const conv = attributed === 0 ? 0 : qualified / attributed
  add('invites.sharers', '', sharers)
  add('invites.follows', '', attributed)
  add('invites.attributed', '', attributed)
  add('invites.qualified', '', qualified)
  add('invites.share_rate', '', c)
  add('invites.per_sharer', '', i)
  add('invites.conversion', '', conv)
  add('invites.k_factor', '', i * conv * c)
  return out
}

export interface CohortRowExpected {
  start: string
  size: number
  retained: (number | null)[]
}

/**
 * The retention triangle (cohorts.ts): a member's cohort is their first follow day; retained at
 * age k = active on follow day + k (grain day) or on any of days 7k … 7k + 6 after their own follow
 * day (grain week, cohorts by Monday, a cell known 7k + 12 days after the Monday). Cells exist up
 * to the last day built, day `built`.
 */
export function expectedTriangle(
  f: Facts,
  o: { grain: 'day' | 'week'; maxAge: number; built: number; source?: Source },
): CohortRowExpected[] {
  const cohorts = new Map<number, string[]>()
  for (const m of f.member.values()) {
    if (o.source && m.source !== o.source) continue
    const start = o.grain === 'day' ? m.followDay : m.followDay - (m.followDay % 7) // day 0 is a Monday
    cohorts.set(start, [...(cohorts.get(start) ?? []), m.openid])
  }
  const activeIn = (openid: string, from: number, to: number) =>
    range(from, to).some((x) => f.active[x]?.has(openid))
  const rows: CohortRowExpected[] = []
  for (const [start, ids] of [...cohorts].sort((a, b) => a[0] - b[0])) {
    const retained = range(0, o.maxAge).map((k) => {
      if (o.grain === 'day')
        return start + k <= o.built ? ids.filter((id) => f.active[start + k]!.has(id)).length : null
      if (start + 7 * k + 12 > o.built) return null
      return ids.filter((id) => {
        const own = f.member.get(id)!.followDay
        return activeIn(id, own + 7 * k, own + 7 * k + 6)
      }).length
    })
    if (retained.some((r) => r !== null))
      rows.push({ start: dayName(start), size: ids.length, retained })
  }
  return rows
}

/** Sanity of the week arithmetic above: DAY0 is a Monday. */
export const day0IsMonday = () =>
  weekStart(dayName(0)) === dayName(0) && addDays(dayName(0), 7) === dayName(7)

/** ln R(t) = a + k·t by ordinary least squares (fit.ts fitGrowth), on the values > 0. */
export function olsSlope(points: { t: number; value: number }[]) {
  const ps = points.filter((p) => p.value > 0)
  const n = ps.length
  const tm = ps.reduce((s, p) => s + p.t, 0) / n
  const ym = ps.reduce((s, p) => s + Math.log(p.value), 0) / n
  let sxy = 0
  let sxx = 0
  for (const p of ps) {
    sxy += (p.t - tm) * (Math.log(p.value) - ym)
    sxx += (p.t - tm) ** 2
  }
  const k = sxy / sxx
  return { k, r0: Math.exp(ym - k * tm), n }
}

/**
 * r(t) = e^{−mt} by weighted least squares on ln r through the origin (the plan's L(t) = 1 − e^{−mt}):
 * m = −Σ w·t·ln r / Σ w·t², over the pooled shares at ages 1 … maxAge (w = members observed).
 */
export function retentionM(rows: CohortRowExpected[], maxAge: number) {
  let num = 0
  let den = 0
  const points: { t: number; share: number; weight: number }[] = []
  for (let t = 1; t <= maxAge; t++) {
    const reached = rows.filter((r) => r.retained[t] !== null && r.retained[t] !== undefined)
    if (reached.length === 0) continue
    const size = reached.reduce((n, r) => n + r.size, 0)
    const kept = reached.reduce((n, r) => n + r.retained[t]!, 0)
    points.push({ t, share: kept / size, weight: size })
    if (kept > 0) {
      num += size * t * Math.log(kept / size)
      den += size * t * t
    }
  }
  return { m: -num / den, points }
}

/** Φ(z) by Simpson's rule on the normal density (independent of the product's erf approximation). */
export function normalCdf(z: number) {
  const steps = 20_000
  const h = Math.abs(z) / steps
  const pdf = (x: number) => Math.exp(-(x * x) / 2) / Math.sqrt(2 * Math.PI)
  let s = pdf(0) + pdf(Math.abs(z))
  for (let i = 1; i < steps; i++) s += (i % 2 ? 4 : 2) * pdf(i * h)
  const half = (s * h) / 3
  return z >= 0 ? 0.5 + half : 0.5 - half
}

/** The two-proportion z-test (pooled standard error), two-sided. */
export function twoProportion(a: { n: number; x: number }, b: { n: number; x: number }) {
  const p = (a.x + b.x) / (a.n + b.n)
  const z = (a.x / a.n - b.x / b.n) / Math.sqrt(p * (1 - p) * (1 / a.n + 1 / b.n))
  return { z, pValue: 2 * (1 - normalCdf(Math.abs(z))) }
}
