// The selecting updates (reference §2): updateByStatusAndStartAtLessThanAndReturn, the three
// `updatedAt < now` ...AndReturn functions of a shard, and the three expiresAt functions over
// every shard. Each selects in ascending index order, at most `limit`, with strict bounds,
// patches, and returns the documents (as after the patch) or their count. The documents are
// seeded straight into the table (a stored state, with times in the server's past); the
// update carries a client's stamps an hour behind, and the server stores its own (NOW).

import { describe, expect, it } from 'vitest'
import { EXPIRY_GRACE_MS } from '../../../generated/component/clock'
import {
  allDocs,
  docOf,
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
  type PublicTaskExecutionDoc,
  type T,
  type TaskExecutionUpdate,
} from './setup'

useDeploymentEnv()

const ids = (docs: Array<{ executionId: string }>) => docs.map((doc) => doc.executionId)

/** Asserts that the documents not in `changed` are exactly as before. */
async function expectUnchangedExcept(
  t: T,
  before: PublicTaskExecutionDoc[],
  changed: PublicTaskExecution[],
) {
  const changedIds = new Set(ids(changed))
  const after = await allDocs(t)
  expect(after.filter((doc) => !changedIds.has(doc.executionId))).toEqual(
    before.filter((doc) => !changedIds.has(doc.executionId)),
  )
}

/** Asserts the returned documents are the stored ones (as after the patch). */
async function expectReturnedAsStored(t: T, returned: PublicTaskExecutionDoc[]) {
  for (const doc of returned) expect(await docOf(t, doc.executionId)).toEqual(doc)
}

describe('updateByStatusAndStartAtLessThanAndReturn', () => {
  const claim = (t: T, args: { shard?: number; startAtLessThan: number; limit: number }) =>
    t.action(fns.updateByStatusAndStartAtLessThanAndReturn, {
      authSecret: SECRET,
      args: {
        shard: args.shard ?? 0,
        status: 'ready',
        startAtLessThan: args.startAtLessThan,
        update: update({ status: 'running', executorId: 'executor-1', startedAt: PAST + 50 }),
        updateExpiresAtWithStartedAt: PAST + 50,
        limit: args.limit,
      },
    })

  it('claims ready executions of the shard with startAt < bound, ascending, with expiresAt = updateExpiresAtWithStartedAt + timeoutMs', async () => {
    const t = makeT()
    const bound = PAST + 100
    const late = newExecution({ startAt: PAST + 30, timeoutMs: 1_000 })
    const early = newExecution({ startAt: PAST + 10, timeoutMs: 2_500 })
    const atBound = newExecution({ startAt: bound })
    const otherShard = newExecution({ shard: 1, startAt: PAST })
    const running = newExecution({ status: 'running', startAt: PAST })
    const sleeping = newSleepingExecution({ startAt: PAST })
    await seedDirectly(t, [late, early, atBound, otherShard, running, sleeping])
    const before = await allDocs(t)

    const claimed = await claim(t, { startAtLessThan: bound, limit: 10 })
    // The stamps are the server's (NOW), and so is the lease: NOW + timeoutMs.
    const patch = {
      status: 'running' as const,
      executorId: 'executor-1',
      startedAt: NOW,
      updatedAt: NOW,
    }
    expect(claimed).toEqual([
      stored({ ...early, ...patch, expiresAt: NOW + 2_500 }),
      stored({ ...late, ...patch, expiresAt: NOW + 1_000 }),
    ])
    await expectReturnedAsStored(t, claimed)
    await expectUnchangedExcept(t, before, [early, late])
    // Claimed executions are no longer ready: a second claim finds nothing.
    expect(await claim(t, { startAtLessThan: bound, limit: 10 })).toEqual([])
  })

  it('claims at most `limit`, the earliest startAt first', async () => {
    const t = makeT()
    const docs = [PAST + 3, PAST + 1, PAST + 4, PAST + 2].map((startAt) =>
      newExecution({ startAt }),
    )
    await seedDirectly(t, docs)
    const first = await claim(t, { startAtLessThan: PAST + 100, limit: 3 })
    expect(first.map((d) => d.startAt)).toEqual([PAST + 1, PAST + 2, PAST + 3])
    expect((await docOf(t, docs[2]!.executionId))!.status).toBe('ready')
    const second = await claim(t, { startAtLessThan: PAST + 100, limit: 3 })
    expect(ids(second)).toEqual([docs[2]!.executionId])
  })

  it('claims only in the given shard', async () => {
    const t = makeT()
    const shard0 = newExecution({ shard: 0 })
    const shard2 = newExecution({ shard: 2 })
    await seedDirectly(t, [shard0, shard2])
    expect(ids(await claim(t, { shard: 2, startAtLessThan: PAST + 1, limit: 10 }))).toEqual([
      shard2.executionId,
    ])
    expect((await docOf(t, shard0.executionId))!.status).toBe('ready')
  })

  it('never gives one execution to two concurrent claimers', async () => {
    const t = makeT()
    const docs = Array.from({ length: 6 }, (_, i) => newExecution({ startAt: PAST + i }))
    await seedDirectly(t, docs)
    const results = await Promise.all(
      Array.from({ length: 4 }, () => claim(t, { startAtLessThan: PAST + 100, limit: 2 })),
    )
    const claimed = results.flatMap(ids)
    expect(claimed.sort()).toEqual(ids(docs).sort())
  })
})

