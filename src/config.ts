/**
 * Configuration: one validated schema over environment variables. Errors name the variable and
 * what is wrong, never its value (several are secrets).
 */
import * as v from 'valibot'
import type { AuditRetention } from './community/audit-log.js'
import type { CampaignRetentionSettings } from './community/campaign-retention.js'
import type { CampaignSettings } from './community/campaigns.js'
import type { CheckinSettings } from './community/checkins.js'
import type { InviteSettings } from './community/invites.js'
import type { GroupRobots, ModeratorConfig } from './community/moderation.js'
import type { OutboxRetention } from './community/outbox.js'
import {
  DEFAULT_POINTS_EXPIRY,
  type PointsExpirySettings,
  parsePointsExpiry,
} from './community/points-expiry.js'
import type { SegmentThresholds } from './community/segments.js'
import { DEFAULT_POOL_MAX, MIN_POOL_MAX } from './db/pool-size.js'
import { DEFAULT_STATEMENT_CACHE } from './db/prepared-statements.js'
import { plainIssues } from './plain-issues.js'
import { DEFAULT_TRANSFER_SETTINGS, type TransferSettings } from './shop/transfer-bills.js'
import type { EncryptionMode } from './wechat/webhook.js'
import type { AibotCredentials } from './wecom/aibot.js'
import type { ContactCredentials } from './wecom/contact.js'

/** One official account the webhook serves. */
export interface AccountConfig {
  /** AppID, `wx` + 16 characters. */
  appid: string
  /** The Token entered in 开发 → 基本配置 (3–32 letters or digits). */
  token: string
  /** EncodingAESKey (43 characters); required for compatible and safe mode. */
  aesKey?: string
  /**
   * 消息加解密方式 as set in the MP console: `safe` accepts only encrypted pushes, `compat` both,
   * `plain` plaintext (and encrypted ones when a key is set). `loadConfig` always sets it; absent
   * (an account built elsewhere) means `safe` with an `aesKey`, else `plain`.
   */
  mode?: EncryptionMode
  /** The previous EncodingAESKey, tried when the current one fails (key rotation). */
  previousAesKey?: string
  /** AppSecret, for outbound API calls. */
  secret?: string
}

/** The validated configuration of one process. */
export interface Config {
  port: number
  /** PostgreSQL URL; undefined → embedded PGlite in `dataDir`. */
  databaseUrl?: string
  /**
   * The database is the embedded PGlite (no DATABASE_URL, not Workers): each statement runs on the
   * server's one thread, so long work goes in short statements (the report counts' slices).
   */
  embeddedDatabase: boolean
  /**
   * Statements each PostgreSQL connection keeps prepared (Node only; 0 = none, e.g. behind
   * PgBouncer in transaction mode). Not used on Workers nor PGlite.
   */
  statementCache: number
  /**
   * Connections the PostgreSQL pool opens at most (Node only; see src/db/pool-size.ts). Not used on
   * Workers nor PGlite.
   */
  poolMax: number
  /**
   * Statements slower than this many milliseconds are logged as warnings (0 = never); every
   * statement's time goes to /metrics. Node only.
   */
  slowStatementMs: number
  dataDir: string
  /** Configured accounts, default first. Empty in sandbox mode until the entry adds the dev account. */
  accounts: AccountConfig[]
  /** True when no WeChat credentials are configured: a generated dev account is used. */
  sandbox: boolean
  /**
   * Sandbox mode: seconds after which the sandbox WeChat Pay settles a refund it accepted
   * (SANDBOX_REFUND_SECONDS), as real WeChat Pay does within seconds to minutes.
   */
  sandboxRefundSeconds: number
  /** Refuse pushes whose timestamp is further than this from now; 0 disables the check. */
  maxSkewSeconds: number
  apiBase: string
  /** Where invite QR images are shown (`/cgi-bin/showqrcode`). */
  qrImageBase: string
  /** `stable` (stable_token, default) or `classic` (/cgi-bin/token). */
  tokenMode: 'stable' | 'classic'
  /** Outbox sends per second per account (0 = unthrottled) and the bucket size. */
  outboxRatePerSecond: number
  outboxBurst: number
  /** How often an idle outbox worker looks for due items. */
  outboxPollMs: number
  /** Ages (days) after which finished replies and notices, and delivery receipts, are deleted. */
  outboxRetention: OutboxRetention
  /** Ages (days) after which audit entries are deleted: operator actions, refused calls. */
  auditRetention: AuditRetention
  adminToken?: string
  /** Passive replies not ready by then are answered `success` and followed up later. */
  replyDeadlineMs: number
  maxBodyBytes: number
  timeZone: string
  /** Check-in window, streak bonuses, monthly rewards and make-ups. */
  checkin: CheckinSettings
  /** When invites pay, the chain's amounts, how long invite QRs live. */
  invites: InviteSettings
  /** Campaign frequency cap, quiet hours, the public URL of tracked links, recipient retention. */
  campaigns: CampaignSettings & CampaignRetentionSettings
  /** Internal groups' robot webhook keys by chat id, and the WeCom API base. */
  robots: GroupRobots
  /** WeCom customer contact: the callback's credentials, the app secret, the join-QR groups. */
  wecomContact?: ContactCredentials & { secret: string; apiBase: string; joinChats: string[] }
  /** Opt-in personal-WeChat bridges by id (`/bridge/<id>`): HMAC secret, trust in unionids. */
  bridges: Record<string, BridgeConfig>
  /** Moderators seeded at start-up. */
  moderators: ModeratorConfig[]
  /** The WeCom AI bot's Token and EncodingAESKey (its callback at /wecom/aibot), if configured. */
  aibot?: AibotCredentials
  /** Lifecycle segment thresholds (days, purchases). */
  segments: SegmentThresholds
  /** The mini-program shop and WeChat Pay; undefined when not configured (sandbox mode adds one). */
  shop?: ShopConfig
  /**
   * Days the points a purchase earns stay frozen (待到账, its refund window) before the
   * `release-points` job releases them; 0 = at its next run.
   */
  pointsFreezeDays: number
  /**
   * SHARE_OAUTH: share links opened in WeChat identify the opener by their openid (silent web
   * OAuth, `snsapi_base`; the account needs its secret and PUBLIC_BASE_URL on its 网页授权域名).
   */
  shareOauth: boolean
  /** POINTS_EXPIRY and POINTS_EXPIRY_NOTICE_DAYS: when points expire, how long ahead members hear. */
  pointsExpiry: PointsExpirySettings
  locale: 'zh-CN' | 'en'
  /** On SIGTERM/SIGINT: how long in-flight requests may finish before connections are closed. */
  shutdownTimeoutSeconds: number
  /** Scheduled jobs: catch-up window, run lease, retention of job runs. */
  jobs: JobSettings
  /** Bearer token `/metrics` requires; undefined → open (bind it to a private network). */
  metricsToken?: string
  /** Reverse proxies in front that append to X-Forwarded-For (client address: audit, limits). */
  trustedProxyHops: number
  logLevel: 'debug' | 'info' | 'warn' | 'error'
}

