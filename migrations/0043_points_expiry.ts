import { type Kysely, sql } from 'kysely'

/**
 * Points that expire (issue #19, part 4): every available credit is a **lot** that spends consume
 * first-in-first-out and that the daily `expire-points` job expires.
 *
 * - `points_lots`: one row per positive `available` ledger entry (its id is the lot's key): the
 *   points it added, what is left (`remaining`), what expired, when it was earned and when it
 *   expires. Invariant, per member: Σ `remaining` = `members.points_balance`.
 * - `expires_at` is null until the job stamps the lot with the policy in force (POINTS_EXPIRY),
 *   `'infinity'` when it never expires (policy off, or credited before this migration while the
 *   policy was off); an entry's own `points_ledger.expires_at` is taken as it is.
 * - A trigger keeps the lots in step with the ledger, whichever function writes the entry (awards,
 *   check-ins, grants, releases, refunds, redemptions, make-ups …): a positive available entry adds
 *   a lot; a negative one (except `points_expiry`, which the job writes for the lots it expires)
 *   takes its amount from the member's oldest lots, in one statement. Every ledger writer locks the
 *   member row first (migrations/0007, 0035), so a member's lots change under that lock.
 * - Partial indexes keep the daily job set-based: open lots by member and expiry (expire, FIFO,
 *   what 积分 shows), open lots not yet announced (the notice), lots not yet stamped.
 *
 * Existing balances become lots by FIFO (the newest credits that add up to the balance remain),
 * unstamped: the job's first run stamps them (never before the notice window ends).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create table points_lots (
    ledger_id bigint primary key references points_ledger (id),
    appid text not null,
    member_id bigint not null references members (id),
    points integer not null check (points > 0),
    remaining integer not null check (remaining >= 0),
    expired integer not null default 0 check (expired >= 0),
    earned_at timestamptz not null,
    expires_at timestamptz,
    notified boolean not null default false,
    constraint points_lots_amounts_check check (remaining + expired <= points)
  )`.execute(db)
  await sql`create index points_lots_open_idx on points_lots (member_id, expires_at)
    where remaining > 0`.execute(db)
  await sql`create index points_lots_notice_idx on points_lots (member_id, expires_at)
    where remaining > 0 and not notified`.execute(db)
  await sql`create index points_lots_unstamped_idx on points_lots (ledger_id)
    where expires_at is null`.execute(db)

  await sql`
create function quanzi_points_lots() returns trigger language plpgsql as $fn$
begin
  if new.state <> 'available' then
    return null;
  end if;
  if new.delta > 0 then
    insert into points_lots (ledger_id, appid, member_id, points, remaining, earned_at, expires_at)
      values (new.id, new.appid, new.member_id, new.delta, new.delta, new.created_at,
        new.expires_at);
  elsif new.rule <> 'points_expiry' then
    -- the oldest lots first: each gives what the spend still needs after the older ones
    update points_lots p
      set remaining = p.remaining - least(p.remaining, -new.delta - (o.upto - p.remaining))
      from (select ledger_id, sum(remaining) over (order by ledger_id) as upto
          from points_lots where member_id = new.member_id and remaining > 0) o
      where p.ledger_id = o.ledger_id and o.upto - p.remaining < -new.delta;
  end if;
  return null;
end
$fn$`.execute(db)
  await sql`create trigger points_lots_sync after insert on points_ledger
    for each row execute function quanzi_points_lots()`.execute(db)

  // The balance as lots: the newest available credits that add up to it.
  await sql`insert into points_lots (ledger_id, appid, member_id, points, remaining, earned_at,
      expires_at)
    select id, appid, member_id, delta, least(delta, balance - (newer - delta)), created_at,
      expires_at
    from (select l.id, l.appid, l.member_id, l.delta, l.created_at, l.expires_at,
        m.points_balance as balance,
        sum(l.delta) over (partition by l.member_id order by l.id desc) as newer
      from points_ledger l join members m on m.id = l.member_id
      where l.state = 'available' and l.delta > 0) x
    where newer - delta < balance`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop trigger points_lots_sync on points_ledger`.execute(db)
  await sql`drop function quanzi_points_lots`.execute(db)
  await sql`drop table points_lots`.execute(db)
}
