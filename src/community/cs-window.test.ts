/**
 * The one rule of an open 48-hour message window (cs-window.ts: `messageWindowOpen`, used by the
 * check-in reminders and the journeys' customer-service step) against the rule written out in
 * JavaScript — last message within 48 h, that window not refused, quota left — for any member.
 */
import fc from 'fast-check'
import { sql } from 'kysely'
import { expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { MESSAGE_WINDOW, messageWindowOpen } from './cs-window.js'

const HOUR = 3_600_000
const at = new Date('2026-12-03T02:00:00Z')

/** A time relative to the member's last message (ms), or null. */
const relative = fc.option(fc.constantFrom(-HOUR, -1, 0, 1, HOUR), { nil: null })

const member = fc.record({
  // never wrote, or wrote this long before `at` (48 h exactly: closed; after `at`: open)
  lastAgo: fc.option(
    fc.constantFrom(-HOUR, 0, HOUR, 47 * HOUR, MESSAGE_WINDOW.ms - 1, MESSAGE_WINDOW.ms, 72 * HOUR),
    { nil: null },
  ),
  // a refusal of a message window opened at last message + this (null: no row; its own start
  // null: a row from before windows were recorded)
  messageRefusal: fc.option(relative, { nil: undefined }),
  eventRefusal: fc.option(relative, { nil: undefined }),
  invalid: fc.boolean(), // a 40003 row (channel any), scoped to the message window
  sends: fc.option(
    fc.record({
      opened: fc.constantFrom(-HOUR, -1, 0, 1, HOUR),
      sent: fc.integer({ min: 0, max: 6 }),
      quota: fc.constantFrom(3, 5),
      kind: fc.constantFrom('message' as const, 'event' as const),
    }),
    { nil: undefined },
  ),
})
type Member = typeof member extends fc.Arbitrary<infer T> ? T : never

/** The rule as cs-window.ts documents it (`messageWindowOpen`): what the SQL must answer. */
function expected(m: Member): boolean {
  if (m.lastAgo === null || m.lastAgo >= MESSAGE_WINDOW.ms) return false
  if (m.messageRefusal != null && m.messageRefusal >= 0) return false
  const used =
    m.sends && m.sends.opened >= 0
      ? m.sends.quota < MESSAGE_WINDOW.quota
        ? MESSAGE_WINDOW.quota
        : m.sends.sent
      : 0
  return used < MESSAGE_WINDOW.quota
}

forEachDatabase('the 48-hour message window', (get, dbName) => {
  let n = 0
  it('is open exactly when the rule says, for any member and any refusal and count rows', async () => {
    const { db } = get()
    await fc.assert(
      fc.asyncProperty(fc.array(member, { minLength: 1, maxLength: 12 }), async (ms) => {
        const appid = `wxw${dbName === 'pglite' ? 'p' : 's'}${String(++n).padStart(14, '0')}`
        const last = (m: Member) => (m.lastAgo === null ? null : new Date(at.getTime() - m.lastAgo))
        const after = (m: Member, ms: number | null) =>
          ms === null ? null : new Date((last(m) ?? at).getTime() + ms)
        const openid = (i: number) => `o_${appid}_${i}`
        await db
          .insertInto('members')
          .values(
            ms.map((m, i) => ({
              appid,
              openid: openid(i),
              subscribed: true,
              first_seen_at: new Date(0),
              last_inbound_at: last(m),
            })),
          )
          .execute()
        const refusals = ms.flatMap((m, i) =>
          [
            ...(m.messageRefusal === undefined
              ? []
              : [{ scope: 'message', channel: 'custom' as const, opened: m.messageRefusal }]),
            ...(m.eventRefusal === undefined
              ? []
              : [{ scope: 'event', channel: 'custom' as const, opened: m.eventRefusal }]),
            // another channel's row for the message window, at its start: not the window's refusal
            ...(m.invalid ? [{ scope: 'message', channel: 'any' as const, opened: 0 }] : []),
          ].map((r) => ({
            appid,
            openid: openid(i),
            channel: r.channel,
            scope: r.scope,
            errcode: r.channel === 'any' ? 40003 : 45015,
            recorded_at: at,
            window_opened_at: after(m, r.opened),
          })),
        )
        if (refusals.length > 0)
          await db.insertInto('member_reachability').values(refusals).execute()
        const sends = ms.flatMap((m, i) =>
          m.sends
            ? [
                {
                  appid,
                  openid: openid(i),
                  window_opened_at: after(m, m.sends.opened)!,
                  sent: m.sends.sent,
                  quota: m.sends.quota,
                  kind: m.sends.kind,
                },
              ]
            : [],
        )
        if (sends.length > 0) await db.insertInto('cs_window_sends').values(sends).execute()
        const { rows } = await sql<{ openid: string; open: boolean }>`
          select m.openid, ${messageWindowOpen(at)} as open
          from members m
          where m.appid = ${appid}
          order by m.id`.execute(db)
        expect(rows.map((r) => r.openid)).toEqual(ms.map((_, i) => openid(i)))
        expect(rows.map((r) => r.open)).toEqual(ms.map(expected))
      }),
      { numRuns: 60 },
    )
  })
})
