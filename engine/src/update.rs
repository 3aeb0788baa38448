//! The engine's updates and the fields every update manages by itself (reference §3): an
//! [`Update`] says what changes; [`Update::at`] adds `updatedAt`, the started/finished times
//! and the removals each status implies.

use crate::storage::{
    CloseStatus, ExecutionError, OnChildrenFinishedProcessingStatus, TaskExecutionStatus,
    TaskExecutionStorageUpdate, TaskExecutionSummary, TaskExecutionUnset,
};

/// What an engine step changes in an execution.
#[derive(Clone, Debug, Default)]
pub(crate) struct Update {
    pub executor_id: Option<String>,
    pub status: Option<TaskExecutionStatus>,
    pub run_output: Option<String>,
    pub output: Option<String>,
    pub error: Option<ExecutionError>,
    pub retry_attempts: Option<u32>,
    pub start_at: Option<u64>,
    pub waiting_for_children_started_at: Option<u64>,
    pub waiting_for_finalize_started_at: Option<u64>,
    pub children: Option<Vec<TaskExecutionSummary>>,
    pub active_children_count: Option<u32>,
    pub ocfp_status: Option<OnChildrenFinishedProcessingStatus>,
    pub ocfp_expires_at: Option<u64>,
    pub finalize: Option<TaskExecutionSummary>,
    pub close_status: Option<CloseStatus>,
    pub close_expires_at: Option<u64>,
    pub needs_promise_cancellation: Option<bool>,
}

pub(crate) fn is_finished(status: TaskExecutionStatus) -> bool {
    use TaskExecutionStatus::*;
    matches!(
        status,
        Failed | TimedOut | FinalizeFailed | Completed | Cancelled
    )
}

fn is_errored(status: TaskExecutionStatus) -> bool {
    use TaskExecutionStatus::*;
    matches!(status, Failed | TimedOut | FinalizeFailed | Cancelled)
}

impl Update {
    pub(crate) fn status(status: TaskExecutionStatus) -> Self {
        Self {
            status: Some(status),
            ..Self::default()
        }
    }

    /// The storage update at `now` (the storage's clock), with the managed fields:
    ///
    /// - `updatedAt = now`;
    /// - a finished status sets `isFinished` and `finishedAt`, and removes `runOutput`;
    /// - `ready` removes `runOutput`, `startedAt` and `expiresAt`; `running` sets `startedAt`;
    ///   `waiting_for_children` / `waiting_for_finalize` set their started-at time;
    /// - a status that is neither an error nor `ready`/`running` removes the error;
    /// - `executorId` stays only with `running` or `cancelled` (and not when promise
    ///   cancellation is cleared); any status but `running` removes `expiresAt`;
    /// - a processing status other than `processing` removes its expiry, `processed` sets its
    ///   finished time; a close status other than `closing` removes its expiry, `closed` sets
    ///   `closedAt`.
    pub(crate) fn at(self, now: u64) -> TaskExecutionStorageUpdate {
        let mut unset = TaskExecutionUnset::default();
        let mut update = TaskExecutionStorageUpdate {
            executor_id: self.executor_id,
            status: self.status,
            run_output: self.run_output,
            output: self.output,
            error: self.error,
            retry_attempts: self.retry_attempts,
            start_at: self.start_at,
            waiting_for_children_started_at: self.waiting_for_children_started_at,
            waiting_for_finalize_started_at: self.waiting_for_finalize_started_at,
            children: self.children,
            active_children_count: self.active_children_count,
            on_children_finished_processing_status: self.ocfp_status,
            on_children_finished_processing_expires_at: self.ocfp_expires_at,
            finalize: self.finalize,
            close_status: self.close_status,
            close_expires_at: self.close_expires_at,
            needs_promise_cancellation: self.needs_promise_cancellation,
            updated_at: now,
            ..TaskExecutionStorageUpdate::default()
        };
        if let Some(status) = update.status {
            use TaskExecutionStatus::*;
            if is_finished(status) {
                update.is_finished = Some(true);
                update.finished_at = Some(now);
                unset.run_output = true;
            }
            match status {
                Ready => {
                    unset.run_output = true;
                    unset.started_at = true;
                    unset.expires_at = true;
                }
                Running => update.started_at = Some(now),
                WaitingForChildren => update.waiting_for_children_started_at = Some(now),
                WaitingForFinalize => update.waiting_for_finalize_started_at = Some(now),
                _ => {}
            }
            if !is_errored(status) && status != Ready && status != Running {
                unset.error = true;
            }
            if (status != Running && status != Cancelled)
                || update.needs_promise_cancellation == Some(false)
            {
                unset.executor_id = true;
            }
            if status != Running {
                unset.expires_at = true;
            }
        }
        if let Some(ocfp) = update.on_children_finished_processing_status {
            if ocfp != OnChildrenFinishedProcessingStatus::Processing {
                unset.on_children_finished_processing_expires_at = true;
            }
            if ocfp == OnChildrenFinishedProcessingStatus::Processed {
                update.on_children_finished_processing_finished_at = Some(now);
            }
        }
        if let Some(close) = update.close_status {
            if close != CloseStatus::Closing {
                unset.close_expires_at = true;
            }
            if close == CloseStatus::Closed {
                update.closed_at = Some(now);
            }
        }
        if unset != TaskExecutionUnset::default() {
            update.unset = Some(unset);
        }
        update
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managed_fields_follow_the_status() {
        let completed = Update::status(TaskExecutionStatus::Completed).at(7);
        assert_eq!(completed.is_finished, Some(true));
        assert_eq!(completed.finished_at, Some(7));
        let unset = completed.unset.unwrap();
        assert!(unset.run_output && unset.error && unset.executor_id && unset.expires_at);

        let running = Update::status(TaskExecutionStatus::Running).at(8);
        assert_eq!(running.started_at, Some(8));
        assert!(running.unset.is_none());

        let ready = Update::status(TaskExecutionStatus::Ready).at(9);
        let unset = ready.unset.unwrap();
        assert!(unset.started_at && unset.expires_at && unset.run_output && unset.executor_id);
        assert!(!unset.error);

        let cancelled = Update {
            needs_promise_cancellation: Some(true),
            ..Update::status(TaskExecutionStatus::Cancelled)
        }
        .at(10);
        assert!(!cancelled.unset.unwrap().executor_id);

        let closed = Update {
            close_status: Some(CloseStatus::Closed),
            ..Update::default()
        }
        .at(11);
        assert_eq!(closed.closed_at, Some(11));
        assert!(closed.unset.unwrap().close_expires_at);
    }
}
