// The parent/children functions (reference §2): getManyByParentExecutionId,
// updateManyByParentExecutionIdAndIsFinished and
// updateAndDecrementParentACCByIsFinishedAndCloseStatus. Children are created the way the
// engine creates them: inserted by updateManyByIdAndInsertChildrenIfUpdated under a parent
// that moves to waiting_for_children with acc = its number of (non-finalize) children. The
// clients' clocks agree with the server's here (the clock rules have their own tests); time
// passes between the steps of a test, so that what was written looks old (`updatedAt < now`).

import { describe, expect, it } from 'vitest'
import {
  advanceServerTime,
  allDocs,
  docOf,
  fns,
  insert,
  makeT,
  newExecution,
  NOW,
  PAST,
  SECRET,
  seedDirectly,
  stored,
  update,
  useDeploymentEnv,
  type PublicTaskExecution,
  type T,
} from './setup'

useDeploymentEnv()

type Family = { parent: PublicTaskExecution; children: PublicTaskExecution[]; parentId: string }

/**
 * Inserts a running parent, then moves it to waiting_for_children with `acc` and inserts
 * `childSpecs.length` children under it (`isOnlyChildOfParent` when there is exactly one
 * non-finalize child), by clients in step with the server, so that everything is stored as
 * sent; then lets a second pass. Returns the parent and children as stored.
 */
async function family(
  t: T,
  childSpecs: Array<Partial<PublicTaskExecution>>,
  options: { acc?: number; parent?: Partial<PublicTaskExecution> } = {},
): Promise<Family> {
  const now = Date.now()
  const parent = newExecution({ status: 'running', ...options.parent }, now)
  await insert(t, [parent])
  const regular = childSpecs.filter((spec) => spec.isFinalizeOfParent !== true).length
  const children = childSpecs.map((spec, index) =>
    newExecution(
      {
        parentTaskId: parent.taskId,
        parentExecutionId: parent.executionId,
        indexInParentChildren: index,
        isOnlyChildOfParent: regular === 1 && spec.isFinalizeOfParent !== true,
        ...spec,
      },
      now,
    ),
  )
  const acc = options.acc ?? regular
  await t.action(fns.updateManyByIdAndInsertChildrenIfUpdated, {
    authSecret: SECRET,
    args: {
      requests: [
        {
          executionId: parent.executionId,
          update: { status: 'waiting_for_children', acc, updatedAt: now },
          childrenTaskExecutionsToInsertIfAnyUpdated: children,
        },
      ],
    },
  })
  const parentDoc = (await docOf(t, parent.executionId))!
  expect(parentDoc.acc).toBe(acc)
  advanceServerTime(1_000)
  return {
    parent: { ...parent, status: 'waiting_for_children', acc, updatedAt: now },
    children,
    parentId: parentDoc._id,
  }
}

const finished = { status: 'completed', isFinished: true, closeStatus: 'ready' } as const
const byId = (a: { executionId: string }, b: { executionId: string }) =>
  a.executionId < b.executionId ? -1 : 1

describe('getManyByParentExecutionId', () => {
  it('returns all the children of each parent, one list per request, in order', async () => {
    const t = makeT()
    const one = await family(t, [{}, finished, {}])
    const two = await family(t, [finished])
    const lonely = newExecution()
    await insert(t, [lonely])
    const result = await t.query(fns.getManyByParentExecutionId, {
      authSecret: SECRET,
      args: {
        requests: [
          { parentExecutionId: two.parent.executionId },
          { parentExecutionId: 'unknown' },
          { parentExecutionId: one.parent.executionId },
          { parentExecutionId: lonely.executionId },
        ],
      },
    })
    expect(result).toHaveLength(4)
    const expected = (f: Family) =>
      f.children.map((child) => stored({ ...child, parentExecutionDocId: f.parentId })).sort(byId)
    expect([...result[0]!].sort(byId)).toEqual(expected(two))
    expect(result[1]).toEqual([])
    expect([...result[2]!].sort(byId)).toEqual(expected(one))
    expect(result[3]).toEqual([])
  })
})

