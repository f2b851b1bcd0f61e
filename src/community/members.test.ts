import { type Kysely, sql } from 'kysely'
import { expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { countStatements } from '../../test/statement-counter.js'
import type { Database } from '../db/schema.js'
import { parseXml } from '../wechat/codec.js'
import { toInboundMessage } from '../wechat/message.js'
import { type ReplayClaim, ReplayRefusedError } from './inbound-events.js'
import {
  CLAIMS_PER_STATEMENT,
  databaseMemberStore,
  isDuplicate,
  type MemberStore,
  type PushClaim,
  type RecordedMember,
  SET_BASED_CLAIMS,
} from './members.js'

const TZ = 'Asia/Shanghai'
const now = new Date('2026-12-03T02:00:00Z')

/** A text push from `openid` with dedupe key `key`. */
const push = (
  store: MemberStore,
  appid: string,
  openid: string,
  key: string,
  replay?: ReplayClaim,
) =>
  store.receive(
    { appid, dedupeKey: key, msgType: 'text', event: null, replay } satisfies PushClaim,
    toInboundMessage(
      parseXml(
        `<xml><ToUserName>gh</ToUserName><FromUserName>${openid}</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>hi</Content><MsgId>1</MsgId></xml>`,
      ),
    ),
    now,
  )

const stamp = (nonce: string, digest = 'a'.repeat(64)): ReplayClaim => ({
  door: 'wechat',
  timestamp: '1764727200',
  nonce,
  digest,
})

/**
 * Pushes from other members to go in the same batch, enough that it is claimed set-based
 * (`quanzi_receive_batch`) when `setBased`; none otherwise (`quanzi_receive` per push).
 */
const fillers = (store: MemberStore, appid: string, setBased: boolean) =>
  Array.from({ length: setBased ? SET_BASED_CLAIMS : 0 }, (_, i) =>
    push(store, appid, `o_fill_${i}`, `m:fill${i}`),
  )
const withoutFillers = (keys: string[]) => keys.filter((k) => !k.startsWith('m:fill'))

const settled = (r: PromiseSettledResult<unknown>) => (r.status === 'fulfilled' ? 'ok' : 'refused')

const claimedKeys = (db: Kysely<Database>, appid: string) =>
  db
    .selectFrom('inbound_events')
    .select('dedupe_key')
    .where('appid', '=', appid)
    .orderBy('dedupe_key')
    .execute()
    .then((rows) => rows.map((r) => r.dedupe_key))

forEachDatabase('member store', (get, name) => {
  it('claims concurrent pushes in fewer statements than pushes, each for its own member', async () => {
    const counted = countStatements(get().db)
    const store = databaseMemberStore(counted.db, { timeZone: TZ })
    const appid = 'wxclaimbatch000001'
    const results = await Promise.all(
      [1, 2, 3, 4, 5, 6].map((i) => push(store, appid, `o_cb_${i}`, `m:cb${i}`)),
    )
    expect(counted.count()).toBe(1) // made together: one batch
    expect(results.map((r) => (r as RecordedMember).openid)).toEqual(
      [1, 2, 3, 4, 5, 6].map((i) => `o_cb_${i}`),
    )
    expect(results.every((r) => !isDuplicate(r) && r.isNew)).toBe(true)
    expect(await claimedKeys(get().db, appid)).toEqual([1, 2, 3, 4, 5, 6].map((i) => `m:cb${i}`))
  })

  for (const setBased of [false, true])
    it(`returns each push's member with its timestamps as Dates and the claim's four fields${setBased ? ', set-based' : ''}`, async () => {
      const store = databaseMemberStore(get().db, { timeZone: TZ })
      const appid = setBased ? 'wxclaimshape000002' : 'wxclaimshape000001'
      await push(store, appid, 'o_sh_1', 'm:sh0')
      // Two in one batch: each its own row of the statement, converted in place.
      const [a, b] = (await Promise.all([
        push(store, appid, 'o_sh_1', 'm:sh1'),
        push(store, appid, 'o_sh_2', 'm:sh2'),
        ...fillers(store, appid, setBased),
      ])) as RecordedMember[]
      expect([a!.openid, b!.openid]).toEqual(['o_sh_1', 'o_sh_2'])
      for (const m of [a!, b!]) {
        expect(m.first_seen_at).toBeInstanceOf(Date)
        expect(m.last_active_at).toEqual(now)
        expect(m.unsubscribed_at).toBeNull()
        expect(typeof m.points_balance).toBe('number')
      }
      expect([a!.isNew, b!.isNew]).toEqual([false, true])
      expect(a!.previous_active_at).toBeInstanceOf(Date)
      expect(b!.previous_active_at).toBeNull()
      expect(Object.keys(a!).slice(-4)).toEqual([
        'isNew',
        'previous_active_at',
        'dailyLogin',
        'moderator',
      ])
    })

  it('claims a dedupe key once when it comes twice in one batch', async () => {
    const store = databaseMemberStore(get().db, { timeZone: TZ })
    const appid = 'wxclaimtwice000001'
    const [, a, b, c] = await Promise.all([
      push(store, appid, 'o_tw_0', 'm:tw0'), // the four go in one batch
      push(store, appid, 'o_tw_1', 'm:tw1'),
      push(store, appid, 'o_tw_1', 'm:tw1'),
      push(store, appid, 'o_tw_1', 'm:tw2'),
    ])
    const first = [a, b].filter((r) => !isDuplicate(r)) as RecordedMember[]
    expect(first).toHaveLength(1)
    // The other one is what a concurrent duplicate gets: the claim, still processing.
    expect([a, b].filter(isDuplicate)).toEqual([
      { duplicate: true, outcome: undefined }, // no replay stamp: the store does not read it
    ])
    // One member, new once, whichever of its two claimed pushes came first.
    expect([first[0]!.isNew, (c as RecordedMember).isNew].sort()).toEqual([false, true])
    expect(await claimedKeys(get().db, appid)).toEqual(['m:tw0', 'm:tw1', 'm:tw2'])
  })

  for (const setBased of [false, true])
    it(`reads the claim of a dedupe key twice in one batch, with a replay stamp${setBased ? ', with the set-based function (its per-push fallback)' : ''}`, async () => {
      const store = databaseMemberStore(get().db, { timeZone: TZ })
      const appid = setBased ? 'wxclaimtwice000003' : 'wxclaimtwice000002'
      const [, a, b] = await Promise.all([
        push(store, appid, 'o_tr_0', 'm:tr0', stamp('tr0')),
        push(store, appid, 'o_tr_1', 'm:tr1', stamp('tr1')),
        push(store, appid, 'o_tr_1', 'm:tr1', stamp('tr1')), // WeChat's retry: same stamp and body
        ...fillers(store, appid, setBased),
      ])
      expect([a, b].filter((r) => !isDuplicate(r))).toHaveLength(1)
      expect([a, b].filter(isDuplicate)).toEqual([
        { duplicate: true, outcome: { status: 'processing', reply: null } },
      ])
    })

  for (const setBased of [false, true])
    it(`refuses a replayed push without refusing the others of its batch${setBased ? ', set-based' : ''}`, async () => {
      const store = databaseMemberStore(get().db, { timeZone: TZ })
      const appid = setBased ? 'wxclaimreplay00002' : 'wxclaimreplay00001'
      await push(store, appid, 'o_rp_0', 'm:rp0', stamp('rp0'))
      const results = await Promise.allSettled([
        push(store, appid, 'o_rp_1', 'm:rp1', stamp('rp1')), // the four go in one batch
        push(store, appid, 'o_rp_2', 'm:rp2', stamp('rp2')),
        push(store, appid, 'o_evil', 'm:rp3', stamp('rp0', 'b'.repeat(64))), // rp0's stamp, new body
        push(store, appid, 'o_rp_4', 'm:rp4'),
        ...fillers(store, appid, setBased),
      ])
      expect(results.slice(0, 4).map(settled)).toEqual(['ok', 'ok', 'refused', 'ok'])
      expect((results[2] as PromiseRejectedResult).reason).toBeInstanceOf(ReplayRefusedError)
      expect(withoutFillers(await claimedKeys(get().db, appid))).toEqual([
        'm:rp0',
        'm:rp1',
        'm:rp2',
        'm:rp4',
      ])
    })

  it('fails only the caller of a push the database refuses; the others of its batch are claimed', async () => {
    const counted = countStatements(get().db)
    const store = databaseMemberStore(counted.db, { timeZone: TZ })
    const appid = 'wxclaimbad00000001'
    const results = await Promise.allSettled([
      push(store, appid, 'o_bad_0', 'm:bad0'),
      push(store, appid, 'o_bad_1', 'm:bad1'),
      // A timestamp past bigint: the statement of its batch fails as a whole.
      push(store, appid, 'o_bad_2', 'm:bad2', { ...stamp('bad2'), timestamp: '1'.repeat(20) }),
      push(store, appid, 'o_bad_3', 'm:bad3'),
    ])
    expect(results.map(settled)).toEqual(['ok', 'ok', 'refused', 'ok'])
    expect(await claimedKeys(get().db, appid)).toEqual(['m:bad0', 'm:bad1', 'm:bad3'])
    expect(counted.count()).toBe(5) // the failed batch of four, then each of them alone
  })

  it.runIf(name === 'postgres')(
    'claims pushes of the same members from two processes in opposite orders without a deadlock',
    async () => {
      const one = countStatements(get().db)
      const two = countStatements(get().open())
      const appid = 'wxclaimorder000001'
      const members = Array.from({ length: 40 }, (_, i) => `o_ord_${String(i).padStart(2, '0')}`)
      const stores = [one, two].map((c) => databaseMemberStore(c.db, { timeZone: TZ }))
      // Both warm up first (a pool's first connection), then start together.
      await Promise.all(stores.map((s, p) => push(s, appid, `o_warm_${p}`, `m:warm${p}`)))
      one.reset()
      two.reset()
      const results = await Promise.all([
        ...members.map((m) => push(stores[0]!, appid, m, `m:ord:1:${m}`)),
        ...[...members].reverse().map((m) => push(stores[1]!, appid, m, `m:ord:2:${m}`)),
      ])
      expect(results.filter(isDuplicate)).toEqual([])
      // Each process: its pushes in as few batches as the cap allows. A deadlock would have failed
      // one of the batches and run its pushes again one by one.
      const batches = Math.ceil(members.length / CLAIMS_PER_STATEMENT)
      expect([one.count(), two.count()]).toEqual([batches, batches])
      const rows = await get()
        .db.selectFrom('members')
        .select(['openid', 'last_active_at'])
        .where('appid', '=', appid)
        .where('openid', 'like', 'o_ord_%')
        .execute()
      expect(rows).toHaveLength(members.length)
    },
  )

  it.runIf(name === 'postgres')(
    'claims other members while one member is locked elsewhere (PostgreSQL: several claim lanes)',
    async () => {
      const appid = 'wxclaimlanes000001'
      const store = databaseMemberStore(get().db, { timeZone: TZ, lanes: 4 })
      await push(store, appid, 'o_locked', 'm:lanes:warm')
      const order: string[] = []
      let release = () => {}
      const released = new Promise<void>((resolve) => (release = resolve))
      let locked = () => {}
      const isLocked = new Promise<void>((resolve) => (locked = resolve))
      // Another connection holds the member's row until released (or 10 s, whichever first).
      const holder = get()
        .open()
        .transaction()
        .execute(async (trx) => {
          await trx
            .selectFrom('members')
            .select('id')
            .where('appid', '=', appid)
            .where('openid', '=', 'o_locked')
            .forUpdate()
            .execute()
          locked()
          await Promise.race([released, new Promise((resolve) => setTimeout(resolve, 10_000))])
          order.push('released')
        })
      await isLocked
      const waiting = push(store, appid, 'o_locked', 'm:lanes:1').then(() => order.push('locked'))
      // Its claim statement is waiting on the lock before the next push is made.
      for (;;) {
        const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock'
            and query like '%quanzi_receive%'`.execute(get().db)
        if (rows[0]!.n > 0) break
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
      await push(store, appid, 'o_free', 'm:lanes:2')
      order.push('free')
      release()
      await Promise.all([holder, waiting])
      expect(order).toEqual(['free', 'released', 'locked'])
    },
  )
})
