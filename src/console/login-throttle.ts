/**
 * Refusing password guessing, counted in the database (so every instance sees every failure): a
 * name with `perName` failures, or a client address with `perAddress`, within `windowMs` is
 * refused sign-in — even with the right password — until the oldest of them ages out. An attempt
 * takes its slot before its password is checked ({@link claimLoginAttempt}), so simultaneous
 * guesses are counted too.
 */
import { type Kysely, sql } from 'kysely'
import type { Database } from '../db/schema.js'

export interface LoginThrottleLimits {
  windowMs: number
  perName: number
  perAddress: number
}

/** 5 failures per name, 10 per address (an office shares one), in 15 minutes. */
export const DEFAULT_LOGIN_LIMITS: LoginThrottleLimits = {
  windowMs: 15 * 60_000,
  perName: 5,
  perAddress: 10,
}

/**
 * Takes one sign-in attempt's slot for `name` from `address`, before its password is checked:
 * `false` when the name or the address already used its slots in the window (refused, nothing
 * recorded), else `true` with the attempt recorded as a failure — a successful sign-in then clears
 * it ({@link clearLoginFailures}). Counting and recording are one step, serialized per name and
 * per address by transaction-scoped advisory locks (a name's lock always before an address's, so
 * two attempts never wait on each other in a cycle): simultaneous guesses cannot all be counted
 * before any is recorded, so a window never sees more than `perName` / `perAddress` guesses.
 * Also forgets attempts older than a day.
 * @example if (!(await claimLoginAttempt(db, { name, address, now }))) return tooMany()
 */
export async function claimLoginAttempt(
  db: Kysely<Database>,
  o: { name: string; address: string; now: Date; limits?: LoginThrottleLimits },
): Promise<boolean> {
  const limits = o.limits ?? DEFAULT_LOGIN_LIMITS
  const since = new Date(o.now.getTime() - limits.windowMs)
  const name = o.name.slice(0, 100)
  const claimed = await db.transaction().execute(async (trx) => {
    // two-key advisory locks: class 1 = names, class 2 = addresses (not the one-key space of the
    // recompute locks)
    await sql`select pg_advisory_xact_lock(1, hashtext(${name}::text))`.execute(trx)
    await sql`select pg_advisory_xact_lock(2, hashtext(${o.address}::text))`.execute(trx)
    const count = async (column: 'name' | 'client_address', value: string) => {
      const r = await trx
        .selectFrom('console_login_failures')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where(column, '=', value)
        .where('failed_at', '>', since)
        .executeTakeFirstOrThrow()
      return Number(r.n)
    }
    if ((await count('name', name)) >= limits.perName) return false
    if ((await count('client_address', o.address)) >= limits.perAddress) return false
    await trx
      .insertInto('console_login_failures')
      .values({ name, client_address: o.address, failed_at: o.now })
      .execute()
    return true
  })
  await db
    .deleteFrom('console_login_failures')
    .where('failed_at', '<', new Date(o.now.getTime() - 86_400_000))
    .execute()
  return claimed
}

/** Clears a name's failures after a successful sign-in. */
export async function clearLoginFailures(db: Kysely<Database>, name: string): Promise<void> {
  await db.deleteFrom('console_login_failures').where('name', '=', name).execute()
}
