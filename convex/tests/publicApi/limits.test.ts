// Calls at the limits of limits.ts pass in one call (with convex-test enforcing Convex's
// transaction limits); one over them fails cleanly with LIMIT_EXCEEDED and no partial effect.
// These are the slow tests: convex-test scans linearly, and insertMany's uniqueness checks
// make a full insert quadratic (about 2 s for 2,000 executions).

import { describe, expect, it } from 'vitest'
import {
  GET_MANY_BY_ID_MAX_ITEMS,
  INSERT_MANY_MAX_ITEMS,
  QUERY_BUDGET,
  UPDATE_AND_DECREMENT_PARENT_ACC_BY_IS_FINISHED_AND_CLOSE_STATUS_MAX_LIMIT,
  UPDATE_BY_STATUS_AND_START_AT_LESS_THAN_AND_RETURN_MAX_LIMIT,
  UPDATE_MANY_BY_ID_AND_INSERT_CHILDREN_IF_UPDATED_COSTS,
  UPDATE_MANY_BY_ID_MAX_ITEMS,
  WRITE_BUDGET,
} from '../../../generated/component/limits'
import {
  allDocs,
  docOf,
  expectConvexError,
  fns,
  getById,
  insert,
  makeT,
  newExecution,
  PAST,
  SECRET,
  seedDirectly,
  stored,
  update,
  useDeploymentEnv,
  type PublicTaskExecution,
} from './setup'

useDeploymentEnv()

/** `count` request ids, with `known` spread over them at the start, middle and end. */
function idsWith(known: string[], count: number): string[] {
  const ids = Array.from({ length: count }, (_, i) => `unknown_${i}`)
  const positions = [0, Math.floor(count / 2), count - 1]
  known.forEach((id, i) => (ids[positions[i]!] = id))
  return ids
}

describe('getManyById', () => {
  it(`answers exactly ${GET_MANY_BY_ID_MAX_ITEMS} requests in one call, and refuses one more`, async () => {
    const t = makeT()
    const docs = [newExecution(), newExecution(), newExecution()]
    await seedDirectly(t, docs)
    const ids = idsWith(
      docs.map((d) => d.executionId),
      GET_MANY_BY_ID_MAX_ITEMS,
    )
    const result = await getById(t, ids)
    expect(result).toHaveLength(GET_MANY_BY_ID_MAX_ITEMS)
    expect(result.filter((doc) => doc !== null)).toEqual(docs.map(stored))
    expect(result[GET_MANY_BY_ID_MAX_ITEMS - 1]).toEqual(stored(docs[2]!))
    await expectConvexError(getById(t, [...ids, 'one-more']), 'LIMIT_EXCEEDED', {
      limit: 'items',
      fits: GET_MANY_BY_ID_MAX_ITEMS,
    })
  })
})

describe('updateManyById', () => {
  it(`patches with exactly ${UPDATE_MANY_BY_ID_MAX_ITEMS} requests in one call; one more patches nothing`, async () => {
    const t = makeT()
    const docs = [newExecution(), newExecution(), newExecution()]
    await insert(t, docs)
    const ids = idsWith(
      docs.map((d) => d.executionId),
      UPDATE_MANY_BY_ID_MAX_ITEMS,
    )
    const call = (executionIds: string[], output: string) =>
      t.action(fns.updateManyById, {
        authSecret: SECRET,
        args: {
          requests: executionIds.map((executionId) => ({
            executionId,
            update: update({ output }),
          })),
        },
      })
    await expectConvexError(call([...ids, 'one-more'], 'over'), 'LIMIT_EXCEEDED', {
      limit: 'items',
      fits: UPDATE_MANY_BY_ID_MAX_ITEMS,
    })
    expect((await allDocs(t)).map((d) => d.output)).toEqual([undefined, undefined, undefined])
    expect(await call(ids, 'at-limit')).toBeNull()
    expect((await allDocs(t)).map((d) => d.output)).toEqual(['at-limit', 'at-limit', 'at-limit'])
  })
})

