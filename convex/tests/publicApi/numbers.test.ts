// The server validates the numbers it stores (checks.ts, generated from the declaration's
// types): integers within their Rust type's range (and ±(2^53 - 1)) and declared bounds
// (shard < 64), floats finite — inside documents, updates, children and arguments. Each bad
// value is refused with INVALID_ARGUMENT and `errorData.path` naming the field, and nothing of
// the call is written.

import { describe, expect, it } from 'vitest'
import {
  allDocs,
  expectConvexError,
  fns,
  makeT,
  newExecution,
  NOW,
  SECRET,
  seedDirectly,
  useDeploymentEnv,
  type PublicTaskExecution,
  type T,
  type TaskExecutionUpdate,
} from './setup'

useDeploymentEnv()

const U32_MAX = 4294967295

/** Each kind of bad number, with the field it goes in (a u32, a u64, the shard, a float). */
const BAD_INTEGERS: Array<[string, number]> = [
  ['negative', -1],
  ['fractional', 1.5],
  ['negative zero', -0],
  ['not a number', Number.NaN],
  ['infinite', Number.POSITIVE_INFINITY],
]

/** `[kind, field, value]` of a document (or update) field and a bad value for it. */
type BadValue = [kind: string, field: string, value: number]

const BAD_DOCUMENT_VALUES: BadValue[] = [
  ...BAD_INTEGERS.map(([kind, value]): BadValue => [kind, 'retryAttempts', value]),
  ['above u32', 'acc', U32_MAX + 1],
  ['above 2^53 - 1 (u64)', 'startAt', 2 ** 53],
  ['negative (u64)', 'createdAt', -5],
  ['shard of 64 (max = 63)', 'shard', 64],
  ['u32 in a nested object', 'retryOptions.maxAttempts', -1],
  ['u64 in a nested object', 'retryOptions.baseDelayMs', 0.25],
  ['float NaN', 'retryOptions.delayMultiplier', Number.NaN],
  ['float infinite', 'retryOptions.delayMultiplier', Number.NEGATIVE_INFINITY],
]

/** The update fields (a subset of the document's: the updatable ones). */
const BAD_UPDATE_VALUES: BadValue[] = [
  ...BAD_INTEGERS.map(([kind, value]): BadValue => [kind, 'retryAttempts', value]),
  ['above u32', 'acc', U32_MAX + 1],
  ['negative acc', 'acc', -1],
  ['above 2^53 - 1 (u64)', 'expiresAt', 2 ** 53],
  ['negative (u64)', 'updatedAt', -1],
]

/** `value` with `path` (dotted) set to `bad`. */
function withValue<V extends object>(value: V, path: string, bad: number): V {
  const copy = structuredClone(value) as Record<string, any>
  const keys = path.split('.')
  let target = copy
  for (const key of keys.slice(0, -1)) target = target[key]
  target[keys[keys.length - 1]!] = bad
  return copy as V
}

async function expectRefused(t: T, call: Promise<unknown>, path: string) {
  const before = await allDocs(t)
  const data = await expectConvexError(call, 'INVALID_ARGUMENT', { path })
  expect(data.message).toContain(path)
  expect(await allDocs(t)).toEqual(before)
}

const valid = () => newExecution({ retryOptions: { maxAttempts: 3, delayMultiplier: 2 } }, NOW)

describe('insertMany', () => {
  it.each(BAD_DOCUMENT_VALUES)('refuses a %s value in %s', async (_, field, bad) => {
    const t = makeT()
    await seedDirectly(t, [valid()])
    const executions = [valid(), withValue(valid(), field, bad)]
    await expectRefused(
      t,
      t.mutation(fns.insertMany, { authSecret: SECRET, args: { executions } }),
      `executions[1].${field}`,
    )
  })

  it('accepts every bound itself: shard 63, u32 max, 0, 2^53 - 1', async () => {
    const t = makeT()
    const edge = valid()
    Object.assign(edge, { shard: 63, acc: U32_MAX, retryAttempts: 0, startAt: 2 ** 53 - 1 })
    await t.mutation(fns.insertMany, { authSecret: SECRET, args: { executions: [edge] } })
    expect(await allDocs(t)).toHaveLength(1)
  })
})

describe('updateManyById', () => {
  it.each(BAD_UPDATE_VALUES)('refuses a %s value in update.%s', async (_, field, bad) => {
    const t = makeT()
    const [a, b] = [valid(), valid()]
    await seedDirectly(t, [a, b])
    const good: TaskExecutionUpdate = { output: 'x', updatedAt: NOW }
    await expectRefused(
      t,
      t.action(fns.updateManyById, {
        authSecret: SECRET,
        args: {
          requests: [
            { executionId: a.executionId, update: good },
            { executionId: b.executionId, update: withValue(good, field, bad) },
          ],
        },
      }),
      `requests[1].update.${field}`,
    )
  })
})

