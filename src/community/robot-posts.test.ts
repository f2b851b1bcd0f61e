import { expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { announceToRobots, type GroupRobots } from './moderation.js'
import { pruneRobotPosts } from './robot-posts.js'

forEachDatabase('robot posts: at most once per announcement and group', (get, dbName) => {
  const now = new Date('2026-11-24T02:00:00Z')
  /** A robot webhook that answers from `answers` in turn and counts the posts it gets. */
  const robotsAnswering = (...answers: (object | Error)[]) => {
    const posted: string[] = []
    const robots: GroupRobots = {
      keys: { [`chat-${dbName}`]: `robot-unit-${dbName}` },
      baseUrl: 'http://robot.invalid',
      fetch: async (input) => {
        posted.push(String(input))
        const answer = answers.shift() ?? { errcode: 0, errmsg: 'ok' }
        if (answer instanceof Error) throw answer
        return Response.json(answer)
      },
    }
    return { robots, posted }
  }
  const announce = (robots: GroupRobots, source?: string) =>
    announceToRobots(get().db, robots, { chatId: `chat-${dbName}`, text: '📢', now, source })

  it('posts once per source: a retry gets the first answer without posting', async () => {
    const { robots, posted } = robotsAnswering()
    const first = await announce(robots, `announce:unit:sent-${dbName}`)
    expect(first).toEqual([{ chatId: `chat-${dbName}`, status: 'sent' }])
    expect(await announce(robots, `announce:unit:sent-${dbName}`)).toEqual(first)
    expect(posted).toHaveLength(1)
    // without a source (an alert) every call posts
    await announce(robots)
    await announce(robots)
    expect(posted).toHaveLength(3)
  })

  it('lets a retry post what WeCom refused, never what may have been posted', async () => {
    const refused = robotsAnswering({ errcode: 45009, errmsg: 'api freq out of limit' })
    const source = `announce:unit:refused-${dbName}`
    expect(await announce(refused.robots, source)).toEqual([
      { chatId: `chat-${dbName}`, status: 'failed', error: '45009 api freq out of limit' },
    ])
    expect(await announce(refused.robots, source)).toEqual([
      { chatId: `chat-${dbName}`, status: 'sent' },
    ])
    expect(refused.posted).toHaveLength(2)

    const silent = robotsAnswering(new Error('socket hang up'))
    const unanswered = `announce:unit:unanswered-${dbName}`
    const first = await announce(silent.robots, unanswered)
    expect(first).toEqual([
      { chatId: `chat-${dbName}`, status: 'failed', error: 'Error: socket hang up' },
    ])
    expect(await announce(silent.robots, unanswered)).toEqual(first)
    expect(silent.posted).toHaveLength(1)

    // pruned after the claims' week: nothing younger goes
    expect(await pruneRobotPosts(get().db, now)).toBe(0)
    expect(await pruneRobotPosts(get().db, new Date(now.getTime() + 1000))).toBeGreaterThan(0)
  })
})
