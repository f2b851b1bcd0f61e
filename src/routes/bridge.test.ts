import { afterAll, beforeAll, expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { SAFE_ACCOUNT, startServer, type TestServer, testConfig } from '../../test/server.js'
import { inviteCode, inviteScene } from '../community/invites.js'
import { createPusher } from '../sandbox/pusher.js'

const SECRET = 'bridge-shared-secret-0123456789'

forEachDatabase('the personal-WeChat bridge (opt-in)', (get, dbName) => {
  let server: TestServer
  beforeAll(async () => {
    server = await startServer(get().db, {
      config: testConfig({ BRIDGES: JSON.stringify({ home: SECRET }) }),
    })
  })
  afterAll(() => server.close())
  const post = async (body: unknown, o: { bridge?: string; secret?: string } = {}) => {
    const res = await fetch(`${server.url}/bridge/${o.bridge ?? 'home'}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-bridge-secret': o.secret ?? SECRET },
      body: typeof body === 'string' ? body : JSON.stringify(body),
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
    expect((await post({}, { bridge: 'other' })).status).toBe(404)
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

    const inviter = await get()
      .db.selectFrom('members')
      .selectAll()
      .where('openid', '=', `o_bridge_${dbName}`)
      .executeTakeFirstOrThrow()
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
})
