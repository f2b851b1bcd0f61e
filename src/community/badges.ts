/**
 * Badges (徽章): recognition for what a member has done, as data.
 *
 * A badge rule (`badge_rules`; appid '*' holds the defaults, an account's row with the same key
 * overrides one) names a badge and a *predicate over counters* — no SQL: `{ counter: 'streak',
 * atLeast: 7 }`, or `{ all: [...] }` / `{ any: [...] }` of those. Every counter only grows (or
 * is the best ever reached), so a predicate, once true, stays true: a badge missed by a crash is
 * awarded at the next fact of its kind.
 *
 * Rules are evaluated where the fact happens — a check-in, an invite qualifying, an order paid, an
 * activity award — by one call, {@link awardBadges}, with the counters that fact changed; only
 * rules reading one of those counters are looked at, and only those the member does not hold
 * yet. An award is a row in `member_badges`, whose primary key (member, badge) makes it happen
 * once whatever runs in parallel. The caller announces new badges in its reply; without a reply
 * (the fact came from somebody else, a payment or an operator) the notice goes through the outbox.
 */
import { type Kysely, type RawBuilder, sql, type Transaction } from 'kysely'
import * as v from 'valibot'
import { type Translate, translator } from '../bot/i18n.js'
import type { Database } from '../db/schema.js'
import { notifyMember } from './notify.js'

type Db = Kysely<Database> | Transaction<Database>

/** The counters a predicate may read. Each only grows (or is the best value ever reached). */
export const COUNTERS = ['streak', 'checkins', 'invites', 'purchases', 'activity_awards'] as const
export type Counter = (typeof COUNTERS)[number]

/** A badge's condition: a counter threshold, or all / any of several conditions. */
export type BadgePredicate =
  | { counter: Counter; atLeast: number }
  | { all: BadgePredicate[] }
  | { any: BadgePredicate[] }

/** How deep `all` / `any` may nest, and how many conditions each may hold. */
const MAX_DEPTH = 3
const MAX_PARTS = 8

const depth = (p: BadgePredicate): number =>
  'counter' in p ? 1 : 1 + Math.max(0, ...('all' in p ? p.all : p.any).map(depth))

const parts = v.pipe(
  v.array(v.lazy(() => predicateShape)),
  v.minLength(1, 'must list at least one condition'),
  v.maxLength(MAX_PARTS, `must list at most ${MAX_PARTS} conditions`),
)
const predicateShape: v.GenericSchema<BadgePredicate> = v.union(
  [
    v.strictObject({
      counter: v.picklist(COUNTERS, `counter: one of ${COUNTERS.join(', ')}`),
      atLeast: v.pipe(
        v.number(),
        v.integer('atLeast: a whole number'),
        v.minValue(1, 'atLeast: at least 1'),
        v.maxValue(1_000_000, 'atLeast: at most 1000000'),
      ),
    }),
    v.strictObject({ all: parts }),
    v.strictObject({ any: parts }),
  ],
  'must be { counter, atLeast }, { all: [...] } or { any: [...] }',
)

/** A valid predicate (shape, counters, thresholds, nesting at most 3 deep). */
export const badgePredicate = v.pipe(
  predicateShape,
  v.check((p) => depth(p) <= MAX_DEPTH, `nests at most ${MAX_DEPTH} deep`),
)

/** The counters a predicate reads. */
export function countersOf(p: BadgePredicate, into = new Set<Counter>()): Set<Counter> {
  if ('counter' in p) into.add(p.counter)
  else for (const q of 'all' in p ? p.all : p.any) countersOf(q, into)
  return into
}

/** Whether the predicate holds for these counter values (a missing counter counts as 0). */
export function holds(p: BadgePredicate, values: Partial<Record<Counter, number>>): boolean {
  if ('counter' in p) return (values[p.counter] ?? 0) >= p.atLeast
  return 'all' in p ? p.all.every((q) => holds(q, values)) : p.any.some((q) => holds(q, values))
}

