/**
 * The 40-day community of the end-to-end analytics test (forty-days.test.ts), as a deterministic
 * script: who follows when and how (invite, poster QR, search), who is active on which day and does
 * what (签到, a message, a menu click, 邀请), who leaves, who buys and what is refunded. The test
 * plays it through the real entry points and computes every expected figure from it
 * (forty-days-expected.ts), never from the product's SQL.
 */
import { rng } from '../../test/prng.js'
import { addDays } from '../community/community-time.js'

/** Day 0 of the simulation, a Monday (week cohorts start on it). */
export const DAY0 = '2026-10-05'
export const DAYS = 40
/** The campaign: created on day 29, sent on day 30 at 08:30, conversions over 3 days. */
export const CAMPAIGN = { createDay: 29, sendDay: 30, sendMinute: 8 * 60 + 30, conversionDays: 3 }
/** Alerts are evaluated at these minutes of the two days (the second a week after the first). */
export const ALERT_DAYS = [31, 38] as const
export const ALERT_MINUTES = [720, 750, 780, 810] as const
/** The hour some of day 38's actives wait for: after the 13:00 repeat, before the 13:30 check. */
export const LATE_MINUTE = 13 * 60 + 15
export const PRICES = { tea: 990, book: 4900, course: 19_900 } as const
export type Sku = keyof typeof PRICES

/** The instant of a local (Asia/Shanghai, UTC+8) time: day n of the simulation, minute, second. */
export const at = (day: number, minute: number, second = 0) =>
  new Date(Date.parse(`${DAY0}T00:00:00+08:00`) + ((day * 1440 + minute) * 60 + second) * 1000)
/** The community day n, `YYYY-MM-DD`. */
export const dayName = (n: number) => addDays(DAY0, n)

export type Source = 'invite' | 'qr' | 'organic'
/** A member action through the webhook (a follow, a check-in, a message, a click, 邀请). */
export type ActionKind = 'follow' | 'checkin' | 'text' | 'click' | 'share'
export type Step =
  | { kind: ActionKind; day: number; minute: number; openid: string }
  | { kind: 'unfollow'; day: number; minute: number; openid: string }
  | { kind: 'order'; day: number; minute: number; openid: string; sku: Sku; no: number }
  | { kind: 'refund'; day: number; minute: number; order: number; fen: number }

/** Who took a step (a refund is the operator's). */
export const actor = (s: Step) => ('openid' in s ? s.openid : '')

export interface ScriptMember {
  openid: string
  followDay: number
  source: Source
  inviter?: string
  core: boolean
}

export interface Script {
  members: ScriptMember[]
  /** In the order they happen; the steps of one minute happen together (a member's in order). */
  steps: Step[]
  moderator: string
}

const ORDERS: { day: number; core: number; sku: Sku }[] = [
  { day: 4, core: 1, sku: 'tea' },
  { day: 6, core: 4, sku: 'book' },
  { day: 9, core: 7, sku: 'tea' },
  { day: 12, core: 1, sku: 'book' },
  { day: 15, core: 10, sku: 'tea' },
  { day: 18, core: 13, sku: 'course' },
  { day: 20, core: 4, sku: 'tea' },
  { day: 22, core: 16, sku: 'book' },
  { day: 25, core: 19, sku: 'tea' },
  { day: 27, core: 2, sku: 'tea' },
  { day: 30, core: 5, sku: 'book' },
  { day: 32, core: 8, sku: 'tea' },
  { day: 34, core: 11, sku: 'book' },
  { day: 36, core: 14, sku: 'tea' },
  { day: 39, core: 17, sku: 'course' },
]
/** Order 1 (day 6) refunded in full on day 7; order 7 (day 22) refunded 20 元 on day 24. */
const REFUNDS = [
  { day: 7, order: 1, fen: PRICES.book },
  { day: 24, order: 7, fen: 2000 },
]

