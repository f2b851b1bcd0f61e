/**
 * The member page's tag form: the member's current tags and a tag id to add (the account's tags
 * in use offered as a list); without the account's WeChat API it says why instead.
 */
import { CsrfField, Field } from '../components/form.js'
import type { Translate } from '../i18n.js'

/** What the form shows. */
export interface TagFormProps {
  t: Translate
  /** Where it posts (the member page's path + `/tags`, with `?appid=` when named). */
  action: string
  csrf: string
  /** The member's tag ids. */
  current: number[]
  /** The account's tag ids in use (offered), or `no_api` when tagging is unavailable. */
  known: number[] | 'no_api'
  sandbox: boolean
  /** The id typed, when the form comes back with an error. */
  typed?: string
}

/** The tag section of the member page's actions. */
export function TagForm(p: TagFormProps) {
  const { t } = p
  const current = p.current.length ? p.current.join(', ') : t('member.noTags')
  return (
    <div class="spaced">
      <h3 id="tag-title">{t('memberTag.title')}</h3>
      <p>{t('memberTag.current', { tags: current })}</p>
      {p.known === 'no_api' ? (
        <p class="muted" data-tag-unavailable>
          {t('memberTag.noApi')}
        </p>
      ) : (
        <form method="post" action={p.action} class="stack">
          <CsrfField token={p.csrf} />
          <Field id="tag-id" label={t('memberTag.id')} hint={t('memberTag.hint')}>
            <input
              id="tag-id"
              name="tagid"
              type="number"
              min={1}
              step={1}
              required
              inputmode="numeric"
              list="known-tags"
              aria-describedby="tag-id-hint"
              value={p.typed}
            />
          </Field>
          <datalist id="known-tags">
            {p.known.map((id) => (
              <option value={String(id)} />
            ))}
          </datalist>
          <button type="submit">{t('memberTag.submit')}</button>
          {p.sandbox && <p class="muted">{t('memberTag.sandbox')}</p>}
        </form>
      )}
      <p class="muted">{t('memberTag.noRemove')}</p>
    </div>
  )
}
