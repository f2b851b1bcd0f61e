import { sql } from 'kysely'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { SAFE_ACCOUNT, startServer, type TestServer, testConfig } from '../../test/server.js'
import { inviteCode, inviteScene } from '../community/invites.js'
import { seedModerators } from '../community/moderation.js'
import { createPusher } from '../sandbox/pusher.js'
import { type SandboxApi, startSandboxApi } from '../sandbox/wechat-api-server.js'
import { signBridgeRequest } from './bridge.js'

const SECRET = 'bridge-shared-secret-0123456789'
const TRUSTED_SECRET = 'trusted-bridge-secret-0123456789'

/** Plays WeCom's group-robot webhook (announcements). */
let wecom: SandboxApi
beforeAll(async () => {
  wecom = await startSandboxApi()
})
afterAll(() => wecom.close())

forEachDatabase('the personal-WeChat bridge (opt-in)', (get, dbName) => {
  let server: TestServer
  /** The room with a group robot, and the robot's webhook key. */
  const robotRoom = `robot-room-${dbName}`
  const robotKey = `robotkey-bridge-${dbName}`
  beforeAll(async () => {
    server = await startServer(get().db, {
      config: testConfig({
        BRIDGES: JSON.stringify({
          home: SECRET,
          trusted: { secret: TRUSTED_SECRET, trustUnionid: true },
        }),
        WECOM_API_BASE: wecom.url,
        WECOM_GROUP_ROBOTS: JSON.stringify({ [robotRoom]: robotKey }),
      }),
    })
  })
  afterAll(() => server.close())
  const memberOf = (openid: string) =>
    get()
      .db.selectFrom('members')
      .selectAll()
      .where('openid', '=', openid)
      .executeTakeFirstOrThrow()
  interface Signed {
    bridge?: string
    secret?: string
    timestamp?: string
    nonce?: string
    /** Sign this body but send `body`. */
    signedBody?: string
  }
  const post = async (body: unknown, o: Signed = {}) => {
    const raw = typeof body === 'string' ? body : JSON.stringify(body)
    const timestamp = o.timestamp ?? String(Math.floor(Date.now() / 1000))
    const nonce = o.nonce ?? `n-${Math.random().toString(36).slice(2)}`
    const signature = await signBridgeRequest(o.secret ?? SECRET, {
      timestamp,
      nonce,
      body: o.signedBody ?? raw,
    })
    const res = await fetch(`${server.url}/bridge/${o.bridge ?? 'home'}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-bridge-timestamp': timestamp,
        'x-bridge-nonce': nonce,
        'x-bridge-signature': signature,
      },
      body: raw,
    })
    return { status: res.status, json: (await res.json()) as Record<string, unknown> }
  }
  const say = (sender: string, text: string, id = `m-${Math.random()}`, mentioned = true) =>
    post({
      type: 'message',
      id,
      chat: { id: 'room1' },
      sender: { id: sender },
      text: `@圈子助手 ${text}`,
      mentioned,
    })

  it('refuses unknown bridges, wrong secrets and malformed events', async () => {
    expect((await post({}, { secret: 'wrong-secret-wrong-secret-00' })).status).toBe(401)
    const bad = await post({ type: 'message', id: 'x', sender: { id: 'a' } })
    expect(bad.status).toBe(400)
    expect(bad.json.message).toMatch(/^text: /)
    expect((await post('not json')).status).toBe(400)
  })

  it('links a contact with a binding code, answers mentions once per id, and credits joins with an invite code', async () => {
    const contact = `wxid_${dbName}`
    const oa = createPusher({ url: `${server.url}/wechat`, account: SAFE_ACCOUNT })
    const code = /绑定码：(\d{6})/.exec(
      (await oa.text(`o_bridge_${dbName}`, '绑定')).reply!.Content as string,
    )![1]!
    expect((await say(contact, '签到')).json.reply).toMatch(/^还不认识你哦/)
    expect((await say(contact, `绑定 ${code}`)).json.reply).toBe(
      '绑定成功 ✅ 现在可以在这里签到、查积分了。',
    )
    const first = await say(contact, '签到', `checkin-${dbName}`)
    expect(first.json.reply).toBe('签到成功 ✅ +5 积分\n已连续签到 1 天\n当前积分 15，等级 铜牌')
    expect((await say(contact, '签到', `checkin-${dbName}`)).json).toEqual(first.json)
    expect((await say(contact, '积分', `quiet-${dbName}`, false)).json).toEqual({ reply: null })

    const inviter = await memberOf(`o_bridge_${dbName}`)
    const state = inviteScene(await inviteCode(get().db, inviter, new Date()))
    const join = (id: string, members: { id: string }[]) =>
      post({ type: 'member_join', id, chat: { id: 'room1' }, members, state })
    const joined = await join(`join-1-${dbName}`, [{ id: `wxid_new_${dbName}` }])
    expect(joined.json).toEqual({ credited: [{ id: `wxid_new_${dbName}`, result: 'attributed' }] })
    expect((await join(`join-1-${dbName}`, [{ id: `wxid_new_${dbName}` }])).json).toEqual(
      joined.json,
    )
    // leaving and joining again (a new event) is not a new invite
    expect((await join(`join-2-${dbName}`, [{ id: `wxid_new_${dbName}` }])).json).toEqual({
      credited: [{ id: `wxid_new_${dbName}`, result: 'not_new' }],
    })
    const leave = await post({
      type: 'member_leave',
      id: `leave-${dbName}`,
      chat: { id: 'room1' },
      members: [{ id: `wxid_new_${dbName}` }, { id: contact }],
    })
    expect(leave.json).toEqual({ left: 2 })
  })

  /** An OA member who checked in, and the invite scene their code carries. */
  const inviterScene = async (openid: string) => {
    await createPusher({ url: `${server.url}/wechat`, account: SAFE_ACCOUNT }).text(openid, '签到')
    const inviter = await memberOf(openid)
    return { inviter, state: inviteScene(await inviteCode(get().db, inviter, new Date())) }
  }
  const invitesOf = (inviterId: number) =>
    get()
      .db.selectFrom('invites')
      .select('invitee_member_id')
      .where('inviter_member_id', '=', inviterId)
      .execute()
  const rowsOf = (openid: string) =>
    get().db.selectFrom('members').select('appid').where('openid', '=', openid).execute()

  it("links a trusted bridge's contact to the OA follower with its unionid: the join is not new, no second member, and its messages and leave are the follower's", async () => {
    const follower = `o_erin_${dbName}`
    const unionid = `U_erin_${dbName}`
    await createPusher({ url: `${server.url}/wechat`, account: SAFE_ACCOUNT }).text(
      follower,
      '签到',
    )
    await get().db.updateTable('members').set({ unionid }).where('openid', '=', follower).execute()
    const { inviter, state } = await inviterScene(`o_erin_inviter_${dbName}`)
    const trusted = (body: unknown) => post(body, { bridge: 'trusted', secret: TRUSTED_SECRET })
    const contact = `wxid_erin_${dbName}`
    const joined = await trusted({
      type: 'member_join',
      id: `join-erin-${dbName}`,
      chat: { id: 'room7' },
      members: [{ id: contact, unionid }],
      state,
    })
    expect(joined).toEqual({
      status: 200,
      json: { credited: [{ id: contact, result: 'not_new' }] },
    })
    expect(await rowsOf(contact)).toEqual([])
    expect(await invitesOf(inviter.id)).toEqual([])
    // what the contact says in the group is the follower's, and so is its leave
    const said = await trusted({
      type: 'message',
      id: `erin-points-${dbName}`,
      chat: { id: 'room7' },
      sender: { id: contact },
      text: '@圈子助手 积分',
      mentioned: true,
    })
    const { points_balance } = await memberOf(follower)
    expect(said.json.reply).toMatch(new RegExp(`^当前积分 ${points_balance}，`))
    const left = await trusted({
      type: 'member_leave',
      id: `erin-leave-${dbName}`,
      chat: { id: 'room7' },
      members: [{ id: contact }],
    })
    expect(left.json).toEqual({ left: 1 })
  })

  it('finds a contact linked with 绑定 as its member when it joins through an invite: not new, no second member', async () => {
    const oa = createPusher({ url: `${server.url}/wechat`, account: SAFE_ACCOUNT })
    const contact = `wxid_bound_${dbName}`
    const code = /绑定码：(\d{6})/.exec(
      (await oa.text(`o_bound_${dbName}`, '绑定')).reply!.Content as string,
    )![1]!
    expect((await say(contact, `绑定 ${code}`)).json.reply).toBe(
      '绑定成功 ✅ 现在可以在这里签到、查积分了。',
    )
    const { inviter, state } = await inviterScene(`o_bound_inviter_${dbName}`)
    const joined = await post({
      type: 'member_join',
      id: `join-bound-${dbName}`,
      chat: { id: 'room8' },
      members: [{ id: contact }],
      state,
    })
    expect(joined).toEqual({
      status: 200,
      json: { credited: [{ id: contact, result: 'not_new' }] },
    })
    expect(await rowsOf(contact)).toEqual([])
    expect(await invitesOf(inviter.id)).toEqual([])
  })

  it('hands an event whose handling failed to the retry: the join is credited then, not lost', async () => {
    const oa = createPusher({ url: `${server.url}/wechat`, account: SAFE_ACCOUNT })
    await oa.text(`o_retry_inviter_${dbName}`, '签到')
    const inviter = await memberOf(`o_retry_inviter_${dbName}`)
    const state = inviteScene(await inviteCode(get().db, inviter, new Date()))
    const contact = `wxid_retried_${dbName}`
    const event = {
      type: 'member_join',
      id: `join-retried-${dbName}`,
      chat: { id: 'room1' },
      members: [{ id: contact }],
      state,
    }
    // a failure after the member was recorded (here: the invites table briefly unavailable)
    await sql`alter table invites rename to invites_away`.execute(get().db)
    let first: Awaited<ReturnType<typeof post>>
    try {
      first = await post(event)
    } finally {
      await sql`alter table invites_away rename to invites`.execute(get().db)
    }
    expect(first.status).toBe(500)
    const retry = await post(event)
    expect(retry).toEqual({
      status: 200,
      json: { credited: [{ id: contact, result: 'attributed' }] },
    })
    const invites = await get()
      .db.selectFrom('invites')
      .select('invitee_member_id')
      .where('inviter_member_id', '=', inviter.id)
      .execute()
    expect(invites).toHaveLength(1)
    expect(
      await get()
        .db.selectFrom('inbound_events')
        .select(['status', 'error'])
        .where('dedupe_key', '=', event.id)
        .executeTakeFirst(),
    ).toEqual({ status: 'replied', error: null })
    // and the answered event is a duplicate from then on
    expect((await post(event)).json).toEqual(retry.json)
  })

  it('refuses another event under a used id with 409 EVENT_ID_REUSED, whether the first failed, was answered or is being handled, and changes nothing', async () => {
    const reused = {
      status: 409,
      json: {
        code: 'EVENT_ID_REUSED',
        message: 'this event id came before with another event: give each event its own id',
      },
    }
    const oa = createPusher({ url: `${server.url}/wechat`, account: SAFE_ACCOUNT })
    await oa.text(`o_reuse_inviter_${dbName}`, '签到')
    const inviter = await memberOf(`o_reuse_inviter_${dbName}`)
    const state = inviteScene(await inviteCode(get().db, inviter, new Date()))
    const join = (contact: string) => ({
      type: 'member_join',
      id: `join-reused-${dbName}`,
      chat: { id: 'room1' },
      members: [{ id: contact }],
      state,
    })
    const claimOf = (id: string) =>
      get()
        .db.selectFrom('inbound_events')
        .select(['status', 'reply'])
        .where('appid', '=', 'bridge:home')
        .where('dedupe_key', '=', id)
        .executeTakeFirst()

    // the first attempt failed; the "retry" names another contact: refused, nothing recorded
    await sql`alter table invites rename to invites_away`.execute(get().db)
    try {
      expect((await post(join(`wxid_first_${dbName}`))).status).toBe(500)
    } finally {
      await sql`alter table invites_away rename to invites`.execute(get().db)
    }
    expect(await post(join(`wxid_rewritten_${dbName}`))).toEqual(reused)
    expect(
      await get()
        .db.selectFrom('members')
        .select('id')
        .where('openid', '=', `wxid_rewritten_${dbName}`)
        .execute(),
    ).toEqual([])
    expect(await claimOf(`join-reused-${dbName}`)).toEqual({ status: 'failed', reply: null })
    // the event itself, sent again, is still taken back and handled
    expect(await post(join(`wxid_first_${dbName}`))).toEqual({
      status: 200,
      json: { credited: [{ id: `wxid_first_${dbName}`, result: 'attributed' }] },
    })

    // an answered message: another sender or text under its id is refused, the answer kept
    const id = `said-${dbName}`
    const first = await say(`wxid_said_${dbName}`, '签到', id)
    expect(first.status).toBe(200)
    const stored = await claimOf(id)
    expect(await say(`wxid_other_${dbName}`, '签到', id)).toEqual(reused)
    expect(await say(`wxid_said_${dbName}`, '积分', id)).toEqual(reused)
    expect(await claimOf(id)).toEqual(stored)
    // the same event with its keys in another order, a display name and `mentioned` spelled out
    // is the same event: the first answer
    const resent = await post(
      `{"mentioned":true,"text":"@圈子助手 签到","sender":{"name":"小明","id":"wxid_said_${dbName}"},` +
        `"chat":{"id":"room1","name":"一群"},"id":"${id}","type":"message"}`,
    )
    expect(resent).toEqual(first)

    // still being handled by another attempt: refused at once, not waited on
    await get()
      .db.insertInto('inbound_events')
      .values({
        appid: 'bridge:home',
        dedupe_key: `busy-${dbName}`,
        openid: 'member_join',
        msg_type: 'member_join',
        event: `sha256:${'0'.repeat(64)}`,
        status: 'processing',
        received_at: new Date(),
      })
      .execute()
    expect(await post({ ...join(`wxid_busy_${dbName}`), id: `busy-${dbName}` })).toEqual(reused)
    expect(await claimOf(`busy-${dbName}`)).toEqual({ status: 'processing', reply: null })
  })

  it('announces once for a 公告 handled again after a failure: one robot post, one notice per follower', async () => {
    const oa = createPusher({ url: `${server.url}/wechat`, account: SAFE_ACCOUNT })
    const inRoom = (sender: string, text: string, id = `m-${Math.random()}`) =>
      post({
        type: 'message',
        id,
        chat: { id: robotRoom },
        sender: { id: sender },
        text: `@圈子助手 ${text}`,
        mentioned: true,
      })
    const moderator = `wxid_ann_mod_${dbName}`
    const follower = `wxid_ann_follower_${dbName}`
    for (const contact of [moderator, follower]) {
      const code = /绑定码：(\d{6})/.exec(
        (await oa.text(`o_${contact}`, '绑定')).reply!.Content as string,
      )![1]!
      expect((await inRoom(contact, `绑定 ${code}`)).json.reply).toBe(
        '绑定成功 ✅ 现在可以在这里签到、查积分了。',
      )
      await inRoom(contact, '积分') // seen in the room: a follower of its announcements
    }
    await seedModerators(get().db, [{ channel: 'bridge:home', id: moderator, chat: robotRoom }])

    // the first attempt posts and queues, then fails (here: the audit log briefly unavailable)
    const id = `announce-${dbName}`
    await sql`alter table audit_log rename to audit_log_away`.execute(get().db)
    try {
      expect((await inRoom(moderator, '公告 周六晚 8 点直播', id)).status).toBe(500)
    } finally {
      await sql`alter table audit_log_away rename to audit_log`.execute(get().db)
    }
    const retry = await inRoom(moderator, '公告 周六晚 8 点直播', id)
    const posts = wecom.sent.filter((s) => s.appid === robotKey)
    expect(posts.map((p) => p.body.text)).toEqual([{ content: '📢 公告：周六晚 8 点直播' }])
    // the retry answers what the announcement reached, as the first attempt would have
    expect(retry).toEqual({ status: 200, json: { reply: '公告已发出：1 个群，2 位关注者。' } })
    const notices = await get()
      .db.selectFrom('push_outbox')
      .select('openid')
      .where('source', 'like', `announce:bridge:home:${moderator}:%`)
      .orderBy('openid')
      .execute()
    expect(notices.map((n) => n.openid)).toEqual([`o_${follower}`, `o_${moderator}`])
    const audited = await get()
      .db.selectFrom('audit_log')
      .select('action')
      .where('actor', '=', `bridge:home:${moderator}`)
      .execute()
    expect(audited).toEqual([{ action: 'announce' }])
    // answered now: the same event again gets the answer, and posts nothing
    expect(await inRoom(moderator, '公告 周六晚 8 点直播', id)).toEqual(retry)
    expect(wecom.sent.filter((s) => s.appid === robotKey)).toHaveLength(1)
  })

  it('asks the bridge to send again an event another attempt still holds, and handles it when that attempt fails', async () => {
    const oa = createPusher({ url: `${server.url}/wechat`, account: SAFE_ACCOUNT })
    await oa.text(`o_held_inviter_${dbName}`, '签到')
    const inviter = await memberOf(`o_held_inviter_${dbName}`)
    const state = inviteScene(await inviteCode(get().db, inviter, new Date()))
    const event = (id: string, contact: string) => ({
      type: 'member_join',
      id,
      chat: { id: 'room1' },
      members: [{ id: contact }],
      state,
    })
    // another process claimed the event and is still on it (or died): never answered "done"
    const claim = (id: string) =>
      get()
        .db.insertInto('inbound_events')
        .values({
          appid: 'bridge:home',
          dedupe_key: id,
          openid: 'member_join',
          msg_type: 'member_join',
          status: 'processing',
          received_at: new Date(),
        })
        .execute()
    await claim(`held-${dbName}`)
    const held = await post(event(`held-${dbName}`, `wxid_held_${dbName}`))
    expect(held).toEqual({
      status: 503,
      json: {
        code: 'STILL_PROCESSING',
        message: 'this event is still being handled: send it again',
      },
    })
    // the other attempt fails while this request waits: this one takes the event and handles it
    await claim(`failing-${dbName}`)
    const waiting = post(event(`failing-${dbName}`, `wxid_failing_${dbName}`))
    await new Promise((resolve) => setTimeout(resolve, 300))
    await get()
      .db.updateTable('inbound_events')
      .set({ status: 'failed', error: 'lost its connection' })
      .where('dedupe_key', '=', `failing-${dbName}`)
      .execute()
    expect(await waiting).toEqual({
      status: 200,
      json: { credited: [{ id: `wxid_failing_${dbName}`, result: 'attributed' }] },
    })
  })

  it('holds back a guesser of binding codes: five tries per sender, twenty per chat, then refused without using a code', async () => {
    const oa = createPusher({ url: `${server.url}/wechat`, account: SAFE_ACCOUNT })
    const victim = `o_guessed_${dbName}`
    const code = /绑定码：(\d{6})/.exec(
      (await oa.text(victim, '绑定')).reply!.Content as string,
    )![1]!
    const wrong = (i: number) => String((Number(code) + 1 + i) % 1_000_000).padStart(6, '0')
    const inRoom = (sender: string, text: string, room: string) =>
      post({
        type: 'message',
        id: `m-${Math.random()}`,
        chat: { id: room },
        sender: { id: sender },
        text: `@圈子助手 ${text}`,
        mentioned: true,
      })
    const room = `guess-room-${dbName}`
    let tried = 0
    for (const sender of ['a', 'b', 'c', 'd'].map((x) => `wxid_guesser_${x}_${dbName}`)) {
      for (let i = 0; i < 5; i++)
        expect((await inRoom(sender, `绑定 ${wrong(tried++)}`, room)).json.reply).toBe(
          '绑定码无效或已过期，请在公众号重新发送「绑定」获取。',
        )
      // the sixth try of a sender is refused, even with the right code
      const sixth = await inRoom(sender, `绑定 ${code}`, room)
      expect(sixth.status).toBe(200)
      expect(sixth.json.reply).toMatch(/^绑定尝试太频繁，请 \d+ 秒后再试。$/)
    }
    // the room has had its twenty: a new sender there is refused too
    const fresh = await inRoom(`wxid_guesser_e_${dbName}`, `绑定 ${code}`, room)
    expect(fresh.json.reply).toMatch(/^绑定尝试太频繁/)
    expect(
      await get()
        .db.selectFrom('member_identities')
        .select('external_id')
        .where('external_id', 'like', 'wxid_guesser_%')
        .execute(),
    ).toEqual([])
    // the code was never used: its owner links from another room
    const owner = await inRoom(`wxid_owner_${dbName}`, `绑定 ${code}`, `own-room-${dbName}`)
    expect(owner.json.reply).toBe('绑定成功 ✅ 现在可以在这里签到、查积分了。')
  })
})

forEachDatabase(
  'the bridge: signed requests, no replays, no borrowed identities',
  (get, dbName) => {
    let server: TestServer
    beforeAll(async () => {
      server = await startServer(get().db, {
        config: testConfig({
          BRIDGES: JSON.stringify({
            home: SECRET,
            trusted: { secret: TRUSTED_SECRET, trustUnionid: true },
          }),
        }),
      })
    })
    afterAll(() => server.close())

    const now = () => String(Math.floor(Date.now() / 1000))
    const send = async (
      bridge: string,
      body: string,
      h: { timestamp: string; nonce: string; signature: string },
    ) => {
      const res = await fetch(`${server.url}/bridge/${bridge}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-bridge-timestamp': h.timestamp,
          'x-bridge-nonce': h.nonce,
          'x-bridge-signature': h.signature,
        },
        body,
      })
      return { status: res.status, json: (await res.json()) as Record<string, unknown> }
    }
    const signed = async (secret: string, body: string, timestamp = now(), nonce?: string) => {
      const n = nonce ?? `n-${Math.random().toString(36).slice(2)}`
      return {
        timestamp,
        nonce: n,
        signature: await signBridgeRequest(secret, { timestamp, nonce: n, body }),
      }
    }
    const message = (id: string, text = '积分') =>
      JSON.stringify({
        type: 'message',
        id,
        chat: { id: 'room9' },
        sender: { id: `wxid_sig_${dbName}` },
        text,
        mentioned: true,
      })

    it('answers an unknown bridge and a wrong signature with the same 401', async () => {
      const body = message(`unknown-${dbName}`)
      const unknown = await send('nope', body, await signed(SECRET, body))
      const wrongMac = await send('home', body, await signed('not-the-secret-0123456789abc', body))
      expect(unknown.status).toBe(401)
      expect(wrongMac).toEqual(unknown)
      // the old static header alone is not enough
      const res = await fetch(`${server.url}/bridge/home`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-bridge-secret': SECRET },
        body,
      })
      expect(res.status).toBe(401)
    })

    it('signs the body: a captured request cannot carry another body or id', async () => {
      const body = message(`captured-${dbName}`)
      const h = await signed(SECRET, body)
      expect((await send('home', body, h)).status).toBe(200)
      // the same headers with a new event id (or any other body) do not verify
      expect((await send('home', message(`forged-${dbName}`, '签到'), h)).status).toBe(401)
    })

    it('refuses stale timestamps', async () => {
      const body = message(`stale-${dbName}`)
      const old = String(Math.floor(Date.now() / 1000) - 301)
      const res = await send('home', body, await signed(SECRET, body, old))
      expect(res.status).toBe(401)
      expect(res.json.message).toMatch(/X-Bridge-Timestamp/)
    })

    it('claims (timestamp, nonce): the same request again is a retry, another body is refused', async () => {
      const body = message(`retry-${dbName}`)
      const h = await signed(SECRET, body)
      const first = await send('home', body, h)
      expect(first.status).toBe(200)
      expect(await send('home', body, h)).toEqual(first)
      const other = message(`other-${dbName}`)
      const reused = await signed(SECRET, other, h.timestamp, h.nonce)
      const refused = await send('home', other, reused)
      expect(refused.status).toBe(401)
      expect(refused.json.message).toMatch(/X-Bridge-Nonce/)
      const claims = await get()
        .db.selectFrom('replay_claims')
        .select(['door', 'key', 'nonce'])
        .where('nonce', '=', h.nonce)
        .execute()
      expect(claims).toEqual([{ door: 'bridge', key: 'home', nonce: h.nonce }])
    })

    it('ignores a caller-supplied unionid unless the bridge is trusted for it', async () => {
      const inviter = await get()
        .db.insertInto('members')
        .values({ appid: SAFE_ACCOUNT.appid, openid: `o_inv_${dbName}`, first_seen_at: new Date() })
        .returningAll()
        .executeTakeFirstOrThrow()
      const state = inviteScene(await inviteCode(get().db, inviter, new Date()))
      const join = (id: string, contact: string) =>
        JSON.stringify({
          type: 'member_join',
          id,
          chat: { id: 'room9' },
          members: [{ id: contact, unionid: `union-victim-${dbName}` }],
          state,
        })
      const a = join(`join-u-${dbName}`, `wxid_u_${dbName}`)
      expect((await send('home', a, await signed(SECRET, a))).status).toBe(200)
      const b = join(`join-t-${dbName}`, `wxid_t_${dbName}`)
      expect((await send('trusted', b, await signed(TRUSTED_SECRET, b))).status).toBe(200)
      const rows = await get()
        .db.selectFrom('members')
        .select(['appid', 'unionid'])
        .where('openid', 'in', [`wxid_u_${dbName}`, `wxid_t_${dbName}`])
        .orderBy('appid')
        .execute()
      expect(rows).toEqual([
        { appid: 'bridge:home', unionid: null },
        { appid: 'bridge:trusted', unionid: `union-victim-${dbName}` },
      ])
    })
  },
)
