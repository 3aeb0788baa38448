// The server's clock is authoritative (clock.ts, from the declaration's `server_time`): with a
// client whose clock is 10 minutes behind or ahead of the server's, what the server stores and
// selects is what it would be with no skew. `now` fields take the server's time, `startAt` is
// never earlier than it, an expiry earlier than it becomes it + EXPIRY_GRACE_MS, the claim's
// lease starts no earlier than it, and `...LessThan` bounds are never later than it.

import { describe, expect, it, vi } from 'vitest'
import { EXPIRY_GRACE_MS } from '../../../generated/component/clock'
import {
  advanceServerTime,
  docOf,
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
  type T,
} from './setup'

useDeploymentEnv()

const MINUTE = 60_000
const SKEWS = [
  ['behind', -10 * MINUTE],
  ['ahead', 10 * MINUTE],
] as const

/** The time the server stores for an expiry the client computed as `sent`. */
const expiry = (sent: number) => (sent < NOW ? NOW + EXPIRY_GRACE_MS : sent)

describe.each(SKEWS)('a client %s by 10 minutes', (_, skew) => {
  const client = NOW + skew

  it('insertMany: createdAt/updatedAt are the server time, startAt at least it, expiries past it get the grace', async () => {
    const t = makeT()
    const plain = newExecution({ sleepMsBeforeRun: 0 }, client)
    const sleeping = newSleepingExecution({ timeoutMs: 30_000 }, client)
    const finished = newExecution(
      {
        status: 'completed',
        isFinished: true,
        finishedAt: client,
        ocfpFinishedAt: client,
        closedAt: client,
        waitingForChildrenStartedAt: client,
        waitingForFinalizeStartedAt: client,
        closeExpiresAt: client + 1_000,
        ocfpExpiresAt: client - 1_000,
      },
      client,
    )
    await insert(t, [plain, sleeping, finished])
    const stamps = { createdAt: NOW, updatedAt: NOW }
    expect(await docOf(t, plain.executionId)).toEqual(
      stored({ ...plain, ...stamps, startAt: Math.max(client, NOW) }),
    )
    expect(await docOf(t, sleeping.executionId)).toEqual(
      stored({
        ...sleeping,
        ...stamps,
        startAt: Math.max(client, NOW),
        startedAt: NOW,
        expiresAt: expiry(client + 30_000),
      }),
    )
    expect(await docOf(t, finished.executionId)).toEqual(
      stored({
        ...finished,
        ...stamps,
        startAt: Math.max(client, NOW),
        finishedAt: NOW,
        ocfpFinishedAt: NOW,
        closedAt: NOW,
        waitingForChildrenStartedAt: NOW,
        waitingForFinalizeStartedAt: NOW,
        closeExpiresAt: expiry(client + 1_000),
        ocfpExpiresAt: expiry(client - 1_000),
      }),
    )
  })

  it('children inserted with their parent follow the same rules', async () => {
    const t = makeT()
    const parent = newExecution({ status: 'running' }, NOW)
    await seedDirectly(t, [parent])
    const child = newSleepingExecution(
      { parentExecutionId: parent.executionId, timeoutMs: 1_000 },
      client,
    )
    await t.action(fns.updateManyByIdAndInsertChildrenIfUpdated, {
      authSecret: SECRET,
      args: {
        requests: [
          {
            executionId: parent.executionId,
            update: { status: 'waiting_for_children', acc: 1, updatedAt: client },
            childrenTaskExecutionsToInsertIfAnyUpdated: [child],
          },
        ],
      },
    })
    const parentDoc = (await docOf(t, parent.executionId))!
    expect(parentDoc.updatedAt).toBe(NOW)
    expect(await docOf(t, child.executionId)).toEqual(
      stored({
        ...child,
        parentExecutionDocId: parentDoc._id,
        createdAt: NOW,
        updatedAt: NOW,
        startAt: Math.max(client, NOW),
        startedAt: NOW,
        expiresAt: expiry(client + 1_000),
      }),
    )
  })

  it('updateManyById: the patch follows the same rules, and unset fields stay unset', async () => {
    const t = makeT()
    const doc = newExecution({ startedAt: NOW - 5, expiresAt: NOW + 5 }, NOW)
    await seedDirectly(t, [doc])
    await t.action(fns.updateManyById, {
      authSecret: SECRET,
      args: {
        requests: [
          {
            executionId: doc.executionId,
            update: {
              status: 'ready',
              startAt: client + 5_000,
              finishedAt: client,
              closeExpiresAt: client + 2_000,
              updatedAt: client,
              unset: { startedAt: true, expiresAt: true },
            },
          },
        ],
      },
    })
    const { startedAt, expiresAt, ...rest } = doc
    void [startedAt, expiresAt]
    expect(await docOf(t, doc.executionId)).toEqual(
      stored({
        ...rest,
        startAt: Math.max(client + 5_000, NOW),
        finishedAt: NOW,
        closeExpiresAt: expiry(client + 2_000),
        updatedAt: NOW,
      }),
    )
  })

  it("the claim's lease keeps the engine's leeway: it starts at updateExpiresAtWithStartedAt when that is ahead of the server", async () => {
    const t = makeT()
    const ready = newExecution({ timeoutMs: 7_000 }, NOW - MINUTE)
    await seedDirectly(t, [ready])
    const now = advanceServerTime(1)
    const leeway = 5 * MINUTE
    const [claimed] = await t.action(fns.updateByStatusAndStartAtLessThanAndReturn, {
      authSecret: SECRET,
      args: {
        shard: 0,
        status: 'ready',
        startAtLessThan: now,
        update: { status: 'running', updatedAt: now },
        updateExpiresAtWithStartedAt: now + leeway,
        limit: 10,
      },
    })
    expect(claimed!.expiresAt).toBe(now + leeway + 7_000)
  })

  it("the claim's lease is the server time + timeoutMs; what a client behind creates is claimable at once", async () => {
    const t = makeT()
    // Created by this client now (startAt = its now): stored as at least the server's now.
    const ready = newExecution({ timeoutMs: 7_000 }, client)
    await insert(t, [ready])
    const now = advanceServerTime(1)
    // Bounded by the server's clock (the Rust engine's estimate of it), stamped by the client.
    const claimed = await t.action(fns.updateByStatusAndStartAtLessThanAndReturn, {
      authSecret: SECRET,
      args: {
        shard: 0,
        status: 'ready',
        startAtLessThan: now + 1,
        update: { status: 'running', startedAt: client, updatedAt: client },
        updateExpiresAtWithStartedAt: client,
        limit: 10,
      },
    })
    if (skew > 0) {
      // A client ahead still dates its work in the server's future (the Rust engine writes
      // times on the storage's clock to avoid that): not due yet for the server.
      expect(claimed).toEqual([])
      return
    }
    expect(claimed).toEqual([
      stored({
        ...ready,
        createdAt: NOW,
        startAt: NOW,
        status: 'running',
        startedAt: now,
        updatedAt: now,
        expiresAt: now + 7_000,
      }),
    ])
  })

  it('a `...LessThan` bound later than the server time is lowered to it', async () => {
    const t = makeT()
    // Stored state: one due a minute ago, one due in 5 minutes (server time).
    const due = newExecution({ startAt: NOW - MINUTE }, NOW - MINUTE)
    const notYet = newExecution({ startAt: NOW + 5 * MINUTE }, NOW - MINUTE)
    const expired = newSleepingExecution({ expiresAt: NOW - MINUTE }, NOW - 2 * MINUTE)
    const leased = newSleepingExecution({ expiresAt: NOW + 5 * MINUTE }, NOW - 2 * MINUTE)
    await seedDirectly(t, [due, notYet, expired, leased])
    const claimed = await t.action(fns.updateByStatusAndStartAtLessThanAndReturn, {
      authSecret: SECRET,
      args: {
        shard: 0,
        status: 'ready',
        startAtLessThan: client,
        update: { status: 'running', updatedAt: client },
        updateExpiresAtWithStartedAt: client,
        limit: 10,
      },
    })
    const swept = await t.action(fns.updateByStatusAndIsSleepingTaskAndExpiresAtLessThan, {
      authSecret: SECRET,
      args: {
        status: 'running',
        isSleepingTask: true,
        expiresAtLessThan: client,
        update: { status: 'timed_out', updatedAt: client },
        limit: 10,
      },
    })
    if (skew > 0) {
      // Lowered to the server's now: only what is due for the server.
      expect(claimed.map((doc) => doc.executionId)).toEqual([due.executionId])
      expect(swept).toBe(1)
      expect((await docOf(t, leased.executionId))!.status).toBe('running')
    } else {
      // A bound in the server's past stays as sent: nothing due 10 minutes ago.
      expect(claimed).toEqual([])
      expect(swept).toBe(0)
    }
    expect((await docOf(t, notYet.executionId))!.status).toBe('ready')
  })

  it('`updatedAt < now` selects what it would with no skew', async () => {
    const t = makeT()
    const doc = newExecution({ status: 'completed', isFinished: true, closeStatus: 'ready' }, NOW)
    await seedDirectly(t, [doc])
    const close = (closeStatus: 'ready' | 'closing', next: 'closing' | 'closed') =>
      t.action(fns.updateByCloseStatusAndReturn, {
        authSecret: SECRET,
        args: {
          shard: 0,
          closeStatus,
          update: { closeStatus: next, updatedAt: client },
          limit: 10,
        },
      })
    // Stored at NOW: not selected in the same millisecond (strict), selected one later.
    expect(await close('ready', 'closing')).toEqual([])
    advanceServerTime(1)
    const first = await close('ready', 'closing')
    expect(first.map((d) => [d.executionId, d.updatedAt])).toEqual([[doc.executionId, NOW + 1]])
    // Just written (stamped with the server's time whatever the client sent): a client ahead
    // cannot make it look fresh for 10 minutes, nor a client behind make it look old at once.
    expect(await close('closing', 'closed')).toEqual([])
    advanceServerTime(1)
    expect((await close('closing', 'closed')).map((d) => d.closeStatus)).toEqual(['closed'])
  })
})

