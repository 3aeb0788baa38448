// Byte budgets (budget.ts, limits.ts): every function counts the bytes it reads, writes and
// returns as Convex sizes them (`getConvexSize`) and refuses a call that would pass Convex's
// limits — 1 MiB per document, 16 MiB read/written/returned per call — with LIMIT_EXCEEDED
// before Convex's own error: `limit` names the budget, `fits` how many leading requests (list
// calls) or documents (range calls) fit, where the client splits. Nothing is written.
// convex-test enforces Convex's transaction limits here, so a budget that let Convex's own
// limit hit first would fail these tests with Convex's error instead.

import { getConvexSize, type Value } from 'convex/values'
import { describe, expect, it } from 'vitest'
import {
  DOCUMENT_BYTES_MAX,
  READ_BYTES_BUDGET,
  SYSTEM_FIELDS_BYTES_MAX,
} from '../../../generated/component/limits'
import {
  allDocs,
  expectConvexError,
  fns,
  getById,
  insert,
  makeT,
  newExecution,
  NOW,
  SECRET,
  seedDirectly,
  stored,
  useDeploymentEnv,
  type PublicTaskExecution,
  type T,
} from './setup'

useDeploymentEnv()

const KIB = 1024
const MIB = 1024 * KIB

/** An execution whose `input` holds `bytes` characters (a client in step with the server). */
const big = (bytes: number, overrides: Partial<PublicTaskExecution> = {}) =>
  newExecution({ input: 'i'.repeat(bytes), ...overrides }, NOW)

const sizeOf = (value: unknown) => getConvexSize(value as Value)

/**
 * The documents of `ids`, read a few at a time through the API (reading them all at once
 * would pass the very limits under test).
 */
async function readAll(t: T, ids: string[]) {
  const docs = []
  for (let i = 0; i < ids.length; i += 8) docs.push(...(await getById(t, ids.slice(i, i + 8))))
  return docs
}

/** Seeds in batches, each within what one convex-test transaction may write. */
async function seedMany(t: T, executions: PublicTaskExecution[]) {
  for (let i = 0; i < executions.length; i += 8) {
    await seedDirectly(t, executions.slice(i, i + 8))
  }
}

describe('the document limit (1 MiB, as Convex sizes documents)', () => {
  it('stores and reads back a ~900 KiB document', async () => {
    const t = makeT()
    const doc = big(900 * KIB)
    await insert(t, [doc])
    const [read] = await getById(t, [doc.executionId])
    expect(read).toEqual(stored(doc))
    expect(sizeOf(read)).toBeGreaterThan(900 * KIB)
  })

  it('refuses a 1.1 MiB document with documentSize, naming it, and inserts nothing', async () => {
    const t = makeT()
    const small = big(10)
    const tooBig = big(1.1 * MIB)
    const data = await expectConvexError(insert(t, [small, tooBig]), 'LIMIT_EXCEEDED', {
      limit: 'documentSize',
      fits: 1,
      path: 'executions[1]',
      executionId: tooBig.executionId,
    })
    expect(data.bytes).toBeGreaterThan(DOCUMENT_BYTES_MAX)
    expect(await allDocs(t)).toEqual([])
  })

  it('counts a document to insert with the most its system fields may add', async () => {
    const t = makeT()
    // Exactly at the limit once the system fields are counted at their most: refused by a
    // few bytes, although the stored document would be a little smaller.
    const probe = big(0)
    const base = sizeOf(probe)
    const atLimit = big(DOCUMENT_BYTES_MAX - base - SYSTEM_FIELDS_BYTES_MAX)
    await insert(t, [atLimit])
    await expectConvexError(
      insert(t, [big(DOCUMENT_BYTES_MAX - base - SYSTEM_FIELDS_BYTES_MAX + 1)]),
      'LIMIT_EXCEEDED',
      { limit: 'documentSize', fits: 0 },
    )
    expect(await allDocs(t)).toHaveLength(1)
  })

  it('refuses a patch that would make a document pass 1 MiB, and patches nothing', async () => {
    const t = makeT()
    const [a, b] = [big(600 * KIB), big(600 * KIB)]
    await seedDirectly(t, [a, b])
    const before = await allDocs(t)
    await expectConvexError(
      t.action(fns.updateManyById, {
        authSecret: SECRET,
        args: {
          requests: [
            { executionId: a.executionId, update: { output: 'fine', updatedAt: NOW } },
            {
              executionId: b.executionId,
              update: { output: 'o'.repeat(500 * KIB), updatedAt: NOW },
            },
          ],
        },
      }),
      'LIMIT_EXCEEDED',
      { limit: 'documentSize', fits: 1, executionId: b.executionId },
    )
    expect(await allDocs(t)).toEqual(before)
  })
})

