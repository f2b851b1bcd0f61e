/** `GET|POST /wechat` (default account) and `/wechat/:appid`: the official-account callback. */
import { Hono } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { HTTPException } from 'hono/http-exception'
import { type DispatchDeps, dispatch } from '../bot/dispatch.js'
import type { AccountConfig } from '../config.js'
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
    bodyLimit({
      maxSize: options.maxBodyBytes,
      onError: () => {
        throw new HTTPException(413, { message: 'body too large' })
      },
    }),
    wechatWebhook({
      account: (appid) => (appid === undefined ? options.accounts[0] : byAppid.get(appid)),
      maxSkewSeconds: options.maxSkewSeconds,
      now: () => clock.now().getTime(),
      crypto: options.crypto,
    }),
    async (c) => {
      const receivedAt = clock.now().getTime()
      const { account, message, format } = c.var.wechat
      let waitUntil: DispatchDeps['waitUntil']
      try {
        const ctx = c.executionCtx
        waitUntil = (work) => ctx.waitUntil(work)
      } catch {
        // Node: background work keeps running on its own.
      }
      const body = await dispatch(
        { ...options.dispatch, waitUntil },
        { appid: account.appid, message, format, receivedAt },
      )
      return respondToWechat(c, body)
    },
  )
}
