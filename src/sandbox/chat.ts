/**
 * `npm run chat`: talk to a running quanzi as a follower. Every line is pushed as WeChat would —
 * signed, encrypted in safe mode by default — and the reply is opened and printed.
 *
 *   npm run chat                      interactive
 *   npm run chat -- 帮助              send one message and exit
 *   npm run chat -- --mode plain --openid o_bob --url http://localhost:3000/wechat
 *
 * Slash commands: /sub [scene]  /unsub  /scan <scene>  /click <key>  /as <openid>
 *                 /mode plain|compat|safe  /format xml|json  /quit
 */
import { existsSync } from 'node:fs'
import { createInterface } from 'node:readline/promises'
import { parseArgs } from 'node:util'
import { type AccountConfig, type Config, ConfigError, loadConfig } from '../config.js'
import type { PushFormat } from '../wechat/codec.js'
import { encryptionMode } from '../wechat/webhook.js'
import { createPusher, type PushMode, type PushResult } from './pusher.js'
import { loadSandboxAccount } from './sandbox-account.js'

if (existsSync('.env')) process.loadEnvFile('.env')
let config: Config
try {
  config = loadConfig(process.env)
} catch (error) {
  console.error(error instanceof ConfigError ? error.message : String(error))
  process.exit(1)
}
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    url: { type: 'string' },
    openid: { type: 'string', default: 'o_sandbox_user' },
    mode: { type: 'string' },
    format: { type: 'string', default: 'xml' },
  },
})

const account: AccountConfig = config.sandbox
  ? await loadSandboxAccount(config.dataDir)
  : config.accounts[0]!
const url = values.url ?? `http://localhost:${config.port}/wechat/${account.appid}`
let openid = values.openid!
let mode = (values.mode ?? encryptionMode(account)) as PushMode
let format = values.format as PushFormat
let pusher = createPusher({ url, account, mode, format })
const rebuild = () => {
  pusher = createPusher({ url, account, mode, format })
}

const accountMode = encryptionMode(account)

function show(result: PushResult): void {
  if (result.status !== 200) {
    let reason = result.body
    try {
      reason = (JSON.parse(result.body) as { message?: string }).message ?? reason
    } catch {}
    console.log(`  ← refused, HTTP ${result.status}: ${reason}`)
    if (mode !== accountMode)
      console.log(
        `    (the account is in ${accountMode} mode and this was a ${mode}-mode push; /mode ${accountMode} to go back)`,
      )
  } else if (!result.reply) {
    console.log(`  ← ${result.body === '' ? '(empty)' : result.body}`)
  } else {
    const r = result.reply
    const article = (r.Articles as { item?: Record<string, string>[] } | undefined)?.item?.[0]
    const content =
      typeof r.Content === 'string'
        ? r.Content
        : article
          ? `${article.Title}\n${article.Description ?? ''}\n${article.PicUrl ?? ''}`
          : JSON.stringify({ ...r, ToUserName: undefined })
    console.log(`  ← [${r.MsgType}] ${content.replaceAll('\n', '\n    ')}`)
  }
}

async function handle(line: string): Promise<boolean> {
  const [cmd = '', ...rest] = line.trim().split(/\s+/)
  const arg = rest.join(' ')
  switch (cmd) {
    case '':
      return true
    case '/quit':
    case '/exit':
      return false
    case '/sub':
      show(
        await pusher.event(
          openid,
          'subscribe',
          arg ? { EventKey: `qrscene_${arg}`, Ticket: 'sandbox' } : {},
        ),
      )
      return true
    case '/unsub':
      show(await pusher.event(openid, 'unsubscribe'))
      return true
    case '/scan':
      show(await pusher.event(openid, 'SCAN', { EventKey: arg, Ticket: 'sandbox' }))
      return true
    case '/click':
      show(await pusher.event(openid, 'CLICK', { EventKey: arg }))
      return true
    case '/as':
      openid = arg || openid
      console.log(`  now chatting as ${openid}`)
      return true
    case '/mode':
      if (!['plain', 'compat', 'safe'].includes(arg)) {
        console.log('  /mode plain|compat|safe')
        return true
      }
      mode = arg as PushMode
      rebuild()
      console.log(
        `  mode ${mode}${mode === accountMode ? '' : ` (the account is in ${accountMode} mode)`}`,
      )
      return true
    case '/format':
      format = arg as PushFormat
      rebuild()
      console.log(`  format ${format}`)
      return true
    default:
      show(await pusher.text(openid, line.trim()))
      return true
  }
}

try {
  if (positionals.length > 0) {
    await handle(positionals.join(' '))
  } else {
    console.log(`quanzi chat → ${url} as ${openid} (${mode}, ${format}); /quit to leave`)
    const rl = createInterface({ input: process.stdin, output: process.stdout, prompt: '→ ' })
    rl.prompt()
    for await (const line of rl) {
      try {
        if (!(await handle(line))) break
      } catch (error) {
        console.log(`  ! ${error instanceof Error ? error.message : String(error)}`)
      }
      rl.prompt()
    }
    rl.close()
  }
} catch (error) {
  const cause = (error as { cause?: { code?: string } }).cause
  console.error(
    cause?.code === 'ECONNREFUSED'
      ? `cannot reach ${url}: is the server running (npm start)?`
      : `chat failed: ${error instanceof Error ? error.message : String(error)}`,
  )
  process.exitCode = 1
}