/**
 * Members per chunk of the segment recompute (JOB_CHUNK_MEMBERS) by database. On PGlite a chunk
 * holds the one connection and the event loop while it runs — pushes and new connections wait —
 * so its chunks stay near 50 ms: a first compute over 1,000,000 members on PGlite in chunks of
 * 50,000 left 1,604 of 2,215 pushes answered after 4.5 s and 227 connection attempts timed out,
 * in chunks of 5,000 none (bench/README.md, session 32). PostgreSQL runs jobs on connections of
 * their own (Workers always: HYPERDRIVE or DATABASE_URL).
 */
export const DEFAULT_CHUNK_MEMBERS = { postgres: 50_000, pglite: 5_000 } as const

/** Scheduled jobs (jobs/runner.ts, jobs/retention.ts). */
export interface JobSettings {
  /** How far back missed slots are run and crashed runs taken over; 0 disables both. */
  catchUpHours: number
  /** How long a run's claim lasts without a heartbeat (renewed every third of it). */
  leaseSeconds: number
  /** Finished job runs older than this are deleted (each job's newest scheduled run is kept). */
  runsRetentionDays: number
  /**
   * Workers: the wall-clock time one scheduled invocation gives its jobs; long jobs stop between
   * chunks once it is spent and the next tick resumes them. Node runs jobs to completion.
   */
  budgetMs: number
  /**
   * Members per chunk of a chunked job (segment recompute); by default
   * {@link DEFAULT_CHUNK_MEMBERS} of the database.
   */
  chunkMembers: number
}

/** An optional subscribe-message (订阅通知) template id. */
const subscribeTemplateId = v.optional(
  v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{1,128}$/, 'must be a subscribe-message template id')),
)
/**
 * A JSON object of `key → value`. `v.record` alone takes a JSON array as the map `{"0": …}`, so
 * `["<key>"]` would configure an entry named `0`: refused here, before the record reads it.
 */
function jsonObject<
  TKey extends v.GenericSchema<string, string | number | symbol>,
  TValue extends v.GenericSchema,
>(key: TKey, value: TValue, shape: string) {
  return v.pipe(
    v.custom<unknown>(
      (input) => !Array.isArray(input),
      `must be a JSON object ${shape}, not an array`,
    ),
    v.record(key, value),
  )
}
const robotsSchema = jsonObject(
  v.pipe(v.string(), v.minLength(1, 'chat ids must not be empty')),
  v.pipe(v.string(), v.regex(/^[\w-]{8,64}$/, 'must be a group robot webhook key')),
  '{"<chatid>":"<webhook key>"}',
)
/** One personal-WeChat bridge: its HMAC secret; `trustUnionid`: its joins may carry unionids. */
export interface BridgeConfig {
  secret: string
  trustUnionid: boolean
}
const bridgeSecret = v.pipe(
  v.string(),
  v.minLength(24, 'the shared secret must be at least 24 characters'),
)
const bridgesSchema = jsonObject(
  v.pipe(v.string(), v.regex(/^[\w-]{1,40}$/, 'bridge ids: letters, digits, _ and -')),
  v.union(
    [
      v.pipe(
        bridgeSecret,
        v.transform((secret): BridgeConfig => ({ secret, trustUnionid: false })),
      ),
      v.strictObject({ secret: bridgeSecret, trustUnionid: v.optional(v.boolean(), false) }),
    ],
    'must be a shared secret of at least 24 characters, or {"secret":"…","trustUnionid":true}',
  ),
  '{"<bridge id>":"<secret>"}',
)
const joinChatsSchema = v.pipe(
  v.array(v.pipe(v.string(), v.minLength(1)), 'must be a JSON array of chat ids'),
  v.maxLength(5, 'at most 5 groups per join QR'),
)
const moderatorsSchema = v.array(
  v.strictObject({
    channel: v.pipe(
      v.string(),
      v.regex(/^(oa|wecom_aibot|bridge:[\w-]{1,40})$/, 'must be oa, wecom_aibot or bridge:<id>'),
    ),
    id: v.pipe(v.string(), v.minLength(1)),
    chat: v.optional(v.pipe(v.string(), v.minLength(1))),
    role: v.optional(v.picklist(['moderator', 'admin'], 'must be moderator or admin')),
  }),
)

/**
 * A JSON variable checked by a schema; problems name the variable and path — or, with
 * `secretEntries` (a map whose values are secrets: robot webhook keys, bridge secrets), only
 * `an entry of VARIABLE`, since a key/value swapped by mistake would put the secret in the path.
 */
function jsonVariable<T extends v.GenericSchema>(
  raw: string | undefined,
  name: string,
  problems: string[],
  schema: T,
  fallback: v.InferOutput<T>,
  { secretEntries = false }: { secretEntries?: boolean } = {},
): v.InferOutput<T> {
  if (raw === undefined) return fallback
  let json: unknown
  try {
    json = JSON.parse(raw)
  } catch {
    problems.push(`${name}: must be JSON`)
    return fallback
  }
  const result = parse(schema, json, name, secretEntries)
  if (result.success) return result.output
  problems.push(...result.problems)
  return fallback
}

/** The mini program and WeChat Pay merchant behind the shop. */
export interface ShopConfig {
  mpAppid: string
  mpSecret: string
  sessionSecret: string
  notifyUrl: string
  orderMinutes: number
  groupBuy: { size: number; max: number; hours: number }
  /** What cashback transfer bills say (TRANSFER_*). */
  transfer?: TransferSettings
  pay: {
    mchid: string
    certSerial: string
    privateKeyPem: string
    apiV3Key: string
    /** WeChat Pay's verification keys: platform-certificate serial or PUB_KEY_ID_… → PEM. */
    verifyKeys: Record<string, string>
    apiBase: string
  }
}

const SHOP_VARIABLES = [
  'MP_APPID',
  'MP_SECRET',
  'MP_SESSION_SECRET',
  'PAY_MCHID',
  'PAY_CERT_SERIAL',
  'PAY_PRIVATE_KEY',
  'PAY_API_V3_KEY',
  'PAY_VERIFY_KEYS',
  'PAY_NOTIFY_URL',
] as const

