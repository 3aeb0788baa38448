// Malformed arguments are refused by the validators (or by the component's limit checks)
// before any write: a wrong type, an extra field, a `limit` or a request list over what one
// call accepts (LIMIT_EXCEEDED). Each case runs on the seeded world and checks it unchanged.

import { describe, expect, it, vi } from 'vitest'
import {
  DELETE_ALL_MAX_LIMIT,
  GET_MANY_BY_ID_MAX_ITEMS,
  GET_MANY_BY_PARENT_EXECUTION_ID_MAX_ITEMS,
  GET_MANY_BY_SLEEPING_TASK_UNIQUE_ID_MAX_ITEMS,
  INSERT_MANY_MAX_ITEMS,
  UPDATE_AND_DECREMENT_PARENT_ACC_BY_IS_FINISHED_AND_CLOSE_STATUS_MAX_LIMIT,
  UPDATE_BY_CLOSE_EXPIRES_AT_MAX_LIMIT,
  UPDATE_BY_CLOSE_STATUS_AND_RETURN_MAX_LIMIT,
  UPDATE_BY_EXECUTOR_ID_AND_NPC_AND_RETURN_MAX_LIMIT,
  UPDATE_BY_OCFP_EXPIRES_AT_MAX_LIMIT,
  UPDATE_BY_STATUS_AND_IS_SLEEPING_TASK_AND_EXPIRES_AT_LESS_THAN_MAX_LIMIT,
  UPDATE_BY_STATUS_AND_OCFP_STATUS_AND_ACC_ZERO_AND_RETURN_MAX_LIMIT,
  UPDATE_BY_STATUS_AND_START_AT_LESS_THAN_AND_RETURN_MAX_LIMIT,
  UPDATE_MANY_BY_ID_AND_INSERT_CHILDREN_IF_UPDATED_MAX_ITEMS,
  UPDATE_MANY_BY_ID_MAX_ITEMS,
  UPDATE_MANY_BY_PARENT_EXECUTION_ID_AND_IS_FINISHED_MAX_ITEMS,
} from '../../../generated/component/limits'
import { seedWorld, validArgs, type World } from './fixture'
import {
  allDocs,
  callRaw,
  expectConvexError,
  expectValidatorError,
  makeT,
  SECRET,
  TEST_MODE_ENV,
  useDeploymentEnv,
  type FunctionName,
} from './setup'

useDeploymentEnv()

type Args = Record<string, any>
type Mutator = (args: Args, w: World) => unknown

/** The first request of a `requests` list, or the first execution of `executions`. */
const first = (args: Args, key = 'requests'): Args => args[key][0]

/** `count` copies of the first element of `args[key]`. */
const repeat = (args: Args, key: string, count: number) => ({
  ...args,
  [key]: Array.from({ length: count }, () => args[key][0]),
})

type Case = {
  /** Changes one field of the valid args to a value of the wrong type. */
  wrongType: Mutator
  /** Adds a field the validators do not know, somewhere in the args. */
  extraField: Mutator
  /** Goes one over the call's limit, when it has one. */
  overLimit?: Mutator
}