describe('one Date.now() per call', () => {
  async function withTickingClock<R>(run: () => Promise<R>): Promise<R> {
    let now = NOW
    // Every read of the clock moves it: only one read per call gives equal stamps.
    const spy = vi.spyOn(Date, 'now').mockImplementation(() => (now += 7))
    try {
      return await run()
    } finally {
      spy.mockRestore()
    }
  }

  it('every document inserted by one call gets the same stamps', async () => {
    const t: T = makeT()
    const docs = [newExecution({}, 0), newExecution({}, 0), newExecution({}, 0)]
    await withTickingClock(() => insert(t, docs))
    const stamps = (
      await getById(
        t,
        docs.map((d) => d.executionId),
      )
    ).map((doc) => [doc!.createdAt, doc!.updatedAt, doc!.startAt])
    expect(new Set(stamps.flat()).size).toBe(1)
  })

  it('every document patched by one call gets the same stamps', async () => {
    const t: T = makeT()
    const docs = [newExecution({}, NOW - MINUTE), newExecution({}, NOW - MINUTE)]
    await seedDirectly(t, docs)
    const claimed = await withTickingClock(() =>
      t.action(fns.updateByStatusAndStartAtLessThanAndReturn, {
        authSecret: SECRET,
        args: {
          shard: 0,
          status: 'ready',
          startAtLessThan: NOW + MINUTE,
          update: { status: 'running', startedAt: 0, updatedAt: 0 },
          updateExpiresAtWithStartedAt: 0,
          limit: 10,
        },
      }),
    )
    expect(claimed).toHaveLength(2)
    const stamps = claimed.flatMap((doc) => [
      doc.updatedAt,
      doc.startedAt,
      doc.expiresAt! - doc.timeoutMs,
    ])
    expect(new Set(stamps).size).toBe(1)
  })
})