/** The shop: all of its variables or none of them. */
function shopConfig(
  e: v.InferOutput<typeof envSchema>,
  problems: string[],
): ShopConfig | undefined {
  const set = SHOP_VARIABLES.filter((name) => e[name])
  if (set.length === 0) return undefined
  for (const name of SHOP_VARIABLES)
    if (!e[name])
      problems.push(
        `${name}: must be set when ${set[0]} is set (the shop needs all of ${SHOP_VARIABLES.join(', ')})`,
      )
  let verifyKeys: Record<string, string> = {}
  if (e.PAY_VERIFY_KEYS) {
    try {
      verifyKeys = JSON.parse(e.PAY_VERIFY_KEYS)
      const ok =
        verifyKeys &&
        typeof verifyKeys === 'object' &&
        !Array.isArray(verifyKeys) &&
        Object.keys(verifyKeys).length > 0 &&
        Object.values(verifyKeys).every(
          (pem) => typeof pem === 'string' && /-----BEGIN (PUBLIC KEY|CERTIFICATE)-----/.test(pem),
        )
      if (!ok) throw new Error()
    } catch {
      problems.push(
        'PAY_VERIFY_KEYS: must be a JSON object {"<serial or PUB_KEY_ID_…>": "<PEM public key or certificate>"}',
      )
    }
  }
  if (e.GROUP_BUY_MAX < e.GROUP_BUY_SIZE)
    problems.push('GROUP_BUY_MAX: must be at least GROUP_BUY_SIZE')
  if (set.length !== SHOP_VARIABLES.length) return undefined
  return {
    mpAppid: e.MP_APPID!,
    mpSecret: e.MP_SECRET!,
    sessionSecret: e.MP_SESSION_SECRET!,
    notifyUrl: e.PAY_NOTIFY_URL!,
    orderMinutes: e.ORDER_EXPIRE_MINUTES,
    groupBuy: { size: e.GROUP_BUY_SIZE, max: e.GROUP_BUY_MAX, hours: e.GROUP_BUY_HOURS },
    transfer: {
      sceneId: e.TRANSFER_SCENE_ID,
      activityName: e.TRANSFER_ACTIVITY_NAME,
      rewardDescription: e.TRANSFER_REWARD_DESCRIPTION,
      remark: e.TRANSFER_REMARK,
      perception: e.TRANSFER_USER_RECV_PERCEPTION,
    },
    pay: {
      mchid: e.PAY_MCHID!,
      certSerial: e.PAY_CERT_SERIAL!,
      privateKeyPem: e.PAY_PRIVATE_KEY!,
      apiV3Key: e.PAY_API_V3_KEY!,
      verifyKeys,
      apiBase: e.PAY_API_BASE.replace(/\/+$/, ''),
    },
  }
}

/** Bad configuration: `problems` are lines of the form `VARIABLE: what is wrong`. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError'
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`)
  }
}

const APPID = /^wx[0-9a-zA-Z]{16}$/
const TOKEN = /^[A-Za-z0-9]{3,32}$/
const AES_KEY = /^[A-Za-z0-9]{43}$/

const optionalString = v.optional(v.pipe(v.string(), v.trim(), v.minLength(1, 'must not be empty')))

function integer(min: number, max: number, fallback: number) {
  // (valibot runs the default through the pipe: it comes out a number)
  return v.optional(wholeNumber(min, max), String(fallback))
}

/** {@link integer} with no default: undefined when unset (a default that depends on others). */
function optionalInteger(min: number, max: number) {
  return v.optional(wholeNumber(min, max))
}

function wholeNumber(min: number, max: number) {
  return v.pipe(
    v.string(),
    v.regex(/^\d+$/, `must be a whole number ≥ ${min}`),
    v.transform(Number),
    v.minValue(min, `must be at least ${min}`),
    v.maxValue(max, `must be at most ${max}`),
  )
}

/** An absolute http(s) URL: `v.url` alone takes whatever a URL parser does (`ftp://x`, `mailto:x`). */
function httpUrl(message: string) {
  return v.pipe(
    v.string(),
    v.url(message),
    v.check((u) => /^https?:\/\/[^/]/i.test(u), message),
  )
}

const appid = v.pipe(v.string(), v.regex(APPID, 'must be "wx" followed by 16 letters or digits'))

/** A text a transfer bill carries: 1–32 characters on one line (WeChat Pay's limit). */
function transferText(fallback: string) {
  return v.pipe(
    v.optional(v.string(), fallback),
    v.trim(),
    v.check((t) => [...t].length >= 1 && [...t].length <= 32, 'must be 1–32 characters'),
    v.check((t) => !/[\r\n]/.test(t), 'must be one line'),
  )
}
const token = v.pipe(v.string(), v.regex(TOKEN, 'must be 3–32 letters or digits'))
const aesKey = v.pipe(
  v.string(),
  v.check((s) => s.length === 43, 'must be exactly 43 characters (the EncodingAESKey)'),
  v.regex(AES_KEY, 'must contain only letters and digits'),
)

const mode = v.picklist(['plain', 'compat', 'safe'], 'must be plain, compat or safe')

const accountSchema = v.strictObject({
  appid,
  token,
  mode: v.optional(mode),
  aesKey: v.optional(aesKey),
  previousAesKey: v.optional(aesKey),
  secret: v.optional(v.pipe(v.string(), v.minLength(1, 'must not be empty'))),
})

