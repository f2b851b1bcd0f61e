/**
 * Refusing password guessing, counted in the database (so every instance sees every failure): a
 * name with `perName` failures, or a client address with `perAddress`, within `windowMs` is
 * refused sign-in — even with the right password — until the oldest of them ages out.
 */
import type { Kysely } from 'kysely'
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

/** Whether sign-in for `name` from `address` is refused now. */
export async function loginThrottled(
  db: Kysely<Database>,
  o: { name: string; address: string; now: Date; limits?: LoginThrottleLimits },
): Promise<boolean> {
  const limits = o.limits ?? DEFAULT_LOGIN_LIMITS
  const since = new Date(o.now.getTime() - limits.windowMs)
  const count = (column: 'name' | 'client_address', value: string) =>
    db
      .selectFrom('console_login_failures')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where(column, '=', value)
      .where('failed_at', '>', since)
      .executeTakeFirstOrThrow()
      .then((r) => Number(r.n))
  const [byName, byAddress] = await Promise.all([
    count('name', o.name),
    count('client_address', o.address),
  ])
  return byName >= limits.perName || byAddress >= limits.perAddress
}

/** Records one failed sign-in, and forgets failures older than a day. */
export async function recordLoginFailure(
  db: Kysely<Database>,
  o: { name: string; address: string; now: Date },
): Promise<void> {
  await db
    .insertInto('console_login_failures')
    .values({ name: o.name.slice(0, 100), client_address: o.address, failed_at: o.now })
    .execute()
  await db
    .deleteFrom('console_login_failures')
    .where('failed_at', '<', new Date(o.now.getTime() - 86_400_000))
    .execute()
}

/** Clears a name's failures after a successful sign-in. */
export async function clearLoginFailures(db: Kysely<Database>, name: string): Promise<void> {
  await db.deleteFrom('console_login_failures').where('name', '=', name).execute()
}
