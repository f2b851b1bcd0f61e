/**
 * The console's pager on its own: which links it shows, and that they keep `?appid=` and the
 * list's filters (never one-off notices), its path and anchor — keyset (`?before=`) and offset.
 */
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import type { ConsoleEnv } from '../context.js'
import { consoleTranslator } from '../i18n.js'
import { beforeOf, listHref, OffsetPager, offsetOf, Pager } from './pager.js'

const app = new Hono<ConsoleEnv>()
app.use(async (c, next) => {
  c.set('t', consoleTranslator('zh-CN'))
  await next()
})
app.get('/console/list', (c) => {
  const older = c.req.query('older')
  return c.html(
    `${beforeOf(c)}|${offsetOf(c, 'at')}|${listHref(c, { keep: ['state'] }, { x: '1' })}|${Pager({
      c,
      keep: ['state'],
      anchor: 'rows',
      older: older ? Number(older) : undefined,
    })}|${OffsetPager({ c, path: '/console/other', param: 'at', offset: offsetOf(c, 'at'), size: 50, more: c.req.query('more') === '1' })}`,
  )
})
const get = async (query: string) =>
  (await app.request(`/console/list?${query}`)).text().then((s) => s.replaceAll('&amp;', '&'))

describe('console pager', () => {
  it('keyset: older link from the newest page, both links later, nothing on a single page', async () => {
    const newest = await get('appid=wx2&state=fail&saved=1&older=40')
    const [before, offset, href, pager] = newest.split('|')
    expect([before, offset]).toEqual(['0', '0'])
    expect(href).toBe('/console/list?appid=wx2&state=fail&x=1')
    expect(pager).toBe(
      '<nav class="pager" aria-label="翻页"><a href="/console/list?appid=wx2&state=fail&before=40#rows" rel="next">更早 →</a></nav>',
    )
    const older = (await get('state=fail&before=40&older=12')).split('|')[3]
    expect(older).toContain('<a href="/console/list?state=fail#rows">← 最新</a> · ')
    expect(older).toContain('href="/console/list?state=fail&before=12#rows"')
    expect((await get('before=40')).split('|')[3]).not.toContain('更早')
    expect((await get('')).split('|')[3]).toBe('')
    expect((await get('before=x1')).split('|')[0]).toBe('0')
  })

  it('offset: previous and next pages on the given path, the offset dropped at 0', async () => {
    expect((await get('appid=wx2&more=1')).split('|')[4]).toBe(
      '<nav class="pager" aria-label="翻页"><a href="/console/other?appid=wx2&at=50" rel="next">下一页 →</a></nav>',
    )
    const middle = (await get('at=50&more=1')).split('|')[4]
    expect(middle).toContain('<a href="/console/other">← 上一页</a> · ')
    expect(middle).toContain('href="/console/other?at=100"')
    expect((await get('at=abc')).split('|')[1]).toBe('0')
  })
})