describe('updateManyByIdAndInsertChildrenIfUpdated', () => {
  const call = (
    t: T,
    parent: PublicTaskExecution,
    update: TaskExecutionUpdate,
    children: PublicTaskExecution[],
  ) =>
    t.action(fns.updateManyByIdAndInsertChildrenIfUpdated, {
      authSecret: SECRET,
      args: {
        requests: [
          {
            executionId: parent.executionId,
            update,
            childrenTaskExecutionsToInsertIfAnyUpdated: children,
          },
        ],
      },
    })

  it.each(BAD_DOCUMENT_VALUES)('refuses a child with a %s value in %s', async (_, field, bad) => {
    const t = makeT()
    const parent = valid()
    await seedDirectly(t, [parent])
    const children = [valid(), withValue(valid(), field, bad)]
    await expectRefused(
      t,
      call(t, parent, { status: 'waiting_for_children', acc: 2, updatedAt: NOW }, children),
      `requests[0].childrenTaskExecutionsToInsertIfAnyUpdated[1].${field}`,
    )
  })

  it.each(BAD_UPDATE_VALUES)(
    'refuses a %s value in the parent update.%s',
    async (_, field, bad) => {
      const t = makeT()
      const parent = valid()
      await seedDirectly(t, [parent])
      await expectRefused(
        t,
        call(t, parent, withValue({ acc: 1, updatedAt: NOW }, field, bad), [valid()]),
        `requests[0].update.${field}`,
      )
    },
  )
})

describe('range updates', () => {
  /** A stored state every range update below would patch if its arguments were valid. */
  async function world(t: T) {
    await seedDirectly(t, [
      newExecution({ startAt: NOW - 10 }, NOW - 10),
      newExecution({ status: 'running', isSleepingTask: true, expiresAt: NOW - 5 }, NOW - 10),
      newExecution({ status: 'completed', isFinished: true, closeStatus: 'ready' }, NOW - 10),
    ])
  }

  const claimArgs = {
    shard: 0,
    status: 'ready' as const,
    startAtLessThan: NOW,
    update: { status: 'running' as const, updatedAt: NOW } as TaskExecutionUpdate,
    updateExpiresAtWithStartedAt: NOW,
    limit: 10,
  }
  const sweepArgs = {
    status: 'running' as const,
    isSleepingTask: true,
    expiresAtLessThan: NOW,
    update: { status: 'timed_out' as const, updatedAt: NOW } as TaskExecutionUpdate,
    limit: 10,
  }
  const closeArgs = {
    shard: 0,
    isFinished: true,
    closeStatus: 'ready' as const,
    update: { closeStatus: 'closed' as const, updatedAt: NOW } as TaskExecutionUpdate,
    limit: 10,
  }
  const claim = (t: T, args: typeof claimArgs) =>
    t.action(fns.updateByStatusAndStartAtLessThanAndReturn, { authSecret: SECRET, args })
  const sweep = (t: T, args: typeof sweepArgs) =>
    t.action(fns.updateByStatusAndIsSleepingTaskAndExpiresAtLessThan, {
      authSecret: SECRET,
      args,
    })
  const close = (t: T, args: typeof closeArgs) =>
    t.action(fns.updateAndDecrementParentACCByIsFinishedAndCloseStatus, {
      authSecret: SECRET,
      args,
    })

  const CASES: Array<[string, string, (t: T) => Promise<unknown>]> = [
    ['a shard of 64', 'shard', (t) => claim(t, { ...claimArgs, shard: 64 })],
    ['a negative shard', 'shard', (t) => close(t, { ...closeArgs, shard: -1 })],
    [
      'a fractional bound',
      'startAtLessThan',
      (t) => claim(t, { ...claimArgs, startAtLessThan: 1.5 }),
    ],
    [
      'a lease start above 2^53 - 1',
      'updateExpiresAtWithStartedAt',
      (t) => claim(t, { ...claimArgs, updateExpiresAtWithStartedAt: 2 ** 53 }),
    ],
    [
      'a negative bound',
      'expiresAtLessThan',
      (t) => sweep(t, { ...sweepArgs, expiresAtLessThan: -1 }),
    ],
    [
      'a NaN bound',
      'expiresAtLessThan',
      (t) => sweep(t, { ...sweepArgs, expiresAtLessThan: Number.NaN }),
    ],
    [
      'a bad number in the update',
      'update.retryAttempts',
      (t) => claim(t, { ...claimArgs, update: { ...claimArgs.update, retryAttempts: -1 } }),
    ],
    [
      'a bad acc in the update',
      'update.acc',
      (t) => close(t, { ...closeArgs, update: { ...closeArgs.update, acc: 0.5 } }),
    ],
    ['a fractional limit', 'limit', (t) => sweep(t, { ...sweepArgs, limit: 1.5 })],
  ]

  it.each(CASES)('refuse %s (%s)', async (_, path, run) => {
    const t = makeT()
    await world(t)
    await expectRefused(t, run(t), path)
  })

  it('patch the world with valid arguments (control)', async () => {
    const t = makeT()
    await world(t)
    expect(await claim(t, claimArgs)).toHaveLength(1)
    expect(await sweep(t, sweepArgs)).toBe(1)
    expect(await close(t, closeArgs)).toBe(1)
  })
})
