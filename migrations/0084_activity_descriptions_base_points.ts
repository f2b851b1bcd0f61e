import { type Kysely, sql } from 'kysely'

/**
 * The seeded activities' descriptions named their points as the figure every member gets
 * (「参与讨论得 10 积分」), while an award is the points × the member's level multiplier (a gold
 * member gets 30). A description still exactly as seeded is rewritten to name the base and the
 * multiplier (src/community/activities.ts `DEFAULT_ACTIVITIES`); one an operator edited is theirs
 * and stays as it is, and so does one whose points were changed (its base would be wrong).
 */
const REWRITES: readonly { key: string; points: number; before: string; after: string }[] = [
  {
    key: 'topic',
    points: 10,
    before: '每周三晚 8 点开聊，参与讨论得 10 积分',
    after: '每周三晚 8 点开聊，参与讨论得积分（基础 10 分，乘你的等级倍数）',
  },
  {
    key: 'share',
    points: 15,
    before: '每周五分享你买到的好物，得 15 积分（需有购买记录）',
    after: '每周五分享你买到的好物，得积分（基础 15 分，乘你的等级倍数；需有购买记录）',
  },
  {
    key: 'contest',
    points: 50,
    before: '每月 1 日开启评选，入选得 50 积分',
    after: '每月 1 日开启评选，入选得积分（基础 50 分，乘你的等级倍数）',
  },
]

async function rewrite(db: Kysely<unknown>, from: 'before' | 'after', to: 'before' | 'after') {
  for (const r of REWRITES)
    await sql`update activities set description = ${r[to]}
      where key = ${r.key} and points = ${r.points} and description = ${r[from]}`.execute(db)
}

export async function up(db: Kysely<unknown>): Promise<void> {
  await rewrite(db, 'before', 'after')
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await rewrite(db, 'after', 'before')
}
