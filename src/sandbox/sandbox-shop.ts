/**
 * The sandbox shop: a generated mini program and merchant (keys kept in
 * `<dataDir>/sandbox-shop.json` when a data folder is given) and the sandbox WeChat Pay server
 * that knows them, so `npm start` can demo a purchase and tests can run one.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Clock } from '../clock.js'
import type { ShopConfig } from '../config.js'
import { generatePemKeyPairAsync, type PemKeyPair, startSandboxPay } from './pay-server.js'

interface SandboxShopFile {
  mpAppid: string
  mpSecret: string
  sessionSecret: string
  mchid: string
  certSerial: string
  apiV3Key: string
  merchant: PemKeyPair
  publicKey: { serial: string; keys: PemKeyPair }
  certificate: { serial: string; keys: PemKeyPair }
}

async function generate(): Promise<SandboxShopFile> {
  const hex = (n: number) => randomBytes(n).toString('hex')
  const [merchant, publicKey, certificate] = await Promise.all([
    generatePemKeyPairAsync(),
    generatePemKeyPairAsync(),
    generatePemKeyPairAsync(),
  ])
  return {
    mpAppid: `wx${hex(8)}`,
    mpSecret: hex(16),
    sessionSecret: hex(32),
    mchid: `19${String(randomBytes(4).readUInt32BE(0)).padStart(8, '0').slice(0, 8)}`,
    certSerial: hex(20).toUpperCase(),
    apiV3Key: hex(16),
    merchant,
    publicKey: { serial: `PUB_KEY_ID_0119${hex(14)}`, keys: publicKey },
    certificate: { serial: hex(20).toUpperCase(), keys: certificate },
  }
}

async function load(dataDir: string): Promise<SandboxShopFile> {
  const path = join(dataDir, 'sandbox-shop.json')
  try {
    return JSON.parse(await readFile(path, 'utf8')) as SandboxShopFile
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
  await mkdir(dataDir, { recursive: true })
  await writeFile(path, `${JSON.stringify(await generate(), null, 2)}\n`, {
    mode: 0o600,
    flag: 'wx',
  }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error
  })
  return JSON.parse(await readFile(path, 'utf8')) as SandboxShopFile
}

/** Starts the sandbox Pay server and returns it with the shop configuration that points at it. */
export async function startSandboxShop(o: {
  dataDir?: string
  notifyUrl: string
  /** The sandbox Pay's notifications' time (SandboxPayOptions.clock); default the real clock. */
  clock?: Clock
  /** Refunds settle by themselves after this delay (SandboxPayOptions); default never. */
  settleRefundsAfterMs?: number
}) {
  const f = o.dataDir ? await load(o.dataDir) : await generate()
  const pay = await startSandboxPay({
    mchid: f.mchid,
    appid: f.mpAppid,
    apiV3Key: f.apiV3Key,
    merchantPublicKey: f.merchant.publicKey,
    merchantSerial: f.certSerial,
    signers: { public_key: f.publicKey, certificate: f.certificate },
    clock: o.clock,
    settleRefundsAfterMs: o.settleRefundsAfterMs,
  })
  const config: ShopConfig = {
    mpAppid: f.mpAppid,
    mpSecret: f.mpSecret,
    sessionSecret: f.sessionSecret,
    notifyUrl: o.notifyUrl,
    orderMinutes: 15,
    groupBuy: { size: 3, max: 5, hours: 24 },
    pay: {
      mchid: f.mchid,
      certSerial: f.certSerial,
      privateKeyPem: f.merchant.privateKey,
      apiV3Key: f.apiV3Key,
      verifyKeys: pay.verifyKeys(),
      apiBase: pay.url,
    },
  }
  return { pay, config, merchantPublicKey: f.merchant.publicKey }
}
