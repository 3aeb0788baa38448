// A deployment refuses to store a document over 1 MiB, as Convex sizes values
// (`getConvexSize` from convex/values mirrors the backend; system fields
// included). convex-test stores any size, so the local server patches its
// in-memory database (exposed by the load hook in resolveHooks.mjs) to refuse
// an insert, patch or replace whose document would be larger. The refusal is
// thrown inside the write, so the function fails and its transaction is rolled
// back, as on a deployment.

import { getConvexSize, type Value } from 'convex/values'

/** Convex's limit on one document. */
export const MAX_DOCUMENT_BYTES = 1024 * 1024

type Document = Record<string, Value>

/** The methods of convex-test's `DatabaseFake` the limit wraps. */
type DatabaseFake = {
  get(table: string | null, id: string): Document | null
  insert(table: string, value: Document): string
  patch(table: string | null, id: string, value: Document): void
  replace(table: string | null, id: string, value: Document): void
}

const MIB = 1024 * 1024

/** The message a deployment gives (a `ValueTooLargeError`). */
export function tooLargeMessage(bytes: number): string {
  return `ValueTooLargeError: Value is too large (${(bytes / MIB).toFixed(2)} MiB > maximum size 1 MiB)`
}

function check(doc: Document | null) {
  if (doc === null) return
  const bytes = getConvexSize(doc)
  if (bytes > MAX_DOCUMENT_BYTES) throw new Error(tooLargeMessage(bytes))
}

let enforced = false

/**
 * Makes every convex-test database refuse documents over MAX_DOCUMENT_BYTES.
 * `databaseClass` is convex-test's `DatabaseFake`; idempotent.
 */
export function enforceDocumentLimit(databaseClass: unknown) {
  if (enforced) return
  const prototype = (databaseClass as { prototype?: DatabaseFake } | undefined)?.prototype
  if (
    prototype === undefined ||
    typeof prototype.get !== 'function' ||
    typeof prototype.insert !== 'function' ||
    typeof prototype.patch !== 'function' ||
    typeof prototype.replace !== 'function'
  ) {
    throw new Error(
      "convex-test's database class is not available: start the local server through " +
        'server/main.ts (its load hook exposes it), with the pinned convex-test',
    )
  }
  const { insert, patch, replace } = prototype
  prototype.insert = function (this: DatabaseFake, table, value) {
    const id = insert.call(this, table, value)
    check(this.get(table, id))
    return id
  }
  prototype.patch = function (this: DatabaseFake, table, id, value) {
    patch.call(this, table, id, value)
    check(this.get(table, id))
  }
  prototype.replace = function (this: DatabaseFake, table, id, value) {
    replace.call(this, table, id, value)
    check(this.get(table, id))
  }
  enforced = true
}
