import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from './config.js'

const KEY = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG'

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env)
  } catch (error) {
    if (error instanceof ConfigError) return error.problems
    throw error
  }
  return []
}

describe('loadConfig', () => {
  it('defaults to sandbox mode on PGlite', () => {
    const config = loadConfig({})
    expect(config).toMatchObject({
      port: 3000,
      dataDir: './data',
      sandbox: true,
      accounts: [],
      maxSkewSeconds: 300,
      apiBase: 'https://api.weixin.qq.com',
      replyDeadlineMs: 4000,
      maxBodyBytes: 65536,
      timeZone: 'Asia/Shanghai',
      locale: 'zh-CN',
    })
    expect(config.databaseUrl).toBeUndefined()
  })

  it('reads the default account and extra accounts', () => {
    const config = loadConfig({
      WECHAT_APPID: 'wx1234567890abcdef',
      WECHAT_TOKEN: 'token123',
      WECHAT_AES_KEY: KEY,
      WECHAT_SECRET: 's3cret',
      WECHAT_ACCOUNTS: JSON.stringify([{ appid: 'wxabcdef1234567890', token: 'other1' }]),
      WECHAT_MAX_SKEW_SECONDS: '0',
    })
    expect(config.sandbox).toBe(false)
    expect(config.maxSkewSeconds).toBe(0)
    expect(config.accounts.map((a) => a.appid)).toEqual([
      'wx1234567890abcdef',
      'wxabcdef1234567890',
    ])
    expect(config.accounts[0]).toMatchObject({ aesKey: KEY, secret: 's3cret' })
  })

  it('names the variable and the problem, never the value', () => {
    const lines = problems({
      WECHAT_APPID: 'wx1234567890abcdef',
      WECHAT_TOKEN: 'token123',
      WECHAT_AES_KEY: 'tooshort-secret',
      PORT: 'eighty',
    })
    expect(lines).toContain('WECHAT_AES_KEY: must be exactly 43 characters (the EncodingAESKey)')
    expect(lines).toContain('PORT: must be a whole number ≥ 1')
    expect(lines.join('\n')).not.toContain('tooshort-secret')
  })

  it('never prints an unknown field of an account: a key swapped with its value is the secret', () => {
    const aesKey = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG'
    let problems: string[] = []
    try {
      loadConfig({
        WECHAT_ACCOUNTS: JSON.stringify([
          { appid: 'wx0123456789abcdef', token: 'abc123', [aesKey]: 'aesKey' },
        ]),
      })
    } catch (error) {
      problems = (error as ConfigError).problems
    }
    expect(problems.join('\n')).not.toContain(aesKey)
    expect(problems).toContainEqual(
      expect.stringMatching(
        /^WECHAT_ACCOUNTS\[0\]: has a field that is not known \(its name is not shown\); known: appid, token, /,
      ),
    )
  })

  it('never prints a value, not even inside a JSON variable (tokens and secrets are values)', () => {
    const account = { appid: 'wx0123456789abcdef', token: 'abc123' }
    const cases: [Record<string, string>, string][] = [
      [
        { WECHAT_ACCOUNTS: JSON.stringify([{ ...account, token: 20261205 }]) },
        'WECHAT_ACCOUNTS[0].token: must be a string',
      ],
      [
        { WECHAT_ACCOUNTS: JSON.stringify([{ ...account, secret: 987654321 }]) },
        'WECHAT_ACCOUNTS[0].secret: must be a string',
      ],
      [
        { WECHAT_ACCOUNTS: JSON.stringify([{ ...account, secert: 'sekrit-31337' }]) },
        'WECHAT_ACCOUNTS[0]: has a field that is not known (its name is not shown) — did you mean secret?',
      ],
      [
        { WECHAT_ACCOUNTS: JSON.stringify([{ token: 'tok31337' }]) },
        'WECHAT_ACCOUNTS[0].appid: is required',
      ],
      [
        { WECOM_GROUP_ROBOTS: '{"chat1":424242}' },
        'an entry of WECOM_GROUP_ROBOTS: must be a string',
      ],
      [
        { MODERATORS: '[{"channel":"oa","id":"o1","chat":777333}]' },
        'MODERATORS[0].chat: must be a string',
      ],
      [{ MODERATORS: '{"channel":"oa"}' }, 'MODERATORS: must be a JSON array'],
      [{ WECOM_JOIN_CHATS: '[515151]' }, 'WECOM_JOIN_CHATS[0]: must be a string'],
      [
        { BRIDGES: '{"b":616161}' },
        expect.stringMatching(/^an entry of BRIDGES: must be a shared secret/),
      ],
      [{ BRIDGES: '717171' }, 'BRIDGES: must be a JSON object'],
    ]
    for (const [env, line] of cases) {
      const lines = problems(env)
      expect(lines).toEqual([line])
      for (const value of [
        '20261205',
        '987654321',
        'sekrit',
        '31337',
        '424242',
        '777333',
        '515151',
        '616161',
        '717171',
      ])
        expect(lines.join('\n')).not.toContain(value)
    }
  })

  it('refuses a JSON array where a map is expected, instead of reading it as {"0": …}', () => {
    const robotKey = 'robotkey-8e1f0c5a'
    const secret = 'bridge-shared-secret-5f3a9c1e7b'
    expect(problems({ WECOM_GROUP_ROBOTS: JSON.stringify([robotKey]) })).toEqual([
      'WECOM_GROUP_ROBOTS: must be a JSON object {"<chatid>":"<webhook key>"}, not an array',
    ])
    expect(problems({ BRIDGES: JSON.stringify([secret]) })).toEqual([
      'BRIDGES: must be a JSON object {"<bridge id>":"<secret>"}, not an array',
    ])
    expect(problems({ BRIDGES: JSON.stringify([{ secret, trustUnionid: true }]) })).toEqual([
      'BRIDGES: must be a JSON object {"<bridge id>":"<secret>"}, not an array',
    ])
    expect(problems({ WECOM_GROUP_ROBOTS: '[]', BRIDGES: '[]' })).toHaveLength(2)
    expect(
      loadConfig({ WECOM_GROUP_ROBOTS: JSON.stringify({ chat1: robotKey }) }).robots.keys,
    ).toEqual({ chat1: robotKey })
  })

  it('never prints the key of a map whose values are secrets (a swapped key/value would be the secret)', () => {
    const robotKey = 'robotkey-8e1f0c5a'
    const secret = 'bridge-shared-secret-5f3a9c1e7b'
    const cases: [Record<string, string>, string[]][] = [
      [
        { WECOM_GROUP_ROBOTS: JSON.stringify({ [`${robotKey}!`]: 'chat1' }) },
        ['an entry of WECOM_GROUP_ROBOTS: must be a group robot webhook key'],
      ],
      [
        { WECOM_GROUP_ROBOTS: JSON.stringify({ [robotKey]: 42 }) },
        ['an entry of WECOM_GROUP_ROBOTS: must be a string'],
      ],
      [
        { WECOM_GROUP_ROBOTS: JSON.stringify({ '': robotKey }) },
        ['an entry of WECOM_GROUP_ROBOTS: chat ids must not be empty'],
      ],
      [
        { BRIDGES: JSON.stringify({ [`${secret}!`]: 'b1' }) },
        [
          'an entry of BRIDGES: bridge ids: letters, digits, _ and -',
          'an entry of BRIDGES: must be a shared secret of at least 24 characters, or {"secret":"…","trustUnionid":true}',
        ],
      ],
      [
        { BRIDGES: JSON.stringify({ [secret]: { secret: 'b1' } }) },
        ['an entry of BRIDGES: the shared secret must be at least 24 characters'],
      ],
    ]
    for (const [env, lines] of cases) {
      const found = problems(env)
      expect(found).toEqual(lines)
      expect(found.join('\n')).not.toContain(robotKey)
      expect(found.join('\n')).not.toContain('shared-secret')
    }
  })

  it('refuses a reminder time inside the quiet hours (every bare 提醒 would be refused)', () => {
    const line =
      'CHECKIN_REMINDER_TIME: must be outside QUIET_HOURS (no reminder is sent then: every 提醒 without a time would be refused)'
    expect(problems({ CHECKIN_REMINDER_TIME: '23:00' })).toEqual([line])
    expect(problems({ CHECKIN_REMINDER_TIME: '07:59' })).toEqual([line])
    expect(problems({ QUIET_HOURS: '19:00-21:00' })).toEqual([line])
    expect(problems({ CHECKIN_REMINDER_TIME: '08:00' })).toEqual([])
    expect(problems({ CHECKIN_REMINDER_TIME: '21:59' })).toEqual([])
    expect(problems({ CHECKIN_REMINDER_TIME: '23:00', QUIET_HOURS: 'off' })).toEqual([])
    expect(problems({ QUIET_HOURS: '21:00-19:00', CHECKIN_REMINDER_TIME: '20:00' })).toEqual([])
  })

  it('tells the embedded database from PostgreSQL (DATABASE_URL, or Workers without one)', () => {
    expect(loadConfig({}).embeddedDatabase).toBe(true)
    expect(loadConfig({ DATABASE_URL: 'postgres://u@127.0.0.1:5432/q' }).embeddedDatabase).toBe(
      false,
    )
    expect(loadConfig({}, { postgres: true }).embeddedDatabase).toBe(false)
  })

  it('chunks the segment recompute by the database: 5,000 members on PGlite, 50,000 on PostgreSQL', () => {
    // PGlite runs a chunk on the event loop's one connection: pushes wait for it (config.ts).
    expect(loadConfig({}).jobs.chunkMembers).toBe(5_000)
    const postgres = { DATABASE_URL: 'postgres://u@127.0.0.1:5432/q' }
    expect(loadConfig(postgres).jobs.chunkMembers).toBe(50_000)
    // Workers: PostgreSQL through a HYPERDRIVE binding, with no DATABASE_URL among the vars
    expect(loadConfig({}, { postgres: true }).jobs.chunkMembers).toBe(50_000)
    expect(loadConfig({ JOB_CHUNK_MEMBERS: '20000' }).jobs.chunkMembers).toBe(20_000)
    expect(loadConfig({ ...postgres, JOB_CHUNK_MEMBERS: '100' }).jobs.chunkMembers).toBe(100)
    expect(problems({ JOB_CHUNK_MEMBERS: '99' })).toEqual([
      'JOB_CHUNK_MEMBERS: must be at least 100',
    ])
    expect(problems({ JOB_CHUNK_MEMBERS: '5k' })).toEqual([
      'JOB_CHUNK_MEMBERS: must be a whole number ≥ 100',
    ])
  })

  it('takes absolute http(s) URLs only, and says the lower bound of a whole number', () => {
    for (const [name, example] of [
      ['WECHAT_API_BASE', 'https://api.weixin.qq.com'],
      ['WECHAT_QR_IMAGE_BASE', 'https://mp.weixin.qq.com'],
      ['WECOM_API_BASE', 'https://qyapi.weixin.qq.com'],
      ['PAY_API_BASE', 'https://api.mch.weixin.qq.com'],
    ])
      for (const bad of ['ftp://x', 'mailto:a@b.example', 'http:/x', 'api.weixin.qq.com'])
        expect(problems({ [name!]: bad })).toEqual([
          `${name}: must be an absolute http(s) URL such as ${example}`,
        ])
    expect(problems({ PUBLIC_BASE_URL: 'ftp://q.example' })).toEqual([
      'PUBLIC_BASE_URL: must be the public http(s) URL of this server, e.g. https://your.host',
    ])
    expect(loadConfig({ WECHAT_API_BASE: 'http://127.0.0.1:9/' }).apiBase).toBe(
      'http://127.0.0.1:9',
    )
    expect(problems({ WECHAT_MAX_SKEW_SECONDS: '-1', SHUTDOWN_TIMEOUT_SECONDS: '-5' })).toEqual([
      'WECHAT_MAX_SKEW_SECONDS: must be a whole number ≥ 0',
      'SHUTDOWN_TIMEOUT_SECONDS: must be a whole number ≥ 0',
    ])
    expect(problems({ JOB_LEASE_SECONDS: '-5' })).toEqual([
      'JOB_LEASE_SECONDS: must be a whole number ≥ 2',
    ])
  })

  it('refuses SHARE_OAUTH without the public https address WeChat redirects to', () => {
    const need = 'SHARE_OAUTH: needs PUBLIC_BASE_URL, the https address registered as 网页授权域名'
    expect(problems({ SHARE_OAUTH: 'on' })).toContain(need)
    expect(problems({ SHARE_OAUTH: 'on', PUBLIC_BASE_URL: 'http://q.example' })).toContain(need)
    expect(problems({ SHARE_OAUTH: 'on', PUBLIC_BASE_URL: 'https://q.example' })).toEqual([])
    expect(problems({ SHARE_OAUTH: 'off' })).toEqual([])
  })

  it('takes the shop all or nothing and names what is missing or wrong', () => {
    expect(loadConfig({}).shop).toBeUndefined()
    const lines = problems({ MP_APPID: 'wx1234567890abcdef', PAY_API_V3_KEY: 'short' })
    expect(lines).toContain('PAY_API_V3_KEY: must be exactly 32 characters (the APIv3 key)')
    const missing = problems({ MP_APPID: 'wx1234567890abcdef' })
    expect(missing).toContain(
      'PAY_MCHID: must be set when MP_APPID is set (the shop needs all of MP_APPID, MP_SECRET, MP_SESSION_SECRET, PAY_MCHID, PAY_CERT_SERIAL, PAY_PRIVATE_KEY, PAY_API_V3_KEY, PAY_VERIFY_KEYS, PAY_NOTIFY_URL)',
    )
    const full = {
      MP_APPID: 'wx1234567890abcdef',
      MP_SECRET: 'mp-secret-123',
      MP_SESSION_SECRET: 'x'.repeat(32),
      PAY_MCHID: '1900000001',
      PAY_CERT_SERIAL: '408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB',
      PAY_PRIVATE_KEY: '-----BEGIN PRIVATE KEY-----\\nMIIE\\n-----END PRIVATE KEY-----',
      PAY_API_V3_KEY: 'a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb',
      PAY_VERIFY_KEYS: JSON.stringify({
        PUB_KEY_ID_01: '-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----',
      }),
      PAY_NOTIFY_URL: 'https://shop.example.com/pay/notify',
    }
    const shop = loadConfig(full).shop!
    expect(shop.pay.privateKeyPem).toBe(
      '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----',
    )
    expect(shop).toMatchObject({ orderMinutes: 15, groupBuy: { size: 3, max: 5, hours: 24 } })
    expect(problems({ ...full, PAY_VERIFY_KEYS: '{"PUB_KEY_ID_01": "not a pem"}' })).toEqual([
      'PAY_VERIFY_KEYS: must be a JSON object {"<serial or PUB_KEY_ID_…>": "<PEM public key or certificate>"}',
    ])
    expect(
      problems({ ...full, PAY_NOTIFY_URL: 'https://shop.example.com/pay/notify?x=1' }),
    ).toEqual(['PAY_NOTIFY_URL: must not have a query string'])
    expect(problems({ ...full, GROUP_BUY_SIZE: '6' })).toEqual([
      'GROUP_BUY_MAX: must be at least GROUP_BUY_SIZE',
    ])
  })

  it('reads the points expiry policy and its notice days (default off, 7)', () => {
    expect(loadConfig({}).pointsExpiry).toEqual({ policy: { mode: 'off' }, noticeDays: 7 })
    expect(
      loadConfig({ POINTS_EXPIRY: '365', POINTS_EXPIRY_NOTICE_DAYS: '0' }).pointsExpiry,
    ).toEqual({ policy: { mode: 'days', days: 365 }, noticeDays: 0 })
    expect(loadConfig({ POINTS_EXPIRY: 'year_end' }).pointsExpiry.policy).toEqual({
      mode: 'year_end',
    })
    for (const bad of ['0', 'never', '1y'])
      expect(problems({ POINTS_EXPIRY: bad })).toEqual([
        'POINTS_EXPIRY: must be off, a number of days (1–3650) or year_end',
      ])
    expect(problems({ POINTS_EXPIRY_NOTICE_DAYS: '400' })).toEqual([
      'POINTS_EXPIRY_NOTICE_DAYS: must be at most 365',
    ])
  })

  it('reads how long audit entries are kept (actions 730 days, refused calls 30) and names bad values', () => {
    expect(loadConfig({}).auditRetention).toEqual({ actionDays: 730, refusedDays: 30 })
    expect(
      loadConfig({ AUDIT_LOG_RETENTION_DAYS: '3650', AUDIT_REFUSED_RETENTION_DAYS: '1' })
        .auditRetention,
    ).toEqual({ actionDays: 3650, refusedDays: 1 })
    expect(problems({ AUDIT_LOG_RETENTION_DAYS: '29', AUDIT_REFUSED_RETENTION_DAYS: '0' })).toEqual(
      [
        'AUDIT_LOG_RETENTION_DAYS: must be at least 30',
        'AUDIT_REFUSED_RETENTION_DAYS: must be at least 1',
      ],
    )
    expect(
      problems({ AUDIT_LOG_RETENTION_DAYS: '3651', AUDIT_REFUSED_RETENTION_DAYS: '30d' }),
    ).toEqual([
      'AUDIT_LOG_RETENTION_DAYS: must be at most 3650',
      'AUDIT_REFUSED_RETENTION_DAYS: must be a whole number ≥ 1',
    ])
  })

  it('reads how long purchase points stay frozen (0–365 days, default 7)', () => {
    expect(loadConfig({}).pointsFreezeDays).toBe(7)
    expect(loadConfig({ POINTS_FREEZE_DAYS: '0' }).pointsFreezeDays).toBe(0)
    expect(loadConfig({ POINTS_FREEZE_DAYS: '14' }).pointsFreezeDays).toBe(14)
    expect(problems({ POINTS_FREEZE_DAYS: '366' })).toEqual([
      'POINTS_FREEZE_DAYS: must be at most 365',
    ])
    expect(problems({ POINTS_FREEZE_DAYS: '7.5' })).toEqual([
      'POINTS_FREEZE_DAYS: must be a whole number ≥ 0',
    ])
  })

  it('reads when the sandbox Pay settles a refund (0–3600 s, default 5)', () => {
    expect(loadConfig({}).sandboxRefundSeconds).toBe(5)
    expect(loadConfig({ SANDBOX_REFUND_SECONDS: '0' }).sandboxRefundSeconds).toBe(0)
    expect(problems({ SANDBOX_REFUND_SECONDS: '3601' })).toEqual([
      'SANDBOX_REFUND_SECONDS: must be at most 3600',
    ])
  })

  it('takes region time zones only (PostgreSQL reads offsets with the opposite sign)', () => {
    for (const tz of ['Asia/Shanghai', 'UTC', 'Etc/GMT-8', 'America/Argentina/Buenos_Aires'])
      expect(loadConfig({ QUANZI_TIME_ZONE: tz }).timeZone).toBe(tz)
    for (const tz of ['+08:00', 'GMT+8', 'Mars/Base'])
      expect(problems({ QUANZI_TIME_ZONE: tz })).toEqual([
        'QUANZI_TIME_ZONE: must be an IANA time zone such as Asia/Shanghai',
      ])
  })

  it('reads make-up and monthly check-in settings and names bad ones', () => {
    expect(loadConfig({}).checkin).toMatchObject({
      window: undefined,
      streakBonuses: { 7: 20, 30: 100 },
      monthlyRewards: {},
      makeup: { days: 7, perMonth: 2, costs: [20, 40] },
    })
    const c = loadConfig({
      CHECKIN_MONTHLY_REWARDS: '10:20,20:50,28:100',
      CHECKIN_MAKEUP_DAYS: '0',
      CHECKIN_MAKEUP_PER_MONTH: '3',
      CHECKIN_MAKEUP_COSTS: '0',
    }).checkin
    expect(c.monthlyRewards).toEqual({ 10: 20, 20: 50, 28: 100 })
    expect(c.makeup).toEqual({ days: 0, perMonth: 3, costs: [0] })
    expect(
      problems({
        CHECKIN_MONTHLY_REWARDS: '32:10',
        CHECKIN_MAKEUP_DAYS: '61',
        CHECKIN_MAKEUP_PER_MONTH: 'two',
        CHECKIN_MAKEUP_COSTS: '20;40',
      }),
    ).toEqual([
      'CHECKIN_MONTHLY_REWARDS: must be days:points pairs with days 1–31, e.g. 10:20,20:50,28:100',
      'CHECKIN_MAKEUP_DAYS: must be at most 60',
      'CHECKIN_MAKEUP_PER_MONTH: must be a whole number ≥ 0',
      'CHECKIN_MAKEUP_COSTS: must be comma-separated point amounts (the 1st, 2nd … make-up of a month), e.g. 20,40',
    ])
  })

  it('reads invite settings and names bad ones', () => {
    expect(loadConfig({}).invites).toEqual({
      rewardOn: 'checkin',
      chainRewards: [30, 20, 10, 5],
      qrDays: 30,
    })
    expect(
      loadConfig({ INVITE_REWARD_ON: 'follow', INVITE_CHAIN_REWARDS: '0', INVITE_QR_DAYS: '7' })
        .invites,
    ).toEqual({ rewardOn: 'follow', chainRewards: [0], qrDays: 7 })
    expect(
      problems({ INVITE_REWARD_ON: 'never', INVITE_CHAIN_REWARDS: '30;20', INVITE_QR_DAYS: '31' }),
    ).toEqual([
      'INVITE_REWARD_ON: must be checkin or follow',
      'INVITE_CHAIN_REWARDS: must be up to 9 comma-separated point amounts, e.g. 30,20,10,5',
      'INVITE_QR_DAYS: must be at most 30',
    ])
  })

  it('reads bridges as a secret or {secret, trustUnionid}, and trusted proxy hops', () => {
    const secret = 'bridge-shared-secret-0123456789'
    expect(
      loadConfig({ BRIDGES: JSON.stringify({ a: secret, b: { secret, trustUnionid: true } }) })
        .bridges,
    ).toEqual({
      a: { secret, trustUnionid: false },
      b: { secret, trustUnionid: true },
    })
    expect(problems({ BRIDGES: JSON.stringify({ a: 'short' }) })).toEqual([
      'an entry of BRIDGES: must be a shared secret of at least 24 characters, or {"secret":"…","trustUnionid":true}',
    ])
    expect(problems({ BRIDGES: JSON.stringify({ a: { secret, trust: true } }) })).toHaveLength(1)
    expect(loadConfig({}).trustedProxyHops).toBe(0)
    expect(loadConfig({ TRUSTED_PROXY_HOPS: '1' }).trustedProxyHops).toBe(1)
    expect(problems({ TRUSTED_PROXY_HOPS: '11' })).toEqual([
      'TRUSTED_PROXY_HOPS: must be at most 10',
    ])
  })

  it('sets the encryption mode of every account: safe with a key, plain without, or as configured', () => {
    const base = { WECHAT_APPID: 'wx1234567890abcdef', WECHAT_TOKEN: 'token123' }
    const extra = (accounts: object[]) => ({ ...base, WECHAT_ACCOUNTS: JSON.stringify(accounts) })
    const modes = (env: Record<string, string>) => loadConfig(env).accounts.map((a) => a.mode)
    expect(
      modes(
        extra([
          { appid: 'wxabcdef1234567890', token: 'other1', aesKey: KEY },
          { appid: 'wxabcdef1234567891', token: 'other2', aesKey: KEY, mode: 'compat' },
        ]),
      ),
    ).toEqual(['plain', 'safe', 'compat'])
    expect(modes({ ...base, WECHAT_AES_KEY: KEY })).toEqual(['safe'])
    expect(modes({ ...base, WECHAT_AES_KEY: KEY, WECHAT_MODE: 'compat' })).toEqual(['compat'])
    expect(modes({ ...base, WECHAT_AES_KEY: KEY, WECHAT_MODE: 'plain' })).toEqual(['plain'])
    expect(problems({ ...base, WECHAT_MODE: 'safe' })).toEqual([
      'WECHAT_MODE: compat and safe need WECHAT_AES_KEY (the EncodingAESKey); use plain without one',
    ])
    expect(problems({ ...base, WECHAT_MODE: 'secure' })).toEqual([
      'WECHAT_MODE: must be plain, compat or safe',
    ])
    expect(problems({ WECHAT_MODE: 'safe' })).toEqual([
      'WECHAT_MODE: is set but WECHAT_APPID and WECHAT_TOKEN are not',
    ])
    expect(
      problems(extra([{ appid: 'wxabcdef1234567890', token: 'other1', mode: 'compat' }])),
    ).toEqual([
      'WECHAT_ACCOUNTS[0].mode: compat and safe need aesKey (the EncodingAESKey); use plain without one',
    ])
    expect(
      problems(extra([{ appid: 'wxabcdef1234567890', token: 'other1', mode: 'aes' }])),
    ).toEqual(['WECHAT_ACCOUNTS[0].mode: must be plain, compat or safe'])
  })

  it('refuses half-configured accounts and bad extra accounts', () => {
    expect(problems({ WECHAT_APPID: 'wx1234567890abcdef' })).toEqual([
      'WECHAT_TOKEN: must be set when WECHAT_APPID is set',
    ])
    expect(problems({ WECHAT_AES_KEY: KEY })).toEqual([
      'WECHAT_AES_KEY: is set but WECHAT_APPID and WECHAT_TOKEN are not',
    ])
    expect(problems({ WECHAT_ACCOUNTS: '[{' })[0]).toMatch(/^WECHAT_ACCOUNTS: must be a JSON array/)
    expect(
      problems({
        WECHAT_ACCOUNTS: JSON.stringify([
          { appid: 'wx1234567890abcdef', token: 'ok1', aesKey: 'x' },
        ]),
      }),
    ).toEqual(['WECHAT_ACCOUNTS[0].aesKey: must be exactly 43 characters (the EncodingAESKey)'])
    const dup = { appid: 'wx1234567890abcdef', token: 'abc' }
    expect(problems({ WECHAT_ACCOUNTS: JSON.stringify([dup, dup]) })).toEqual([
      'WECHAT_ACCOUNTS[1].appid: the same appid as WECHAT_ACCOUNTS[0] (one entry per account)',
    ])
    expect(
      problems({
        WECHAT_APPID: dup.appid,
        WECHAT_TOKEN: 'abc',
        WECHAT_ACCOUNTS: `[${JSON.stringify(dup)}]`,
      }),
    ).toEqual(['WECHAT_ACCOUNTS[0].appid: the same appid as WECHAT_APPID (one entry per account)'])
    expect(problems({ DATABASE_URL: 'mysql://x' })).toEqual([
      'DATABASE_URL: must be a postgres:// or postgresql:// URL',
    ])
    expect(loadConfig({}).statementCache).toBe(100)
    expect(loadConfig({ DATABASE_STATEMENT_CACHE: '0' }).statementCache).toBe(0)
    expect(problems({ DATABASE_STATEMENT_CACHE: 'off' })).toEqual([
      'DATABASE_STATEMENT_CACHE: must be a whole number ≥ 0',
    ])
    expect(loadConfig({}).poolMax).toBe(10)
    expect(loadConfig({ DATABASE_POOL_MAX: '4' }).poolMax).toBe(4)
    expect(problems({ DATABASE_POOL_MAX: '3' })).toEqual(['DATABASE_POOL_MAX: must be at least 4'])
    expect(problems({ DATABASE_POOL_MAX: 'many' })).toEqual([
      'DATABASE_POOL_MAX: must be a whole number ≥ 4',
    ])
    expect(loadConfig({}).slowStatementMs).toBe(1000)
    expect(loadConfig({ DATABASE_SLOW_STATEMENT_MS: '0' }).slowStatementMs).toBe(0)
    expect(problems({ DATABASE_SLOW_STATEMENT_MS: '1.5' })).toEqual([
      'DATABASE_SLOW_STATEMENT_MS: must be a whole number ≥ 0',
    ])
    expect(problems({ QUANZI_TIME_ZONE: 'Mars/Base' })).toEqual([
      'QUANZI_TIME_ZONE: must be an IANA time zone such as Asia/Shanghai',
    ])
  })

  it('reads what cashback transfer bills say (scene 1000) and refuses what WeChat Pay would', () => {
    const shopEnv = {
      MP_APPID: 'wx1234567890abcdef',
      MP_SECRET: 'mp-secret-123',
      MP_SESSION_SECRET: 'x'.repeat(32),
      PAY_MCHID: '1900000001',
      PAY_CERT_SERIAL: '408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB',
      PAY_PRIVATE_KEY: '-----BEGIN PRIVATE KEY-----\\nMIIE\\n-----END PRIVATE KEY-----',
      PAY_API_V3_KEY: 'a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb',
      PAY_VERIFY_KEYS: JSON.stringify({
        PUB_KEY_ID_01: '-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----',
      }),
      PAY_NOTIFY_URL: 'https://shop.example.com/pay/notify',
    }
    expect(loadConfig(shopEnv).shop!.transfer).toEqual({
      sceneId: '1000',
      activityName: '积分兑换',
      rewardDescription: '积分兑换现金奖励',
      remark: '积分兑换返现',
      perception: '现金奖励',
    })
    expect(
      loadConfig({
        ...shopEnv,
        TRANSFER_ACTIVITY_NAME: '双十一积分狂欢',
        TRANSFER_USER_RECV_PERCEPTION: '活动奖励',
      }).shop!.transfer,
    ).toMatchObject({ activityName: '双十一积分狂欢', perception: '活动奖励' })
    expect(
      problems({
        ...shopEnv,
        TRANSFER_SCENE_ID: '1005',
        TRANSFER_REMARK: '返'.repeat(33),
        TRANSFER_USER_RECV_PERCEPTION: '劳务报酬',
      }),
    ).toEqual([
      'TRANSFER_SCENE_ID: must be 1000 (现金营销, whose report fields are 活动名称 and 奖励说明)',
      'TRANSFER_REMARK: must be 1–32 characters',
      'TRANSFER_USER_RECV_PERCEPTION: must be 现金奖励 or 活动奖励 (what scene 1000 allows)',
    ])
    expect(problems({ ...shopEnv, TRANSFER_REWARD_DESCRIPTION: '一行\n两行' })).toEqual([
      'TRANSFER_REWARD_DESCRIPTION: must be one line',
    ])
    // The mini program's members are the shop's account's: never an official account's followers.
    const account = { WECHAT_TOKEN: 'token1', WECHAT_AES_KEY: KEY }
    expect(problems({ ...shopEnv, ...account, WECHAT_APPID: shopEnv.MP_APPID })).toEqual([
      "MP_APPID: must be the mini program's appid, not an official account's (WECHAT_APPID, WECHAT_ACCOUNTS)",
    ])
    expect(problems({ ...shopEnv, ...account, WECHAT_APPID: 'wx0000000000000001' })).toEqual([])
  })
})
