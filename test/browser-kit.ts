/**
 * What every browser suite shares: Debian's Chromium driven by playwright-core with the flags
 * this machine needs, one browser per file, screenshots under test-output/console/, and a clear
 * skip when no Chromium executable exists. Suites run once, on {@link browserDatabase}.
 */
import { mkdirSync } from 'node:fs'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { CHROMIUM, launchChromium } from './chromium.js'
import { passwordOf } from './console-kit.js'
import { browserDatabase, forEachDatabase, type TestDatabase } from './databases.js'

/** Where the suites save their screenshots (zh-CN), ending in `/`. */
export const SHOTS = new URL('../test-output/console/', import.meta.url).pathname

/**
 * `describe`s `title` on the browser database with a launched Chromium (`browser()` once the
 * suite has started), or one skipped test saying how to get Chromium.
 * @example browserSuite('members in a browser', (db, browser) => { it('…', async () => {
 *   const context = await browser().newContext() }) })
 */
export function browserSuite(
  title: string,
  body: (db: () => TestDatabase, browser: () => Browser) => void,
): void {
  if (!CHROMIUM) {
    describe(title, () => {
      it.skip('SKIPPED: no Chromium at /usr/bin/chromium — install the Debian package `chromium` (.ci/run does)', () => {})
    })
    return
  }
  let browser: Browser | undefined
  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true })
    browser = await launchChromium()
  }, 60_000)
  afterAll(async () => {
    await browser?.close()
  })
  forEachDatabase(
    title,
    (db) =>
      body(db, () => {
        if (!browser) throw new Error('the browser is not launched yet')
        return browser
      }),
    browserDatabase,
  )
}

/**
 * Signed-in console pages for a suite (call it in the suite's body): `open(width, as, path)` is a
 * fresh zh-CN profile `width` px wide, signed in through the form as operator `as`, on `path`.
 * Every request must stay on the app (checked after each test); the profiles close after the suite.
 */
export function consolePages(browser: () => Browser, url: () => string) {
  const contexts: BrowserContext[] = []
  const foreign: string[] = []
  afterEach(() => expect(foreign).toEqual([]))
  afterAll(async () => {
    for (const c of contexts) await c.close()
  })
  return async function open(width: number, as: string, path: string): Promise<Page> {
    const context = await browser().newContext({
      viewport: { width, height: 900 },
      locale: 'zh-CN',
    })
    contexts.push(context)
    const page = await context.newPage()
    page.on('request', (r) => {
      if (!r.url().startsWith(url())) foreign.push(r.url())
    })
    await page.goto(`${url()}/console/login`)
    await page.getByLabel('用户名').fill(as)
    await page.getByLabel('密码').fill(passwordOf(as))
    await page.getByLabel('密码').press('Enter')
    await page.waitForURL(`${url()}/console`)
    await page.goto(`${url()}${path}`)
    return page
  }
}

/** The page fits its viewport's width (no horizontal scroll). */
export const noHorizontalScroll = async (page: Page) =>
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(
    page.viewportSize()!.width,
  )