const UPDATED_AT_CASES = [
  {
    name: 'updateByStatusAndOCFPStatusAndACCZeroAndReturn',
    // Matches shard 0, status waiting_for_children, ocfpStatus idle, acc 0.
    matching: { status: 'waiting_for_children', ocfpStatus: 'idle', acc: 0 },
    notMatching: [
      { acc: 1 },
      { ocfpStatus: 'processing' },
      { status: 'waiting_for_finalize' },
      { shard: 1 },
    ],
    call: (t: T, u: TaskExecutionUpdate, limit: number, shard = 0) =>
      t.action(fns.updateByStatusAndOCFPStatusAndACCZeroAndReturn, {
        authSecret: SECRET,
        args: { shard, status: 'waiting_for_children', ocfpStatus: 'idle', update: u, limit },
      }),
    // A lease already past for the server becomes NOW + EXPIRY_GRACE_MS.
    patch: { ocfpStatus: 'processing', ocfpExpiresAt: PAST + 9_999 },
    stored: { ocfpStatus: 'processing', ocfpExpiresAt: NOW + EXPIRY_GRACE_MS },
  },
  {
    name: 'updateByCloseStatusAndReturn',
    matching: { status: 'completed', isFinished: true, closeStatus: 'ready' },
    notMatching: [{ closeStatus: 'closing' }, { closeStatus: 'idle' }, { shard: 1 }],
    call: (t: T, u: TaskExecutionUpdate, limit: number, shard = 0) =>
      t.action(fns.updateByCloseStatusAndReturn, {
        authSecret: SECRET,
        args: { shard, closeStatus: 'ready', update: u, limit },
      }),
    patch: { closeStatus: 'closing', closeExpiresAt: PAST + 9_999 },
    stored: { closeStatus: 'closing', closeExpiresAt: NOW + EXPIRY_GRACE_MS },
  },
  {
    name: 'updateByExecutorIdAndNPCAndReturn',
    matching: { status: 'running', executorId: 'executor-1', npc: true },
    notMatching: [
      { executorId: 'executor-2' },
      { npc: false },
      { shard: 1 },
      { executorId: undefined },
    ],
    call: (t: T, u: TaskExecutionUpdate, limit: number, shard = 0) =>
      t.action(fns.updateByExecutorIdAndNPCAndReturn, {
        authSecret: SECRET,
        args: { shard, executorId: 'executor-1', npc: true, update: u, limit },
      }),
    patch: { npc: false },
    stored: { npc: false },
  },
] as const