describe('bytes read, written and returned per call', () => {
  const DOC = 900 * KIB

  it('a claim over the read budget is refused with how many documents fit; that many then pass', async () => {
    const t = makeT()
    const docs = Array.from({ length: 20 }, (_, i) => big(DOC, { startAt: NOW - 100 + i }))
    await seedMany(t, docs)
    const ids = docs.map((d) => d.executionId)
    const before = await readAll(t, ids)
    const size = sizeOf(before[0])
    // Each document is read, then read again by its patch.
    const fits = Math.floor(READ_BYTES_BUDGET / (2 * size))
    expect(fits).toBeGreaterThan(0)
    expect(fits).toBeLessThan(docs.length)
    const claim = (limit: number) =>
      t.action(fns.updateByStatusAndStartAtLessThanAndReturn, {
        authSecret: SECRET,
        args: {
          shard: 0,
          status: 'ready',
          startAtLessThan: NOW,
          update: { status: 'running', updatedAt: NOW },
          updateExpiresAtWithStartedAt: NOW,
          limit,
        },
      })
    await expectConvexError(claim(docs.length), 'LIMIT_EXCEEDED', { limit: 'bytesRead', fits })
    expect(await readAll(t, ids)).toEqual(before)
    const claimed = await claim(fits)
    expect(claimed.map((d) => d.executionId)).toEqual(ids.slice(0, fits))
    expect((await readAll(t, ids)).filter((d) => d!.status === 'running')).toHaveLength(fits)
  }, 60_000)

  it('a list read over the budget is refused with how many leading requests fit; the rest then pass', async () => {
    const t = makeT()
    const docs = Array.from({ length: 20 }, () => big(DOC))
    await seedMany(t, docs)
    const ids = docs.map((d) => d.executionId)
    const size = sizeOf((await getById(t, [ids[0]!]))[0])
    const fits = Math.floor(READ_BYTES_BUDGET / size)
    await expectConvexError(getById(t, ids), 'LIMIT_EXCEEDED', { limit: 'bytesRead', fits })
    const head = await getById(t, ids.slice(0, fits))
    const tail = await getById(t, ids.slice(fits))
    expect([...head, ...tail].map((d) => d!.executionId)).toEqual(ids)
  }, 60_000)

  it('the children of one parent over the budget: the leading parents fit, one parent alone too large is refused with fits 0', async () => {
    const t = makeT()
    const parents = ['p1', 'p2']
    // 10 children of ~900 KiB per parent: one parent's fit (about 9 MiB), two do not.
    await seedMany(
      t,
      parents.flatMap((parentExecutionId) =>
        Array.from({ length: 10 }, () => big(DOC, { parentExecutionId })),
      ),
    )
    const children = (parentIds: string[]) =>
      t.query(fns.getManyByParentExecutionId, {
        authSecret: SECRET,
        args: { requests: parentIds.map((parentExecutionId) => ({ parentExecutionId })) },
      })
    await expectConvexError(children(parents), 'LIMIT_EXCEEDED', { limit: 'bytesRead', fits: 1 })
    expect((await children(['p1'])).map((list) => list.length)).toEqual([10])
    // 20 children under one parent cannot be split by the client: refused, none fits.
    await seedMany(
      t,
      Array.from({ length: 20 }, () => big(DOC, { parentExecutionId: 'p3' })),
    )
    await expectConvexError(children(['p3']), 'LIMIT_EXCEEDED', { limit: 'bytesRead', fits: 0 })
  }, 60_000)

  it('1,000 documents of ~16 KiB: one read of all is over the budget, two calls split at fits read them in order', async () => {
    const t = makeT()
    const docs = Array.from({ length: 1_000 }, () => big(16 * KIB))
    for (let i = 0; i < docs.length; i += 250) await seedDirectly(t, docs.slice(i, i + 250))
    const ids = docs.map((d) => d.executionId)
    const data = await expectConvexError(getById(t, ids), 'LIMIT_EXCEEDED', { limit: 'bytesRead' })
    const fits = data.fits as number
    const size = sizeOf((await getById(t, [ids[0]!]))[0])
    expect(fits).toBe(Math.floor(READ_BYTES_BUDGET / size))
    const read = [...(await getById(t, ids.slice(0, fits))), ...(await getById(t, ids.slice(fits)))]
    expect(read.map((d) => d!.executionId)).toEqual(ids)
  }, 120_000)
})
