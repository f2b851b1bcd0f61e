/**
 * 系统 → 运营账号: everyone signed in sees the accounts; an owner adds operators and disables or
 * re-enables them (their sessions end). Changes go through `auditedAction` with the owner's name.
 */
import { auditedAction } from '../../admin/actions/audited-action.js'
import { DataTable } from '../components/data-table.js'
import { CsrfField, Field, Notice } from '../components/form.js'
import {
  actorOf,
  type ConsoleContext,
  type ConsoleDeps,
  ConsoleRefusal,
  requireRole,
} from '../context.js'
import type { MessageKey } from '../i18n.js'
import {
  addOperator,
  listOperators,
  OperatorInputError,
  ROLES,
  type Role,
  setOperatorDisabled,
} from '../operators.js'
import type { ConsolePage } from '../page.js'
import { renderPage } from '../render.js'
import { SystemTabs } from './system-tabs.js'

const PATH = '/system/operators'

async function show(c: ConsoleContext, deps: ConsoleDeps, error?: MessageKey, status?: 400) {
  const { t, fmt, session } = c.var
  const owner = session.operator.role === 'owner'
  const operators = await listOperators(deps.db)
  const done = c.req.query('done')
  return renderPage(
    c,
    { title: t('operators.title'), section: 'system' },
    <>
      <SystemTabs t={t} current="/console/system/operators" />
      <Notice kind="error" text={error && t(error)} />
      <Notice kind="ok" text={done ? t('operators.updated', { name: done }) : undefined} />
      <section class="card" aria-label={t('operators.title')}>
        <DataTable
          rows={operators}
          empty={t('common.empty')}
          columns={[
            { label: t('operators.name'), cell: (o) => o.name },
            { label: t('operators.role'), cell: (o) => t(`role.${o.role}`) },
            {
              label: t('operators.status'),
              cell: (o) => (o.disabled ? t('operators.disabled') : t('operators.active')),
            },
            {
              label: t('operators.limit'),
              num: true,
              cell: (o) =>
                o.role !== 'operator' || o.dailyGrantLimit === null
                  ? t('operators.noLimit')
                  : fmt.count(o.dailyGrantLimit),
            },
            { label: t('operators.created'), cell: (o) => fmt.dateTime(o.createdAt) },
            ...(owner
              ? [
                  {
                    label: '',
                    cell: (o: (typeof operators)[number]) =>
                      o.id === session.operator.id ? null : (
                        <form
                          method="post"
                          action={`/console${PATH}/${encodeURIComponent(o.name)}/disabled`}
                        >
                          <CsrfField token={session.csrfToken} />
                          <input type="hidden" name="disabled" value={o.disabled ? '0' : '1'} />
                          <button
                            type="submit"
                            class="secondary"
                            aria-label={`${o.disabled ? t('operators.enable') : t('operators.disable')} ${o.name}`}
                          >
                            {o.disabled ? t('operators.enable') : t('operators.disable')}
                          </button>
                        </form>
                      ),
                  },
                ]
              : []),
          ]}
        />
      </section>
      {owner && (
        <section class="card" aria-labelledby="add-operator">
          <h2 id="add-operator">{t('operators.add')}</h2>
          <form method="post" action={`/console${PATH}`} class="stack">
            <CsrfField token={session.csrfToken} />
            <Field id="op-name" label={t('operators.name')}>
              <input id="op-name" name="name" required maxlength={40} autocomplete="off" />
            </Field>
            <Field id="op-role" label={t('operators.role')}>
              <select id="op-role" name="role">
                {ROLES.map((r) => (
                  <option value={r} selected={r === 'operator'}>
                    {t(`role.${r}`)}
                  </option>
                ))}
              </select>
            </Field>
            <Field id="op-password" label={t('operators.password')}>
              <input
                id="op-password"
                name="password"
                type="password"
                required
                minlength={8}
                maxlength={200}
                autocomplete="new-password"
              />
            </Field>
            <Field id="op-limit" label={t('operators.limit')} hint={t('operators.limitHint')}>
              <input
                id="op-limit"
                aria-describedby="op-limit-hint"
                name="dailyGrantLimit"
                type="number"
                min={0}
                step={1}
                inputmode="numeric"
              />
            </Field>
            <button type="submit">{t('operators.add')}</button>
          </form>
        </section>
      )}
    </>,
    status,
  )
}

const text = (v: unknown) => (typeof v === 'string' ? v.trim() : '')

export const operatorsPage: ConsolePage = {
  section: 'system',
  path: PATH,
  mount(app, deps) {
    app.get(PATH, (c) => show(c, deps))

    app.post(PATH, requireRole('owner'), async (c) => {
      const body = await c.req.parseBody()
      const name = text(body.name)
      const role = text(body.role) as Role
      const limitText = text(body.dailyGrantLimit)
      if (limitText && !/^\d{1,9}$/.test(limitText))
        return show(c, deps, 'operators.error.limit', 400)
      const now = deps.clock.now()
      try {
        const dailyGrantLimit = limitText ? Number(limitText) : null
        await auditedAction(
          deps.db,
          { appid: '-', actor: actorOf(c), action: 'operator.add', target: name, now },
          async (trx) => {
            const added = await addOperator(trx, {
              name,
              role,
              password: typeof body.password === 'string' ? body.password : '',
              dailyGrantLimit,
              now,
            })
            return { result: added, details: { role, dailyGrantLimit } }
          },
        )
      } catch (error) {
        if (error instanceof OperatorInputError)
          return show(c, deps, `operators.error.${error.code}` as MessageKey, 400)
        throw error
      }
      return c.redirect(`/console${PATH}?done=${encodeURIComponent(name)}`, 303)
    })

    app.post(`${PATH}/:name/disabled`, requireRole('owner'), async (c) => {
      const name = c.req.param('name')
      const disabled = text((await c.req.parseBody()).disabled) === '1'
      if (name === c.var.session.operator.name) throw new ConsoleRefusal(400, 'operators.self')
      const now = deps.clock.now()
      const action = disabled ? 'operator.disable' : 'operator.enable'
      await auditedAction(
        deps.db,
        { appid: '-', actor: actorOf(c), action, target: name, now },
        async (trx) => {
          const updated = await setOperatorDisabled(trx, { name, disabled, now })
          if (!updated) throw new ConsoleRefusal(404, 'operators.error.unknown')
          return { result: updated, details: { disabled } }
        },
      )
      return c.redirect(`/console${PATH}?done=${encodeURIComponent(name)}`, 303)
    })
  },
}
