/**
 * Retention's deletes, batch by batch: each statement deletes at most `batch` rows (short, whatever
 * the backlog), and the next runs until one deletes fewer — nothing older is left.
 */

/**
 * Runs `deleteBatch` — a DELETE of at most `batch` rows, e.g. `where id in (select … limit batch)` —
 * until one deletes fewer than `batch`; returns how many rows they deleted in all.
 * @example await deleteInBatches(1000, () => db.deleteFrom('t').where('id', 'in', old(1000)).executeTakeFirst())
 */
export async function deleteInBatches(
  batch: number,
  deleteBatch: () => Promise<{ numDeletedRows: bigint }>,
): Promise<number> {
  let deleted = 0
  for (;;) {
    const n = Number((await deleteBatch()).numDeletedRows)
    deleted += n
    if (n < batch) return deleted
  }
}
