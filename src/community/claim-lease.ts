/**
 * The lease on a claim in the inbound ledger (official-account pushes, the bridge, the WeCom AI bot
 * and customer-contact callbacks): how a claim whose process died is told from one whose process
 * is still working on it.
 *
 * A claim is `processing` with `claimed_at` set when it is made or taken back
 * (inbound-events.ts). The attempt holding it renews `claimed_at` while it works
 * ({@link holdClaim}); a `processing` claim not renewed for {@link INBOUND_CLAIM_LEASE_MS} belongs to
 * a process that died (SIGKILL, OOM, a deploy), and the sender's next retry takes it back
 * (`retakeEvent`, one conditional UPDATE: one retry wins) and handles the event as of its first
 * receipt. `received_at` cannot be the lease clock: a claim taken back keeps the first receipt on
 * purpose. A claim with no `claimed_at` counts by `received_at`: one made before migration 0062,
 * and an official-account push's claim until its first renewal — its claim statement
 * (`quanzi_receive`) writes `received_at` with the claim, which is the same instant, and leaves
 * `claimed_at` null, so the push path spends nothing on the lease but a timer.
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
 * last renewed: 12 s.
 *
 * **Not a bound on handling.** Handling has no useful bound: a WeCom `add_member` event calls
 * `groupchat/get` twice (moderators, then joins), and each call may take four tries of 5 s
 * (the API client's timeout and retries) plus back-off and a token fetch — a minute or more; a
 * database lock wait has no bound at all. A lease longer than that would outlive every retry the
 * senders make. So the holder renews `claimed_at` every quarter of the lease ({@link holdClaim},
 * as the job runner and the outbox renew theirs), and the lease must only exceed the longest a
 * *live* holder can go without renewing: one renewal that fails after waiting the pool's whole
 * connection timeout (5 s: a full pool, `PoolBusyError`) and the next one, a quarter later, that
 * gets through — 3 + 5 + 3 s, plus its round trip. A live attempt is therefore not taken over
 * while its renewals reach the database; one cut off from it for a whole lease may be — it logs
 * `INBOUND_CLAIM_LOST`, and its own answer is then not stored over the new holder's claim (the
 * completion is fenced on `claimed_at`, see {@link ClaimHold}).
 *
 * **Short enough for the senders' retries.** WeCom's callback retries are assumed to be the
 * official account's (protocol notes, wecom-groups.md §3.1: a 5 s timeout, three deliveries in
 * all, ~0, 5 and 10 s after the first), and a retry finding the event held keeps trying to take it
 * back for `waitMs` (4 s, inside WeCom's 5 s): the third delivery looks until ~14 s. So a claim last
 * made or renewed within ~2 s of the first delivery — handling usually takes milliseconds, so that
 * is where a crash lands — is taken back by WeCom's last delivery. The official account's own
 * retries are those (wechat-official-account.md §1.4), and its retry looks until its reply deadline
 * (`WECHAT_REPLY_DEADLINE_MS`, 4 s): an OA push's handling that dies is taken back by the third
 * delivery too, which answers the member (or, past its deadline, follows up). The bridge answers a retry that
 * finds the event held 503 `STILL_PROCESSING` (`Retry-After: 5`): a bridge tool that keeps
 * resending for at least 20 s gets every event handled.
 */
export const INBOUND_CLAIM_LEASE_MS = 12_000

/** How the attempt holding a claim keeps it ({@link holdClaim}). */
export interface ClaimHold {
  /**
   * The claim's `claimed_at`: as made or taken back, then as last renewed ({@link holdClaim} moves
   * it); null for an official-account push's claim not renewed yet. A renewal moves the row only
   * while it still holds this value, and so does the attempt's completion (`InboundStore.complete`'s
   * fence): an attempt whose claim was taken over stores nothing over the new holder's.
   */
  claimedAt: Date | null
  clock: Clock
  /** The lease ({@link INBOUND_CLAIM_LEASE_MS} unless a test injects a shorter one). */
  leaseMs: number
  logger: Logger
}

/** What {@link holdClaim} returns when its deadline passed before the work ended. */
export const PAST_DEADLINE: unique symbol = Symbol('past deadline')