/** The query for a member's counter as the database knows it now (`n`). */
function counterQuery(memberId: number, counter: Counter) {
  switch (counter) {
    case 'streak': // the best streak ever reached
      return sql<{
        n: unknown
      }>`select max(streak) as n from checkins where member_id = ${memberId}`
    case 'checkins':
      return sql<{ n: unknown }>`select count(*) as n from checkins where member_id = ${memberId}`
    case 'invites':
      return sql<{ n: unknown }>`select count(*) as n from invites
        where inviter_member_id = ${memberId} and status = 'qualified'`
    case 'purchases':
      return sql<{ n: unknown }>`select purchase_count as n from members where id = ${memberId}`
    case 'activity_awards': // awards by activity (their rule is activity_<key>)
      return sql<{ n: unknown }>`select count(*) as n from points_ledger
        where member_id = ${memberId} and rule like 'activity\\_%' and delta > 0`
  }
}

async function readCounter(db: Db, memberId: number, counter: Counter): Promise<number> {
  const { rows } = await counterQuery(memberId, counter).execute(db)
  return Number(rows[0]?.n ?? 0)
}

/** A badge as members see it. */
export interface Badge {
  key: string
  name: string
  description: string
}

/**
 * What a fact changed: counter → its new value when the fact site knows it, or `null` for "it
 * changed, read it". Only rules reading one of these counters are evaluated.
 * @example { streak: 7, checkins: null } // a check-in
 */
export type BadgeFacts = Partial<Record<Counter, number | null>>

/**
 * Awards the member every badge this fact earned, once each (`member_badges`' primary key). Returns
 * the badges this call awarded — announce them in the reply, or pass `outbox: true` when there is
 * no reply to the member: each is then sent as a customer-service notice through the outbox, in the
 * caller's transaction, in `t`'s language (default zh-CN, the house default).
 *
 * @example const badges = await awardBadges(db, memberId, { streak: 7, checkins: null }, { now })
 */
export async function awardBadges(
  db: Db,
  memberId: number,
  facts: BadgeFacts,
  o: { now: Date; outbox?: boolean; t?: Translate },
): Promise<Badge[]> {
  if (Object.keys(facts).length === 0) return []
  const { rows } = await sql<{
    rules: BadgeCandidate[]
  }>`select ${badgeCandidates(memberId)} as rules`.execute(db)
  return awardBadgesFrom(db, memberId, facts, rows[0]?.rules ?? [], o)
}

/** A rule {@link badgeCandidates} returns: not held yet, enabled, with the member's account. */
export type BadgeCandidate = Badge & { appid: string; openid: string; predicate: unknown }

/**
 * An expression (jsonb array of {@link BadgeCandidate}, by position then key) for the member's
 * effective, enabled rules they do not hold yet (account rows over '*' defaults) — for a caller
 * that folds this read into a statement of its own (the check-in), then calls
 * {@link awardBadgesFrom}. `memberId` is a value, or a column of the caller's statement (the
 * batched check-in's).
 */
export function badgeCandidates(memberId: number | RawBuilder<number>) {
  return sql<BadgeCandidate[]>`(
    select coalesce(jsonb_agg(jsonb_build_object('appid', m.appid, 'openid', m.openid,
      'key', r.key, 'name', r.name, 'description', r.description, 'predicate', r.predicate)
      order by r.position, r.key), '[]'::jsonb)
    from members m
    cross join lateral (
      select distinct on (key) key, name, description, predicate, enabled, position
      from badge_rules where appid in (m.appid, '*')
      order by key, appid = '*'
    ) r
    where m.id = ${memberId} and r.enabled
      and not exists (
        select 1 from member_badges b where b.member_id = m.id and b.badge_key = r.key))`
}

