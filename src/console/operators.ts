/**
 * Operator accounts: the people who sign in to the console. Pure functions of `(db, input)` used by
 * the console's 系统 → 运营账号 page and by `npm run operator`.
 */
import type { Kysely, Transaction } from 'kysely'
import type { Database } from '../db/schema.js'
import { hashPassword, passwordProblem } from './password.js'

/** What an operator may do: owner everything, operator run the community, viewer only read. */
export type Role = 'owner' | 'operator' | 'viewer'
export const ROLES: readonly Role[] = ['owner', 'operator', 'viewer']

/** An operator as the console sees it (never the password hash). */
export interface Operator {
  id: number
  name: string
  role: Role
  disabled: boolean
  dailyGrantLimit: number | null
  createdAt: Date
}

type Db = Kysely<Database> | Transaction<Database>

/** A name or password an operator account cannot have; `code` keys the console's messages. */
export class OperatorInputError extends Error {
  constructor(readonly code: string) {
    super(code)
  }
}

const NAME = /^[A-Za-z0-9_.@-]{2,40}$/

/** Whether `name` is an acceptable operator name (2–40 letters, digits, `_ . @ -`). */
export const isOperatorName = (name: string) => NAME.test(name)

const shape = (r: {
  id: number | string
  name: string
  role: Role
  disabled: boolean
  daily_grant_limit: number | null
  created_at: Date
}): Operator => ({
  id: Number(r.id),
  name: r.name,
  role: r.role,
  disabled: r.disabled,
  dailyGrantLimit: r.daily_grant_limit,
  createdAt: r.created_at,
})
const COLUMNS = ['id', 'name', 'role', 'disabled', 'daily_grant_limit', 'created_at'] as const

/** Every operator, by name. */
export async function listOperators(db: Db): Promise<Operator[]> {
  const rows = await db.selectFrom('operators').select(COLUMNS).orderBy('name').execute()
  return rows.map(shape)
}

/** One operator with the password hash (sign-in only), or undefined. */
export function findOperatorForLogin(db: Db, name: string) {
  return db
    .selectFrom('operators')
    .select([...COLUMNS, 'password_hash'])
    .where('name', '=', name)
    .executeTakeFirst()
}

/** Adds an operator; throws {@link OperatorInputError} (`name`, `password-…`, `name-taken`). */
export async function addOperator(
  db: Db,
  o: { name: string; role: Role; password: string; dailyGrantLimit?: number | null; now: Date },
): Promise<Operator> {
  if (!isOperatorName(o.name)) throw new OperatorInputError('name')
  if (!ROLES.includes(o.role)) throw new OperatorInputError('role')
  const problem = passwordProblem(o.password)
  if (problem) throw new OperatorInputError(`password-${problem}`)
  const hash = await hashPassword(o.password)
  const row = await db
    .insertInto('operators')
    .values({
      name: o.name,
      role: o.role,
      password_hash: hash,
      daily_grant_limit: o.role === 'operator' ? (o.dailyGrantLimit ?? null) : null,
      created_at: o.now,
      updated_at: o.now,
    })
    .onConflict((oc) => oc.column('name').doNothing())
    .returning(COLUMNS)
    .executeTakeFirst()
  if (!row) throw new OperatorInputError('name-taken')
  return shape(row)
}

/** Disables or re-enables an operator; disabling revokes their sessions. Undefined when unknown. */
export async function setOperatorDisabled(
  db: Db,
  o: { name: string; disabled: boolean; now: Date },
): Promise<Operator | undefined> {
  const row = await db
    .updateTable('operators')
    .set({ disabled: o.disabled, updated_at: o.now })
    .where('name', '=', o.name)
    .returning(COLUMNS)
    .executeTakeFirst()
  if (row && o.disabled) await revokeOperatorSessions(db, Number(row.id), o.now)
  return row && shape(row)
}

/** Sets a new password and revokes the operator's sessions. Undefined when unknown. */
export async function setOperatorPassword(
  db: Db,
  o: { name: string; password: string; now: Date },
): Promise<Operator | undefined> {
  const problem = passwordProblem(o.password)
  if (problem) throw new OperatorInputError(`password-${problem}`)
  const row = await db
    .updateTable('operators')
    .set({ password_hash: await hashPassword(o.password), updated_at: o.now })
    .where('name', '=', o.name)
    .returning(COLUMNS)
    .executeTakeFirst()
  if (row) await revokeOperatorSessions(db, Number(row.id), o.now)
  return row && shape(row)
}

async function revokeOperatorSessions(db: Db, operatorId: number, now: Date) {
  await db
    .updateTable('console_sessions')
    .set({ revoked_at: now })
    .where('operator_id', '=', operatorId)
    .where('revoked_at', 'is', null)
    .execute()
}