const envSchema = v.object({
  PORT: integer(1, 65535, 3000),
  DATABASE_URL: v.optional(
    v.pipe(
      v.string(),
      v.regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL'),
    ),
  ),
  DATABASE_STATEMENT_CACHE: integer(0, 1000, DEFAULT_STATEMENT_CACHE),
  DATABASE_POOL_MAX: integer(MIN_POOL_MAX, 200, DEFAULT_POOL_MAX),
  DATABASE_SLOW_STATEMENT_MS: integer(0, 3_600_000, 1_000),
  QUANZI_DATA_DIR: v.optional(v.pipe(v.string(), v.minLength(1)), './data'),
  WECHAT_APPID: v.optional(appid),
  WECHAT_TOKEN: v.optional(token),
  WECHAT_AES_KEY: v.optional(aesKey),
  WECHAT_AES_KEY_PREVIOUS: v.optional(aesKey),
  WECHAT_MODE: v.optional(mode),
  WECHAT_SECRET: optionalString,
  WECHAT_ACCOUNTS: v.optional(v.string()),
  WECHAT_MAX_SKEW_SECONDS: integer(0, 86_400, 300),
  SANDBOX_REFUND_SECONDS: integer(0, 3600, 5),
  WECHAT_API_BASE: v.optional(
    httpUrl('must be an absolute http(s) URL such as https://api.weixin.qq.com'),
    'https://api.weixin.qq.com',
  ),
  WECHAT_QR_IMAGE_BASE: v.optional(
    httpUrl('must be an absolute http(s) URL such as https://mp.weixin.qq.com'),
    'https://mp.weixin.qq.com',
  ),
  WECHAT_TOKEN_MODE: v.optional(
    v.picklist(['stable', 'classic'], 'must be stable or classic'),
    'stable',
  ),
  OUTBOX_RATE_PER_SECOND: integer(0, 100_000, 100),
  OUTBOX_BURST: integer(1, 100_000, 200),
  OUTBOX_POLL_MS: integer(50, 600_000, 1000),
  OUTBOX_RETENTION_DAYS: integer(1, 3650, 30),
  RECEIPT_RETENTION_DAYS: integer(1, 3650, 30),
  AUDIT_LOG_RETENTION_DAYS: integer(30, 3650, 730),
  AUDIT_REFUSED_RETENTION_DAYS: integer(1, 3650, 30),
  WECHAT_REPLY_DEADLINE_MS: integer(100, 4_800, 4000),
  WECHAT_MAX_BODY_BYTES: integer(1024, 20 * 1024 * 1024, 64 * 1024),
  ADMIN_TOKEN: v.optional(v.pipe(v.string(), v.minLength(16, 'must be at least 16 characters'))),
  QUANZI_TIME_ZONE: v.pipe(
    v.optional(v.string(), 'Asia/Shanghai'),
    v.check(isTimeZone, 'must be an IANA time zone such as Asia/Shanghai'),
  ),
  CHECKIN_WINDOW: v.optional(
    v.pipe(
      v.string(),
      v.regex(
        /^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$/,
        'must be HH:MM-HH:MM, e.g. 06:00-23:00',
      ),
      v.transform((s) => {
        const [from, to] = s.split('-').map((t) => {
          const [h, m] = t.split(':').map(Number) as [number, number]
          return h * 60 + m
        }) as [number, number]
        return { from, to }
      }),
      v.check(
        (w) => w.from < w.to && w.to <= 1440,
        'the window must end after it starts, by 24:00',
      ),
    ),
  ),
  CHECKIN_REMINDER_TIME: v.pipe(
    v.optional(v.string(), '20:00'),
    v.regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be HH:MM in community time, e.g. 20:00'),
    v.transform((s) => {
      const [h, m] = s.split(':').map(Number) as [number, number]
      return h * 60 + m
    }),
  ),
  CHECKIN_REMINDER_TEMPLATE_ID: subscribeTemplateId,
  CHECKIN_REMINDER_TEMPLATE_KEYS: v.pipe(
    v.optional(v.string(), 'thing1,thing2'),
    v.regex(/^thing\d{1,3},thing\d{1,3}$/, 'must be two thing keys, e.g. thing1,thing2'),
    v.transform((s) => s.split(',') as [string, string]),
  ),
  CHECKIN_REMINDER_MP_TEMPLATE_ID: subscribeTemplateId,
  CHECKIN_REMINDER_MP_TEMPLATE_KEYS: v.pipe(
    v.optional(v.string(), 'thing1,thing2'),
    v.regex(/^thing\d{1,3},thing\d{1,3}$/, 'must be two thing keys, e.g. thing1,thing2'),
    v.transform((s) => s.split(',') as [string, string]),
  ),
  CHECKIN_REMINDER_MP_PAGE: v.optional(
    v.pipe(
      v.string(),
      v.regex(
        /^[\w/.-]{1,200}(\?[\w=&%.-]{0,200})?$/,
        'must be a mini-program page, e.g. pages/checkin/index',
      ),
    ),
  ),
  CHECKIN_STREAK_BONUSES: v.pipe(
    v.optional(v.string(), '7:20,30:100'),
    v.regex(/^(\d+:\d+(,\d+:\d+)*)?$/, 'must be day:points pairs, e.g. 7:20,30:100'),
    v.transform((s) =>
      Object.fromEntries(
        s ? s.split(',').map((p) => p.split(':').map(Number) as [number, number]) : [],
      ),
    ),
  ),
  CHECKIN_MONTHLY_REWARDS: v.pipe(
    v.optional(v.string(), ''),
    v.regex(
      /^(([1-9]|[12]\d|3[01]):\d{1,6}(,([1-9]|[12]\d|3[01]):\d{1,6})*)?$/,
      'must be days:points pairs with days 1–31, e.g. 10:20,20:50,28:100',
    ),
    v.transform((s) =>
      Object.fromEntries(
        s ? s.split(',').map((p) => p.split(':').map(Number) as [number, number]) : [],
      ),
    ),
  ),
  CHECKIN_MAKEUP_DAYS: integer(0, 60, 7),
  CHECKIN_MAKEUP_PER_MONTH: integer(0, 31, 2),
  CHECKIN_MAKEUP_COSTS: v.pipe(
    v.optional(v.string(), '20,40'),
    v.regex(
      /^(\d{1,6}(,\d{1,6}){0,30})?$/,
      'must be comma-separated point amounts (the 1st, 2nd … make-up of a month), e.g. 20,40',
    ),
    v.transform((s) => (s ? s.split(',').map(Number) : [])),
  ),
  INVITE_REWARD_ON: v.optional(
    v.picklist(['checkin', 'follow'], 'must be checkin or follow'),
    'checkin',
  ),
  INVITE_CHAIN_REWARDS: v.pipe(
    v.optional(v.string(), '30,20,10,5'),
    v.regex(
      /^(\d{1,6}(,\d{1,6}){0,8})?$/,
      'must be up to 9 comma-separated point amounts, e.g. 30,20,10,5',
    ),
    v.transform((s) => (s ? s.split(',').map(Number) : [])),
  ),
  INVITE_QR_DAYS: integer(1, 30, 30),
  WECOM_AIBOT_TOKEN: v.optional(
    v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{3,32}$/, 'must be 3–32 letters, digits, _ or -')),
  ),
  WECOM_AIBOT_AES_KEY: v.optional(
    v.pipe(
      v.string(),
      v.regex(/^[A-Za-z0-9]{43}$/, 'must be exactly 43 characters (the EncodingAESKey)'),
    ),
  ),
  WECOM_API_BASE: v.optional(
    httpUrl('must be an absolute http(s) URL such as https://qyapi.weixin.qq.com'),
    'https://qyapi.weixin.qq.com',
  ),
  WECOM_GROUP_ROBOTS: v.optional(v.string()),
  WECOM_CORP_ID: v.optional(
    v.pipe(v.string(), v.regex(/^w[wx][0-9a-f]{16}$/, 'must be the corp id (ww…)')),
  ),
  WECOM_CALLBACK_TOKEN: v.optional(
    v.pipe(v.string(), v.regex(/^[A-Za-z0-9]{3,32}$/, 'must be 3–32 letters or digits')),
  ),
  WECOM_CALLBACK_AES_KEY: v.optional(
    v.pipe(
      v.string(),
      v.regex(/^[A-Za-z0-9]{43}$/, 'must be exactly 43 characters (the EncodingAESKey)'),
    ),
  ),
  WECOM_CONTACT_SECRET: v.optional(
    v.pipe(v.string(), v.minLength(8, 'must be the 客户联系 secret')),
  ),
  WECOM_JOIN_CHATS: v.optional(v.string()),
  MODERATORS: v.optional(v.string()),
  BRIDGES: v.optional(v.string()),
  MP_APPID: v.optional(appid),
  MP_SECRET: v.optional(v.pipe(v.string(), v.minLength(8, 'must be the AppSecret'))),
  MP_SESSION_SECRET: v.optional(
    v.pipe(v.string(), v.minLength(32, 'must be at least 32 characters (signs session tokens)')),
  ),
  PAY_MCHID: v.optional(
    v.pipe(v.string(), v.regex(/^\d{8,12}$/, 'must be the merchant id (digits)')),
  ),
  PAY_CERT_SERIAL: v.optional(
    v.pipe(
      v.string(),
      v.regex(/^[0-9A-Fa-f]{8,64}$/, 'must be the merchant certificate serial (hex)'),
    ),
  ),
  PAY_PRIVATE_KEY: v.optional(
    v.pipe(
      v.string(),
      v.transform((s) => s.replaceAll('\\n', '\n')),
      v.regex(/-----BEGIN PRIVATE KEY-----/, 'must be the PEM of apiclient_key.pem'),
    ),
  ),
  PAY_API_V3_KEY: v.optional(
    v.pipe(
      v.string(),
      v.regex(/^[\x21-\x7e]{32}$/, 'must be exactly 32 characters (the APIv3 key)'),
    ),
  ),
  PAY_VERIFY_KEYS: v.optional(v.string()),
  PAY_NOTIFY_URL: v.optional(
    v.pipe(
      httpUrl('must be an absolute http(s) URL such as https://your.host/pay/notify'),
      v.check((u) => !u.includes('?'), 'must not have a query string'),
    ),
  ),
  PAY_API_BASE: v.optional(
    httpUrl('must be an absolute http(s) URL such as https://api.mch.weixin.qq.com'),
    'https://api.mch.weixin.qq.com',
  ),
  // Cashback transfer bills (商家转账): scene 1000 现金营销 and what it reports and shows.
  TRANSFER_SCENE_ID: v.optional(
    v.picklist(['1000'], 'must be 1000 (现金营销, whose report fields are 活动名称 and 奖励说明)'),
    DEFAULT_TRANSFER_SETTINGS.sceneId,
  ),
  TRANSFER_ACTIVITY_NAME: transferText(DEFAULT_TRANSFER_SETTINGS.activityName),
  TRANSFER_REWARD_DESCRIPTION: transferText(DEFAULT_TRANSFER_SETTINGS.rewardDescription),
  TRANSFER_REMARK: transferText(DEFAULT_TRANSFER_SETTINGS.remark),
  TRANSFER_USER_RECV_PERCEPTION: v.optional(
    v.picklist(['现金奖励', '活动奖励'], 'must be 现金奖励 or 活动奖励 (what scene 1000 allows)'),
    DEFAULT_TRANSFER_SETTINGS.perception,
  ),
  SEGMENT_DORMANT_DAYS: integer(1, 3650, 90),
  SEGMENT_AT_RISK_DAYS: integer(1, 3650, 30),
  SEGMENT_NEW_DAYS: integer(1, 365, 7),
  SEGMENT_ACTIVE_DAYS: integer(1, 365, 7),
  SEGMENT_LOYAL_PURCHASES: integer(1, 10_000, 2),
  SEGMENT_LOYAL_STREAK_DAYS: integer(0, 3650, 14),
  /** Retired (loyal no longer looks at the last purchase's date): refused with a pointer. */
  SEGMENT_LOYAL_DAYS: v.optional(v.string()),
  CAMPAIGN_CAP_HOURS: integer(0, 24 * 30, 24),
  CAMPAIGN_CAP_SLACK_MINUTES: integer(0, 24 * 30 * 60, 30),
  CAMPAIGN_RECIPIENTS_RETENTION_DAYS: integer(61, 3650, 180),
  QUIET_HOURS: v.pipe(
    v.optional(v.string(), '22:00-08:00'),
    v.regex(
      /^(off|([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d)$/,
      'must be HH:MM-HH:MM in community time (may wrap midnight), or off',
    ),
    v.transform((s) => {
      if (s === 'off') return null
      const [from, to] = s.split('-').map((t) => {
        const [h, m] = t.split(':').map(Number) as [number, number]
        return h * 60 + m
      }) as [number, number]
      return { from, to }
    }),
  ),
  SHARE_OAUTH: v.pipe(
    v.optional(v.picklist(['on', 'off'], 'must be on or off'), 'off'),
    v.transform((s) => s === 'on'),
  ),
  PUBLIC_BASE_URL: v.optional(
    httpUrl('must be the public http(s) URL of this server, e.g. https://your.host'),
  ),
  ORDER_EXPIRE_MINUTES: integer(1, 120, 15),
  GROUP_BUY_SIZE: integer(2, 50, 3),
  GROUP_BUY_MAX: integer(2, 100, 5),
  GROUP_BUY_HOURS: integer(1, 168, 24),
  POINTS_FREEZE_DAYS: integer(0, 365, 7),
  POINTS_EXPIRY: v.pipe(
    v.optional(v.string(), 'off'),
    v.transform(parsePointsExpiry),
    v.check((p) => p !== undefined, 'must be off, a number of days (1–3650) or year_end'),
    v.transform((p) => p!),
  ),
  POINTS_EXPIRY_NOTICE_DAYS: integer(0, 365, DEFAULT_POINTS_EXPIRY.noticeDays),
  QUANZI_LOCALE: v.optional(v.picklist(['zh-CN', 'en'], 'must be zh-CN or en'), 'zh-CN'),
  SHUTDOWN_TIMEOUT_SECONDS: integer(0, 600, 10),
  JOB_CATCH_UP_HOURS: integer(0, 168, 24),
  JOB_LEASE_SECONDS: integer(2, 3600, 60),
  JOB_RUNS_RETENTION_DAYS: integer(1, 3650, 30),
  JOB_BUDGET_MS: integer(1, 600_000, 25_000),
  JOB_CHUNK_MEMBERS: optionalInteger(100, 1_000_000),
  TRUSTED_PROXY_HOPS: integer(0, 10, 0),
  METRICS_TOKEN: v.optional(
    v.pipe(v.string(), v.minLength(16, 'must be at least 16 characters (a bearer token)')),
  ),
  LOG_LEVEL: v.optional(
    v.picklist(['debug', 'info', 'warn', 'error'], 'must be debug, info, warn or error'),
    'info',
  ),
})

