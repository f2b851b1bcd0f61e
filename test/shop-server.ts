/** The app with a sandbox shop (mini program + Pay) on loopback, as the mini-program API tests need. */
import type { Kysely } from 'kysely'
import type { AppDeps } from '../src/app.js'
import type { Database } from '../src/db/schema.js'
import { silentLogger } from '../src/logger.js'
import { startSandboxShop } from '../src/sandbox/sandbox-shop.js'
import { nodeShop } from '../src/shop/node-shop.js'
import { SAFE_ACCOUNT, startServer } from './server.js'

/**
 * Starts a sandbox Pay server and the app with a shop whose mini program talks to the sandbox API
 * at `wechatApiUrl`; `close()` stops both.
 */
export async function startShopServer(
  db: Kysely<Database>,
  wechatApiUrl: string,
  overrides: Partial<AppDeps> = {},
) {
  const sandbox = await startSandboxShop({ notifyUrl: 'http://placeholder/pay/notify' })
  const shop = await nodeShop(sandbox.config, {
    appid: SAFE_ACCOUNT.appid,
    apiBase: wechatApiUrl,
    logger: silentLogger,
  })
  const server = await startServer(db, { ...overrides, shop })
  shop.settings.notifyUrl = `${server.url}/pay/notify`
  return {
    url: server.url,
    shop,
    pay: sandbox.pay,
    async close() {
      await server.close()
      await sandbox.pay.close()
    },
  }
}

/** A flash sale of its own with `stock` units on the safe account; returns a reader of its stock. */
export async function flashSale(db: Kysely<Database>, sku: string, stock: number) {
  await db
    .insertInto('products')
    .values({
      appid: SAFE_ACCOUNT.appid,
      sku,
      kind: 'flash_sale',
      name: sku,
      price_fen: 990,
      stock,
      per_member_limit: null,
      created_at: new Date(),
    })
    .execute()
  return async () =>
    (
      await db
        .selectFrom('products')
        .select('stock')
        .where('sku', '=', sku)
        .executeTakeFirstOrThrow()
    ).stock
}
