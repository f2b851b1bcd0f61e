/**
 * `npm run operator -- <command>`: console accounts from the shell, on the same database as
 * `npm start` (DATABASE_URL, else the PGlite data folder — stop the server first on PGlite).
 *
 *   add <name> --role owner|operator|viewer [--limit <points a day>]
 *   list
 *   disable <name>  /  enable <name>
 *   passwd <name>                            (signs the operator out everywhere)
 *
 * The password comes from OPERATOR_PASSWORD, else from standard input (one line).
 */
import { existsSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { type Audited, auditedAction } from '../admin/actions/audited-action.js'
import { systemClock } from '../clock.js'
import type { AuditAction } from '../community/audit-log.js'
import { loadConfig } from '../config.js'
import { closeDatabase, openDatabase } from '../db/open-database.js'
import { createLogger } from '../logger.js'
import { startupFailure } from '../node-process.js'
import {
  addOperator,
  listOperators,
  OperatorInputError,
  ROLES,
  type Role,
  setOperatorDisabled,
  setOperatorPassword,
} from './operators.js'

const USAGE = `usage: npm run operator -- add <name> --role owner|operator|viewer [--limit N]
       npm run operator -- list | disable <name> | enable <name> | passwd <name>
(the password is read from OPERATOR_PASSWORD or standard input)`

async function readPassword(): Promise<string> {
  if (process.env.OPERATOR_PASSWORD) return process.env.OPERATOR_PASSWORD
  if (process.stdin.isTTY) process.stderr.write('password: ')
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? ''
}

function fail(message: string): never {
  console.error(message)
  process.exit(2)
}

if (existsSync('.env')) process.loadEnvFile('.env')
const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { role: { type: 'string' }, limit: { type: 'string' } },
})
const [command, name] = positionals
if (!command || !['add', 'list', 'disable', 'enable', 'passwd'].includes(command)) fail(USAGE)
if (command !== 'list' && !name) fail(USAGE)
const role = values.role as Role | undefined
if (command === 'add' && (!role || !ROLES.includes(role)))
  fail('--role must be owner, operator or viewer')
if (values.limit !== undefined && !/^\d{1,9}$/.test(values.limit))
  fail('--limit must be a whole number ≥ 0')

const logger = createLogger({ level: 'warn' })
try {
  const password = command === 'add' || command === 'passwd' ? await readPassword() : ''
  const database = await openDatabase({ ...loadConfig(process.env), role: 'operator-cli' })
  const { db } = database
  const now = systemClock.now()
  let code = 0
  const audited = <R>(action: AuditAction, run: (trx: typeof db) => Promise<Audited<R>>) =>
    auditedAction(db, { appid: '-', actor: { name: 'cli' }, action, target: name!, now }, run)
  try {
    if (command === 'list') {
      for (const o of await listOperators(db))
        console.log(
          `${o.name.padEnd(24)} ${o.role.padEnd(9)} ${o.disabled ? 'disabled' : 'active  '} ${o.dailyGrantLimit ?? ''}`,
        )
    } else if (command === 'add') {
      const limit = values.limit === undefined ? null : Number(values.limit)
      const o = await audited('operator.add', async (trx) => ({
        result: await addOperator(trx, {
          name: name!,
          role: role!,
          password,
          dailyGrantLimit: limit,
          now,
        }),
        details: { role, dailyGrantLimit: limit },
      }))
      console.log(`added ${o.name} (${o.role})`)
    } else {
      // `command` was checked against the list above
      const action = `operator.${command as 'disable' | 'enable' | 'passwd'}` as const
      const o = await audited(action, async (trx) => {
        const done =
          command === 'passwd'
            ? await setOperatorPassword(trx, { name: name!, password, now })
            : await setOperatorDisabled(trx, { name: name!, disabled: command === 'disable', now })
        if (!done) throw new OperatorInputError('unknown')
        return {
          result: done,
          details: command === 'passwd' ? {} : { disabled: command === 'disable' },
        }
      })
      console.log(`${command === 'passwd' ? 'new password for' : `${command}d`} ${o.name}`)
    }
  } catch (error) {
    if (!(error instanceof OperatorInputError)) throw error
    const messages: Record<string, string> = {
      name: 'the name must be 2–40 letters, digits or _ . @ -',
      'name-taken': `an operator named ${name} exists`,
      'password-too-short': 'the password needs at least 8 characters',
      'password-too-long': 'the password has at most 200 characters',
      unknown: `no operator named ${name}`,
    }
    console.error(messages[error.code] ?? error.code)
    code = 1
  } finally {
    await closeDatabase(database)
  }
  // Exit explicitly: PGlite's exit handlers reset process.exitCode.
  process.exit(code)
} catch (error) {
  startupFailure(logger, error)
}
