/**
 * `npm run shop`: plays a mini program against the running sandbox (`npm start`): logs in, reads the
 * catalog, buys a membership and a flash-sale item, and fills a group buy with two friends — each
 * payment made on the sandbox WeChat Pay server, whose signed, encrypted notification the server
 * verifies and applies. Prints what happened.
 */
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ConfigError, loadConfig } from '../config.js'

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
) as { port: number; wechatApi: string; pay: string; mpAppid: string }
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

async function login(openid: string) {
  const { code } = await call('POST', `${services.wechatApi}/sandbox/login-code`, {
    appid: services.mpAppid,
    openid,
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
