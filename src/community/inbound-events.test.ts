import { expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { countStatements } from '../../test/statement-counter.js'
import { batcher, databaseInboundStore } from './inbound-events.js'

it('batcher: runs the first call at once and the calls made meanwhile together', async () => {
  const runs: number[][] = []
  let release = () => {}
  const batched = batcher(async (items: number[]) => {
    runs.push(items)
    if (runs.length === 1) await new Promise<void>((resolve) => (release = resolve))
    return items.map((n) => n * 10)
  })
  const first = batched(1)
  const rest = [2, 3, 4].map(batched)
  release()
  expect(await Promise.all([first, ...rest])).toEqual([10, 20, 30, 40])
  expect(runs).toEqual([[1], [2, 3, 4]])
})

it('batcher: a failed run fails each of its callers, and the next run still happens', async () => {
  let calls = 0
  const batched = batcher(async (items: string[]) => {
    if (++calls === 1) throw new Error('down')
    return items
  })
  await expect(batched('a')).rejects.toThrow('down')
  expect(await batched('b')).toBe('b')
})

it('batcher: one bad item in a batch fails its own caller only', async () => {
  let release = () => {}
  let runs = 0
  const batched = batcher(async (items: string[]) => {
    if (++runs === 1) await new Promise<void>((resolve) => (release = resolve))
    if (items.includes('bad')) throw new Error('bad item')
    return items.map((s) => s.toUpperCase())
  })
  const first = batched('a')
  const rest = ['b', 'bad', 'c'].map((s) => batched(s).catch((e: Error) => e.message))
  release()
  expect(await first).toBe('A')
  expect(await Promise.all(rest)).toEqual(['B', 'bad item', 'C'])
})

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
    expect(counted.count()).toBe(2) // the first at once, the four that came meanwhile together
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