// `%s` on the name: `$name` would print it quoted and truncated.
describe.each(UPDATED_AT_CASES.map((c) => [c.name, c] as const))('%s', (_, c) => {
  const { matching, notMatching, call, patch, stored: patchStored } = c
  const make = (extra: object) => {
    const doc = newExecution({ ...matching, ...extra } as Partial<PublicTaskExecution>)
    // `executorId: undefined` means absent.
    if ('executorId' in doc && doc.executorId === undefined) delete doc.executorId
    return doc
  }

  it('patches the matching executions of the shard with updatedAt < now, ascending updatedAt, and returns them as patched', async () => {
    const t = makeT()
    const later = make({ updatedAt: NOW - 10 })
    const earlier = make({ updatedAt: NOW - 20 })
    const atNow = make({ updatedAt: NOW })
    const future = make({ updatedAt: NOW + 1_000 })
    const others = notMatching.map((extra) => make({ updatedAt: NOW - 30, ...extra }))
    await seedDirectly(t, [later, earlier, atNow, future, ...others])
    const before = await allDocs(t)

    const returned = await call(t, { ...patch, updatedAt: PAST } as TaskExecutionUpdate, 10)
    expect(returned).toEqual([
      stored({ ...earlier, ...patchStored, updatedAt: NOW }),
      stored({ ...later, ...patchStored, updatedAt: NOW }),
    ])
    await expectReturnedAsStored(t, returned)
    await expectUnchangedExcept(t, before, [earlier, later])
  })

  it('patches at most `limit`, the least recently updated first', async () => {
    const t = makeT()
    const docs = [30, 10, 40, 20].map((ago) => make({ updatedAt: NOW - ago }))
    await seedDirectly(t, docs)
    const returned = await call(t, { ...patch, updatedAt: PAST } as TaskExecutionUpdate, 2)
    expect(ids(returned)).toEqual([docs[2]!.executionId, docs[0]!.executionId])
    const patched = (await allDocs(t)).filter((d) => d.updatedAt === NOW)
    expect(ids(patched).sort()).toEqual(ids(returned).sort())
  })

  it('returns the documents without the fields the update unsets', async () => {
    const t = makeT()
    const doc = make({ updatedAt: NOW - 1, runOutput: 'run-output', startedAt: PAST + 3 })
    await seedDirectly(t, [doc])
    const u = { ...patch, updatedAt: NOW + 5, unset: { runOutput: true, startedAt: true } }
    const returned = await call(t, u as TaskExecutionUpdate, 10)
    const { runOutput, startedAt, ...rest } = doc
    void [runOutput, startedAt]
    expect(returned).toEqual([stored({ ...rest, ...patchStored, updatedAt: NOW })])
    await expectReturnedAsStored(t, returned)
  })

  it('selects in the given shard only', async () => {
    const t = makeT()
    const shard0 = make({ updatedAt: NOW - 1 })
    const shard3 = make({ shard: 3, updatedAt: NOW - 1 })
    await seedDirectly(t, [shard0, shard3])
    const before = await allDocs(t)
    const returned = await call(t, { ...patch, updatedAt: NOW + 5 } as TaskExecutionUpdate, 10, 3)
    expect(ids(returned)).toEqual([shard3.executionId])
    await expectUnchangedExcept(t, before, [shard3])
  })
})

describe('updateByStatusAndIsSleepingTaskAndExpiresAtLessThan', () => {
  const expire = (t: T, expiresAtLessThan: number, limit: number, isSleepingTask = true) =>
    t.action(fns.updateByStatusAndIsSleepingTaskAndExpiresAtLessThan, {
      authSecret: SECRET,
      args: {
        status: 'running',
        isSleepingTask,
        expiresAtLessThan,
        update: update({ status: 'timed_out', isFinished: true, unset: { expiresAt: true } }),
        limit,
      },
    })

  it('patches executions of every shard with expiresAt in [0, bound) and returns the count', async () => {
    const t = makeT()
    const bound = PAST + 1_000
    const a = newSleepingExecution({ shard: 0, expiresAt: PAST + 500 })
    const b = newSleepingExecution({ shard: 5, expiresAt: PAST + 100 })
    const c = newSleepingExecution({ shard: 9, expiresAt: 0 })
    const atBound = newSleepingExecution({ expiresAt: bound })
    const negative = newSleepingExecution({ expiresAt: -1 })
    const noExpiresAt = newSleepingExecution()
    delete noExpiresAt.expiresAt
    const notRunning = newSleepingExecution({ status: 'completed', expiresAt: PAST })
    const notSleeping = newExecution({ status: 'running', expiresAt: PAST })
    // A negative expiresAt is refused on writes now, but may be stored by an older server.
    await seedDirectly(t, [a, b, c, atBound, negative, noExpiresAt, notRunning, notSleeping])
    const before = await allDocs(t)

    expect(await expire(t, bound, 10)).toBe(3)
    for (const doc of [a, b, c]) {
      const { expiresAt, ...rest } = doc
      void expiresAt
      expect(await docOf(t, doc.executionId)).toEqual(
        stored({ ...rest, status: 'timed_out', isFinished: true, updatedAt: NOW }),
      )
    }
    await expectUnchangedExcept(t, before, [a, b, c])
  })

  it('selects by isSleepingTask', async () => {
    const t = makeT()
    const sleeping = newSleepingExecution({ expiresAt: PAST })
    const plain = newExecution({ status: 'running', expiresAt: PAST })
    await seedDirectly(t, [sleeping, plain])
    expect(await expire(t, PAST + 1, 10, false)).toBe(1)
    expect((await docOf(t, plain.executionId))!.status).toBe('timed_out')
    expect((await docOf(t, sleeping.executionId))!.status).toBe('running')
  })

  it('patches at most `limit`, the earliest expiresAt first', async () => {
    const t = makeT()
    const docs = [300, 100, 200].map((ms) => newSleepingExecution({ expiresAt: PAST + ms }))
    await seedDirectly(t, docs)
    expect(await expire(t, PAST + 1_000, 2)).toBe(2)
    expect(
      (await allDocs(t)).filter((d) => d.status === 'running').map((d) => d.executionId),
    ).toEqual([docs[0]!.executionId])
  })
})