function isTimeZone(tz: string): boolean {
  // Region names only: PostgreSQL reads offsets such as '+08:00' or 'GMT+8' with the opposite sign
  // (POSIX), and the community day is computed on both sides.
  if (!/^(UTC|[A-Z][A-Za-z_]+(\/[A-Za-z0-9_+-]+)+)$/.test(tz)) return false
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz })
    return true
  } catch {
    return false
  }
}

/**
 * The wording of an issue the schema gave no message of its own (plain-issues.ts): what is
 * expected, never what was received — values here are tokens and secrets.
 */
const valueFree = plainIssues({ Object: 'a JSON object', Array: 'a JSON array' })

/**
 * What is said of an object's unknown field, without its name: the known field one or two
 * letters away from it (a typo), else the known fields.
 */
function unknownField(key: string, known: readonly string[] | undefined): string {
  const near = known?.find((k) => editDistance(k.toLowerCase(), key.toLowerCase()) <= 2)
  if (near) return `has a field that is not known (its name is not shown) — did you mean ${near}?`
  return known
    ? `has a field that is not known (its name is not shown); known: ${known.join(', ')}`
    : 'has a field that is not known (its name is not shown)'
}

/** Levenshtein distance, for the typo hint (field names are short). */
function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3
  let row = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const next = [i]
    for (let j = 1; j <= b.length; j++)
      next[j] = Math.min(
        row[j]! + 1,
        next[j - 1]! + 1,
        row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      )
    row = next
  }
  return row[b.length]!
}

