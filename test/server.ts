/** Starts the real app on a loopback port for end-to-end tests through HTTP. */

import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import { getConnInfo } from '@hono/node-server/conninfo'
import type { Kysely } from 'kysely'
import { createRouter } from '../handlers/index.js'
import { type AppDeps, createApp } from '../src/app.js'
import type { Router } from '../src/bot/router.js'
import { type Config, loadConfig } from '../src/config.js'
import type { Database } from '../src/db/schema.js'
import { silentLogger } from '../src/logger.js'
import { createPusher, type Pusher, type PusherOptions } from '../src/sandbox/pusher.js'

export const SAFE_ACCOUNT = {
  appid: 'wx0000000000000001',
  token: 'testtoken1',
  aesKey: 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG',
}
export const PLAIN_ACCOUNT = { appid: 'wx0000000000000002', token: 'testtoken2' }
/** An account in compatible mode (not in `testConfig`: add it to WECHAT_ACCOUNTS where needed). */
export const COMPAT_ACCOUNT = {
  appid: 'wx0000000000000003',
  token: 'testtoken3',
  aesKey: SAFE_ACCOUNT.aesKey,
  mode: 'compat' as const,
}

/** The test configuration: a safe-mode default account and a plaintext-only second account. */
export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({
    WECHAT_APPID: SAFE_ACCOUNT.appid,
    WECHAT_TOKEN: SAFE_ACCOUNT.token,
    WECHAT_AES_KEY: SAFE_ACCOUNT.aesKey,
    WECHAT_ACCOUNTS: JSON.stringify([PLAIN_ACCOUNT]),
    WECHAT_MAX_BODY_BYTES: '4096',
    ...env,
  })
}

/** A running app: its base URL and a way to stop it. */
export interface TestServer {
  url: string
  close(): Promise<void>
  /**
   * A pusher to this server's webhook (default the safe account), its pushes stamped with the
   * server's clock when it was given one (the webhook refuses timestamps far from that clock).
   */
  pusher(o?: Partial<Omit<PusherOptions, 'url' | 'now'>> & { path?: string }): Pusher
}

/** Serves `createApp` on 127.0.0.1 with an ephemeral port. */
export async function startServer(
  db: Kysely<Database>,
  overrides: Partial<AppDeps> & { router?: Router } = {},
): Promise<TestServer> {
  const app = createApp({
    config: testConfig(),
    db,
    router: createRouter(),
    logger: silentLogger,
    clientAddress: (c) => getConnInfo(c).remote.address,
    ...overrides,
  })
  return new Promise((resolve) => {
    const server = serve(
      { fetch: app.fetch, port: 0, hostname: '127.0.0.1' },
      (info: AddressInfo) => {
        const url = `http://127.0.0.1:${info.port}`
        const clock = overrides.clock
        resolve({
          url,
          // Waits for open connections, as the server's close() does, but not for ever: one a
          // browser still holds (a console page's keep-alive or a request it left in flight)
          // once held a browser suite's afterAll to its 60 s timeout. After 5 s it is cut.
          close: () =>
            new Promise((done) => {
              const cut = setTimeout(() => (server as Server).closeAllConnections(), 5_000)
              server.close(() => {
                clearTimeout(cut)
                done()
              })
            }),
          pusher: ({ path = '/wechat', account = SAFE_ACCOUNT, ...o } = {}) =>
            createPusher({
              ...o,
              account,
              url: `${url}${path}`,
              ...(clock ? { now: () => clock.now().getTime() } : {}),
            }),
        })
      },
    )
  })
}
