/**
 * The member's profile (资料) and the `complete_profile` rule: nickname (the display name, checked
 * as `昵称` checks it), birthday month and city. When all three are filled — through the mini
 * program or the chat (`资料 生日 5月`) — the member earns the rule's points once (default 30,
 * cap `ever`, and one idempotency key per member).
 */
import type { Kysely, Transaction } from 'kysely'
import type { Database, Member } from '../db/schema.js'
import { type DisplayNameCheck, validateDisplayName } from './display-names.js'
import { awardRule, withMemberLocked } from './points-ledger.js'

/** The profile fields `complete_profile` asks for, in the order the chat prompts them. */
export const PROFILE_FIELDS = ['nickname', 'birthMonth', 'city'] as const
export type ProfileField = (typeof PROFILE_FIELDS)[number]

/** The longest city name, in characters. */
export const CITY_MAX = 20

const CN_MONTHS = ['一', '二', '三', '四', '五', '六', '七', '八', '九', '十', '十一', '十二']
const EN_MONTHS = [
  'january',
  'february',
  'march',
  'april',
  'may',
  'june',
  'july',
  'august',
  'september',
  'october',
  'november',
  'december',
]

/**
 * A birthday month as typed: `5`, `05`, `5月`, `五月`, `十二月份`, `May`, `Dec.` → 1–12, or null.
 * @example birthMonth('5月') // 5
 */
export function birthMonth(raw: string): number | null {
  const s = raw.trim().toLowerCase().normalize('NFKC')
  const digits = /^(\d{1,2}) ?(?:月份?)?$/.exec(s)?.[1]
  const chinese = /^([一二三四五六七八九十]{1,2})月份?$/.exec(s)?.[1]
  const english = /^([a-z]{3,9})\.?$/.exec(s)?.[1]
  const n = digits
    ? Number(digits)
    : chinese
      ? CN_MONTHS.indexOf(chinese) + 1
      : english
        ? EN_MONTHS.findIndex((m) => m.startsWith(english)) + 1
        : 0
  return n >= 1 && n <= 12 ? n : null
}

/**
 * Trims and checks a city: 1–{@link CITY_MAX} letters (any script), with spaces, `·`, `'`, `-` or
 * `.` between words; no digits, symbols or line breaks.
 * @example city(' 杭州 ') // '杭州'
 */
export function city(raw: string): string | null {
  const s = raw.trim().normalize('NFKC').replace(/ +/g, ' ')
  if ([...s].length > CITY_MAX) return null
  return /^\p{L}[\p{L}\p{M}]*(?:[ ·'.-]\p{L}[\p{L}\p{M}]*)*$/u.test(s) ? s : null
}

/** A profile change, each field already checked (nickname with `validateDisplayName`). */
export interface ProfileChange {
  nickname?: string
  birthMonth?: number
  city?: string
}

/** Why a typed field was refused, or its value. */
export type FieldCheck =
  | { ok: true; change: ProfileChange }
  | { ok: false; field: 'birthMonth' | 'city' }
  | { ok: false; field: 'nickname'; check: Exclude<DisplayNameCheck, { ok: true }> }

/** Checks one typed field. */
export function checkField(field: ProfileField, raw: string): FieldCheck {
  if (field === 'nickname') {
    const check = validateDisplayName(raw)
    return check.ok ? { ok: true, change: { nickname: check.name } } : { ok: false, field, check }
  }
  if (field === 'birthMonth') {
    const month = birthMonth(raw)
    return month ? { ok: true, change: { birthMonth: month } } : { ok: false, field }
  }
  const c = city(raw)
  return c ? { ok: true, change: { city: c } } : { ok: false, field }
}

/** The fields a member has not filled yet. */
export function missingFields(m: Pick<Member, 'display_name' | 'birth_month' | 'city'>) {
  const filled: Record<ProfileField, boolean> = {
    nickname: m.display_name !== null,
    birthMonth: m.birth_month !== null,
    city: m.city !== null,
  }
  return PROFILE_FIELDS.filter((f) => !filled[f])
}

/** What an update did: the member afterwards, and the points `complete_profile` gave now. */
export interface ProfileUpdate {
  member: Member
  missing: ProfileField[]
  /** Points awarded by this update (null: none now — incomplete, awarded before, or disabled). */
  awarded: number | null
}

/**
 * Applies a checked change to the member's profile and, when the profile is now complete, awards
 * `complete_profile` once (the member row is locked; the key `complete_profile:<id>` and the rule's
 * `ever` cap hold across channels and instances).
 */
export async function updateProfile(
  db: Kysely<Database>,
  memberId: number,
  change: ProfileChange,
  at: { now: Date; timeZone: string },
): Promise<ProfileUpdate> {
  return withMemberLocked(db, memberId, (trx, locked) => changeProfile(trx, locked, change, at))
}

/**
 * {@link updateProfile} in the caller's transaction, for a member the caller has locked
 * (`lockMember`): the mini program's writes lock the user's link first (shop/linked-member.ts).
 */
export async function changeProfile(
  trx: Transaction<Database>,
  locked: Member,
  change: ProfileChange,
  at: { now: Date; timeZone: string },
): Promise<ProfileUpdate> {
  const set = {
    ...(change.nickname !== undefined ? { display_name: change.nickname } : {}),
    ...(change.birthMonth !== undefined ? { birth_month: change.birthMonth } : {}),
    ...(change.city !== undefined ? { city: change.city } : {}),
  }
  const member =
    Object.keys(set).length === 0
      ? locked
      : await trx
          .updateTable('members')
          .set(set)
          .where('id', '=', locked.id)
          .returningAll()
          .executeTakeFirstOrThrow()
  const missing = missingFields(member)
  if (missing.length > 0) return { member, missing, awarded: null }
  // earned before by a mini-program member a 绑定 linked to this one: paid once, whoever filled it
  if (await profileRewarded(trx, member)) return { member, missing, awarded: null }
  const outcome = await awardRule(trx, member, {
    appid: member.appid,
    memberId: member.id,
    rule: 'complete_profile',
    idempotencyKey: `complete_profile:${member.id}`,
    reference: 'profile',
    now: at.now,
    timeZone: at.timeZone,
  })
  return { member, missing, awarded: outcome.status === 'applied' ? outcome.delta : null }
}

/**
 * Whether the member already earned `complete_profile` — or the own member of a mini-program user
 * linked to it did, before their 绑定 (src/shop/mp-link.ts moved its points and profile here): the
 * rule pays a person once.
 */
export async function profileRewarded(db: Kysely<Database>, m: Pick<Member, 'appid' | 'id'>) {
  const row = await db
    .selectFrom('points_ledger')
    .select('id')
    .where((eb) =>
      eb.or([
        eb.and([eb('appid', '=', m.appid), eb('idempotency_key', '=', `complete_profile:${m.id}`)]),
        eb.and([
          eb('rule', '=', 'complete_profile'),
          eb(
            'member_id',
            'in',
            eb
              .selectFrom('mp_users as u')
              .innerJoin('members as own', (j) =>
                j.onRef('own.appid', '=', 'u.appid').onRef('own.openid', '=', 'u.openid'),
              )
              .select('own.id')
              .where('u.member_id', '=', m.id)
              .where('own.id', '<>', m.id),
          ),
        ]),
      ]),
    )
    .limit(1)
    .executeTakeFirst()
  return row !== undefined
}
