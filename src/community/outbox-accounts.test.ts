import type { Kysely } from 'kysely'
import { expect, it } from 'vitest'
import { retentionJob } from '../../jobs/retention.js'
import { migrations } from '../../migrations/index.js'
import { forEachDatabase } from '../../test/databases.js'
import { loadConfig } from '../config.js'
import type { Database, OutboxKind } from '../db/schema.js'
import { silentLogger } from '../logger.js'
import { awardBadges } from './badges.js'
import { notifyMember } from './notify.js'
import { readOpsStatus } from './ops-status.js'

const OA = 'wxoa_follows0001'
const MP = 'wxmp_program0001'
const WECOM = 'wecom:wwcorp0001'

/** A member under `appid`; under the mini program's also a mini-program user (as mp-auth.ts makes). */
async function member(db: Kysely<Database>, appid: string, openid: string, now: Date) {
  const { id } = await db
    .insertInto('members')
    .values({ appid, openid, first_seen_at: now, subscribed: appid === OA })
    .returning('id')
    .executeTakeFirstOrThrow()
  if (appid === MP)
    await db
      .insertInto('mp_users')
      .values({ appid, openid, unionid: null, member_id: id, created_at: now })
      .execute()
  return id
}

/** Waiting items as an earlier version wrote them (straight into the table, due since `at`). */
const stuck = (db: Kysely<Database>, at: Date, rows: [string, string, OutboxKind, string?][]) =>
  db
    .insertInto('push_outbox')
    .values(
      rows.map(([appid, openid, kind, status]) => ({
        appid,
        source: 'badge:first_purchase',
        openid,
        kind,
        payload: '{}',
        lane: 1,
        status: (status ?? 'pending') as 'pending' | 'held',
        next_attempt_at: at,
        created_at: at,
      })),
    )
    .execute()

const waiting = (db: Kysely<Database>) =>
  db
    .selectFrom('push_outbox')
    .select(['appid', 'openid', 'status', 'errmsg'])
    .orderBy('appid')
    .orderBy('openid')
    .execute()

forEachDatabase('the outbox holds items for official accounts only', (get) => {
  const now = new Date('2026-12-05T12:00:00Z')
  const clock = { now: () => now }

  it('a first purchase by a mini-program-only member earns the badge but queues no OA notice', async () => {
    const { db } = get()
    const buyer = await member(db, MP, 'o_mp_buyer', now)
    const follower = await member(db, OA, 'o_oa_buyer', now)
    for (const id of [buyer, follower]) {
      await db.updateTable('members').set({ purchase_count: 1 }).where('id', '=', id).execute()
      const badges = await awardBadges(db, id, { purchases: null }, { now, outbox: true })
      expect(badges.map((b) => b.key)).toEqual(['first_purchase'])
    }
    const held = await db
      .selectFrom('member_badges')
      .select('member_id')
      .where('badge_key', '=', 'first_purchase')
      .orderBy('member_id')
      .execute()
    expect(held.map((r) => r.member_id)).toEqual([buyer, follower].sort((a, b) => a - b))
    // the follower is told in the OA chat; the mini-program buyer has none
    expect(await waiting(db)).toEqual([
      { appid: OA, openid: 'o_oa_buyer', status: 'pending', errmsg: null },
    ])
    expect((await readOpsStatus(db, clock, [])).outbox.backlog).toBe(1)
  })

  it('notifyMember queues nothing for a WeCom contact or a mini-program user, and says so', async () => {
    const { db } = get()
    await member(db, WECOM, 'wm_contact', now)
    await member(db, MP, 'o_mp_other', now)
    const tell = (appid: string, openid: string) =>
      notifyMember(db, { appid, openid, source: 'points:k1', text: '+10', now })
    expect(await tell(WECOM, 'wm_contact')).toBe(false)
    expect(await tell(MP, 'o_mp_other')).toBe(false)
    expect(await tell(OA, 'o_oa_buyer')).toBe(true)
    const rows = await db
      .selectFrom('push_outbox')
      .select('appid')
      .where('source', '=', 'points:k1')
      .execute()
    expect(rows).toEqual([{ appid: OA }])
  })

  it('the nightly retention settles items stuck under a non-account appid, so the backlog figures drop them', async () => {
    const { db } = get()
    await db.deleteFrom('push_outbox').execute()
    const hourAgo = new Date(now.getTime() - 3_600_000)
    await stuck(db, hourAgo, [
      [MP, 'o_mp_buyer', 'custom'],
      [MP, 'o_mp_other', 'custom', 'held'],
      [WECOM, 'wm_contact', 'custom'],
      [OA, 'o_oa_buyer', 'custom'],
    ])
    const before = await readOpsStatus(db, clock, [])
    expect(before.outbox.byKind.custom).toEqual({ backlog: 3, oldestDueSeconds: 3600 })
    await retentionJob.run({ db, clock, logger: silentLogger, config: loadConfig({}), slot: now })
    const after = await readOpsStatus(db, clock, [])
    // only the account's own item is still due
    expect(after.outbox.byKind.custom).toEqual({ backlog: 1, oldestDueSeconds: 3600 })
    const rows = await waiting(db)
    expect(rows.filter((r) => r.appid !== OA)).toEqual(
      [
        [WECOM, 'wm_contact'],
        [MP, 'o_mp_buyer'],
        [MP, 'o_mp_other'],
      ].map(([appid, openid]) => ({
        appid,
        openid,
        status: 'skipped',
        errmsg: expect.stringMatching(/^not an official account/),
      })),
    )
    expect(rows.find((r) => r.appid === OA)).toMatchObject({ status: 'pending', errmsg: null })
  })

  it('migration 0079 settles the items an earlier version left stuck, and only those', async () => {
    const { db } = get()
    await db.deleteFrom('push_outbox').execute()
    await stuck(db, now, [
      [MP, 'o_mp_buyer', 'custom'],
      [WECOM, 'wm_contact', 'custom', 'held'],
      [OA, 'o_oa_buyer', 'custom'],
    ])
    const migration = migrations['0079_outbox_non_account_items']
    expect(migration).toBeDefined()
    await db.transaction().execute((trx) => migration!.up(trx))
    expect((await waiting(db)).map((r) => [r.appid, r.status])).toEqual([
      [WECOM, 'skipped'],
      [MP, 'skipped'],
      [OA, 'pending'],
    ])
  })
})
