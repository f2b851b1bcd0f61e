/**
 * Debian's Chromium (`apt-get install -y chromium`) launched by playwright-core with the flags this
 * machine needs — npm cannot download browsers here. The browser suites (browser-kit.ts) and the
 * console's load bench (bench/console-load.ts) launch it so.
 */
import { existsSync } from 'node:fs'
import { type Browser, chromium } from 'playwright-core'

/** The Chromium executable, if installed. */
export const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) =>
  existsSync(p),
)

/** Launches Chromium headless; throws when it is not installed. */
export function launchChromium(): Promise<Browser> {
  if (!CHROMIUM) throw new Error('no Chromium at /usr/bin/chromium: apt-get install -y chromium')
  return chromium.launch({
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
}