const EXPIRES_AT_CASES = [
  {
    name: 'updateByOCFPExpiresAt',
    field: 'ocfpExpiresAt',
    call: (t: T, bound: number, limit: number) =>
      t.action(fns.updateByOCFPExpiresAt, {
        authSecret: SECRET,
        args: {
          ocfpExpiresAtLessThan: bound,
          update: update({ ocfpStatus: 'idle', unset: { ocfpExpiresAt: true } }),
          limit,
        },
      }),
    patched: { ocfpStatus: 'idle' },
  },
  {
    name: 'updateByCloseExpiresAt',
    field: 'closeExpiresAt',
    call: (t: T, bound: number, limit: number) =>
      t.action(fns.updateByCloseExpiresAt, {
        authSecret: SECRET,
        args: {
          closeExpiresAtLessThan: bound,
          update: update({ closeStatus: 'ready', unset: { closeExpiresAt: true } }),
          limit,
        },
      }),
    patched: { closeStatus: 'ready' },
  },
] as const

describe.each(EXPIRES_AT_CASES.map((c) => [c.name, c] as const))('%s', (_, c) => {
  const { field, call, patched } = c
  const make = (value: number | undefined, extra: Partial<PublicTaskExecution> = {}) => {
    const doc = newExecution({
      status: 'waiting_for_children',
      ocfpStatus: 'processing',
      closeStatus: 'closing',
      ...extra,
    })
    if (value !== undefined) doc[field] = value
    return doc
  }

  it(`patches executions of every shard with ${field} in [0, bound) and returns the count`, async () => {
    const t = makeT()
    const bound = PAST + 1_000
    const a = make(PAST + 5, { shard: 0 })
    const b = make(PAST + 1, { shard: 2 })
    const zero = make(0, { shard: 7 })
    const atBound = make(bound)
    const negative = make(-1)
    const absent = make(undefined)
    await seedDirectly(t, [a, b, zero, atBound, negative, absent])
    const before = await allDocs(t)

    expect(await call(t, bound, 10)).toBe(3)
    for (const doc of [a, b, zero]) {
      const rest: Partial<PublicTaskExecution> = { ...doc }
      delete rest[field]
      expect(await docOf(t, doc.executionId)).toEqual(
        stored({ ...rest, ...patched, updatedAt: NOW } as PublicTaskExecution),
      )
    }
    await expectUnchangedExcept(t, before, [a, b, zero])
  })

  it('patches at most `limit`, the earliest first', async () => {
    const t = makeT()
    const docs = [30, 10, 20].map((ms) => make(PAST + ms))
    await seedDirectly(t, docs)
    expect(await call(t, PAST + 1_000, 2)).toBe(2)
    expect((await allDocs(t)).filter((d) => field in d).map((d) => d.executionId)).toEqual([
      docs[0]!.executionId,
    ])
  })
})
