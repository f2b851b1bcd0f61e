/**
 * Assembles the shop from configuration: the WeChat Pay gateway (one Web Crypto signer; the
 * wrapped requests built by wechatpay-node-v3 when the Node entry passes `payRequests`, by fetch
 * otherwise), WeChat Pay's verification keys, and a WeChat API client for code2Session. Portable
 * despite the name: the Node and Workers entries both build their shop here.
 */
import type { ShopConfig } from '../config.js'
import type { Logger } from '../logger.js'
import { importVerifyKeys } from '../pay/notification.js'
import { type PayRequests, wechatpayGateway } from '../pay/wechatpay-gateway.js'
import type { ShopRouteOptions } from '../routes/shop.js'
import { createApiClient, type FetchLike } from '../wechat/api/client.js'
import { DEFAULT_POINTS_FREEZE_DAYS } from './purchase-grants.js'

export async function nodeShop(
  c: ShopConfig,
  o: {
    appid: string
    apiBase: string
    logger: Logger
    fetch?: FetchLike
    /** POINTS_FREEZE_DAYS (default {@link DEFAULT_POINTS_FREEZE_DAYS}). */
    pointsFreezeDays?: number
    /**
     * Who builds the wrapped Pay requests: the Node entry passes wechatpay-node-v3's
     * (src/pay/wechatpay-package-requests.ts); Workers leave the fetch-built default.
     */
    payRequests?: (c: ShopConfig) => PayRequests
  },
): Promise<ShopRouteOptions['shop']> {
  const verifyKeys = await importVerifyKeys(c.pay.verifyKeys)
  return {
    settings: {
      appid: o.appid,
      mpAppid: c.mpAppid,
      notifyUrl: c.notifyUrl,
      orderMinutes: c.orderMinutes,
      groupBuy: c.groupBuy,
      pointsFreezeDays: o.pointsFreezeDays ?? DEFAULT_POINTS_FREEZE_DAYS,
      transfer: c.transfer,
    },
    gateway: wechatpayGateway({
      appid: c.mpAppid,
      mchid: c.pay.mchid,
      privateKeyPem: c.pay.privateKeyPem,
      certSerial: c.pay.certSerial,
      apiV3Key: c.pay.apiV3Key,
      baseUrl: c.pay.apiBase,
      verifyKeys,
      requests: o.payRequests?.(c),
    }),
    mpSecret: c.mpSecret,
    sessionSecret: c.sessionSecret,
    apiV3Key: c.pay.apiV3Key,
    verifyKeys,
    mpApi: createApiClient({ baseUrl: o.apiBase, logger: o.logger, fetch: o.fetch }),
  }
}
