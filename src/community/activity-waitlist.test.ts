/**
 * The waitlist under sign-ups racing from several instances, each with its own clock: every
 * waitlisted member is told a distinct place, 1 to N, and is promoted in exactly that order.
 */
import { expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { SAFE_ACCOUNT } from '../../test/server.js'
import { cancelSignup, signUp } from './activities.js'

const TZ = 'Asia/Shanghai'

forEachDatabase('activity waitlist', (get, dbName) => {
  const appid = SAFE_ACCOUNT.appid
  const base = new Date('2026-11-25T04:00:00Z')

  it('gives racing sign-ups distinct places 1..N, and promotes in that order', async () => {
    const db = get().db
    await db
      .insertInto('activities')
      .values({
        appid,
        key: 'seat',
        name: '一个位子',
        description: '',
        cron: '0 10 * * 6',
        cadence: 'weekly',
        capacity: 1,
        signup: true,
        status: 'open',
        created_at: base,
      })
      .execute()
    const crowd = await db
      .insertInto('members')
      .values(
        Array.from({ length: 13 }, (_, i) => ({
          appid,
          openid: `o_seat_${dbName}_${i}`,
          subscribed: true,
          first_seen_at: base,
        })),
      )
      .returning('id')
      .execute()
    // three instances (on PostgreSQL, three pools) whose clocks differ by seconds; each took its
    // `now` before the activity's lock
    const instances =
      get().name === 'postgres' ? [get().open(), get().open(), get().open()] : [db, db, db]
    const clockOf = (k: number) => new Date(base.getTime() + [0, 3_000, -2_000][k]!)
    const results = await Promise.all(
      crowd.map(async (m, j) => ({
        id: m.id,
        ...(await signUp(instances[j % 3]!, {
          appid,
          memberId: m.id,
          ref: 'seat',
          now: clockOf(j % 3),
          timeZone: TZ,
        })),
      })),
    )
    const confirmed = results.filter((r) => r.status === 'confirmed')
    expect(confirmed).toHaveLength(1)
    const waiting = results
      .flatMap((r) => (r.status === 'waitlisted' ? [{ id: r.id, position: r.position }] : []))
      .sort((a, b) => (a.position ?? 0) - (b.position ?? 0))
    expect(waiting.map((r) => r.position)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1))

    // each cancellation of the one place promotes the member told the next place
    const statusOf = async (id: number) =>
      (
        await db
          .selectFrom('activity_signups')
          .select('status')
          .where('member_id', '=', id)
          .executeTakeFirstOrThrow()
      ).status
    let holder = confirmed[0]!.id
    const promoted: (number | undefined)[] = []
    for (const _ of waiting) {
      const later = new Date(base.getTime() + 60_000)
      await cancelSignup(db, { appid, memberId: holder, ref: 'seat', now: later, timeZone: TZ })
      const next = await db
        .selectFrom('activity_signups')
        .select('member_id')
        .where('status', '=', 'confirmed')
        .executeTakeFirst()
      promoted.push(next?.member_id)
      holder = next!.member_id
    }
    expect(promoted).toEqual(waiting.map((r) => r.id))
    expect(await statusOf(holder)).toBe('confirmed')
  })
})
