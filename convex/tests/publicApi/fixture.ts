// A small world in which a valid call of every public function has an effect (a write, or a
// non-empty answer), and that valid call per function. The refusal tests (auth, validation)
// call the functions wrongly and check that the world did not change; a control test checks
// that the valid call does change it, so "unchanged" means something.

import {
  advanceServerTime,
  allDocs,
  insert,
  newExecution,
  newSleepingExecution,
  PAST,
  update,
  type FunctionName,
  type PublicTaskExecution,
  type T,
} from './setup'

export type World = {
  parent: PublicTaskExecution
  child: PublicTaskExecution
  ready: PublicTaskExecution
  sleeping: PublicTaskExecution
  accZero: PublicTaskExecution
}

/** Seeds the world through the public API (so it also exercises insertMany). */
export async function seedWorld(t: T): Promise<World> {
  const parent = newExecution({
    status: 'waiting_for_children',
    acc: 1,
    executorId: 'executor-1',
    npc: true,
  })
  const ready = newExecution({ ocfpExpiresAt: PAST + 1, closeExpiresAt: PAST + 1 })
  const sleeping = newSleepingExecution()
  const accZero = newExecution({ status: 'waiting_for_children', acc: 0 })
  await insert(t, [parent, ready, sleeping, accZero])
  const parentDoc = (await allDocs(t)).find((doc) => doc.executionId === parent.executionId)!
  const child = newExecution({
    parentTaskId: parent.taskId,
    parentExecutionId: parent.executionId,
    parentExecutionDocId: parentDoc._id,
    indexInParentChildren: 0,
    isOnlyChildOfParent: true,
    status: 'completed',
    isFinished: true,
    closeStatus: 'ready',
  })
  await insert(t, [child])
  // Time passes: what was written looks old (`updatedAt < now`), and the leases the server
  // granted (its now + EXPIRY_GRACE_MS) have expired.
  advanceServerTime(10_000)
  return { parent, child, ready, sleeping, accZero }
}

/** The `args` of a valid call of each function that has an effect on the world. */
export function validArgs(name: FunctionName, w: World): unknown {
  const now = Date.now()
  switch (name) {
    case 'insertMany':
      return { executions: [newExecution()] }
    case 'getManyById':
      return { requests: [{ executionId: w.ready.executionId }] }
    case 'getManyBySleepingTaskUniqueId':
      return { requests: [{ sleepingTaskUniqueId: w.sleeping.sleepingTaskUniqueId! }] }
    case 'updateManyById':
      return {
        requests: [{ executionId: w.ready.executionId, update: update({ retryAttempts: 1 }) }],
      }
    case 'updateManyByIdAndInsertChildrenIfUpdated':
      return {
        requests: [
          {
            executionId: w.ready.executionId,
            update: update({ status: 'waiting_for_children' }),
            childrenTaskExecutionsToInsertIfAnyUpdated: [
              newExecution({ parentExecutionId: w.ready.executionId }),
            ],
          },
        ],
      }
    case 'updateByStatusAndStartAtLessThanAndReturn':
      return {
        shard: 0,
        status: 'ready',
        startAtLessThan: now,
        update: update({ status: 'running', executorId: 'executor-2' }),
        updateExpiresAtWithStartedAt: PAST + 2,
        limit: 10,
      }
    case 'updateByStatusAndOCFPStatusAndACCZeroAndReturn':
      return {
        shard: 0,
        status: 'waiting_for_children',
        ocfpStatus: 'idle',
        update: update({ ocfpStatus: 'processing' }),
        limit: 10,
      }
    case 'updateByCloseStatusAndReturn':
      return {
        shard: 0,
        closeStatus: 'ready',
        update: update({ closeStatus: 'closing' }),
        limit: 10,
      }
    case 'updateByStatusAndIsSleepingTaskAndExpiresAtLessThan':
      return {
        status: 'running',
        isSleepingTask: true,
        expiresAtLessThan: now,
        update: update({ status: 'timed_out' }),
        limit: 10,
      }
    case 'updateByOCFPExpiresAt':
      return {
        ocfpExpiresAtLessThan: now,
        update: update({ unset: { ocfpExpiresAt: true } }),
        limit: 10,
      }
    case 'updateByCloseExpiresAt':
      return {
        closeExpiresAtLessThan: now,
        update: update({ unset: { closeExpiresAt: true } }),
        limit: 10,
      }
    case 'updateByExecutorIdAndNPCAndReturn':
      return {
        shard: 0,
        executorId: 'executor-1',
        npc: true,
        update: update({ npc: false }),
        limit: 10,
      }
    case 'getManyByParentExecutionId':
      return { requests: [{ parentExecutionId: w.parent.executionId }] }
    case 'updateManyByParentExecutionIdAndIsFinished':
      return {
        requests: [
          {
            parentExecutionId: w.parent.executionId,
            isFinished: true,
            update: update({ output: 'x' }),
          },
        ],
      }
    case 'updateAndDecrementParentACCByIsFinishedAndCloseStatus':
      return {
        shard: 0,
        isFinished: true,
        closeStatus: 'ready',
        update: update({ closeStatus: 'closed' }),
        limit: 10,
      }
    case 'deleteById':
      return { executionId: w.ready.executionId }
    case 'deleteAll':
      return undefined
  }
}

/** The queries: their valid call answers something non-empty instead of writing. */
export const QUERIES: ReadonlySet<FunctionName> = new Set([
  'getManyById',
  'getManyBySleepingTaskUniqueId',
  'getManyByParentExecutionId',
])
