/**
 * Linking a person's identity on another channel (a WeCom userid in a group, …) to their member:
 * the follower sends 绑定 in the OA chat and gets a six-digit code valid ten minutes; sending
 * `绑定 <code>` from the other channel links that identity, once (the code is used up by one
 * conditional update, which records who used it). Linking again moves the identity to the new
 * member. The same sender sending the used code again (a retried message) is still linked by it.
 */
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.js'
import type { RateLimit } from './rate-buckets.js'

const CODE_MINUTES = 10

/**
 * Binding codes are six digits, live ten minutes and shared by every door that takes one (the
 * mini program's /bind, `绑定 <code>` in a WeCom or bridged group): a code a guesser hits links
 * their identity to someone else's member. Each door lets a person try a few, then one a minute,
 * bounds each place (a client address, a group chat) the same way after twenty, and all doors
 * together share {@link ALL_BINDING_ATTEMPTS}: a guesser with many identities and places gets
 * ~8,600 tries a day. The trade-off: guessers from six or more places at once keep that shared
 * bucket empty, and everyone's binding is refused ("retry in N s") while they do.
 */
export const BIND_LIMITS = {
  perPerson: { perSecond: 1 / 60, burst: 5 },
  perPlace: { perSecond: 1 / 60, burst: 20 },
  all: { perSecond: 0.1, burst: 30 },
} satisfies Record<string, RateLimit>

/** The rate bucket every binding attempt takes from, whatever its door (see {@link BIND_LIMITS}). */
export const ALL_BINDING_ATTEMPTS = 'bind:all'

/** Issues a binding code for a member. */
export async function issueBindingCode(db: Kysely<Database>, memberId: number, now: Date) {
  for (let attempt = 0; attempt < 10; attempt++) {
    const n = crypto.getRandomValues(new Uint32Array(1))[0]! % 1_000_000
    const code = String(n).padStart(6, '0')
    // A code still live for someone else is not reused; an expired or used one is.
    await db
      .deleteFrom('binding_codes')
      .where('code', '=', code)
      .where((eb) => eb.or([eb('expires_at', '<=', now), eb('used_at', 'is not', null)]))
      .execute()
    const row = await db
      .insertInto('binding_codes')
      .values({
        code,
        member_id: memberId,
        expires_at: new Date(now.getTime() + CODE_MINUTES * 60_000),
      })
      .onConflict((oc) => oc.column('code').doNothing())
      .returning('code')
      .executeTakeFirst()
    if (row) return { code, minutes: CODE_MINUTES }
  }
  throw new Error('no binding code available; try again')
}

/**
 * Links `(channel, externalId)` to the member who holds `code`; null when the code is not valid.
 * A code this very identity used, and which still links it (its retried message: nothing to do),
 * answers that member again and changes nothing; for anyone else a used code is not valid.
 */
export async function bindIdentity(
  db: Kysely<Database>,
  r: { channel: string; externalId: string; code: string; now: Date },
): Promise<{ memberId: number } | null> {
  const usedBy = `${r.channel}:${r.externalId}`
  return db.transaction().execute(async (trx) => {
    const used = await trx
      .updateTable('binding_codes')
      .set({ used_at: r.now, used_by: usedBy })
      .where('code', '=', r.code)
      .where('used_at', 'is', null)
      .where('expires_at', '>', r.now)
      .returning('member_id')
      .executeTakeFirst()
    if (!used) {
      const again = await trx
        .selectFrom('binding_codes as c')
        .innerJoin('member_identities as i', 'i.member_id', 'c.member_id')
        .select('c.member_id')
        .where('c.code', '=', r.code)
        .where('c.used_by', '=', usedBy)
        .where('i.channel', '=', r.channel)
        .where('i.external_id', '=', r.externalId)
        .executeTakeFirst()
      return again ? { memberId: again.member_id } : null
    }
    await trx
      .insertInto('member_identities')
      .values({
        channel: r.channel,
        external_id: r.externalId,
        member_id: used.member_id,
        linked_at: r.now,
      })
      .onConflict((oc) =>
        oc
          .columns(['channel', 'external_id'])
          .doUpdateSet({ member_id: used.member_id, linked_at: r.now }),
      )
      .execute()
    return { memberId: used.member_id }
  })
}

/** The member behind an identity, if linked. */
export function memberByIdentity(db: Kysely<Database>, channel: string, externalId: string) {
  return db
    .selectFrom('member_identities')
    .innerJoin('members', 'members.id', 'member_identities.member_id')
    .selectAll('members')
    .where('member_identities.channel', '=', channel)
    .where('member_identities.external_id', '=', externalId)
    .executeTakeFirst()
}