describe('updateManyByParentExecutionIdAndIsFinished', () => {
  it('patches every child of the parent with that isFinished, and nothing else', async () => {
    const t = makeT()
    const one = await family(t, [finished, {}, finished])
    const two = await family(t, [finished, {}])
    const before = await allDocs(t)
    const result = await t.action(fns.updateManyByParentExecutionIdAndIsFinished, {
      authSecret: SECRET,
      args: {
        requests: [
          {
            parentExecutionId: one.parent.executionId,
            isFinished: true,
            update: update({ closeStatus: 'closing', unset: { executorId: true } }),
          },
          {
            parentExecutionId: two.parent.executionId,
            isFinished: false,
            update: update({ status: 'cancelled', npc: true }),
          },
          { parentExecutionId: 'unknown', isFinished: true, update: update({ output: 'x' }) },
        ],
      },
    })
    expect(result).toBeNull()
    const changed = [one.children[0]!, one.children[2]!, two.children[1]!]
    for (const child of [one.children[0]!, one.children[2]!]) {
      // The update was stamped an hour behind; the server stores its own time.
      expect((await docOf(t, child.executionId))!).toMatchObject({
        closeStatus: 'closing',
        updatedAt: Date.now(),
      })
    }
    expect((await docOf(t, two.children[1]!.executionId))!).toMatchObject({
      status: 'cancelled',
      npc: true,
    })
    const changedIds = new Set(changed.map((c) => c.executionId))
    expect((await allDocs(t)).filter((d) => !changedIds.has(d.executionId))).toEqual(
      before.filter((d) => !changedIds.has(d.executionId)),
    )
  })
})