/** The field names of the object schema at `path` inside `schema` (through arrays and optionals). */
function knownKeysAt(
  schema: v.GenericSchema,
  path: readonly v.IssuePathItem[],
): string[] | undefined {
  // biome-ignore lint/suspicious/noExplicitAny: walking valibot's schema objects by their shape
  const unwrap = (x: any) => {
    while (x && !x.entries && !x.item && x.wrapped) x = x.wrapped
    return x
  }
  let at = unwrap(schema)
  for (const item of path)
    at = unwrap(item.type === 'array' ? at?.item : at?.entries?.[String(item.key)])
  return at?.entries ? Object.keys(at.entries) : undefined
}

/**
 * Checks `input` against `schema`: the output, or `VARIABLE[.path]: message` lines naming what is
 * expected — the one place configuration issues are worded ({@link valueFree}). With
 * `secretEntries` an issue inside the value says `an entry of VARIABLE` instead of its path (the
 * keys may be secrets), once per distinct message.
 */
function parse<T extends v.GenericSchema>(
  schema: T,
  input: unknown,
  prefix = '',
  secretEntries = false,
): { success: true; output: v.InferOutput<T> } | { success: false; problems: string[] } {
  const result = v.safeParse(schema, input, { abortPipeEarly: true, message: valueFree })
  if (result.success) return { success: true, output: result.output }
  const problems = result.issues.map((issue) => {
    if (secretEntries && issue.path?.length) return `an entry of ${prefix}: ${issue.message}`
    // An unknown field is never named: a key swapped with its value would be the secret. It is
    // pointed to by the known field it is closest to, or by the known fields.
    const unknown = issue.expected === 'never' ? issue.path?.at(-1) : undefined
    let path = prefix
    for (const item of (unknown ? issue.path?.slice(0, -1) : issue.path) ?? []) {
      const { key } = item
      path += typeof key === 'number' ? `[${key}]` : path ? `.${String(key)}` : String(key)
    }
    if (unknown)
      return `${path}: ${unknownField(String(unknown.key), knownKeysAt(schema, issue.path!.slice(0, -1)))}`
    return `${path}: ${issue.message}`
  })
  return { success: false, problems: [...new Set(problems)] }
}

/**
 * Reads and validates the configuration from an environment (`process.env` or a Workers `env`).
 * Empty strings count as unset. Throws {@link ConfigError} listing every problem.
 * @example const config = loadConfig(process.env)
 */
