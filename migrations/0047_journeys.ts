import { type Kysely, sql } from 'kysely'

/**
 * Lifecycle journeys (issue #19, part 7; src/community/journeys.ts):
 * - `journeys`: data-defined reactions to a segment transition — the segment entered, and steps
 *   (JSON: delay, channel, message, cap, conversion goal, optional points offer). `appid` '*' holds
 *   the seeded examples (welcome series for `new`, a recall offer for `at_risk`, a VIP invitation
 *   for `loyal`), never run themselves: an account copies them (`adoptJourneys`). Accounts' own
 *   journeys start paused. `enrolled_through`: the last `segment_transitions.id` considered.
 * - `journey_enrollments`: one per (journey, member, transition) — started once, whatever the
 *   number of job instances — with the next step and when it is due; ended as converted, left
 *   (the member left the segment) or completed.
 * - `journey_sends`: what each step did for each enrollment (enqueued, capped, opted out,
 *   unreachable) and the outbox source of its push (the report joins the outbox on it).
 *
 * No foreign keys on the two tables the job writes: a run writes up to one row per member in each
 * (1,000,000 at a time), the per-row checks cost half of an enrollment insert, and the rows are
 * written from the rows they name in the same statement (members are never deleted).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const segment = (column: string) =>
    sql.raw(`${column} in ('new', 'active', 'loyal', 'at_risk', 'dormant', 'churned')`)
  await db.schema
    .createTable('journeys')
    .addColumn('id', 'bigint', (col) => col.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('appid', 'text', (col) => col.notNull())
    .addColumn('key', 'text', (col) => col.notNull())
    .addColumn('name', 'text', (col) => col.notNull())
    .addColumn('segment', 'text', (col) => col.notNull().check(segment('segment')))
    .addColumn('status', 'text', (col) =>
      col.notNull().defaultTo('paused').check(sql`status in ('active', 'paused')`),
    )
    .addColumn('steps', 'text', (col) => col.notNull())
    .addColumn('enrolled_through', 'bigint', (col) => col.notNull().defaultTo(0))
    .addColumn('created_at', 'timestamptz', (col) => col.notNull())
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull())
    .addUniqueConstraint('journeys_appid_key_key', ['appid', 'key'])
    .execute()

  await db.schema
    .createTable('journey_enrollments')
    .addColumn('id', 'bigint', (col) => col.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('journey_id', 'bigint', (col) => col.notNull())
    .addColumn('appid', 'text', (col) => col.notNull())
    .addColumn('member_id', 'bigint', (col) => col.notNull())
    .addColumn('transition_id', 'bigint', (col) => col.notNull())
    .addColumn('started_at', 'timestamptz', (col) => col.notNull())
    .addColumn('status', 'text', (col) =>
      col
        .notNull()
        .defaultTo('active')
        .check(sql`status in ('active', 'converted', 'left', 'completed')`),
    )
    .addColumn('next_step', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('next_at', 'timestamptz', (col) => col.notNull())
    .addColumn('last_step', 'integer')
    .addColumn('last_sent_at', 'timestamptz')
    .addColumn('converted_at', 'timestamptz')
    .addColumn('ended_at', 'timestamptz')
    .addUniqueConstraint('journey_enrollments_once', ['journey_id', 'member_id', 'transition_id'])
    .execute()
  await sql`create index journey_enrollments_due_idx
    on journey_enrollments (journey_id, next_step, next_at) where status = 'active'`.execute(db)
  // At most one active enrollment per member and journey; how a new transition finds one.
  await sql`create unique index journey_enrollments_active_key
    on journey_enrollments (member_id, journey_id) where status = 'active'`.execute(db)

  await db.schema
    .createTable('journey_sends')
    .addColumn('enrollment_id', 'bigint', (col) => col.notNull())
    .addColumn('step', 'integer', (col) => col.notNull())
    .addColumn('journey_id', 'bigint', (col) => col.notNull())
    .addColumn('outcome', 'text', (col) =>
      col.notNull().check(sql`outcome in ('enqueued', 'capped', 'opted_out', 'unreachable')`),
    )
    .addColumn('outbox_source', 'text')
    .addColumn('enqueued_at', 'timestamptz', (col) => col.notNull())
    .addPrimaryKeyConstraint('journey_sends_pkey', ['enrollment_id', 'step'])
    .execute()
  await db.schema
    .createIndex('journey_sends_journey_idx')
    .on('journey_sends')
    .columns(['journey_id', 'step'])
    .execute()

  const now = new Date('2026-12-03T00:00:00Z')
  const seeds = [
    {
      key: 'welcome',
      name: '新人欢迎（welcome series）',
      segment: 'new',
      steps: [
        {
          key: 'day0',
          delayHours: 0,
          channel: 'custom',
          message: 'journey.welcome.day0',
          cap: false,
          goal: 'active',
        },
        {
          key: 'day1',
          delayHours: 24,
          channel: 'custom',
          message: 'journey.welcome.day1',
          cap: true,
          goal: 'checkin',
        },
        {
          key: 'day3',
          delayHours: 72,
          channel: 'custom',
          message: 'journey.welcome.day3',
          cap: true,
          goal: 'checkin',
        },
      ],
    },
    {
      key: 'recall',
      name: '沉默召回（recall offer）',
      segment: 'at_risk',
      steps: [
        {
          key: 'offer',
          delayHours: 0,
          channel: 'template',
          message: 'journey.recall.offer',
          cap: true,
          goal: 'active',
          offer: { points: 50, days: 3 },
        },
      ],
    },
    {
      key: 'vip',
      name: '忠诚会员邀请（VIP invitation）',
      segment: 'loyal',
      steps: [
        {
          key: 'invite',
          delayHours: 0,
          channel: 'custom',
          message: 'journey.vip.invite',
          cap: true,
          goal: 'purchase',
        },
      ],
    },
  ]
  for (const s of seeds)
    await sql`insert into journeys (appid, key, name, segment, status, steps, created_at, updated_at)
      values ('*', ${s.key}, ${s.name}, ${s.segment}, 'paused', ${JSON.stringify(s.steps)},
        ${now}, ${now})`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('journey_sends').execute()
  await db.schema.dropTable('journey_enrollments').execute()
  await db.schema.dropTable('journeys').execute()
}