describe('updateAndDecrementParentACCByIsFinishedAndCloseStatus', () => {
  const decrement = (t: T, args: { shard?: number; limit?: number; updatedAt?: number } = {}) =>
    t.action(fns.updateAndDecrementParentACCByIsFinishedAndCloseStatus, {
      authSecret: SECRET,
      args: {
        shard: args.shard ?? 0,
        isFinished: true,
        closeStatus: 'ready',
        update: {
          closeStatus: 'closed',
          closedAt: PAST + 7,
          updatedAt: args.updatedAt ?? PAST + 7,
        },
        limit: args.limit ?? 10,
      },
    })

  const accOf = async (t: T, execution: PublicTaskExecution) =>
    (await docOf(t, execution.executionId))!.acc

  it('patches the selected children and decrements their parent by one for each', async () => {
    const t = makeT()
    const f = await family(t, [finished, {}, finished])
    const before = await allDocs(t)
    expect(await decrement(t)).toBe(2)
    // closedAt and updatedAt (sent an hour behind) are the server's time, the parent's too.
    const now = Date.now()
    for (const child of [f.children[0]!, f.children[2]!]) {
      expect(await docOf(t, child.executionId)).toEqual(
        stored({
          ...child,
          parentExecutionDocId: f.parentId,
          closeStatus: 'closed',
          closedAt: now,
          updatedAt: now,
        }),
      )
    }
    expect(await docOf(t, f.parent.executionId)).toEqual(
      stored({ ...f.parent, acc: 1, updatedAt: now }),
    )
    const unfinished = f.children[1]!.executionId
    expect(await docOf(t, unfinished)).toEqual(before.find((d) => d.executionId === unfinished))
    // Nothing left to select: a second call patches nothing and leaves acc alone.
    expect(await decrement(t)).toBe(0)
    expect(await accOf(t, f.parent)).toBe(1)
  })

  it('sets the parent acc to 0 for an only child', async () => {
    const t = makeT()
    // acc 2 for an only child cannot happen in the engine; it tells "set to 0" from "minus 1".
    const f = await family(t, [finished], { acc: 2 })
    expect(f.children[0]!.isOnlyChildOfParent).toBe(true)
    expect(await decrement(t)).toBe(1)
    expect(await accOf(t, f.parent)).toBe(0)
  })

  it('decrements a parent whose last active child finishes to 0', async () => {
    const t = makeT()
    const f = await family(t, [finished, { isFinished: false }])
    expect(await decrement(t)).toBe(1)
    expect(await accOf(t, f.parent)).toBe(1)
    await t.action(fns.updateManyById, {
      authSecret: SECRET,
      args: { requests: [{ executionId: f.children[1]!.executionId, update: update(finished) }] },
    })
    advanceServerTime(1)
    expect(await decrement(t)).toBe(1)
    expect(await accOf(t, f.parent)).toBe(0)
  })

  it('patches and counts a finalize child but does not decrement its parent', async () => {
    const t = makeT()
    const f = await family(t, [{}, { ...finished, isFinalizeOfParent: true }])
    expect(f.parent.acc).toBe(1)
    const parentBefore = await docOf(t, f.parent.executionId)
    expect(await decrement(t)).toBe(1)
    expect((await docOf(t, f.children[1]!.executionId))!.closeStatus).toBe('closed')
    expect(await docOf(t, f.parent.executionId)).toEqual(parentBefore)
  })

  it('patches and counts an execution without a parent, touching nothing else', async () => {
    const t = makeT()
    const root = newExecution(finished)
    const f = await family(t, [{}])
    await insert(t, [root])
    advanceServerTime(1)
    const before = await allDocs(t)
    expect(await decrement(t)).toBe(1)
    const after = await allDocs(t)
    expect(after.find((d) => d.executionId === root.executionId)!.closeStatus).toBe('closed')
    expect(after.filter((d) => d.executionId !== root.executionId)).toEqual(
      before.filter((d) => d.executionId !== root.executionId),
    )
    expect(await accOf(t, f.parent)).toBe(1)
  })

  it('counts only the children of the called shard', async () => {
    const t = makeT()
    const f = await family(t, [
      { ...finished, shard: 0 },
      { ...finished, shard: 1 },
      { ...finished, shard: 1 },
    ])
    expect(await decrement(t, { shard: 1 })).toBe(2)
    expect(await accOf(t, f.parent)).toBe(1)
    expect((await docOf(t, f.children[0]!.executionId))!.closeStatus).toBe('ready')
    expect(await decrement(t, { shard: 0 })).toBe(1)
    expect(await accOf(t, f.parent)).toBe(0)
  })

  it('decrements each parent by its own children', async () => {
    const t = makeT()
    const one = await family(t, [finished, finished, {}])
    const two = await family(t, [finished, {}, {}, {}])
    expect(await decrement(t)).toBe(3)
    expect(await accOf(t, one.parent)).toBe(1)
    expect(await accOf(t, two.parent)).toBe(3)
  })

  it('selects updatedAt < now only, at most `limit`, least recently updated first', async () => {
    const t = makeT()
    // A stored state (seeded): children stamped before, at and after the server's NOW.
    const parent = newExecution({ status: 'waiting_for_children', acc: 4 })
    const children = [NOW - 10, NOW - 20, NOW, NOW + 1_000].map((updatedAt, index) =>
      newExecution({
        ...finished,
        parentExecutionId: parent.executionId,
        indexInParentChildren: index,
        updatedAt,
      }),
    )
    await seedDirectly(t, [parent, ...children])
    const f = { parent, children }
    expect(await decrement(t, { limit: 1, updatedAt: NOW + 5 })).toBe(1)
    expect((await docOf(t, f.children[1]!.executionId))!.closeStatus).toBe('closed')
    expect(await accOf(t, f.parent)).toBe(3)
    expect(await decrement(t, { limit: 10, updatedAt: NOW + 5 })).toBe(1)
    expect((await docOf(t, f.children[0]!.executionId))!.closeStatus).toBe('closed')
    expect(await accOf(t, f.parent)).toBe(2)
    for (const child of [f.children[2]!, f.children[3]!]) {
      expect((await docOf(t, child.executionId))!.closeStatus).toBe('ready')
    }
  })
})
