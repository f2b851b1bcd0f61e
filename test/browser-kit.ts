/**
 * What every browser suite shares: Debian's Chromium driven by playwright-core with the flags
 * this machine needs, one browser per file, screenshots under test-output/console/, and a clear
 * skip when no Chromium executable exists. Suites run once, on {@link browserDatabase}.
 */
import { existsSync, mkdirSync } from 'node:fs'
import { type Browser, chromium } from 'playwright-core'
import { afterAll, beforeAll, describe, it } from 'vitest'
import { browserDatabase, forEachDatabase, type TestDatabase } from './databases.js'

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p))

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
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
      ],
    })
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
