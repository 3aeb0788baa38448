// updateManyById and updateManyByIdAndInsertChildrenIfUpdated (reference §2): each request
// patches its execution when found and its filters match, else is skipped; `unset` removes
// fields; children are inserted only under a parent that was patched. The documents are
// seeded (a stored state); the updates carry stamps of a client an hour behind, and the server
// stores its own time (NOW) in the time fields (clock.test.ts has the rules in full).

import { describe, expect, it } from 'vitest'
import { EXPIRY_GRACE_MS } from '../../../generated/component/clock'
import {
  allDocs,
  docOf,
  expectConvexError,
  fns,
  makeT,
  newExecution,
  newSleepingExecution,
  NOW,
  PAST,
  SECRET,
  seedDirectly,
  stored,
  update,
  useDeploymentEnv,
  type PublicTaskExecution,
  type T,
  type TaskExecutionUpdate,
} from './setup'

useDeploymentEnv()

async function updateMany(
  t: T,
  requests: Array<{
    executionId: string
    filters?: {
      isSleepingTask?: boolean
      status?: PublicTaskExecution['status']
      isFinished?: boolean
    }
    update: TaskExecutionUpdate
  }>,
) {
  return await t.action(fns.updateManyById, { authSecret: SECRET, args: { requests } })
}

/** The document as stored after an update that sets `fields` (system fields kept). */
async function expectPatched(t: T, before: PublicTaskExecution, fields: object) {
  expect(await docOf(t, before.executionId)).toEqual(stored({ ...before, ...fields }))
}

describe('updateManyById', () => {
  it('sets the fields of the update and leaves every other field, returning null', async () => {
    const t = makeT()
    const target = newExecution()
    const other = newExecution()
    await seedDirectly(t, [target, other])
    const [otherBefore] = await allDocs(t).then((docs) =>
      docs.filter((d) => d.executionId === other.executionId),
    )
    const fields = {
      executorId: 'executor-1',
      status: 'waiting_for_children' as const,
      retryAttempts: 2,
      startedAt: PAST + 10,
      expiresAt: PAST + 20,
      waitingForChildrenStartedAt: PAST + 30,
      children: [{ taskId: 'c', executionId: 'c-1' }],
      acc: 1,
      finalize: { taskId: 'f', executionId: 'f-1' },
      error: {
        errorType: 'timed_out' as const,
        message: 'late',
        isRetryable: false,
        isInternal: true,
      },
      npc: true,
      updatedAt: PAST + 40,
    }
    expect(await updateMany(t, [{ executionId: target.executionId, update: fields }])).toBeNull()
    await expectPatched(t, target, {
      ...fields,
      startedAt: NOW,
      expiresAt: NOW + EXPIRY_GRACE_MS,
      waitingForChildrenStartedAt: NOW,
      updatedAt: NOW,
    })
    expect(await docOf(t, other.executionId)).toEqual(otherBefore)
  })

  it('keeps the _id and _creationTime of the patched document', async () => {
    const t = makeT()
    const doc = newExecution()
    await seedDirectly(t, [doc])
    const before = (await docOf(t, doc.executionId))!
    await updateMany(t, [{ executionId: doc.executionId, update: update({ output: 'o' }) }])
    const after = (await docOf(t, doc.executionId))!
    expect([after._id, after._creationTime, after.output]).toEqual([
      before._id,
      before._creationTime,
      'o',
    ])
  })

  it('skips an unknown executionId and still applies the other requests', async () => {
    const t = makeT()
    const a = newExecution()
    const b = newExecution()
    await seedDirectly(t, [a, b])
    await updateMany(t, [
      { executionId: a.executionId, update: update({ output: 'a' }) },
      { executionId: 'unknown', update: update({ output: 'x' }) },
      { executionId: b.executionId, update: update({ output: 'b' }) },
    ])
    const docs = await allDocs(t)
    expect(docs.map((d) => [d.executionId, d.output])).toEqual([
      [a.executionId, 'a'],
      [b.executionId, 'b'],
    ])
  })

  it('skips a document that does not match every given filter', async () => {
    const t = makeT()
    const doc = newSleepingExecution()
    await seedDirectly(t, [doc])
    const before = await allDocs(t)
    await updateMany(t, [
      {
        executionId: doc.executionId,
        filters: { isSleepingTask: false },
        update: update({ output: '1' }),
      },
      {
        executionId: doc.executionId,
        filters: { status: 'ready' },
        update: update({ output: '2' }),
      },
      {
        executionId: doc.executionId,
        filters: { isFinished: true },
        update: update({ output: '3' }),
      },
      {
        executionId: doc.executionId,
        filters: { isSleepingTask: true, status: 'running', isFinished: true },
        update: update({ output: '4' }),
      },
    ])
    expect(await allDocs(t)).toEqual(before)
    await updateMany(t, [
      {
        executionId: doc.executionId,
        filters: { isSleepingTask: true, status: 'running', isFinished: false },
        update: update({ output: '5' }),
      },
    ])
    await expectPatched(t, doc, { output: '5', updatedAt: NOW })
  })

  it('removes the fields `unset` names with true, and keeps those with false', async () => {
    const t = makeT()
    const withAll = {
      executorId: 'executor-1',
      runOutput: 'run-output',
      error: { errorType: 'generic' as const, message: 'm', isRetryable: true, isInternal: false },
      startedAt: PAST + 1,
      expiresAt: PAST + 2,
      ocfpExpiresAt: PAST + 3,
      closeExpiresAt: PAST + 4,
    }
    const removed = newExecution(withAll)
    const kept = newExecution(withAll)
    await seedDirectly(t, [removed, kept])
    const all = {
      executorId: true,
      runOutput: true,
      error: true,
      startedAt: true,
      expiresAt: true,
      ocfpExpiresAt: true,
      closeExpiresAt: true,
    }
    const none = Object.fromEntries(Object.keys(all).map((k) => [k, false]))
    await updateMany(t, [
      { executionId: removed.executionId, update: update({ status: 'failed', unset: all }) },
      { executionId: kept.executionId, update: update({ status: 'failed', unset: none }) },
    ])
    const after = (await docOf(t, removed.executionId))!
    for (const field of Object.keys(all)) expect(after).not.toHaveProperty(field)
    const {
      executorId,
      runOutput,
      error,
      startedAt,
      expiresAt,
      ocfpExpiresAt,
      closeExpiresAt,
      ...rest
    } = removed
    void [executorId, runOutput, error, startedAt, expiresAt, ocfpExpiresAt, closeExpiresAt]
    expect(after).toEqual(stored({ ...rest, status: 'failed', updatedAt: NOW }))
    await expectPatched(t, kept, { status: 'failed', updatedAt: NOW })
  })

  it('applies several requests for one execution in order', async () => {
    const t = makeT()
    const doc = newExecution()
    await seedDirectly(t, [doc])
    await updateMany(t, [
      { executionId: doc.executionId, update: update({ output: 'first', retryAttempts: 1 }) },
      // The second request's filter sees the first request's patch.
      {
        executionId: doc.executionId,
        filters: { status: 'running' },
        update: update({ output: 'skipped' }),
      },
      { executionId: doc.executionId, update: update({ status: 'running' }) },
      {
        executionId: doc.executionId,
        filters: { status: 'running' },
        update: { output: 'last', updatedAt: PAST + 2 },
      },
    ])
    await expectPatched(t, doc, {
      output: 'last',
      retryAttempts: 1,
      status: 'running',
      updatedAt: NOW,
    })
  })
})