/** Builds the script from a seed: about 100 members, 21 of them a loyal core. */
export function buildScript(seed = 16): Script {
  const rnd = rng(seed)
  const members: ScriptMember[] = [
    { openid: 'o40_mod', followDay: 0, source: 'organic', core: true },
  ]
  const core = Array.from({ length: 21 }, (_, i) => ({
    openid: `o40_core${i}`,
    followDay: i % 3,
    source: (i % 2 === 0 ? 'organic' : 'qr') as Source,
    core: true,
  }))
  members.push(...core)
  const churn = new Map<string, number>()
  const shares: { day: number; openid: string }[] = []
  for (let d = 0; d < DAYS; d++) {
    const n = 1 + Math.floor(rnd() * 2) + Math.floor(d / 14)
    // every fourth day from day 1 a core member of day 0 shares; two of the day's followers are theirs
    const sharer = d % 4 === 1 ? core[3 * ((d >> 2) % 7)]!.openid : undefined
    if (sharer) shares.push({ day: d, openid: sharer })
    for (let i = 0; i < n; i++) {
      const openid = `o40_d${d}_${i}`
      const source: Source = sharer && i < 2 ? 'invite' : rnd() < 0.4 ? 'qr' : 'organic'
      members.push({
        openid,
        followDay: d,
        source,
        inviter: source === 'invite' ? sharer : undefined,
        core: false,
      })
      if (rnd() < 0.2) churn.set(openid, d + 1 + Math.floor(rnd() * 8))
    }
  }
  // who is active on which day after following (the follow day itself is the follow)
  const active = new Map<string, Set<number>>()
  for (const m of members) {
    const days = new Set<number>()
    const last = Math.min(DAYS - 1, churn.get(m.openid) ?? DAYS - 1)
    for (let d = m.followDay + 1; d <= last; d++) {
      const age = d - m.followDay
      const p = m.openid === 'o40_mod' ? 1 : m.core ? 0.75 : 0.55 * Math.exp(-age / 4) + 0.04
      if (rnd() < p) days.add(d)
    }
    active.set(m.openid, days)
  }
  const raw: Step[] = []
  const acts = (m: ScriptMember, d: number, minute: number) => {
    const checkin = m.openid === 'o40_mod' ? false : rnd() < 0.7
    raw.push({ kind: checkin ? 'checkin' : 'text', day: d, minute, openid: m.openid })
    if (rnd() < 0.08) raw.push({ kind: 'click', day: d, minute, openid: m.openid })
  }
  // Alerts: day 31's actives are the baseline (all in the morning); on day 38 enough of the
  // actives wait until 13:15 for the morning to be down by more than 10 %, and the whole day not.
  const activeOn = (d: number) =>
    members.filter((m) => m.followDay === d || active.get(m.openid)!.has(d)).length
  const baseline = activeOn(ALERT_DAYS[0])
  for (const m of core) if (activeOn(38) < baseline) active.get(m.openid)!.add(38)
  const late = new Set(
    members
      .filter((m) => m.followDay < 38 && active.get(m.openid)!.has(38))
      .slice(-(activeOn(38) - Math.floor(0.8 * baseline)))
      .map((m) => m.openid),
  )
  for (let d = 0; d < DAYS; d++) {
    for (const s of shares.filter((x) => x.day === d))
      raw.push({ kind: 'share', day: d, minute: 9 * 60, openid: s.openid })
    for (const m of members.filter((x) => x.followDay === d)) {
      raw.push({ kind: 'follow', day: d, minute: 9 * 60 + 1, openid: m.openid })
      if (rnd() < 0.5) acts(m, d, 9 * 60 + 2)
    }
    for (const m of members)
      if (active.get(m.openid)!.has(d))
        acts(m, d, d === 38 && late.has(m.openid) ? LATE_MINUTE : 9 * 60 + 30)
    for (const [openid, day] of churn)
      if (day === d) raw.push({ kind: 'unfollow', day: d, minute: 21 * 60, openid })
  }
  for (const [no, o] of ORDERS.entries()) {
    const openid = core[o.core]!.openid
    raw.push({ kind: 'order', day: o.day, minute: 15 * 60, openid, sku: o.sku, no })
  }
  for (const r of REFUNDS) raw.push({ kind: 'refund', minute: 16 * 60, ...r })
  const steps = raw.sort((a, b) => a.day - b.day || a.minute - b.minute)
  return { members, steps, moderator: 'o40_mod' }
}
