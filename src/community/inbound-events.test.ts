import { expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { countStatements } from '../../test/statement-counter.js'
import { databaseInboundStore, retakeOrWait } from './inbound-events.js'

forEachDatabase('inbound store', (get) => {
  it('stores concurrent replies in fewer statements, each moving its own claim only', async () => {
    const counted = countStatements(get().db)
    const appid = 'wxbatch00000000001'
    const now = new Date('2026-12-03T01:00:00Z')
    const keys = [1, 2, 3, 4, 5].map((i) => ({ appid, dedupeKey: `m:batch${i}` }))
    await get()
      .db.insertInto('inbound_events')
      .values(
        keys.map((k, i) => ({
          appid,
          dedupe_key: k.dedupeKey,
          openid: 'o_batch',
          msg_type: 'text',
          event: null,
          status: i === 4 ? 'deferred' : 'processing', // the deadline took the last one
          received_at: now,
        })),
      )
      .execute()
    const store = databaseInboundStore(counted.db)
    counted.reset()
    const moved = await Promise.all(
      keys.map((k, i) => store.complete(k, `reply ${i}`, now, i === 3 ? 'boom' : undefined)),
    )
    expect(moved).toEqual([true, true, true, true, false])
    expect(counted.count()).toBe(1) // made together: one batch
    const rows = await get()
      .db.selectFrom('inbound_events')
      .select(['dedupe_key', 'status', 'reply', 'error'])
      .where('appid', '=', appid)
      .orderBy('dedupe_key')
      .execute()
    expect(rows).toEqual([
      { dedupe_key: 'm:batch1', status: 'replied', reply: 'reply 0', error: null },
      { dedupe_key: 'm:batch2', status: 'replied', reply: 'reply 1', error: null },
      { dedupe_key: 'm:batch3', status: 'replied', reply: 'reply 2', error: null },
      { dedupe_key: 'm:batch4', status: 'failed', reply: 'reply 3', error: 'boom' },
      { dedupe_key: 'm:batch5', status: 'deferred', reply: null, error: null },
    ])
  })
})

forEachDatabase('a retry waiting on a claim', (get) => {
  const appid = 'wxretake0000000001'
  /** The database, recording the kind of every statement sent through it. */
  const recorded = () => {
    const kinds: string[] = []
    const db = get().db.withPlugin({
      transformQuery: (args) => {
        kinds.push(args.node.kind)
        return args.node
      },
      transformResult: async (args) => args.result,
    })
    return { db, kinds }
  }
  const held = (dedupeKey: string, receivedAt: Date) =>
    get()
      .db.insertInto('inbound_events')
      .values({
        appid,
        dedupe_key: dedupeKey,
        openid: 'o_retake',
        msg_type: 'text',
        status: 'processing',
        received_at: receivedAt,
      })
      .execute()

  it('polls a live claim with reads only, and takes back an expired one (read, then one update)', async () => {
    const clock = { now: () => new Date() }
    const leaseMs = 12_000
    const live = { appid, dedupeKey: 'm:retake-live' }
    await held(live.dedupeKey, new Date())
    const waiting = recorded()
    expect(
      await retakeOrWait(waiting.db, live, { clock, leaseMs, until: Date.now() + 200 }),
    ).toBeUndefined()
    expect(new Set(waiting.kinds)).toEqual(new Set(['SelectQueryNode']))
    expect(
      await get()
        .db.selectFrom('inbound_events')
        .select(['status', 'claimed_at'])
        .where('dedupe_key', '=', live.dedupeKey)
        .executeTakeFirstOrThrow(),
    ).toEqual({ status: 'processing', claimed_at: null })

    const dead = { appid, dedupeKey: 'm:retake-dead' }
    const receivedAt = new Date(Date.now() - 60_000)
    await held(dead.dedupeKey, receivedAt)
    const retaking = recorded()
    const taken = await retakeOrWait(retaking.db, dead, { clock, leaseMs, until: Date.now() })
    expect(taken).toMatchObject({ receivedAt })
    expect(retaking.kinds).toEqual(['SelectQueryNode', 'UpdateQueryNode'])
    // one retry wins: the next finds the claim live again
    expect(await retakeOrWait(get().db, dead, { clock, leaseMs, until: Date.now() })).toBe(
      undefined,
    )
  })
})
