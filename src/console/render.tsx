/** `renderPage(c, …)`: a page's content inside the layout, as the response (never cached). */
import type { Child } from 'hono/jsx'
import { PageAccount } from './components/form.js'
import { Layout } from './components/layout.js'
import type { ConsoleContext } from './context.js'
import type { SectionKey } from './page.js'

/** Responds with a signed-in page. */
export function renderPage(
  c: ConsoleContext,
  p: { title: string; section: SectionKey; charts?: boolean },
  content: Child,
  status: 200 | 400 = 200,
) {
  c.header('cache-control', 'no-store')
  return c.html(
    <PageAccount.Provider value={c.var.appid}>
      <Layout
        title={p.title}
        section={p.section}
        charts={p.charts}
        t={c.var.t}
        lang={c.var.lang}
        session={c.var.session}
        links={c.var.links}
        account={{ current: c.var.appid, all: c.var.appids }}
        path={new URL(c.req.url).pathname + new URL(c.req.url).search}
      >
        {content}
      </Layout>
    </PageAccount.Provider>,
    status,
  )
}
