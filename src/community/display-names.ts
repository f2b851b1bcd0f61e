/**
 * Display names: what the ranking (and 我的) calls a member. A member may set one with `昵称`; it is
 * trimmed and checked (1–16 characters, one line, no control or invisible direction characters, no
 * refused word). A member without one is shown by a short tag derived from their openid
 * (`粉丝·a1b2`): stable, and revealing nothing of the openid itself.
 */
import type { Kysely } from 'kysely'
import type { Translate } from '../bot/i18n.js'
import type { Database, Member } from '../db/schema.js'

/** The longest display name, in characters (code points; `char_length` in the database agrees). */
export const DISPLAY_NAME_MAX = 16

/**
 * Words a display name may not contain: names that would pass for the community's staff. Letters
 * are compared case-insensitively and full-width forms as their ASCII twins (NFKC); ASCII words
 * match whole words only (so `badminton` is not `admin`).
 */
export const DENIED_NAME_WORDS: readonly string[] = [
  '管理员',
  '官方',
  '客服',
  '圈子小助手',
  'admin',
  'official',
]

/**
 * The deny-list hook: the refused word a name contains, if any.
 * @example deniedNameWord('官方小号') // '官方'
 */
export function deniedNameWord(
  name: string,
  words: readonly string[] = DENIED_NAME_WORDS,
): string | undefined {
  const folded = name.normalize('NFKC').toLowerCase().replace(/\s+/gu, '')
  const spaced = name.normalize('NFKC').toLowerCase()
  return words.find((word) => {
    const w = word.normalize('NFKC').toLowerCase()
    if (/^[a-z0-9]+$/.test(w)) return new RegExp(`(^|[^a-z0-9])${w}($|[^a-z0-9])`).test(spaced)
    return folded.includes(w.replace(/\s+/gu, ''))
  })
}

/** Control characters, line and paragraph separators, and invisible direction marks. */
const FORBIDDEN =
  /[\p{Cc}\p{Zl}\p{Zp}\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/u

/** Why a display name was refused, or the cleaned name. */
export type DisplayNameCheck =
  | { ok: true; name: string }
  | { ok: false; reason: 'empty' | 'too_long' | 'control' }
  | { ok: false; reason: 'denied'; word: string }

/**
 * Trims and checks a display name as typed.
 * @example validateDisplayName('  小明 ') // { ok: true, name: '小明' }
 */
export function validateDisplayName(
  raw: string,
  deny: (name: string) => string | undefined = deniedNameWord,
): DisplayNameCheck {
  const name = raw.trim()
  if (name === '') return { ok: false, reason: 'empty' }
  if (FORBIDDEN.test(name)) return { ok: false, reason: 'control' }
  if ([...name].length > DISPLAY_NAME_MAX) return { ok: false, reason: 'too_long' }
  const word = deny(name)
  if (word !== undefined) return { ok: false, reason: 'denied', word }
  return { ok: true, name }
}

/**
 * A short, stable tag for a member without a display name: four hex digits of an FNV-1a hash of
 * the openid (the translation puts it in `粉丝·{tag}`).
 * @example nameTag('o6_bmjrPTlm6_2sgVt7hMZOPfL2M') // e.g. 'a1b2'
 */
export function nameTag(openid: string): string {
  let hash = 0x811c9dc5
  for (let i = 0; i < openid.length; i++) {
    hash ^= openid.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return (hash >>> 0).toString(16).padStart(8, '0').slice(0, 4)
}

/** How a member without a display name is shown: `粉丝·a1b2` in the locale. */
export function maskedName(openid: string, t: Translate): string {
  return t('leaderboard.member', { tag: nameTag(openid) })
}

/** How a member is shown to others: their display name, else the masked tag. */
export function shownName(m: Pick<Member, 'openid' | 'display_name'>, t: Translate): string {
  return m.display_name ?? maskedName(m.openid, t)
}

/** Stores a member's display name (already validated). */
export async function setDisplayName(db: Kysely<Database>, memberId: number, name: string) {
  await db.updateTable('members').set({ display_name: name }).where('id', '=', memberId).execute()
}