/** {@link awardBadges} with the candidate rules already read ({@link badgeCandidates}). */
export async function awardBadgesFrom(
  db: Db,
  memberId: number,
  facts: BadgeFacts,
  rows: BadgeCandidate[],
  o: { now: Date; outbox?: boolean; t?: Translate },
): Promise<Badge[]> {
  const changed = new Set(Object.keys(facts) as Counter[])
  if (changed.size === 0) return []
  const candidates = rows.flatMap((r) => {
    const parsed = v.safeParse(badgePredicate, r.predicate)
    if (!parsed.success) return [] // written before validation existed: never awarded
    const reads = countersOf(parsed.output)
    return [...reads].some((c) => changed.has(c))
      ? [Object.assign({}, r, { predicate: parsed.output, reads })]
      : []
  })
  if (candidates.length === 0) return []
  const values: Partial<Record<Counter, number>> = {}
  for (const c of new Set(candidates.flatMap((r) => [...r.reads]))) {
    const known = facts[c]
    values[c] = typeof known === 'number' ? known : await readCounter(db, memberId, c)
  }
  const earned = candidates.filter((r) => holds(r.predicate, values))
  if (earned.length === 0) return []
  const { appid, openid } = earned[0]!
  const inserted = await db
    .insertInto('member_badges')
    .values(
      earned.map((r) => ({ member_id: memberId, badge_key: r.key, appid, awarded_at: o.now })),
    )
    .onConflict((oc) => oc.columns(['member_id', 'badge_key']).doNothing())
    .returning('badge_key')
    .execute()
  const won = new Set(inserted.map((r) => r.badge_key))
  const awarded = earned
    .filter((r) => won.has(r.key))
    .map(({ key, name, description }) => ({ key, name, description }))
  if (o.outbox) {
    const t = o.t ?? translator('zh-CN')
    for (const badge of awarded) {
      await notifyMember(db, {
        appid,
        openid,
        source: `badge:${badge.key}`,
        text: badgeLine(t, badge),
        now: o.now,
      })
    }
  }
  return awarded
}

/** The line announcing a new badge. */
export const badgeLine = (t: Translate, b: Badge) =>
  t(b.description ? 'badge.awarded' : 'badge.awardedBare', {
    name: b.name,
    description: b.description,
  })

/** The badges a member holds, oldest first, with the names their rules give them now. */
export async function memberBadges(
  db: Db,
  memberId: number,
): Promise<(Badge & { awardedAt: Date })[]> {
  const { rows } = await sql<Badge & { awarded_at: Date | string }>`
    select b.badge_key as key, coalesce(r.name, b.badge_key) as name,
      coalesce(r.description, '') as description, b.awarded_at
    from member_badges b
    left join lateral (
      select name, description from badge_rules
      where key = b.badge_key and appid in (b.appid, '*')
      order by appid = '*' limit 1
    ) r on true
    where b.member_id = ${memberId}
    order by b.awarded_at, b.badge_key`.execute(db)
  return rows.map(({ awarded_at, ...b }) => Object.assign(b, { awardedAt: new Date(awarded_at) }))
}

/** A badge rule in effect for an account, as operators see it. */
export interface BadgeRule extends Badge {
  predicate: BadgePredicate | null
  enabled: boolean
  position: number
  /** True when the account has its own row (else the '*' default applies). */
  overridden: boolean
  /** Members of the account holding it. */
  holders: number
}

/** The badge rules in effect for an account (its rows over the '*' defaults), disabled ones too. */
export async function effectiveBadgeRules(db: Db, appid: string): Promise<BadgeRule[]> {
  const { rows } = await sql<{
    appid: string
    key: string
    name: string
    description: string
    predicate: unknown
    enabled: boolean
    position: number
    holders: number | string
  }>`
    select r.*, (select count(*) from member_badges b
      where b.appid = ${appid} and b.badge_key = r.key) as holders
    from (
      select distinct on (key) appid, key, name, description, predicate, enabled, position
      from badge_rules where appid in (${appid}, '*')
      order by key, appid = '*'
    ) r
    order by r.position, r.key`.execute(db)
  return rows.map((r) => {
    const parsed = v.safeParse(badgePredicate, r.predicate)
    return {
      key: r.key,
      name: r.name,
      description: r.description,
      predicate: parsed.success ? parsed.output : null,
      enabled: r.enabled,
      position: r.position,
      overridden: r.appid === appid,
      holders: Number(r.holders),
    }
  })
}