export function loadConfig(
  env: Record<string, string | undefined>,
  /** `postgres`: the database is PostgreSQL even without DATABASE_URL (Workers' HYPERDRIVE). */
  runtime: { postgres?: boolean } = {},
): Config {
  const cleaned = Object.fromEntries(
    Object.entries(env).filter(([, value]) => typeof value === 'string' && value.trim() !== ''),
  )
  const parsed = parse(envSchema, cleaned)
  if (!parsed.success) throw new ConfigError(parsed.problems)
  const e = parsed.output
  const embeddedDatabase = !(e.DATABASE_URL || runtime.postgres)
  const problems: string[] = []
  // WeChat refuses an OAuth redirect to a host other than the account's 网页授权域名: without the
  // public https address every share link opened in WeChat would end on WeChat's error page.
  if (e.SHARE_OAUTH && !e.PUBLIC_BASE_URL?.startsWith('https://'))
    problems.push(
      'SHARE_OAUTH: needs PUBLIC_BASE_URL, the https address registered as 网页授权域名',
    )

  const accounts: AccountConfig[] = []
  // Where each account is configured, for problems that name it (never by its appid).
  const origins: string[] = []
  if (e.WECHAT_APPID || e.WECHAT_TOKEN) {
    if (!e.WECHAT_APPID) problems.push('WECHAT_APPID: must be set when WECHAT_TOKEN is set')
    if (!e.WECHAT_TOKEN) problems.push('WECHAT_TOKEN: must be set when WECHAT_APPID is set')
    if (e.WECHAT_APPID && e.WECHAT_TOKEN) {
      accounts.push({
        appid: e.WECHAT_APPID,
        token: e.WECHAT_TOKEN,
        aesKey: e.WECHAT_AES_KEY,
        previousAesKey: e.WECHAT_AES_KEY_PREVIOUS,
        secret: e.WECHAT_SECRET,
        mode: e.WECHAT_MODE ?? (e.WECHAT_AES_KEY ? 'safe' : 'plain'),
      })
      origins.push('WECHAT_APPID')
      if (e.WECHAT_MODE && e.WECHAT_MODE !== 'plain' && !e.WECHAT_AES_KEY)
        problems.push(
          'WECHAT_MODE: compat and safe need WECHAT_AES_KEY (the EncodingAESKey); use plain without one',
        )
    }
  } else {
    for (const name of [
      'WECHAT_AES_KEY',
      'WECHAT_AES_KEY_PREVIOUS',
      'WECHAT_MODE',
      'WECHAT_SECRET',
    ] as const) {
      if (e[name]) problems.push(`${name}: is set but WECHAT_APPID and WECHAT_TOKEN are not`)
    }
  }
  if (e.WECHAT_AES_KEY_PREVIOUS && !e.WECHAT_AES_KEY) {
    problems.push('WECHAT_AES_KEY_PREVIOUS: needs WECHAT_AES_KEY (the current key) as well')
  }

  if (e.WECHAT_ACCOUNTS) {
    let list: unknown
    try {
      list = JSON.parse(e.WECHAT_ACCOUNTS)
    } catch {
      problems.push(
        'WECHAT_ACCOUNTS: must be a JSON array of {appid, token, aesKey?, previousAesKey?, mode?, secret?}',
      )
    }
    if (list !== undefined) {
      const result = parse(v.array(accountSchema, 'must be a JSON array'), list, 'WECHAT_ACCOUNTS')
      if (result.success)
        result.output.forEach((account, index) => {
          if (account.mode && account.mode !== 'plain' && !account.aesKey)
            problems.push(
              `WECHAT_ACCOUNTS[${index}].mode: compat and safe need aesKey (the EncodingAESKey); use plain without one`,
            )
          accounts.push({ ...account, mode: account.mode ?? (account.aesKey ? 'safe' : 'plain') })
          origins.push(`WECHAT_ACCOUNTS[${index}]`)
        })
      else problems.push(...result.problems)
    }
  }
  const seen = new Map<string, string>()
  accounts.forEach((account, index) => {
    const first = seen.get(account.appid)
    if (first)
      problems.push(`${origins[index]}.appid: the same appid as ${first} (one entry per account)`)
    else seen.set(account.appid, origins[index]!)
  })
  if (Boolean(e.WECOM_AIBOT_TOKEN) !== Boolean(e.WECOM_AIBOT_AES_KEY))
    problems.push(
      `${e.WECOM_AIBOT_TOKEN ? 'WECOM_AIBOT_AES_KEY' : 'WECOM_AIBOT_TOKEN'}: the AI bot needs both WECOM_AIBOT_TOKEN and WECOM_AIBOT_AES_KEY`,
    )
  const contactVars = [
    'WECOM_CORP_ID',
    'WECOM_CALLBACK_TOKEN',
    'WECOM_CALLBACK_AES_KEY',
    'WECOM_CONTACT_SECRET',
  ] as const
  const contactSet = contactVars.filter((name) => e[name])
  if (contactSet.length > 0)
    for (const name of contactVars)
      if (!e[name])
        problems.push(
          `${name}: must be set when ${contactSet[0]} is set (customer contact needs all of ${contactVars.join(', ')})`,
        )
  const joinChats = jsonVariable(
    e.WECOM_JOIN_CHATS,
    'WECOM_JOIN_CHATS',
    problems,
    joinChatsSchema,
    [],
  )
  const bridges = jsonVariable(
    e.BRIDGES,
    'BRIDGES',
    problems,
    bridgesSchema,
    {},
    { secretEntries: true },
  )
  const robots = jsonVariable(
    e.WECOM_GROUP_ROBOTS,
    'WECOM_GROUP_ROBOTS',
    problems,
    robotsSchema,
    {},
    { secretEntries: true },
  )
  const moderators = jsonVariable(e.MODERATORS, 'MODERATORS', problems, moderatorsSchema, [])
  if (e.CAMPAIGN_CAP_HOURS > 0 && e.CAMPAIGN_CAP_SLACK_MINUTES >= e.CAMPAIGN_CAP_HOURS * 60)
    problems.push(
      `CAMPAIGN_CAP_SLACK_MINUTES: must be less than CAMPAIGN_CAP_HOURS × 60 (${e.CAMPAIGN_CAP_HOURS * 60})`,
    )
  // Reminders wait out quiet hours: a default time inside them would refuse every bare 提醒.
  const quiet = e.QUIET_HOURS
  const reminder = e.CHECKIN_REMINDER_TIME
  if (
    quiet &&
    (quiet.from < quiet.to
      ? reminder >= quiet.from && reminder < quiet.to
      : quiet.from > quiet.to && (reminder >= quiet.from || reminder < quiet.to))
  )
    problems.push(
      'CHECKIN_REMINDER_TIME: must be outside QUIET_HOURS (no reminder is sent then: every 提醒 without a time would be refused)',
    )
  if (e.SEGMENT_AT_RISK_DAYS >= e.SEGMENT_DORMANT_DAYS)
    problems.push('SEGMENT_AT_RISK_DAYS: must be less than SEGMENT_DORMANT_DAYS')
  if (e.SEGMENT_ACTIVE_DAYS > e.SEGMENT_AT_RISK_DAYS)
    problems.push('SEGMENT_ACTIVE_DAYS: must be at most SEGMENT_AT_RISK_DAYS')
  if (e.SEGMENT_LOYAL_DAYS !== undefined)
    problems.push(
      'SEGMENT_LOYAL_DAYS: no longer used — loyal is now SEGMENT_LOYAL_PURCHASES or more purchases (whenever made) or a running check-in streak of SEGMENT_LOYAL_STREAK_DAYS; remove it',
    )
  const shop = shopConfig(e, problems)
  // Members under MP_APPID are the shop's account's mini-program members (account-members.ts):
  // under an account's appid they would be that account's followers.
  if (shop && accounts.some((a) => a.appid === shop.mpAppid))
    problems.push(
      "MP_APPID: must be the mini program's appid, not an official account's (WECHAT_APPID, WECHAT_ACCOUNTS)",
    )
  if (problems.length > 0) throw new ConfigError(problems)

  return {
    port: e.PORT,
    databaseUrl: e.DATABASE_URL,
    embeddedDatabase,
    statementCache: e.DATABASE_STATEMENT_CACHE,
    poolMax: e.DATABASE_POOL_MAX,
    slowStatementMs: e.DATABASE_SLOW_STATEMENT_MS,
    dataDir: e.QUANZI_DATA_DIR,
    accounts,
    sandbox: accounts.length === 0,
    sandboxRefundSeconds: e.SANDBOX_REFUND_SECONDS,
    maxSkewSeconds: e.WECHAT_MAX_SKEW_SECONDS,
    apiBase: e.WECHAT_API_BASE.replace(/\/+$/, ''),
    tokenMode: e.WECHAT_TOKEN_MODE,
    outboxRatePerSecond: e.OUTBOX_RATE_PER_SECOND,
    outboxBurst: e.OUTBOX_BURST,
    outboxPollMs: e.OUTBOX_POLL_MS,
    outboxRetention: { outboxDays: e.OUTBOX_RETENTION_DAYS, receiptDays: e.RECEIPT_RETENTION_DAYS },
    auditRetention: {
      actionDays: e.AUDIT_LOG_RETENTION_DAYS,
      refusedDays: e.AUDIT_REFUSED_RETENTION_DAYS,
    },
    adminToken: e.ADMIN_TOKEN,
    replyDeadlineMs: e.WECHAT_REPLY_DEADLINE_MS,
    maxBodyBytes: e.WECHAT_MAX_BODY_BYTES,
    timeZone: e.QUANZI_TIME_ZONE,
    checkin: {
      window: e.CHECKIN_WINDOW,
      streakBonuses: e.CHECKIN_STREAK_BONUSES,
      monthlyRewards: e.CHECKIN_MONTHLY_REWARDS,
      makeup: {
        days: e.CHECKIN_MAKEUP_DAYS,
        perMonth: e.CHECKIN_MAKEUP_PER_MONTH,
        costs: e.CHECKIN_MAKEUP_COSTS,
      },
      reminders: {
        defaultMinute: e.CHECKIN_REMINDER_TIME,
        quietHours: e.QUIET_HOURS,
        subscribe: e.CHECKIN_REMINDER_TEMPLATE_ID
          ? {
              templateId: e.CHECKIN_REMINDER_TEMPLATE_ID,
              titleKey: e.CHECKIN_REMINDER_TEMPLATE_KEYS[0],
              hintKey: e.CHECKIN_REMINDER_TEMPLATE_KEYS[1],
            }
          : undefined,
        mpTemplateId: e.CHECKIN_REMINDER_MP_TEMPLATE_ID,
        mpSubscribe: e.CHECKIN_REMINDER_MP_TEMPLATE_ID
          ? {
              titleKey: e.CHECKIN_REMINDER_MP_TEMPLATE_KEYS[0],
              hintKey: e.CHECKIN_REMINDER_MP_TEMPLATE_KEYS[1],
              page: e.CHECKIN_REMINDER_MP_PAGE,
            }
          : undefined,
      },
    },
    invites: {
      rewardOn: e.INVITE_REWARD_ON,
      chainRewards: e.INVITE_CHAIN_REWARDS,
      qrDays: e.INVITE_QR_DAYS,
    },
    qrImageBase: e.WECHAT_QR_IMAGE_BASE.replace(/\/+$/, ''),
    campaigns: {
      timeZone: e.QUANZI_TIME_ZONE,
      capHours: e.CAMPAIGN_CAP_HOURS,
      capSlackMinutes: e.CAMPAIGN_CAP_SLACK_MINUTES,
      recipientsRetentionDays: e.CAMPAIGN_RECIPIENTS_RETENTION_DAYS,
      quietHours: e.QUIET_HOURS,
      // As a URL parser writes it (lowercase host, no default port), so tracked links pass
      // the template URL check (src/http-url.ts).
      publicBaseUrl: new URL(e.PUBLIC_BASE_URL ?? `http://localhost:${e.PORT}`).href.replace(
        /\/+$/,
        '',
      ),
    },
    segments: {
      dormantDays: e.SEGMENT_DORMANT_DAYS,
      atRiskDays: e.SEGMENT_AT_RISK_DAYS,
      newDays: e.SEGMENT_NEW_DAYS,
      activeDays: e.SEGMENT_ACTIVE_DAYS,
      loyalPurchases: e.SEGMENT_LOYAL_PURCHASES,
      loyalStreakDays: e.SEGMENT_LOYAL_STREAK_DAYS,
    },
    shop,
    pointsFreezeDays: e.POINTS_FREEZE_DAYS,
    shareOauth: e.SHARE_OAUTH,
    pointsExpiry: { policy: e.POINTS_EXPIRY, noticeDays: e.POINTS_EXPIRY_NOTICE_DAYS },
    robots: { keys: robots, baseUrl: e.WECOM_API_BASE.replace(/\/+$/, '') },
    wecomContact:
      contactSet.length === contactVars.length
        ? {
            corpId: e.WECOM_CORP_ID!,
            token: e.WECOM_CALLBACK_TOKEN!,
            aesKey: e.WECOM_CALLBACK_AES_KEY!,
            secret: e.WECOM_CONTACT_SECRET!,
            apiBase: e.WECOM_API_BASE.replace(/\/+$/, ''),
            joinChats,
          }
        : undefined,
    moderators,
    bridges,
    aibot:
      e.WECOM_AIBOT_TOKEN && e.WECOM_AIBOT_AES_KEY
        ? { token: e.WECOM_AIBOT_TOKEN, aesKey: e.WECOM_AIBOT_AES_KEY }
        : undefined,
    locale: e.QUANZI_LOCALE,
    shutdownTimeoutSeconds: e.SHUTDOWN_TIMEOUT_SECONDS,
    jobs: {
      catchUpHours: e.JOB_CATCH_UP_HOURS,
      leaseSeconds: e.JOB_LEASE_SECONDS,
      runsRetentionDays: e.JOB_RUNS_RETENTION_DAYS,
      budgetMs: e.JOB_BUDGET_MS,
      chunkMembers:
        e.JOB_CHUNK_MEMBERS ??
        (embeddedDatabase ? DEFAULT_CHUNK_MEMBERS.pglite : DEFAULT_CHUNK_MEMBERS.postgres),
    },
    metricsToken: e.METRICS_TOKEN,
    trustedProxyHops: e.TRUSTED_PROXY_HOPS,
    logLevel: e.LOG_LEVEL,
  }
}
