/**
 * The lease on a claim of another channel's event (the bridge, WeCom customer-contact callbacks):
 * how a claim whose process died is told from one whose process is still working on it.
 *
 * A claim is `processing` with `claimed_at` set when it is made or taken back
 * (inbound-events.ts). The attempt holding it renews `claimed_at` while it works
 * ({@link holdClaim}); a `processing` claim not renewed for {@link INBOUND_CLAIM_LEASE_MS} belongs to
 * a process that died (SIGKILL, OOM, a deploy), and the sender's next retry takes it back
 * (`retakeEvent`, one conditional UPDATE: one retry wins) and handles the event as of its first
 * receipt. `received_at` cannot be the lease clock: a claim taken back keeps the first receipt on
 * purpose. A claim with no `claimed_at` (made before migration 0062) counts by `received_at`.
 *
 * Times are the app's clock (`Clock`), as `received_at` is: instances are assumed NTP-synchronised
 * (a skew of s shortens or lengthens the lease by s; well under a second in practice).
 */
import type { Kysely } from 'kysely'
import type { Clock } from '../clock.js'
import type { Database } from '../db/schema.js'
import type { Logger } from '../logger.js'
import type { InboundKey } from './inbound-events.js'

/**
 * How long a `processing` claim is left to the attempt holding it after it was made, taken back or
 * last renewed: 8 s.
 *
 * **Not a bound on handling.** Handling has no useful bound: a WeCom `add_member` event calls
 * `groupchat/get` twice (moderators, then joins), and each call may take four tries of 5 s
 * (the API client's timeout and retries) plus back-off and a token fetch — a minute or more; a
 * database lock wait has no bound at all. A lease longer than that would outlive every retry the
 * senders make. So the holder renews `claimed_at` every third of the lease ({@link holdClaim},
 * as the job runner and the outbox renew theirs), and the lease must only exceed the longest a
 * *live* holder can go without renewing: the renewal interval (2.7 s) plus a late renewal — an
 * UPDATE's round trip, a wait for a pooled connection, a stalled event loop — 5.3 s of slack.
 * A live attempt, however slow, is therefore not taken over while its renewals reach the database
 * (one cut off from it for a whole lease is, and logs `INBOUND_CLAIM_LOST`).
 *
 * **Short enough for the senders' retries.** WeCom's callback retries are assumed to be the
 * official account's (../shared/protocol/wecom-groups.md §3.1: a 5 s timeout, three deliveries in
 * all, ~0, 5 and 10 s after the first), and a retry finding the event held keeps trying to take it
 * back for `waitMs` (4 s, inside WeCom's 5 s): the second delivery until ~9 s, the third until
 * ~14 s. So a claim last made or renewed within ~1 s of the first delivery — handling usually takes
 * milliseconds, so that is where a crash lands — is taken back by the second delivery, one renewed
 * up to ~6 s after it by the third. The bridge answers a retry that finds the event held 503
 * `STILL_PROCESSING` (`Retry-After: 5`): a bridge tool that keeps resending for at least 15 s gets
 * every event handled.
 */
export const INBOUND_CLAIM_LEASE_MS = 8_000

/** How the attempt holding a claim keeps it ({@link holdClaim}). */
export interface ClaimHold {
  /** The claim's `claimed_at` as made or taken back: a renewal moves only this claim. */
  claimedAt: Date
  clock: Clock
  /** The lease ({@link INBOUND_CLAIM_LEASE_MS} unless a test injects a shorter one). */
  leaseMs: number
  logger: Logger
}

/**
 * Runs `work` (the event's handling) while renewing the claim every third of the lease, so no
 * retry takes it over while this process lives. A renewal moves the row only while it is still
 * this attempt's (`processing` with the `claimed_at` this attempt last wrote); one that finds it
 * taken over (its renewals failed for a whole lease) stops and logs `INBOUND_CLAIM_LOST`.
 * @example const answer = await holdClaim(db, key, { claimedAt: now, clock, leaseMs, logger }, () => handle(e))
 */
export async function holdClaim<T>(
  db: Kysely<Database>,
  key: InboundKey,
  hold: ClaimHold,
  work: () => Promise<T>,
): Promise<T> {
  let mine = hold.claimedAt
  let done = false
  let renewing = false
  const fields = { appid: key.appid, dedupeKey: key.dedupeKey }
  const renew = setInterval(() => {
    // One renewal at a time: a slow one is not overtaken by the next, which would miss its fence.
    if (renewing) return
    renewing = true
    const at = hold.clock.now()
    db.updateTable('inbound_events')
      .set({ claimed_at: at })
      .where('appid', '=', key.appid)
      .where('dedupe_key', '=', key.dedupeKey)
      .where('status', '=', 'processing')
      .where('claimed_at', '=', mine)
      .returning('dedupe_key')
      .executeTakeFirst()
      .then((row) => {
        if (row) mine = at
        else if (!done) {
          clearInterval(renew)
          hold.logger.warn('inbound claim lost: another attempt took the event over', {
            code: 'INBOUND_CLAIM_LOST',
            ...fields,
          })
        }
      })
      .catch((error: unknown) =>
        hold.logger.warn('inbound claim not renewed', {
          code: 'INBOUND_CLAIM_RENEWAL_FAILED',
          ...fields,
          error,
        }),
      )
      .finally(() => {
        renewing = false
      })
  }, hold.leaseMs / 3)
  try {
    return await work()
  } finally {
    done = true
    clearInterval(renew)
  }
}
