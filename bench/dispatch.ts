/**
 * quanzi's `dispatch` alone, in one process: the (b) push 「帮助」 as the webhook hands it over (a
 * typed message and its replay stamp), dispatched one at a time with (b)'s dependencies
 * (bench/push-apps.ts: the in-memory stores, a database that answers no rows, the app's router and
 * settings, the answered-push memo). No HTTP, no signature, no XML: what dispatching costs, the
 * part the server bench cannot tell apart from the rest. The stores are made anew every 2,000
 * pushes, so their Maps stay as small as a fresh server's: the figure is dispatch's, not the
 * stand-in store's growth. Reports the median µs per dispatch over the rounds and the bytes it
 * allocates (V8's sampling heap profiler over one more pass, collected objects included). Runs
 * bundled, as `npm start` runs the server.
 *
 *   npm run bench:dispatch
 * Env: BENCH_ROUNDS (8), BENCH_PUSHES (20000 per round), BENCH_TEXT (帮助).
 */
import { answeredPushes } from '../src/inbound/answered.js'
import { type DispatchDeps, type DispatchInput, dispatch } from '../src/inbound/dispatch.js'
import { toInboundMessage } from '../src/wechat/message.js'
import { memoryStores } from '../test/memory-stores.js'
import { sampleAllocations } from './allocations.js'
import { envNumber } from './env-number.js'
import { dispatchDeps } from './push-apps.js'
import { runBundled } from './run-bundled.js'

await runBundled(import.meta.url, 'dispatch')

const rounds = envNumber('BENCH_ROUNDS', 8, { min: 1, integer: true })
const pushes = envNumber('BENCH_PUSHES', 20_000, { min: 2_000, integer: true })
const content = process.env.BENCH_TEXT ?? '帮助'
const STORE_PUSHES = 2_000

const base = dispatchDeps()
const answered = answeredPushes()
/** (b)'s dispatch dependencies with fresh stores (as wechatRoutes builds them: same shape). */
const fresh = (): DispatchDeps =>
  Object.assign({}, base, memoryStores(), { waitUntil: undefined, metrics: undefined, answered })

let msgId = 10n ** 15n
/** `count` pushes from 500 senders, each with a new MsgId and a new nonce. */
function prepare(count: number): DispatchInput[] {
  const now = Math.floor(Date.now() / 1000)
  return Array.from({ length: count }, (_, i) => {
    msgId++
    const message = toInboundMessage({
      ToUserName: 'gh_bench',
      FromUserName: `o_dispatch_${i % 500}`,
      CreateTime: String(now),
      MsgType: 'text',
      Content: content,
      MsgId: String(msgId),
    })
    const digest = msgId.toString(16).padStart(64, '0')
    const stamp = { timestamp: String(now), nonce: `n${msgId}`, digest }
    return { appid: 'wx_bench', message, format: 'xml', receivedAt: 0, stamp }
  })
}

/** µs per dispatch over `list`, the stores renewed every STORE_PUSHES. */
async function run(list: DispatchInput[]): Promise<number> {
  let deps = fresh()
  const started = performance.now()
  for (let i = 0; i < list.length; i++) {
    if (i % STORE_PUSHES === 0) deps = fresh()
    const input = list[i]!
    input.receivedAt = Date.now()
    if ((await dispatch(deps, input)) === null) throw new Error(`${content} got no reply`)
  }
  return ((performance.now() - started) * 1000) / list.length
}

await run(prepare(pushes)) // warm-up (JIT)
const times: number[] = []
for (let r = 0; r < rounds; r++) times.push(await run(prepare(pushes)))

const list = prepare(pushes)
const sampling = await sampleAllocations(256)
await run(list)
const { bytes } = await sampling.stop()

const sorted = [...times].sort((a, b) => a - b)
console.log(
  `「${content}」, ${rounds} rounds of ${pushes} pushes: ${sorted[sorted.length >> 1]!.toFixed(2)} µs a dispatch in the median (${sorted[0]!.toFixed(2)}–${sorted.at(-1)!.toFixed(2)}), ${(bytes / list.length / 1024).toFixed(1)} KB allocated a dispatch`,
)
