/**
 * The sandbox dev account: generated on first start (random appid, token and EncodingAESKey) and
 * kept in `<dataDir>/sandbox-account.json`, so `npm start` and `npm run chat` agree across restarts.
 * It is always in safe mode, as a production account should be: `npm run chat` pushes encrypted,
 * and its `/mode plain` shows the refusal.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { AccountConfig } from '../config.js'

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
const random = (n: number) => [...randomBytes(n)].map((b) => ALNUM[b % ALNUM.length]).join('')

/** Where the sandbox account lives. */
export const sandboxAccountPath = (dataDir: string) => join(dataDir, 'sandbox-account.json')

/** Reads the sandbox account (safe mode), creating it the first time. */
export async function loadSandboxAccount(dataDir: string): Promise<AccountConfig> {
  const path = sandboxAccountPath(dataDir)
  try {
    return safe(JSON.parse(await readFile(path, 'utf8')) as AccountConfig)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
  const account: AccountConfig = {
    appid: `wx${randomBytes(8).toString('hex')}`,
    token: random(24),
    aesKey: random(43),
    secret: randomBytes(16).toString('hex'),
  }
  await mkdir(dataDir, { recursive: true })
  await writeFile(path, `${JSON.stringify(account, null, 2)}\n`, { mode: 0o600, flag: 'wx' }).catch(
    async (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error
    },
  )
  return safe(JSON.parse(await readFile(path, 'utf8')) as AccountConfig)
}

const safe = (account: AccountConfig): AccountConfig => ({ ...account, mode: 'safe' })