/**
 * Runs `work` (the event's handling) while renewing the claim every quarter of the lease, so no
 * retry takes it over while this process reaches the database. A renewal moves the row only while
 * it is still this attempt's (`processing` with the `claimed_at` this attempt last wrote) and then
 * records the new value in `hold.claimedAt`; one that finds it taken over (its renewals failed for a
 * whole lease) stops and logs `INBOUND_CLAIM_LOST`. Returns after any renewal in flight has
 * settled, so `hold.claimedAt` is then the row's (what the completion is fenced on).
 *
 * With `deadline` (epoch ms on `hold.clock`), returns {@link PAST_DEADLINE} once it passes if the
 * work has not ended by then — the work goes on, no longer renewed (a push answered `success` is
 * deferred, and a deferred claim is never taken back). One timer serves the renewals and the
 * deadline: a push handled in milliseconds sets one and clears it.
 * @example const answer = await holdClaim(db, key, { claimedAt: now, clock, leaseMs, logger }, () => handle(e))
 */
export function holdClaim<T>(
  db: Kysely<Database>,
  key: InboundKey,
  hold: ClaimHold,
  work: () => Promise<T>,
): Promise<T>
export function holdClaim<T>(
  db: Kysely<Database>,
  key: InboundKey,
  hold: ClaimHold,
  work: () => Promise<T>,
  deadline: number,
): Promise<T | typeof PAST_DEADLINE>
export async function holdClaim<T>(
  db: Kysely<Database>,
  key: InboundKey,
  hold: ClaimHold,
  work: () => Promise<T>,
  deadline?: number,
): Promise<T | typeof PAST_DEADLINE> {
  let done = false
  let lost = false
  /** The renewal in flight: one at a time, so a slow one is not overtaken (it would miss its fence). */
  let renewing: Promise<void> | undefined
  const every = Math.max(1, hold.leaseMs / 4)
  // Offsets from now, in ms of the timer: renewals every quarter lease, then the deadline (as the
  // interval and the timeout this replaces counted them). Each timer is armed against the start, so
  // a tick run late (a busy event loop) does not make the next one — the deadline — late too.
  const start = performance.now()
  const until =
    deadline === undefined ? Infinity : Math.max(0, deadline - hold.clock.now().getTime())
  let nextRenewal = every
  let armedFor = 0
  let timer: ReturnType<typeof setTimeout> | undefined
  let passed: (() => void) | undefined
  const renew = () => {
    const at = hold.clock.now()
    renewing = renewClaim(db, key, hold.claimedAt, at)
      .then((renewed) => {
        if (renewed) hold.claimedAt = at
        else if (!done) {
          // No more renewals; the deadline, if any, still comes.
          lost = true
          hold.logger.warn('inbound claim lost: another attempt took the event over', {
            code: 'INBOUND_CLAIM_LOST',
            appid: key.appid,
            dedupeKey: key.dedupeKey,
          })
        }
      })
      .catch((error: unknown) =>
        hold.logger.warn('inbound claim not renewed', {
          code: 'INBOUND_CLAIM_RENEWAL_FAILED',
          appid: key.appid,
          dedupeKey: key.dedupeKey,
          error,
        }),
      )
      .finally(() => {
        renewing = undefined
      })
  }
  // The one timer, armed for the next renewal or the deadline, whichever comes first.
  const arm = () => {
    const next = lost ? until : Math.min(nextRenewal, until)
    if (next === Infinity) return
    timer = setTimeout(tick, Math.max(0, start + next - performance.now()))
    armedFor = next
  }
  const tick = () => {
    if (done) return
    if (armedFor >= until) return passed?.()
    if (!lost) {
      nextRenewal += every
      // A renewal still in flight is not overtaken: this one is skipped, as an interval's tick was.
      if (!renewing) renew()
    }
    arm()
  }
  arm()
  try {
    if (deadline === undefined) return await work()
    // The work's outcome or the deadline, whichever comes first: one promise, not a race of two.
    return await new Promise<T | typeof PAST_DEADLINE>((resolve, reject) => {
      passed = () => resolve(PAST_DEADLINE)
      work().then(resolve, reject)
    })
  } finally {
    done = true
    clearTimeout(timer)
    // the row's claimed_at is then hold.claimedAt: the completion's fence
    if (renewing) await renewing
  }
}

/**
 * One renewal of a claim: `claimed_at` moves to `at` while the claim is still `processing` with
 * `claimedAt` (null: not renewed since made). False when another attempt took it over.
 */
export async function renewClaim(
  db: Kysely<Database>,
  key: InboundKey,
  claimedAt: Date | null,
  at: Date,
): Promise<boolean> {
  const row = await db
    .updateTable('inbound_events')
    .set({ claimed_at: at })
    .where('appid', '=', key.appid)
    .where('dedupe_key', '=', key.dedupeKey)
    .where('status', '=', 'processing')
    .where((eb) =>
      claimedAt === null ? eb('claimed_at', 'is', null) : eb('claimed_at', '=', claimedAt),
    )
    .returning('dedupe_key')
    .executeTakeFirst()
  return row !== undefined
}
