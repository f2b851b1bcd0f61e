/** `GET|POST /wechat` (default account) and `/wechat/:appid`: the official-account callback. */
import { Hono } from 'hono'
import { getRuntimeKey } from 'hono/adapter'
import { type DispatchDeps, dispatch } from '../bot/dispatch.js'
import type { AccountConfig } from '../config.js'
import { bodySize } from '../middleware/body-size.js'
import type { CryptoBackend } from '../wechat/crypto.js'
import { respondToWechat, wechatWebhook } from '../wechat/webhook.js'

/** What the callback route needs. */
export interface WechatRouteOptions {
  accounts: AccountConfig[]
  maxSkewSeconds: number
  maxBodyBytes: number
  crypto?: CryptoBackend
  dispatch: Omit<DispatchDeps, 'waitUntil'>
}

/** The callback routes, to mount at `/wechat`. */
export function wechatRoutes(options: WechatRouteOptions): Hono {
  const byAppid = new Map(options.accounts.map((a) => [a.appid, a]))
  const clock = options.dispatch.clock
  return new Hono().on(
    ['GET', 'POST'],
    '/:appid?',
    bodySize({ maxBytes: options.maxBodyBytes }),
    wechatWebhook({
      account: (appid) => (appid === undefined ? options.accounts[0] : byAppid.get(appid)),
      maxSkewSeconds: options.maxSkewSeconds,
      now: () => clock.now().getTime(),
      crypto: options.crypto,
    }),
    async (c) => {
      const receivedAt = clock.now().getTime()
      const { account, message, format } = c.var.wechat
      // Workers end an isolate's work with the response unless told to wait; Node needs nothing.
      const waitUntil: DispatchDeps['waitUntil'] =
        getRuntimeKey() === 'workerd' ? (work) => c.executionCtx.waitUntil(work) : undefined
      const body = await dispatch(
        { ...options.dispatch, waitUntil },
        { appid: account.appid, message, format, receivedAt },
      )
      return respondToWechat(c, body)
    },
  )
}
