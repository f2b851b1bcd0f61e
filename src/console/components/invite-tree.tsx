/** An inviter's tree (src/admin/reads/invite-chains.ts) as nested lists, each invite's status. */
import type { InviteNode } from '../../admin/reads/invite-chains.js'
import type { Translate } from '../i18n.js'

const who = (n: InviteNode) => (n.name ? `${n.name}（${n.openid}）` : n.openid)

function Branch(p: { node: InviteNode; t: Translate }) {
  const { node, t } = p
  return (
    <li>
      {who(node)}
      {node.status && (
        <>
          {' '}
          <span class={node.status === 'qualified' ? 'badge up' : 'badge'}>
            {t(node.status === 'qualified' ? 'invites.qualified' : 'invites.pending')}
          </span>
        </>
      )}
      {node.children.length > 0 && (
        <ul class="tree">
          {node.children.map((child) => (
            <Branch node={child} t={t} />
          ))}
        </ul>
      )}
    </li>
  )
}

/** The tree under `root` (the root itself is the list's first item). */
export function InviteTree(p: { root: InviteNode; t: Translate }) {
  return (
    <ul class="tree">
      <Branch node={p.root} t={p.t} />
    </ul>
  )
}

/** How a tree's root is named in its heading. */
export const inviterName = who