describe('insertMany', () => {
  it(`inserts exactly ${INSERT_MANY_MAX_ITEMS} executions in one call; one more inserts nothing`, async () => {
    const t = makeT()
    const docs = Array.from({ length: INSERT_MANY_MAX_ITEMS + 1 }, () => newExecution())
    await expectConvexError(insert(t, docs), 'LIMIT_EXCEEDED', {
      limit: 'items',
      fits: INSERT_MANY_MAX_ITEMS,
    })
    expect(await allDocs(t)).toEqual([])
    expect(await insert(t, docs.slice(0, INSERT_MANY_MAX_ITEMS))).toBeNull()
    expect(await allDocs(t)).toHaveLength(INSERT_MANY_MAX_ITEMS)
  }, 60_000)
})

describe('updateManyByIdAndInsertChildrenIfUpdated', () => {
  const costs = UPDATE_MANY_BY_ID_AND_INSERT_CHILDREN_IF_UPDATED_COSTS
  // The most children one request can carry within the read budget (1,999 with the costs).
  const maxChildren = Math.floor((QUERY_BUDGET - costs.readsPerItem) / costs.readsPerChild)

  it(`inserts ${maxChildren} children of one parent in one call; one more changes nothing`, async () => {
    const t = makeT()
    const parent = newExecution({ status: 'running' })
    await insert(t, [parent])
    const before = await allDocs(t)
    const children = Array.from({ length: maxChildren + 1 }, (_, i) =>
      newExecution({ parentExecutionId: parent.executionId, indexInParentChildren: i }),
    )
    const call = (list: PublicTaskExecution[]) =>
      t.action(fns.updateManyByIdAndInsertChildrenIfUpdated, {
        authSecret: SECRET,
        args: {
          requests: [
            {
              executionId: parent.executionId,
              update: update({ status: 'waiting_for_children', acc: list.length }),
              childrenTaskExecutionsToInsertIfAnyUpdated: list,
            },
          ],
        },
      })
    // One request alone is over the index lookups one call may make: none fits.
    await expectConvexError(call(children), 'LIMIT_EXCEEDED', { limit: 'indexLookups', fits: 0 })
    expect(await allDocs(t)).toEqual(before)
    expect(await call(children.slice(0, maxChildren))).toBeNull()
    expect(await allDocs(t)).toHaveLength(maxChildren + 1)
    expect((await docOf(t, parent.executionId))!.acc).toBe(maxChildren)
  }, 60_000)
})

describe('range updates', () => {
  it(`claims with limit = ${UPDATE_BY_STATUS_AND_START_AT_LESS_THAN_AND_RETURN_MAX_LIMIT} (the maximum), all ${UPDATE_BY_STATUS_AND_START_AT_LESS_THAN_AND_RETURN_MAX_LIMIT} matching executions`, async () => {
    const t = makeT()
    const max = UPDATE_BY_STATUS_AND_START_AT_LESS_THAN_AND_RETURN_MAX_LIMIT
    await seedDirectly(
      t,
      Array.from({ length: max + 1 }, (_, i) => newExecution({ startAt: PAST + i })),
    )
    const claimed = await t.action(fns.updateByStatusAndStartAtLessThanAndReturn, {
      authSecret: SECRET,
      args: {
        shard: 0,
        status: 'ready',
        startAtLessThan: PAST + max + 1,
        update: update({ status: 'running' }),
        updateExpiresAtWithStartedAt: PAST,
        limit: max,
      },
    })
    expect(claimed).toHaveLength(max)
    expect(claimed.map((d) => d.startAt)).toEqual(Array.from({ length: max }, (_, i) => PAST + i))
    const ready = (await allDocs(t)).filter((d) => d.status === 'ready')
    expect(ready.map((d) => d.startAt)).toEqual([PAST + max])
  }, 60_000)

  it(`decrements with limit = ${UPDATE_AND_DECREMENT_PARENT_ACC_BY_IS_FINISHED_AND_CLOSE_STATUS_MAX_LIMIT} (the maximum) over as many children of one parent`, async () => {
    const t = makeT()
    const max = UPDATE_AND_DECREMENT_PARENT_ACC_BY_IS_FINISHED_AND_CLOSE_STATUS_MAX_LIMIT
    const parent = newExecution({ status: 'waiting_for_children', acc: max + 1 })
    await seedDirectly(t, [parent])
    await seedDirectly(
      t,
      Array.from({ length: max + 1 }, (_, i) =>
        newExecution({
          parentExecutionId: parent.executionId,
          indexInParentChildren: i,
          status: 'completed',
          isFinished: true,
          closeStatus: 'ready',
          updatedAt: PAST + i,
        }),
      ),
    )
    const count = await t.action(fns.updateAndDecrementParentACCByIsFinishedAndCloseStatus, {
      authSecret: SECRET,
      args: {
        shard: 0,
        isFinished: true,
        closeStatus: 'ready',
        update: update({ closeStatus: 'closed' }),
        limit: max,
      },
    })
    expect(count).toBe(max)
    expect((await docOf(t, parent.executionId))!.acc).toBe(1)
  }, 60_000)
})

