import { describe, expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { memoryTokenStore } from '../../test/memory-stores.js'
import type { Clock } from '../clock.js'
import type { TokenStore } from '../wechat/api/token-store.js'
import { databaseTokenStore } from './token-store.js'

const clock: Clock = { now: () => new Date() }
let n = 0
const key = (prefix: string) => `${prefix}${String(++n).padStart(4, '0')}`
const inAnHour = () => new Date(Date.now() + 3600_000)
const isFresh = (t: { expiresAt: Date }) => t.expiresAt.getTime() > Date.now()

/** The TokenStore invariants, for any implementation; `stores()` may give several views of one. */
function tokenStoreContract(stores: () => TokenStore[], prefix: string) {
  it('reads nothing before the first refresh, then the fetched token', async () => {
    const [store] = stores()
    const k = key(prefix)
    expect(await store!.read(k)).toBeUndefined()
    const fetched = { token: 'T1', expiresAt: inAnHour() }
    expect(await store!.refresh(k, { isFresh, fetch: async () => fetched })).toEqual(fetched)
    expect(await store!.read(k)).toEqual(fetched)
    // fresh: kept, no fetch
    const kept = await store!.refresh(k, {
      isFresh,
      fetch: () => Promise.reject(new Error('must not fetch')),
    })
    expect(kept.token).toBe('T1')
  })

  it('lets one of many concurrent refreshes fetch; the others get its token', async () => {
    const all = stores()
    const k = key(prefix)
    let fetches = 0
    const fetch = async () => {
      fetches++
      await new Promise((r) => setTimeout(r, 20))
      return { token: `T${fetches}`, expiresAt: inAnHour() }
    }
    const got = await Promise.all(
      Array.from({ length: 6 }, (_, i) => all[i % all.length]!.refresh(k, { isFresh, fetch })),
    )
    expect(fetches).toBe(1)
    expect(new Set(got.map((t) => t.token))).toEqual(new Set(['T1']))
  })

  it('writes nothing when the fetch fails, and releases the lock', async () => {
    const [store] = stores()
    const k = key(prefix)
    await expect(
      store!.refresh(k, { isFresh, fetch: () => Promise.reject(new Error('40125')) }),
    ).rejects.toThrow('40125')
    expect(await store!.read(k)).toBeUndefined()
    const next = await store!.refresh(k, {
      isFresh,
      fetch: async () => ({ token: 'T2', expiresAt: inAnHour() }),
    })
    expect(next.token).toBe('T2')
  })

  it('expires a token only while it is the stored one', async () => {
    const [store] = stores()
    const k = key(prefix)
    const fetch = (token: string) => async () => ({ token, expiresAt: inAnHour() })
    await store!.refresh(k, { isFresh, fetch: fetch('OLD') })
    await store!.expire(k, 'OLD')
    expect(isFresh((await store!.read(k))!)).toBe(false)
    await store!.refresh(k, { isFresh, fetch: fetch('NEW') })
    await store!.expire(k, 'OLD') // a late report about the old token
    const stored = await store!.read(k)
    expect(stored?.token).toBe('NEW')
    expect(isFresh(stored!)).toBe(true)
  })
}

describe('token store [memory]', () => {
  const store = memoryTokenStore(clock)
  tokenStoreContract(() => [store], 'mem:')
})

forEachDatabase('token store', (get, name) => {
  // On PostgreSQL the refreshes also race through two pools, as separate processes would.
  let stores: TokenStore[] | undefined
  tokenStoreContract(
    () =>
      (stores ??= [
        databaseTokenStore(get().db, clock),
        ...(name === 'postgres' ? [databaseTokenStore(get().open(), clock)] : []),
      ]),
    `${name}:`,
  )
})
