/**
 * `npm run shop`: plays a mini program against the running sandbox (`npm start`): logs in, reads the
 * catalog, buys a membership and a flash-sale item, and fills a group buy with two friends — each
 * payment made on the sandbox WeChat Pay server, whose signed, encrypted notification the server
 * verifies and applies. Then a follower redeems 50元返现 in the OA chat and confirms the transfer
 * in the mini program: the cash is paid out through the sandbox's merchant transfer (商家转账).
 * Prints what happened.
 */
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ConfigError, loadConfig } from '../config.js'
import { createPusher } from './pusher.js'
import { loadSandboxAccount } from './sandbox-account.js'

/** Ends the demo with one line (no stack trace for a server that is down or a bad setting). */
function fail(message: string): never {
  console.error(`quanzi shop: ${message}`)
  process.exit(1)
}
type FetchError = Error & { cause?: { code?: string; errors?: { code?: string }[] } }
process.on('uncaughtException', (error: FetchError) => {
  const code = error.cause?.code ?? error.cause?.errors?.[0]?.code
  fail(
    code === 'ECONNREFUSED'
      ? 'cannot reach the sandbox servers: is the server running (npm start)?'
      : error.message,
  )
})

if (existsSync('.env')) process.loadEnvFile('.env')
let config: ReturnType<typeof loadConfig>
try {
  config = loadConfig(process.env)
} catch (error) {
  fail(error instanceof ConfigError ? error.message : String(error))
}
if (!config.sandbox)
  fail('npm run shop plays against the sandbox only: unset WECHAT_APPID and WECHAT_TOKEN')
const services = JSON.parse(
  await readFile(join(config.dataDir, 'sandbox-services.json'), 'utf8').catch(() =>
    fail(`no sandbox in ${config.dataDir}: start it first with npm start (in another terminal)`),
  ),
) as { port: number; wechatApi: string; pay: string; mpAppid: string; adminToken?: string }
const base = `http://localhost:${services.port}/api/mp`

async function call(method: string, url: string, body?: unknown, token?: string) {
  const res = await fetch(url, {
    method,
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  // biome-ignore lint/suspicious/noExplicitAny: the demo prints what the API answers
  const json = (await res.json()) as Record<string, any>
  if (!res.ok) throw new Error(`${method} ${url} → ${res.status} ${JSON.stringify(json)}`)
  return json
}

async function login(openid: string, unionid?: string) {
  const { code } = await call('POST', `${services.wechatApi}/sandbox/login-code`, {
    appid: services.mpAppid,
    openid,
    unionid,
  })
  const session = await call('POST', `${base}/login`, { code })
  return session.token as string
}

async function buyAndPay(token: string, sku: string, groupBuyId?: number) {
  const { order, payment } = await call('POST', `${base}/orders`, { sku, groupBuyId }, token)
  console.log(
    `  order ${order.outTradeNo} ${order.description} ¥${(order.amountFen / 100).toFixed(2)}`,
  )
  console.log(
    `    wx.requestPayment(${JSON.stringify({ ...payment, paySign: `${payment.paySign.slice(0, 16)}…` })})`,
  )
  const paid = await call('POST', `${services.pay}/sandbox/pay/${order.outTradeNo}`)
  console.log(`    paid: the notification was answered ${paid.delivered.status}`)
  const after = await call('GET', `${base}/orders/${order.outTradeNo}`, undefined, token)
  console.log(`    order status: ${after.order.status}`)
  return after.order
}

const who = `o_demo_${Date.now().toString(36)}`
const token = await login(who)
console.log(`logged in as ${who}`)
const { products } = await call('GET', `${base}/catalog`, undefined, token)
for (const p of products)
  console.log(`  ${p.sku.padEnd(12)} ${p.name} ¥${(p.yourPriceFen / 100).toFixed(2)}`)
console.log('buying a membership:')
await buyAndPay(token, 'vip-30')
console.log('buying the flash-sale item at the member price:')
await buyAndPay(token, 'flash-tea')
console.log('starting a group buy and two friends join:')
const lead = await buyAndPay(token, 'group-gift')
for (const friend of ['a', 'b'])
  await buyAndPay(await login(`${who}_${friend}`), 'group-gift', lead.groupBuyId)
const group = await call('GET', `${base}/group-buys/${lead.groupBuyId}`, undefined, token)
console.log(`  group buy ${group.id}: ${group.status} (${group.paid}/${group.sizeRequired} paid)`)
const { member } = await call('GET', `${base}/me`, undefined, token)
console.log(
  `me: ${member.points} points (${member.pendingPoints} pending from purchases until ${member.pendingReleaseAt}), membership ${JSON.stringify(member.membership)}`,
)

// Cashback: an OA follower (the same person as a mini-program user, by unionid) redeems 50元返现.
const adminToken = services.adminToken ?? config.adminToken
if (!adminToken) {
  console.log('cashback: skipped (set the same ADMIN_TOKEN for npm start and npm run shop)')
  process.exit(0)
}
console.log('cashback: a follower redeems 50元返现 in the OA chat:')
const account = await loadSandboxAccount(config.dataDir)
const oa = createPusher({
  url: `http://localhost:${services.port}/wechat/${account.appid}`,
  account,
})
const follower = `${who}_oa`
const unionid = `union_${who}`
await call('POST', `${services.wechatApi}/sandbox/users`, { openid: follower, unionid })
await oa.event(follower, 'subscribe')
const mpToken = await login(`${who}_mp`, unionid)
await call(
  'POST',
  `http://localhost:${services.port}/admin/api/accounts/${account.appid}/members/${follower}/points`,
  { delta: 5000, reason: '返现演示', idempotencyKey: `demo-${who}` },
  adminToken,
)
const redeemed = await oa.text(follower, '兑换 4')
console.log(`  → 兑换 4\n  ← ${String(redeemed.reply?.Content ?? '').replaceAll('\n', '\n    ')}`)
const { cashbacks } = await call('GET', `${base}/cashbacks`, undefined, mpToken)
const cashback = cashbacks[0]
console.log(
  `  the mini program lists it: ${cashback.outBillNo} ¥${(cashback.amountFen / 100).toFixed(2)} ${cashback.state}`,
)
console.log(
  `    wx.requestMerchantTransfer(${JSON.stringify({ ...cashback.confirm, package: `${String(cashback.confirm?.package).slice(0, 16)}…` })})`,
)
const confirmed = await call(
  'POST',
  `${services.pay}/sandbox/transfer/${cashback.outBillNo}/confirm`,
)
console.log(`    confirmed: the transfer notification was answered ${confirmed.delivered.status}`)
const paidOut = await call('GET', `${base}/cashbacks/${cashback.outBillNo}`, undefined, mpToken)
console.log(`    cashback status: ${paidOut.cashback.state}`)