describe('children of one parent beyond the read budget', () => {
  // Reference §2: getManyByParentExecutionId returns "all children of each parent", and
  // updateManyByParentExecutionIdAndIsFinished patches "every child". The client cannot split
  // one parent's children over several calls, and Convex allows 32,000 documents read per
  // transaction (4,096 is the limit on index ranges), so a parent with QUERY_BUDGET + 1
  // children must still work, with Convex's limits enforced.
  async function bigFamily(size = QUERY_BUDGET + 1) {
    const t = makeT()
    const parent = newExecution({ status: 'waiting_for_children', acc: size })
    const children = Array.from({ length: size }, (_, i) =>
      newExecution({
        parentExecutionId: parent.executionId,
        indexInParentChildren: i,
        status: 'completed',
        isFinished: true,
      }),
    )
    await seedDirectly(t, [parent, ...children])
    return { t, parent }
  }

  it(`getManyByParentExecutionId returns all ${QUERY_BUDGET + 1} children of one parent`, async () => {
    const { t, parent } = await bigFamily()
    const result = await t.query(fns.getManyByParentExecutionId, {
      authSecret: SECRET,
      args: { requests: [{ parentExecutionId: parent.executionId }] },
    })
    expect(result[0]).toHaveLength(QUERY_BUDGET + 1)
  }, 60_000)

  it(`updateManyByParentExecutionIdAndIsFinished patches all ${QUERY_BUDGET + 1} finished children of one parent`, async () => {
    const { t, parent } = await bigFamily()
    await t.action(fns.updateManyByParentExecutionIdAndIsFinished, {
      authSecret: SECRET,
      args: {
        requests: [
          {
            parentExecutionId: parent.executionId,
            isFinished: true,
            update: update({ closeStatus: 'ready' }),
          },
        ],
      },
    })
    const ready = (await allDocs(t)).filter((d) => d.closeStatus === 'ready')
    expect(ready).toHaveLength(QUERY_BUDGET + 1)
  }, 60_000)

  it(`updateManyByParentExecutionIdAndIsFinished refuses ${WRITE_BUDGET + 1} children of one parent (more writes than one call may make) and patches none`, async () => {
    const { t, parent } = await bigFamily(WRITE_BUDGET + 1)
    await expectConvexError(
      t.action(fns.updateManyByParentExecutionIdAndIsFinished, {
        authSecret: SECRET,
        args: {
          requests: [
            {
              parentExecutionId: parent.executionId,
              isFinished: true,
              update: update({ closeStatus: 'ready' }),
            },
          ],
        },
      }),
      'LIMIT_EXCEEDED',
      // Each child is read, then read again and written by its patch: the documents read
      // run out first. The one request does not fit.
      { limit: 'documentsRead', fits: 0 },
    )
    const ready = (await allDocs(t)).filter((d) => d.closeStatus === 'ready')
    expect(ready).toHaveLength(0)
  }, 120_000)
})
