/**
 * A request whose statement finds every database connection busy for the whole connection timeout
 * is answered 503 with Retry-After and a JSON error — on every route (the app's error handler) —
 * and only that: a database that never answers stays a 500.
 */
import type { AddressInfo } from 'node:net'
import { createServer, type Socket } from 'node:net'
import { sql } from 'kysely'
import { expect, it } from 'vitest'
import { createRouter } from '../../handlers/index.js'
import { databaseNames, forEachDatabase } from '../../test/databases.js'
import { holdTransaction } from '../../test/held-transaction.js'
import { SAFE_ACCOUNT, testConfig } from '../../test/server.js'
import { startShopServer } from '../../test/shop-server.js'
import { createApp } from '../app.js'
import { postgresDatabase } from '../db/postgres.js'
import { silentLogger } from '../logger.js'
import { signSession } from '../shop/mp-auth.js'

const ADMIN = 'busy-operator-token-0123'
const BUSY = { code: 'SERVICE_UNAVAILABLE', message: 'the server is busy: retry in 2 s' }
const groups = `/admin/api/accounts/${SAFE_ACCOUNT.appid}/groups`
const asAdmin = { headers: { authorization: `Bearer ${ADMIN}` } }

it('answers 503 with Retry-After to the request that waited for a busy pool, 500 to the one whose connection never came', async () => {
  // a database server that accepts connections and never answers
  const sockets: Socket[] = []
  const silent = createServer((socket) => {
    sockets.push(socket)
  })
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
  const port = (silent.address() as AddressInfo).port
  const db = postgresDatabase(`postgres://nobody@127.0.0.1:${port}/none`, {
    max: 1,
    connectionTimeoutMs: 200,
  })
  try {
    const app = createApp({
      config: testConfig({ ADMIN_TOKEN: ADMIN }),
      db,
      router: createRouter(),
      logger: silentLogger,
    })
    // one takes the pool's only slot and connects (never answered); the other waits in its queue
    const answers = await Promise.all([app.request(groups, asAdmin), app.request(groups, asAdmin)])
    const [unreachable, busy] = answers.sort((a, b) => a.status - b.status)
    expect(unreachable!.status).toBe(500)
    expect(unreachable!.headers.get('retry-after')).toBeNull()
    expect(busy!.status).toBe(503)
    expect(busy!.headers.get('retry-after')).toBe('2')
    expect(await busy!.json()).toEqual(BUSY)
  } finally {
    await db.destroy()
    for (const s of sockets) s.destroy()
    await new Promise((r) => silent.close(r))
  }
})

forEachDatabase(
  'a busy database pool',
  (get) => {
    it('answers a buyer’s order and an operator’s page 503 while every connection is held, then as usual', async () => {
      const small = get().open({ max: 1, connectionTimeoutMs: 300 })
      // code2Session is never called: the session is signed here
      const server = await startShopServer(small, 'http://127.0.0.1:9', {
        config: testConfig({ ADMIN_TOKEN: ADMIN }),
      })
      try {
        const { settings, sessionSecret } = server.shop
        const openid = `o_busy_${Math.random().toString(36).slice(2, 8)}`
        const member = await small
          .insertInto('members')
          .values({ appid: settings.mpAppid, openid, first_seen_at: new Date() })
          .returning('id')
          .executeTakeFirstOrThrow()
        await small
          .insertInto('mp_users')
          .values({
            appid: settings.mpAppid,
            openid,
            unionid: null,
            member_id: member.id,
            created_at: new Date(),
          })
          .execute()
        await small
          .insertInto('products')
          .values({
            appid: SAFE_ACCOUNT.appid,
            sku: 'flash-busy',
            kind: 'flash_sale',
            name: '秒杀',
            price_fen: 100,
            stock: 0,
            per_member_limit: 1,
            created_at: new Date(),
          })
          .execute()
        const token = await signSession(sessionSecret, {
          memberId: member.id,
          openid,
          expiresAt: new Date(Date.now() + 3_600_000),
        })
        const order = () =>
          fetch(`${server.url}/api/mp/orders`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
            body: JSON.stringify({ sku: 'flash-busy', clientKey: 'busy-retry-1' }),
          })

        const held = await holdTransaction(small, (trx) => sql`select 1`.execute(trx))
        try {
          for (const res of [await order(), await fetch(`${server.url}${groups}`, asAdmin)]) {
            expect(res.status).toBe(503)
            expect(res.headers.get('retry-after')).toBe('2')
            expect(await res.json()).toEqual(BUSY)
          }
        } finally {
          held.commit()
          await held.done
        }
        // the buyer's retry, once a connection is free: the sale's answer
        const retry = await order()
        expect(retry.status).toBe(409)
        expect(await retry.json()).toEqual({ code: 'SOLD_OUT', message: 'sold out' })
        expect((await fetch(`${server.url}${groups}`, asAdmin)).status).toBe(200)
      } finally {
        await server.close()
      }
    }, 30_000)
  },
  databaseNames.filter((n) => n === 'postgres'),
)
