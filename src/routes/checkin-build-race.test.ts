/**
 * A check-in during the nightly analytics build (src/analytics/rollup.ts `buildDay`). The build
 * inserts `member_days` rows referencing `members(id)`; PostgreSQL's foreign-key check takes each
 * such member's row `for key share` until the build commits (seconds at a million members, just
 * after midnight, when streak-keepers check in). A check-in, an award or a make-up of that member
 * locks its row only to serialize its own changes — `for no key update` (migrations/0074,
 * points-ledger.ts `lockMember`), which the key share does not block — so it finishes while the
 * build is still open; with `for update` it waited for the whole build (WeChat retries after 5 s).
 *
 * A second connection holds what the build holds: a new `member_days` row of the member for the
 * day built, uncommitted. What happened first is recorded: the work finishing, or a backend
 * blocked by that connection (`pg_blocking_pids`) — then the build is let go. PGlite has one
 * connection, where nothing waits: skipped there.
 */
import { type Kysely, sql } from 'kysely'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { holdTransaction } from '../../test/held-transaction.js'
import { startServer, type TestServer } from '../../test/server.js'
import { ACTIVITY } from '../analytics/facts.js'
import { sleep } from '../clock.js'
import { makeUpCheckin } from '../community/checkin-makeup.js'
import { addDays, localDay } from '../community/community-time.js'
import { changePoints, lockMember } from '../community/points-ledger.js'
import type { Database } from '../db/schema.js'

const TZ = 'Asia/Shanghai'

forEachDatabase('a check-in during the nightly build', (get, name) => {
  let server: TestServer
  beforeAll(async () => {
    server = await startServer(get().db)
  })
  afterAll(() => server?.close())

  const today = () => localDay(new Date(), TZ)

  /** A member of the account, first seen ten days ago (a make-up may fill any recent day). */
  async function member(openid: string): Promise<{ id: number; appid: string }> {
    return get()
      .db.insertInto('members')
      .values({
        appid: 'wx0000000000000001',
        openid,
        first_seen_at: new Date(Date.now() - 10 * 86_400_000),
        subscribed: true,
      })
      .returning(['id', 'appid'])
      .executeTakeFirstOrThrow()
  }

  /**
   * Runs `work` while another connection holds the build's insert of the member's row of the
   * day built (yesterday); the order things happened in: `finished` (the work), `blocked` (a
   * backend waiting for the held transaction, seen first), `build committed`.
   */
  async function duringBuild(
    m: { id: number; appid: string },
    work: () => Promise<unknown>,
  ): Promise<string[]> {
    const db = get().db
    const events: string[] = []
    let pid = 0
    const build = await holdTransaction(get().open({ max: 1 }), async (trx) => {
      await trx
        .insertInto('member_days')
        .values({
          appid: m.appid,
          day: addDays(today(), -1),
          member_id: m.id,
          kinds: ACTIVITY.checkin,
        })
        .execute()
      const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx)
      pid = rows[0]!.pid
    })
    let settled = false
    const done = work().then(
      () => events.push('finished'),
      (error: unknown) => events.push(`failed: ${String(error)}`),
    )
    void done.finally(() => {
      settled = true
    })
    while (!settled) {
      if (await blockedBy(db, pid)) {
        events.push('blocked')
        break
      }
      await sleep(10)
    }
    build.commit()
    await build.done
    events.push('build committed')
    await done
    return events
  }

  it.skipIf(name === 'pglite')(
    'a 签到 push answers while the build holds the member’s new row of the day (PostgreSQL only)',
    async () => {
      const pusher = server.pusher()
      // the member's first push today (their row, today's daily login): not under the build
      await pusher.text('o_build_race_1', '帮助')
      const m = await get()
        .db.selectFrom('members')
        .select(['id', 'appid'])
        .where('openid', '=', 'o_build_race_1')
        .executeTakeFirstOrThrow()
      let reply = ''
      const events = await duringBuild(m, async () => {
        const res = await pusher.text('o_build_race_1', '签到')
        const content = res.reply?.Content
        reply = typeof content === 'string' ? content : res.body
      })
      expect(events).toEqual(['finished', 'build committed'])
      expect(reply).toContain('签到成功')
      const checkins = await get()
        .db.selectFrom('checkins')
        .select('day')
        .where('member_id', '=', m.id)
        .execute()
      expect(checkins).toHaveLength(1)
    },
    30_000,
  )

  it.skipIf(name === 'pglite')(
    'an award, a make-up and a locked member’s write finish while the build holds the member (PostgreSQL only)',
    async () => {
      const db = get().db
      const m = await member('o_build_race_2')
      const now = new Date()
      expect(
        await duringBuild(m, () =>
          changePoints(
            db,
            {
              appid: m.appid,
              memberId: m.id,
              rule: 'grant',
              idempotencyKey: `build-race:${m.id}`,
              now,
              timeZone: TZ,
            },
            30,
          ),
        ),
      ).toEqual(['finished', 'build committed'])
      const madeUp = await member('o_build_race_3')
      expect(
        await duringBuild(madeUp, () =>
          makeUpCheckin(db, {
            appid: madeUp.appid,
            memberId: madeUp.id,
            now,
            timeZone: TZ,
            settings: { streakBonuses: {}, makeup: { days: 7, perMonth: 2, costs: [0] } },
            day: addDays(today(), -2),
          }),
        ),
      ).toEqual(['finished', 'build committed'])
      const locked = await member('o_build_race_4')
      expect(
        await duringBuild(locked, () =>
          db.transaction().execute(async (trx) => {
            await lockMember(trx, locked.id)
            await trx
              .updateTable('members')
              .set({ display_name: 'locked' })
              .where('id', '=', locked.id)
              .execute()
          }),
        ),
      ).toEqual(['finished', 'build committed'])
    },
    30_000,
  )
})

/** Whether a backend of this database waits for a lock the backend `pid` holds. */
async function blockedBy(db: Kysely<Database>, pid: number): Promise<boolean> {
  const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
    where datname = current_database() and ${pid}::int = any(pg_blocking_pids(pid))`.execute(db)
  return rows[0]!.n > 0
}