describe('updateManyByIdAndInsertChildrenIfUpdated', () => {
  async function updateWithChildren(
    t: T,
    requests: Array<{
      executionId: string
      filters?: { status?: PublicTaskExecution['status'] }
      update: TaskExecutionUpdate
      childrenTaskExecutionsToInsertIfAnyUpdated: PublicTaskExecution[]
    }>,
  ) {
    return await t.action(fns.updateManyByIdAndInsertChildrenIfUpdated, {
      authSecret: SECRET,
      args: { requests },
    })
  }

  /** A child as a client in step with the server creates it (stored as sent). */
  const childOf = (parent: PublicTaskExecution, index: number, extra = {}) =>
    newExecution(
      {
        rootTaskId: parent.taskId,
        rootExecutionId: parent.executionId,
        parentTaskId: parent.taskId,
        parentExecutionId: parent.executionId,
        indexInParentChildren: index,
        isOnlyChildOfParent: false,
        ...extra,
      },
      NOW,
    )

  it('patches the parent and inserts its children with parentExecutionDocId = its _id', async () => {
    const t = makeT()
    const parent = newExecution({ status: 'running' })
    await seedDirectly(t, [parent])
    const parentId = (await docOf(t, parent.executionId))!._id
    const children = [childOf(parent, 0), childOf(parent, 1), newSleepingExecution({}, NOW)]
    const fields = {
      status: 'waiting_for_children' as const,
      children: children.map(({ taskId, executionId }) => ({ taskId, executionId })),
      acc: 3,
      updatedAt: NOW,
    }
    expect(
      await updateWithChildren(t, [
        {
          executionId: parent.executionId,
          filters: { status: 'running' },
          update: fields,
          childrenTaskExecutionsToInsertIfAnyUpdated: children,
        },
      ]),
    ).toBeNull()
    await expectPatched(t, parent, fields)
    for (const child of children) {
      expect(await docOf(t, child.executionId)).toEqual(
        stored({ ...child, parentExecutionDocId: parentId }),
      )
    }
    expect(await allDocs(t)).toHaveLength(4)
  })

  it('sets parentExecutionDocId itself, whatever the child carries', async () => {
    const t = makeT()
    const parent = newExecution()
    const other = newExecution()
    await seedDirectly(t, [parent, other])
    const otherId = (await docOf(t, other.executionId))!._id
    const child = childOf(parent, 0, { parentExecutionDocId: otherId })
    await updateWithChildren(t, [
      {
        executionId: parent.executionId,
        update: update({ acc: 1 }),
        childrenTaskExecutionsToInsertIfAnyUpdated: [child],
      },
    ])
    expect((await docOf(t, child.executionId))!.parentExecutionDocId).toBe(
      (await docOf(t, parent.executionId))!._id,
    )
  })

  it('inserts no children under a parent that is unknown or does not match the filters', async () => {
    const t = makeT()
    const parent = newExecution({ status: 'running' })
    const updated = newExecution({ status: 'running' })
    await seedDirectly(t, [parent, updated])
    const parentBefore = await docOf(t, parent.executionId)
    const kept = childOf(updated, 0)
    await updateWithChildren(t, [
      {
        executionId: 'unknown',
        update: update({ acc: 1 }),
        childrenTaskExecutionsToInsertIfAnyUpdated: [newExecution()],
      },
      {
        executionId: parent.executionId,
        filters: { status: 'ready' },
        update: update({ acc: 1 }),
        childrenTaskExecutionsToInsertIfAnyUpdated: [childOf(parent, 0)],
      },
      {
        executionId: updated.executionId,
        update: update({ acc: 1 }),
        childrenTaskExecutionsToInsertIfAnyUpdated: [kept],
      },
    ])
    expect(await docOf(t, parent.executionId)).toEqual(parentBefore)
    expect((await allDocs(t)).map((d) => d.executionId)).toEqual(
      [parent.executionId, updated.executionId, kept.executionId].sort(),
    )
    expect((await docOf(t, kept.executionId))!.parentExecutionDocId).toBe(
      (await docOf(t, updated.executionId))!._id,
    )
  })

  it('patches a parent that has no children to insert', async () => {
    const t = makeT()
    const parent = newExecution()
    await seedDirectly(t, [parent])
    await updateWithChildren(t, [
      {
        executionId: parent.executionId,
        update: update({ status: 'running' }),
        childrenTaskExecutionsToInsertIfAnyUpdated: [],
      },
    ])
    await expectPatched(t, parent, { status: 'running', updatedAt: NOW })
  })

  it('rolls the whole call back when a child executionId already exists', async () => {
    const t = makeT()
    const first = newExecution()
    const parent = newExecution()
    const existing = newExecution()
    await seedDirectly(t, [first, parent, existing])
    const before = await allDocs(t)
    await expectConvexError(
      updateWithChildren(t, [
        {
          executionId: first.executionId,
          update: update({ acc: 1 }),
          childrenTaskExecutionsToInsertIfAnyUpdated: [childOf(first, 0)],
        },
        {
          executionId: parent.executionId,
          update: update({ acc: 2 }),
          childrenTaskExecutionsToInsertIfAnyUpdated: [
            childOf(parent, 0),
            childOf(parent, 1, { executionId: existing.executionId }),
          ],
        },
      ]),
      'ALREADY_EXISTS',
    )
    expect(await allDocs(t)).toEqual(before)
  })

  it('rolls the whole call back when two children share a sleepingTaskUniqueId', async () => {
    const t = makeT()
    const parent = newExecution()
    await seedDirectly(t, [parent])
    const before = await allDocs(t)
    const a = newSleepingExecution({ parentExecutionId: parent.executionId })
    const b = newSleepingExecution({
      parentExecutionId: parent.executionId,
      sleepingTaskUniqueId: a.sleepingTaskUniqueId!,
    })
    await expectConvexError(
      updateWithChildren(t, [
        {
          executionId: parent.executionId,
          update: update({ acc: 2 }),
          childrenTaskExecutionsToInsertIfAnyUpdated: [a, b],
        },
      ]),
      'ALREADY_EXISTS',
    )
    expect(await allDocs(t)).toEqual(before)
  })

  it('does not look at the children of a request that was skipped', async () => {
    const t = makeT()
    const existing = newExecution()
    await seedDirectly(t, [existing])
    const before = await allDocs(t)
    // The child would collide, but its parent is not found: nothing to insert, no error.
    await updateWithChildren(t, [
      {
        executionId: 'unknown',
        update: update({ acc: 1 }),
        childrenTaskExecutionsToInsertIfAnyUpdated: [
          newExecution({ executionId: existing.executionId }),
        ],
      },
    ])
    expect(await allDocs(t)).toEqual(before)
  })
})