const CASES: Record<FunctionName, Case> = {
  insertMany: {
    wrongType: (a) => ((first(a, 'executions').shard = '0'), a),
    extraField: (a) => ((first(a, 'executions').unknownField = 1), a),
    overLimit: (a) => repeat(a, 'executions', INSERT_MANY_MAX_ITEMS + 1),
  },
  getManyById: {
    wrongType: (a) => ((first(a).executionId = 1), a),
    extraField: (a) => ((first(a).filters = { isSleepingTask: false, shard: 0 }), a),
    overLimit: (a) => repeat(a, 'requests', GET_MANY_BY_ID_MAX_ITEMS + 1),
  },
  getManyBySleepingTaskUniqueId: {
    wrongType: (a) => ({ ...a, requests: first(a).sleepingTaskUniqueId }),
    extraField: (a) => ((first(a).executionId = 'x'), a),
    overLimit: (a) => repeat(a, 'requests', GET_MANY_BY_SLEEPING_TASK_UNIQUE_ID_MAX_ITEMS + 1),
  },
  updateManyById: {
    wrongType: (a) => ((first(a).update.status = 'sleeping'), a),
    // Identity fields are never updated: the update validator does not know them.
    extraField: (a) => ((first(a).update.taskId = 'other-task'), a),
    overLimit: (a) => repeat(a, 'requests', UPDATE_MANY_BY_ID_MAX_ITEMS + 1),
  },
  updateManyByIdAndInsertChildrenIfUpdated: {
    wrongType: (a) => (
      (first(a).childrenTaskExecutionsToInsertIfAnyUpdated[0].isSleepingTask = 'no'),
      a
    ),
    extraField: (a) => ((first(a).update.unset = { status: true }), a),
    overLimit: (a) =>
      repeat(a, 'requests', UPDATE_MANY_BY_ID_AND_INSERT_CHILDREN_IF_UPDATED_MAX_ITEMS + 1),
  },
  updateByStatusAndStartAtLessThanAndReturn: {
    wrongType: (a) => ({ ...a, startAtLessThan: String(a.startAtLessThan) }),
    extraField: (a) => ({ ...a, executorId: 'executor-1' }),
    overLimit: (a) => ({
      ...a,
      limit: UPDATE_BY_STATUS_AND_START_AT_LESS_THAN_AND_RETURN_MAX_LIMIT + 1,
    }),
  },
  updateByStatusAndOCFPStatusAndACCZeroAndReturn: {
    wrongType: (a) => ({ ...a, ocfpStatus: 'done' }),
    extraField: (a) => ({ ...a, acc: 0 }),
    overLimit: (a) => ({
      ...a,
      limit: UPDATE_BY_STATUS_AND_OCFP_STATUS_AND_ACC_ZERO_AND_RETURN_MAX_LIMIT + 1,
    }),
  },
  updateByCloseStatusAndReturn: {
    wrongType: (a) => ({ ...a, closeStatus: 'open' }),
    extraField: (a) => ({ ...a, update: { ...a.update, shard: 1 } }),
    overLimit: (a) => ({ ...a, limit: UPDATE_BY_CLOSE_STATUS_AND_RETURN_MAX_LIMIT + 1 }),
  },
  updateByStatusAndIsSleepingTaskAndExpiresAtLessThan: {
    wrongType: (a) => ({ ...a, isSleepingTask: 1 }),
    extraField: (a) => ({ ...a, shard: 0 }),
    overLimit: (a) => ({
      ...a,
      limit: UPDATE_BY_STATUS_AND_IS_SLEEPING_TASK_AND_EXPIRES_AT_LESS_THAN_MAX_LIMIT + 1,
    }),
  },
  updateByOCFPExpiresAt: {
    wrongType: (a) => ({ ...a, limit: '10' }),
    extraField: (a) => ({
      ...a,
      update: { ...a.update, unset: { ocfpExpiresAt: true, input: true } },
    }),
    overLimit: (a) => ({ ...a, limit: UPDATE_BY_OCFP_EXPIRES_AT_MAX_LIMIT + 1 }),
  },
  updateByCloseExpiresAt: {
    // (`update: null` makes convex-test 0.0.60's validator throw a TypeError, not a validator error.)
    wrongType: (a) => ({ ...a, update: { ...a.update, updatedAt: 'now' } }),
    extraField: (a) => ({ ...a, closeStatus: 'closing' }),
    overLimit: (a) => ({ ...a, limit: UPDATE_BY_CLOSE_EXPIRES_AT_MAX_LIMIT + 1 }),
  },
  updateByExecutorIdAndNPCAndReturn: {
    wrongType: (a) => ({ ...a, npc: 'true' }),
    extraField: (a) => ({ ...a, status: 'running' }),
    overLimit: (a) => ({ ...a, limit: UPDATE_BY_EXECUTOR_ID_AND_NPC_AND_RETURN_MAX_LIMIT + 1 }),
  },
  getManyByParentExecutionId: {
    wrongType: (a) => ((first(a).parentExecutionId = null), a),
    extraField: (a) => ((first(a).isFinished = true), a),
    overLimit: (a) => repeat(a, 'requests', GET_MANY_BY_PARENT_EXECUTION_ID_MAX_ITEMS + 1),
  },
  updateManyByParentExecutionIdAndIsFinished: {
    wrongType: (a) => ((first(a).isFinished = 'true'), a),
    extraField: (a) => ((first(a).update.parentExecutionId = 'other'), a),
    overLimit: (a) =>
      repeat(a, 'requests', UPDATE_MANY_BY_PARENT_EXECUTION_ID_AND_IS_FINISHED_MAX_ITEMS + 1),
  },
  updateAndDecrementParentACCByIsFinishedAndCloseStatus: {
    wrongType: (a) => ({ ...a, shard: '0' }),
    extraField: (a) => ({ ...a, parentExecutionId: 'x' }),
    overLimit: (a) => ({
      ...a,
      limit: UPDATE_AND_DECREMENT_PARENT_ACC_BY_IS_FINISHED_AND_CLOSE_STATUS_MAX_LIMIT + 1,
    }),
  },
  deleteById: {
    wrongType: (a) => ({ ...a, executionId: 5 }),
    extraField: (a) => ({ ...a, shard: 0 }),
  },
  deleteAll: {
    wrongType: () => 'all',
    // The client's batch size is the server's business: `{ limit }` is not a public argument.
    extraField: () => ({ limit: DELETE_ALL_MAX_LIMIT }),
  },
}

