import { afterAll, beforeAll, expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { SAFE_ACCOUNT, startServer, type TestServer, testConfig } from '../../test/server.js'
import { loadVector } from '../../test/vectors.js'
import { createPusher } from '../sandbox/pusher.js'
import { type SandboxApi, startSandboxApi } from '../sandbox/wechat-api-server.js'
import { contactPusher } from '../sandbox/wecom-pusher.js'

const verifyVector = loadVector('wechat-crypto.json', 'wecom-verify-url-wechatpy')
const CORP = 'ww0123456789abcdef'
const TOKEN = 'cbtoken1'
const AES_KEY = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG'
const SECRET = 'contact-secret'

let wecom: SandboxApi
beforeAll(async () => {
  wecom = await startSandboxApi({ secret: SECRET })
})
afterAll(() => wecom.close())

forEachDatabase('WeCom customer groups: join QRs and attribution', (get, dbName) => {
  let server: TestServer
  const chat = `wrCHAT_${dbName}`
  const config = () =>
    testConfig({
      WECOM_CORP_ID: CORP,
      WECOM_CALLBACK_TOKEN: TOKEN,
      WECOM_CALLBACK_AES_KEY: AES_KEY,
      WECOM_CONTACT_SECRET: SECRET,
      WECOM_API_BASE: wecom.url,
      WECOM_JOIN_CHATS: JSON.stringify([chat]),
    })
  beforeAll(async () => {
    server = await startServer(get().db, { config: config() })
    wecom.setGroup(chat, {
      name: '圈子一群',
      owner: `owner_${dbName}`,
      admin_list: [{ userid: `admin_${dbName}` }],
      member_list: [],
    })
  })
  afterAll(() => server.close())

  const pusher = () =>
    contactPusher({
      url: `${server.url}/wecom/callback`,
      corpId: CORP,
      token: TOKEN,
      aesKey: AES_KEY,
    })
  const event = (fields: string) => pusher().event(fields)
  const added = (version: string, items: string[] | null) =>
    pusher().membersAdded(chat, version, items)
  const invites = () =>
    get()
      .db.selectFrom('invites')
      .innerJoin('members as inviter', 'inviter.id', 'invites.inviter_member_id')
      .select(['invites.source', 'invites.invitee_key', 'invites.status', 'inviter.openid'])
      .where('invites.source', '=', 'group_join')
      .orderBy('invites.id')
      .execute()

  it('hands each inviter one reusable join QR and credits the joins that came through it, once', async () => {
    const oa = createPusher({ url: `${server.url}/wechat`, account: SAFE_ACCOUNT })
    const first = (await oa.text(`o_gi_${dbName}`, '入群')).reply!
    expect(first.MsgType).toBe('news')
    const qr = (first.Articles as { item: Record<string, string>[] }).item[0]!.PicUrl
    const again = (await oa.text(`o_gi_${dbName}`, '入群')).reply!
    expect((again.Articles as { item: Record<string, string>[] }).item[0]!.PicUrl).toBe(qr)
    const way = wecom.joinWays().find((w) => w.qr_code === qr)!
    expect(way.chat_id_list).toEqual([chat])
    expect(String(way.state)).toMatch(/^inv_[2-9A-HJ-NP-Z]{8}$/)
    expect(wecom.joinWays().filter((w) => w.state === way.state)).toHaveLength(1) // reused

    const now = Math.floor(Date.now() / 1000)
    wecom.joinGroup(chat, {
      userid: `wmA_${dbName}`,
      type: 2,
      unionid: `union-a-${dbName}`,
      join_time: now,
      join_scene: 3,
      state: String(way.state),
    })
    wecom.joinGroup(chat, { userid: `wmB_${dbName}`, type: 2, join_time: now, join_scene: 3 })
    expect(await added('v2', [`wmA_${dbName}`, `wmB_${dbName}`])).toEqual({
      status: 200,
      body: 'success',
    })
    expect(await added('v2', [`wmA_${dbName}`, `wmB_${dbName}`])).toEqual({
      status: 200,
      body: 'success',
    }) // retry
    expect(await invites()).toEqual([
      {
        source: 'group_join',
        invitee_key: `u:union-a-${dbName}`,
        status: 'pending',
        openid: `o_gi_${dbName}`,
      },
    ])
    // a later join without MemChangeList: found by join time
    wecom.joinGroup(chat, {
      userid: `wmC_${dbName}`,
      type: 2,
      join_time: now,
      join_scene: 3,
      state: String(way.state),
    })
    await added('v3', null)
    expect((await invites()).map((i) => i.invitee_key)).toEqual([
      `u:union-a-${dbName}`,
      `o:wecom:${CORP}:wmC_${dbName}`,
    ])
    // the inviter joining their own group is no invite
    const inviter = await get()
      .db.selectFrom('members')
      .select(['id'])
      .where('openid', '=', `o_gi_${dbName}`)
      .executeTakeFirstOrThrow()
    await get()
      .db.updateTable('members')
      .set({ unionid: `union-self-${dbName}` })
      .where('id', '=', inviter.id)
      .execute()
    wecom.joinGroup(chat, {
      userid: `wmSelf_${dbName}`,
      type: 2,
      unionid: `union-self-${dbName}`,
      join_time: now,
      join_scene: 3,
      state: String(way.state),
    })
    await added('v4', [`wmSelf_${dbName}`])
    expect(await invites()).toHaveLength(2)
    // a 1:1 add through a contact-me code carrying the same invite scene
    const contact = `<Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[add_external_contact]]></ChangeType><UserID><![CDATA[staff1]]></UserID><ExternalUserID><![CDATA[wmD_${dbName}]]></ExternalUserID><State><![CDATA[${way.state}]]></State><WelcomeCode><![CDATA[W]]></WelcomeCode>`
    expect((await event(contact)).body).toBe('success')
    expect((await invites()).map((i) => i.invitee_key)).toContain(`o:wecom:${CORP}:wmD_${dbName}`)
    // its members are remembered per group; leaving forgets them
    const inGroup = async () =>
      (
        await get()
          .db.selectFrom('group_members')
          .innerJoin('member_identities', 'member_identities.member_id', 'group_members.member_id')
          .select('member_identities.external_id')
          .where('group_members.chat_id', '=', chat)
          .where('member_identities.channel', '=', 'wecom_customer')
          .execute()
      )
        .map((r) => r.external_id)
        .sort()
    expect(await inGroup()).toContain(`wmB_${dbName}`)
    await event(
      `<Event><![CDATA[change_external_chat]]></Event><ChatId><![CDATA[${chat}]]></ChatId><ChangeType><![CDATA[update]]></ChangeType><UpdateDetail><![CDATA[del_member]]></UpdateDetail><QuitScene>0</QuitScene><MemChangeList><Item><![CDATA[wmB_${dbName}]]></Item></MemChangeList><CurMemVer><![CDATA[v9]]></CurMemVer>`,
    )
    expect(await inGroup()).not.toContain(`wmB_${dbName}`)
    // the group's owner and admin moderate it; a dismissed group has none
    const mods = () =>
      get()
        .db.selectFrom('moderators')
        .select(['external_id', 'role'])
        .where('scope', '=', chat)
        .orderBy('external_id')
        .execute()
    expect(await mods()).toEqual([
      { external_id: `admin_${dbName}`, role: 'moderator' },
      { external_id: `owner_${dbName}`, role: 'admin' },
    ])
    await event(
      `<Event><![CDATA[change_external_chat]]></Event><ChatId><![CDATA[${chat}]]></ChatId><ChangeType><![CDATA[dismiss]]></ChangeType>`,
    )
    expect(await mods()).toEqual([])
  })

  it('takes its WeCom client from the request scope the entry gives (Workers: no I/O shared between requests)', async () => {
    const made: unknown[] = []
    const scoped = await startServer(get().db, {
      config: config(),
      // A new scope per call: every use of the client asks for the current scope's.
      local: (make) => {
        const value = make()
        made.push(value)
        return value
      },
    })
    try {
      const push = contactPusher({
        url: `${scoped.url}/wecom/callback`,
        corpId: CORP,
        token: TOKEN,
        aesKey: AES_KEY,
      })
      expect(await push.membersAdded(chat, 'v-scope', null)).toMatchObject({ status: 200 })
      expect(made.length).toBeGreaterThan(0)
    } finally {
      await scoped.close()
    }
  })

  it('refuses callbacks that are not signed by WeCom', async () => {
    const res = await fetch(
      `${server.url}/wecom/callback?msg_signature=${'0'.repeat(40)}&timestamp=1&nonce=n`,
      {
        method: 'POST',
        body: '<xml><Encrypt><![CDATA[abc]]></Encrypt></xml>',
      },
    )
    expect(res.status).toBe(401)
  })
})

it('answers the known-answer URL verification (wechatpy vector) with the decrypted echostr', async () => {
  const { inputs, expected } = verifyVector
  const { createApp } = await import('../app.js')
  const { createRouter } = await import('../../handlers/index.js')
  const { silentLogger } = await import('../logger.js')
  const app = createApp({
    config: testConfig({
      WECOM_CORP_ID: inputs.receiveId!,
      WECOM_CALLBACK_TOKEN: inputs.token!,
      WECOM_CALLBACK_AES_KEY: inputs.encodingAESKey!,
      WECOM_CONTACT_SECRET: SECRET,
    }),
    db: undefined as never,
    router: createRouter(),
    logger: silentLogger,
    // The vector's own time: callbacks further than WECHAT_MAX_SKEW_SECONDS from now are refused.
    clock: { now: () => new Date(Number(inputs.timestamp) * 1000) },
  })
  const q = new URLSearchParams({
    msg_signature: inputs.msg_signature!,
    timestamp: inputs.timestamp!,
    nonce: inputs.nonce!,
    echostr: inputs.echostr!,
  })
  const ok = await app.request(`/wecom/callback?${q}`)
  expect(ok.status).toBe(200)
  expect(await ok.text()).toBe(expected.responseBody)
  q.set('nonce', '437374424')
  expect((await app.request(`/wecom/callback?${q}`)).status).toBe(401)
})
