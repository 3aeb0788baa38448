// insertMany, getManyById, getManyBySleepingTaskUniqueId (reference §2). The reads are tested
// on seeded documents; the clock rules of insertMany have their own tests (clock.test.ts).

import { describe, expect, it } from 'vitest'
import {
  allDocs,
  expectConvexError,
  fns,
  getById,
  insert,
  makeT,
  newExecution,
  newSleepingExecution,
  NOW,
  SECRET,
  seedDirectly,
  stored,
  useDeploymentEnv,
} from './setup'

useDeploymentEnv()

describe('insertMany', () => {
  it('stores every execution as given (by a client in step with the server), with the system fields, and returns null', async () => {
    const t = makeT()
    const plain = newExecution({}, NOW)
    const sleeping = newSleepingExecution({ shard: 3 }, NOW)
    const full = newExecution(
      {
        shard: 7,
        rootTaskId: 'root-task',
        rootExecutionId: 'root-execution',
        parentTaskId: 'parent-task',
        parentExecutionId: 'parent-execution',
        indexInParentChildren: 2,
        isOnlyChildOfParent: false,
        isFinalizeOfParent: false,
        retryOptions: { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 1_000, delayMultiplier: 2 },
        sleepMsBeforeRun: 500,
        startAt: NOW + 500,
        areChildrenSequential: true,
        executorId: 'executor-1',
        status: 'failed',
        runOutput: 'run-output',
        output: 'output',
        error: { errorType: 'generic', message: 'boom', isRetryable: true, isInternal: false },
        retryAttempts: 1,
        startedAt: NOW,
        expiresAt: NOW + 2,
        waitingForChildrenStartedAt: NOW,
        waitingForFinalizeStartedAt: NOW,
        finishedAt: NOW,
        children: [{ taskId: 'child-task', executionId: 'child-execution' }],
        acc: 1,
        ocfpStatus: 'processing',
        ocfpExpiresAt: NOW + 6,
        ocfpFinishedAt: NOW,
        finalize: { taskId: 'finalize-task', executionId: 'finalize-execution' },
        closeStatus: 'closing',
        closeExpiresAt: NOW + 8,
        closedAt: NOW,
        npc: true,
      },
      NOW,
    )
    expect(await insert(t, [plain, sleeping, full])).toBeNull()
    const docs = await getById(t, [plain.executionId, sleeping.executionId, full.executionId])
    expect(docs).toEqual([stored(plain), stored(sleeping), stored(full)])
    expect(new Set(docs.map((doc) => doc!._id)).size).toBe(3)
    expect(await allDocs(t)).toHaveLength(3)
  })

  it('accepts an empty list', async () => {
    const t = makeT()
    expect(await insert(t, [])).toBeNull()
    expect(await allDocs(t)).toEqual([])
  })

  it('refuses an executionId that already exists, inserting nothing of the call', async () => {
    const t = makeT()
    const existing = newExecution()
    await insert(t, [existing])
    const before = await allDocs(t)
    const duplicate = newExecution({ executionId: existing.executionId, taskId: 'other' })
    await expectConvexError(
      insert(t, [newExecution(), duplicate, newExecution()]),
      'ALREADY_EXISTS',
    )
    expect(await allDocs(t)).toEqual(before)
  })

  it('refuses an executionId repeated within the call, inserting nothing', async () => {
    const t = makeT()
    const a = newExecution()
    await expectConvexError(
      insert(t, [a, newExecution(), newExecution({ executionId: a.executionId })]),
      'ALREADY_EXISTS',
    )
    expect(await allDocs(t)).toEqual([])
  })

  it('refuses a sleepingTaskUniqueId that already exists, inserting nothing of the call', async () => {
    const t = makeT()
    const existing = newSleepingExecution()
    await insert(t, [existing])
    const before = await allDocs(t)
    const duplicate = newSleepingExecution({
      sleepingTaskUniqueId: existing.sleepingTaskUniqueId!,
    })
    await expectConvexError(insert(t, [newExecution(), duplicate]), 'ALREADY_EXISTS')
    expect(await allDocs(t)).toEqual(before)
  })

  it('refuses a sleepingTaskUniqueId repeated within the call, inserting nothing', async () => {
    const t = makeT()
    const a = newSleepingExecution()
    const b = newSleepingExecution({ sleepingTaskUniqueId: a.sleepingTaskUniqueId! })
    await expectConvexError(insert(t, [a, b]), 'ALREADY_EXISTS')
    expect(await allDocs(t)).toEqual([])
  })

  it('lets any number of executions without a sleepingTaskUniqueId coexist', async () => {
    const t = makeT()
    const batch1 = [newExecution(), newExecution()]
    const batch2 = [newExecution(), newExecution()]
    await insert(t, batch1)
    await insert(t, batch2)
    const docs = await allDocs(t)
    expect(docs).toHaveLength(4)
    expect(docs.every((doc) => !('sleepingTaskUniqueId' in doc))).toBe(true)
  })
})

describe('getManyById', () => {
  it('answers every request in order, null for an unknown id', async () => {
    const t = makeT()
    const a = newExecution()
    const b = newExecution()
    await seedDirectly(t, [a, b])
    const result = await getById(t, [b.executionId, 'unknown', a.executionId, b.executionId])
    expect(result).toEqual([stored(b), null, stored(a), stored(b)])
  })

  it('answers an empty list with an empty list', async () => {
    const t = makeT()
    expect(await getById(t, [])).toEqual([])
  })

  it('counts a document that does not match every given filter as not found', async () => {
    const t = makeT()
    // A sleeping, running, unfinished execution.
    const doc = newSleepingExecution()
    await seedDirectly(t, [doc])
    const cases = [
      [undefined, true],
      [{}, true],
      [{ isSleepingTask: true }, true],
      [{ isSleepingTask: false }, false],
      [{ status: 'running' }, true],
      [{ status: 'ready' }, false],
      [{ isFinished: false }, true],
      [{ isFinished: true }, false],
      [{ isSleepingTask: true, status: 'running', isFinished: false }, true],
      [{ isSleepingTask: true, status: 'running', isFinished: true }, false],
      [{ isSleepingTask: false, status: 'running', isFinished: false }, false],
    ] as const
    const result = await t.query(fns.getManyById, {
      authSecret: SECRET,
      args: {
        requests: cases.map(([filters]) =>
          filters === undefined
            ? { executionId: doc.executionId }
            : { executionId: doc.executionId, filters },
        ),
      },
    })
    expect(result).toEqual(cases.map(([, found]) => (found ? stored(doc) : null)))
  })
})

describe('getManyBySleepingTaskUniqueId', () => {
  it('answers every request in order, null for an unknown unique id', async () => {
    const t = makeT()
    const a = newSleepingExecution()
    const b = newSleepingExecution()
    const plain = newExecution()
    await seedDirectly(t, [a, b, plain])
    const result = await t.query(fns.getManyBySleepingTaskUniqueId, {
      authSecret: SECRET,
      args: {
        requests: [
          { sleepingTaskUniqueId: b.sleepingTaskUniqueId! },
          { sleepingTaskUniqueId: 'unknown' },
          // An executionId is not a sleepingTaskUniqueId.
          { sleepingTaskUniqueId: plain.executionId },
          { sleepingTaskUniqueId: a.sleepingTaskUniqueId! },
        ],
      },
    })
    expect(result).toEqual([stored(b), null, null, stored(a)])
  })
})