/** A seeded world in test mode, so that only the malformed args can make a call fail. */
async function world() {
  vi.stubEnv(TEST_MODE_ENV, 'true')
  const t = makeT()
  const w = await seedWorld(t)
  return { t, w, before: await allDocs(t) }
}

const NAMES = Object.keys(CASES) as FunctionName[]

describe.each(NAMES)('%s', (name) => {
  const cases = CASES[name]

  it('refuses an argument of the wrong type and writes nothing', async () => {
    const { t, w, before } = await world()
    const args = cases.wrongType(validArgs(name, w) as Args, w)
    await expectValidatorError(callRaw(t, name, { authSecret: SECRET, args }))
    expect(await allDocs(t)).toEqual(before)
  })

  it('refuses an unknown field and writes nothing', async () => {
    const { t, w, before } = await world()
    const args = cases.extraField(validArgs(name, w) as Args, w)
    await expectValidatorError(callRaw(t, name, { authSecret: SECRET, args }))
    expect(await allDocs(t)).toEqual(before)
  })

  it('refuses an unknown field next to `authSecret` and `args`, and writes nothing', async () => {
    const { t, w, before } = await world()
    const payload = { authSecret: SECRET, args: validArgs(name, w), shard: 0 }
    await expectValidatorError(callRaw(t, name, payload))
    expect(await allDocs(t)).toEqual(before)
  })

  const overLimit = cases.overLimit
  if (overLimit !== undefined) {
    it('refuses a call over its limit with LIMIT_EXCEEDED and writes nothing', async () => {
      const { t, w, before } = await world()
      const args = overLimit(validArgs(name, w) as Args, w)
      await expectConvexError(callRaw(t, name, { authSecret: SECRET, args }), 'LIMIT_EXCEEDED')
      expect(await allDocs(t)).toEqual(before)
    })
  }
})

describe('limit values', () => {
  const LIMITED: FunctionName[] = [
    'updateByStatusAndStartAtLessThanAndReturn',
    'updateByStatusAndOCFPStatusAndACCZeroAndReturn',
    'updateByCloseStatusAndReturn',
    'updateByStatusAndIsSleepingTaskAndExpiresAtLessThan',
    'updateByOCFPExpiresAt',
    'updateByCloseExpiresAt',
    'updateByExecutorIdAndNPCAndReturn',
    'updateAndDecrementParentACCByIsFinishedAndCloseStatus',
  ]

  it.each(LIMITED)('%s refuses a negative or fractional limit (INVALID_ARGUMENT)', async (name) => {
    const { t, w, before } = await world()
    for (const limit of [-1, 1.5, Number.NaN]) {
      const args = { ...(validArgs(name, w) as Args), limit }
      await expectConvexError(callRaw(t, name, { authSecret: SECRET, args }), 'INVALID_ARGUMENT')
    }
    expect(await allDocs(t)).toEqual(before)
  })

  it.each(LIMITED)('%s does nothing with a limit of 0', async (name) => {
    const { t, w, before } = await world()
    const args = { ...(validArgs(name, w) as Args), limit: 0 }
    const result = await callRaw(t, name, { authSecret: SECRET, args })
    expect(result).toEqual(Array.isArray(result) ? [] : 0)
    expect(await allDocs(t)).toEqual(before)
  })

  it('refuses a negative or fractional shard (INVALID_ARGUMENT)', async () => {
    const { t, w, before } = await world()
    for (const shard of [-1, 0.5]) {
      const args = { ...(validArgs('updateByStatusAndStartAtLessThanAndReturn', w) as Args), shard }
      await expectConvexError(
        callRaw(t, 'updateByStatusAndStartAtLessThanAndReturn', { authSecret: SECRET, args }),
        'INVALID_ARGUMENT',
      )
    }
    expect(await allDocs(t)).toEqual(before)
  })
})
