//! Storage batching (`ExecutorOptions::enable_storage_batching`, on by default): small calls
//! of the batchable operations, made concurrently by finishing runs, enqueues and handles, are
//! combined into one storage call per operation, of bounded weight; each caller gets its own
//! part of the answer, in order.
//!
//! - **When a call is sent.** At once when no combined call of its operation is in flight (a
//!   call made alone waits for nothing); otherwise it is queued, and the queue is sent as
//!   combined calls when the call in flight is answered or when the oldest queued call has
//!   waited one intra-batch interval, whichever comes first. So the calls made while one is on
//!   its way to the storage travel together, and a slow storage gets bigger, fewer calls.
//! - **Eligible calls.** At most [`MAX_REQUESTS_PER_CALL`] requests whose weight fits a batch:
//!   `insertMany`, `getManyById`, `updateManyById` (1 per request, 100 per batch),
//!   `updateManyByIdAndInsertChildrenIfUpdated` (1 per request and 1 per child, 100 per batch),
//!   `getManyByParentExecutionId` and `updateManyByParentExecutionIdAndIsFinished` (1 per
//!   request, 3 per batch). Larger calls (the processes' own batches) and the claiming calls
//!   go to the storage at once. A caller's requests always travel together, in one call.
//! - **Failures.** Requests of different callers share the combined call's transaction, so a
//!   failure caused by one caller's request (a duplicate insert, an invalid argument, a
//!   request over a limit, …: any failure that is not transient) must not fail the others:
//!   each caller's part is then sent again on its own, and each caller gets its own result.
//!   A transient failure (the storage's condition, not a request's: nothing to isolate, and
//!   splitting would multiply calls into an overloaded storage) and a partially applied batch
//!   are given to every caller as they are: each decides as it does without batching (a
//!   retry-safe failure is retried with back-off, a guarded write is repeated, an unknown
//!   outcome is reported).
//! - **Metrics.** Each storage call (combined or alone) counts once in the executor's
//!   storage metrics.
//! - **Lifetime.** The loop starts with the first queued call and stops at the executor's
//!   shutdown (or when the executor is dropped): what is queued is sent, the calls in flight
//!   are awaited, and later calls go to the storage directly.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::{oneshot, Notify, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

use crate::storage::{
    copy_error, GetByIdRequest, GetByParentExecutionIdRequest, StorageError,
    TaskExecutionStorageValue, TaskExecutionsStorage, UpdateByIdAndInsertChildrenIfUpdatedRequest,
    UpdateByIdRequest, UpdateByParentExecutionIdAndIsFinishedRequest,
};
use crate::store::Core;

/// A boxed storage future.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Calls of more requests than this go to the storage directly.
pub(crate) const MAX_REQUESTS_PER_CALL: usize = 5;
/// Combined calls in flight at once (the original's).
const MAX_BATCHES_IN_FLIGHT: usize = 25;

/// A batchable storage operation over a list of requests with one answer per request.
pub(crate) trait Operation: Sized + Send + Sync + 'static {
    type Request: Clone + Send + Sync + 'static;
    type Answer: Send + 'static;
    /// The operation's name in the storage API (and in the storage metrics).
    const NAME: &'static str;
    /// The largest weight of a combined call.
    const MAX_WEIGHT: usize;

    fn weight(_request: &Self::Request) -> usize {
        1
    }

    /// The storage call, one answer per request.
    fn call(
        storage: &dyn TaskExecutionsStorage,
        requests: Vec<Self::Request>,
    ) -> BoxFuture<'_, Result<Vec<Self::Answer>, StorageError>>;

    /// This operation's queue.
    fn queue(queues: &mut Queues) -> &mut Lane<Self>;
}

pub(crate) struct InsertMany;
pub(crate) struct GetManyById;
pub(crate) struct UpdateManyById;
pub(crate) struct UpdateManyByIdAndInsertChildren;
pub(crate) struct GetManyByParentExecutionId;
pub(crate) struct UpdateManyByParentExecutionIdAndIsFinished;

/// A write of `count` requests, answered `()` once per request (as a combined call's
/// answers are split among its callers).
fn answer_each(
    count: usize,
    write: BoxFuture<'_, Result<(), StorageError>>,
) -> BoxFuture<'_, Result<Vec<()>, StorageError>> {
    Box::pin(async move { write.await.map(|()| vec![(); count]) })
}

impl Operation for InsertMany {
    type Request = TaskExecutionStorageValue;
    type Answer = ();
    const NAME: &'static str = "insertMany";
    const MAX_WEIGHT: usize = 100;

    fn call(
        storage: &dyn TaskExecutionsStorage,
        requests: Vec<Self::Request>,
    ) -> BoxFuture<'_, Result<Vec<()>, StorageError>> {
        answer_each(requests.len(), storage.insert_many(requests))
    }

    fn queue(queues: &mut Queues) -> &mut Lane<Self> {
        &mut queues.insert_many
    }
}

impl Operation for GetManyById {
    type Request = GetByIdRequest;
    type Answer = Option<TaskExecutionStorageValue>;
    const NAME: &'static str = "getManyById";
    const MAX_WEIGHT: usize = 100;

    fn call(
        storage: &dyn TaskExecutionsStorage,
        requests: Vec<Self::Request>,
    ) -> BoxFuture<'_, Result<Vec<Self::Answer>, StorageError>> {
        storage.get_many_by_id(requests)
    }

    fn queue(queues: &mut Queues) -> &mut Lane<Self> {
        &mut queues.get_many_by_id
    }
}

impl Operation for UpdateManyById {
    type Request = UpdateByIdRequest;
    type Answer = ();
    const NAME: &'static str = "updateManyById";
    const MAX_WEIGHT: usize = 100;

    fn call(
        storage: &dyn TaskExecutionsStorage,
        requests: Vec<Self::Request>,
    ) -> BoxFuture<'_, Result<Vec<()>, StorageError>> {
        answer_each(requests.len(), storage.update_many_by_id(requests))
    }

    fn queue(queues: &mut Queues) -> &mut Lane<Self> {
        &mut queues.update_many_by_id
    }
}

impl Operation for UpdateManyByIdAndInsertChildren {
    type Request = UpdateByIdAndInsertChildrenIfUpdatedRequest;
    type Answer = ();
    const NAME: &'static str = "updateManyByIdAndInsertChildrenIfUpdated";
    const MAX_WEIGHT: usize = 100;

    fn weight(request: &Self::Request) -> usize {
        1 + request
            .children_task_executions_to_insert_if_any_updated
            .len()
    }

    fn call(
        storage: &dyn TaskExecutionsStorage,
        requests: Vec<Self::Request>,
    ) -> BoxFuture<'_, Result<Vec<()>, StorageError>> {
        answer_each(
            requests.len(),
            storage.update_many_by_id_and_insert_children_if_updated(requests),
        )
    }

    fn queue(queues: &mut Queues) -> &mut Lane<Self> {
        &mut queues.update_many_by_id_and_insert_children
    }
}

impl Operation for GetManyByParentExecutionId {
    type Request = GetByParentExecutionIdRequest;
    type Answer = Vec<TaskExecutionStorageValue>;
    const NAME: &'static str = "getManyByParentExecutionId";
    const MAX_WEIGHT: usize = 3;

    fn call(
        storage: &dyn TaskExecutionsStorage,
        requests: Vec<Self::Request>,
    ) -> BoxFuture<'_, Result<Vec<Self::Answer>, StorageError>> {
        storage.get_many_by_parent_execution_id(requests)
    }

    fn queue(queues: &mut Queues) -> &mut Lane<Self> {
        &mut queues.get_many_by_parent_execution_id
    }
}

impl Operation for UpdateManyByParentExecutionIdAndIsFinished {
    type Request = UpdateByParentExecutionIdAndIsFinishedRequest;
    type Answer = ();
    const NAME: &'static str = "updateManyByParentExecutionIdAndIsFinished";
    const MAX_WEIGHT: usize = 3;

    fn call(
        storage: &dyn TaskExecutionsStorage,
        requests: Vec<Self::Request>,
    ) -> BoxFuture<'_, Result<Vec<()>, StorageError>> {
        answer_each(
            requests.len(),
            storage.update_many_by_parent_execution_id_and_is_finished(requests),
        )
    }

    fn queue(queues: &mut Queues) -> &mut Lane<Self> {
        &mut queues.update_many_by_parent_execution_id_and_is_finished
    }
}

/// A caller's answers, one per request, or why its call failed.
pub(crate) type Answers<O> = Result<Vec<<O as Operation>::Answer>, StorageError>;
type Reply<O> = oneshot::Sender<Answers<O>>;

/// One caller's queued call.
pub(crate) struct Pending<O: Operation> {
    requests: Vec<O::Request>,
    weight: usize,
    reply: Reply<O>,
}

/// One operation's queued calls and its combined calls in flight.
pub(crate) struct Lane<O: Operation> {
    pending: Vec<Pending<O>>,
    /// When the oldest queued call was queued.
    since: Option<Instant>,
    /// Combined calls of this operation sent and not answered yet.
    in_flight: usize,
}

impl<O: Operation> Default for Lane<O> {
    fn default() -> Self {
        Self {
            pending: Vec::new(),
            since: None,
            in_flight: 0,
        }
    }
}

/// The queued calls per operation, and the loop's state.
#[derive(Default)]
pub(crate) struct Queues {
    /// No more calls are queued (shutdown, or the executor was dropped).
    closed: bool,
    /// The loop, once started.
    looping: Option<JoinHandle<()>>,
    insert_many: Lane<InsertMany>,
    get_many_by_id: Lane<GetManyById>,
    update_many_by_id: Lane<UpdateManyById>,
    update_many_by_id_and_insert_children: Lane<UpdateManyByIdAndInsertChildren>,
    get_many_by_parent_execution_id: Lane<GetManyByParentExecutionId>,
    update_many_by_parent_execution_id_and_is_finished:
        Lane<UpdateManyByParentExecutionIdAndIsFinished>,
}

struct Shared {
    core: Arc<Core>,
    interval: Duration,
    queues: Mutex<Queues>,
    /// A call was queued, or the batcher closed.
    work: Notify,
    /// The batcher closed (cuts the gathering interval short).
    closing: Notify,
    in_flight: Semaphore,
}

impl Shared {
    fn queues(&self) -> MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The queues and their loop. Dropping it closes the queues (the loop sends what is queued and
/// stops).
pub(crate) struct Batcher {
    shared: Arc<Shared>,
}

impl Batcher {
    pub(crate) fn new(core: Arc<Core>, interval: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                core,
                interval,
                queues: Mutex::new(Queues::default()),
                work: Notify::new(),
                closing: Notify::new(),
                in_flight: Semaphore::new(MAX_BATCHES_IN_FLIGHT),
            }),
        }
    }

    /// Queues `requests` when the call is small enough and the batcher is open (starting the
    /// loop if needed); gives them back otherwise.
    pub(crate) fn submit<O: Operation>(
        &self,
        requests: Vec<O::Request>,
    ) -> Result<oneshot::Receiver<Answers<O>>, Vec<O::Request>> {
        let weight: usize = requests.iter().map(O::weight).sum();
        if requests.is_empty() || requests.len() > MAX_REQUESTS_PER_CALL || weight > O::MAX_WEIGHT {
            return Err(requests);
        }
        let (reply, answer) = oneshot::channel();
        {
            let mut queues = self.shared.queues();
            if queues.closed {
                return Err(requests);
            }
            let lane = O::queue(&mut queues);
            lane.pending.push(Pending {
                requests,
                weight,
                reply,
            });
            lane.since.get_or_insert_with(Instant::now);
            // Started with the first call; started again should it have died (a panic, or
            // the runtime it ran on shut down), so that queued calls are never stranded.
            if queues.looping.as_ref().is_none_or(JoinHandle::is_finished) {
                queues.looping = Some(tokio::spawn(run(Arc::clone(&self.shared))));
            }
        }
        self.shared.work.notify_one();
        Ok(answer)
    }

    fn close(&self) -> Option<JoinHandle<()>> {
        let looping = {
            let mut queues = self.shared.queues();
            queues.closed = true;
            queues.looping.take()
        };
        self.shared.work.notify_one();
        self.shared.closing.notify_one();
        looping
    }

    /// Sends what is queued, waits for the calls in flight and stops the loop; later calls go
    /// to the storage directly.
    pub(crate) async fn shutdown(&self) {
        if let Some(looping) = self.close() {
            if let Err(error) = looping.await {
                tracing::error!(%error, "the storage batching loop failed");
            }
        }
    }

    /// Counts one combined `insertMany` call as in flight (that never ends), so that the
    /// next calls wait for the interval.
    #[cfg(test)]
    pub(crate) fn hold_insert_many(&self) {
        self.shared.queues().insert_many.in_flight += 1;
    }

    /// Whether the loop is running.
    #[cfg(test)]
    pub(crate) fn is_looping(&self) -> bool {
        self.shared
            .queues()
            .looping
            .as_ref()
            .is_some_and(|l| !l.is_finished())
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        // The loop sends what is queued and stops by itself.
        self.close();
    }
}

/// The loop: sends each operation's queued calls at once when none of its combined calls is in
/// flight, else when that call is answered or the oldest queued call has waited one interval.
async fn run(shared: Arc<Shared>) {
    let mut batches = JoinSet::new();
    loop {
        while batches.try_join_next().is_some() {}
        // Registered before the queues are read, so that no call queued after is missed.
        let work = shared.work.notified();
        tokio::pin!(work);
        work.as_mut().enable();
        let (closed, next) = {
            let mut queues = shared.queues();
            let closed = queues.closed;
            (closed, send_due(&shared, &mut queues, &mut batches, closed))
        };
        if closed {
            break;
        }
        match next {
            Some(at) => tokio::select! {
                () = &mut work => {}
                () = tokio::time::sleep_until(at) => {}
                () = shared.closing.notified() => {}
            },
            None => tokio::select! {
                () = &mut work => {}
                () = shared.closing.notified() => {}
            },
        }
    }
    while batches.join_next().await.is_some() {}
}

/// Sends the queued calls that are due (every one when `all`); when the next others are due.
fn send_due(
    shared: &Arc<Shared>,
    queues: &mut Queues,
    batches: &mut JoinSet<()>,
    all: bool,
) -> Option<Instant> {
    let now = Instant::now();
    [
        send_lane(shared, &mut queues.insert_many, batches, all, now),
        send_lane(shared, &mut queues.get_many_by_id, batches, all, now),
        send_lane(shared, &mut queues.update_many_by_id, batches, all, now),
        send_lane(
            shared,
            &mut queues.update_many_by_id_and_insert_children,
            batches,
            all,
            now,
        ),
        send_lane(
            shared,
            &mut queues.get_many_by_parent_execution_id,
            batches,
            all,
            now,
        ),
        send_lane(
            shared,
            &mut queues.update_many_by_parent_execution_id_and_is_finished,
            batches,
            all,
            now,
        ),
    ]
    .into_iter()
    .flatten()
    .min()
}

/// Sends one operation's queued calls if due; else when they are due.
fn send_lane<O: Operation>(
    shared: &Arc<Shared>,
    lane: &mut Lane<O>,
    batches: &mut JoinSet<()>,
    all: bool,
    now: Instant,
) -> Option<Instant> {
    let since = lane.since?;
    let due = since + shared.interval;
    if !all && lane.in_flight > 0 && now < due {
        return Some(due);
    }
    lane.since = None;
    spawn_batches(shared, lane, batches);
    None
}

/// Cuts the queued calls of one operation into batches of bounded weight, in order, and
/// sends each. A call whose caller is gone (an aborted run) is dropped unsent.
fn spawn_batches<O: Operation>(
    shared: &Arc<Shared>,
    lane: &mut Lane<O>,
    batches: &mut JoinSet<()>,
) {
    let mut batch: Vec<Pending<O>> = Vec::new();
    let mut weight = 0;
    let mut spawn = |batch: Vec<Pending<O>>, lane_in_flight: &mut usize| {
        *lane_in_flight += 1;
        let in_flight = InFlight::<O> {
            shared: Arc::clone(shared),
            _operation: std::marker::PhantomData,
        };
        batches.spawn(send_batch(Arc::clone(shared), batch, in_flight));
    };
    for call in std::mem::take(&mut lane.pending) {
        if call.reply.is_closed() {
            continue;
        }
        if !batch.is_empty() && weight + call.weight > O::MAX_WEIGHT {
            spawn(std::mem::take(&mut batch), &mut lane.in_flight);
            weight = 0;
        }
        weight += call.weight;
        batch.push(call);
    }
    if !batch.is_empty() {
        spawn(batch, &mut lane.in_flight);
    }
}

/// A combined call of `O` in flight: when it ends (answered, or the loop was aborted), its lane
/// may send again.
struct InFlight<O: Operation> {
    shared: Arc<Shared>,
    _operation: std::marker::PhantomData<fn() -> O>,
}

impl<O: Operation> Drop for InFlight<O> {
    fn drop(&mut self) {
        {
            let mut queues = self.shared.queues();
            let lane = O::queue(&mut queues);
            lane.in_flight = lane.in_flight.saturating_sub(1);
        }
        self.shared.work.notify_one();
    }
}

/// Sends one batch and answers its callers.
async fn send_batch<O: Operation>(
    shared: Arc<Shared>,
    mut batch: Vec<Pending<O>>,
    _in_flight: InFlight<O>,
) {
    let _permit = shared.in_flight.acquire().await;
    if batch.len() == 1 {
        let Pending {
            requests, reply, ..
        } = batch.remove(0);
        let _ = reply.send(shared.core.direct::<O>(requests).await);
        return;
    }
    let requests: Vec<O::Request> = batch
        .iter()
        .flat_map(|call| call.requests.iter().cloned())
        .collect();
    let total = requests.len();
    match shared.core.direct::<O>(requests).await {
        Ok(answers) if answers.len() == total => {
            let mut answers = answers.into_iter();
            for call in batch {
                let part = answers.by_ref().take(call.requests.len()).collect();
                let _ = call.reply.send(Ok(part));
            }
        }
        Ok(answers) => {
            let message = format!("{} answered {} of {total} requests", O::NAME, answers.len());
            for call in batch {
                let _ = call
                    .reply
                    .send(Err(StorageError::InvalidRequest(message.clone())));
            }
        }
        Err(StorageError::PartiallyApplied {
            operation,
            applied,
            source,
            ..
        }) => {
            // The storage wrote the first `applied` requests (in order) and then failed: the
            // callers wholly inside that prefix succeeded, the one it cuts gets its own
            // counts, and the callers after it get the failure as it is (their requests may
            // be part of the failing call, whose outcome the source error tells).
            let mut start = 0;
            for call in batch {
                let len = call.requests.len();
                // Only writes are applied partially; their answers are `()`, which their
                // callers drop, so a caller that succeeded gets no answers.
                let result = if start + len <= applied {
                    Ok(Vec::new())
                } else if start < applied {
                    Err(StorageError::PartiallyApplied {
                        operation,
                        applied: applied - start,
                        total: len,
                        source: Box::new(copy_error(&source)),
                    })
                } else {
                    Err(copy_error(&source))
                };
                start += len;
                let _ = call.reply.send(result);
            }
        }
        Err(error) if is_shared_failure(&error) => {
            for call in batch {
                let _ = call.reply.send(Err(copy_error(&error)));
            }
        }
        Err(error) => {
            tracing::debug!(
                operation = O::NAME,
                %error,
                callers = batch.len(),
                "a combined storage call failed: sending each caller's part alone"
            );
            let alone = batch.into_iter().map(|call| {
                let core = &shared.core;
                async move {
                    let result = core.direct::<O>(call.requests).await;
                    let _ = call.reply.send(result);
                }
            });
            futures::future::join_all(alone).await;
        }
    }
}

/// Whether a failure of a combined call is every caller's as it is: a transient failure (the
/// storage's condition; its outcome may be unknown), or any failure after an attempt that may
/// have been applied (re-sending each part alone could then refuse what the first attempt
/// wrote). Any other failure wrote nothing and may be caused by a single caller's request.
fn is_shared_failure(error: &StorageError) -> bool {
    error.is_transient()
        || error
            .convex_error()
            .is_some_and(|convex| convex.earlier_attempt_may_have_applied())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::storage::{
        GetByIdRequest, InMemoryTaskExecutionsStorage, NewTaskExecution, RetryOptions,
        TaskExecutionStorageValue, TaskExecutionsStorage,
    };
    use crate::store::Store;

    fn execution(id: &str) -> TaskExecutionStorageValue {
        TaskExecutionStorageValue::new_execution(
            NewTaskExecution {
                root: None,
                parent: None,
                task_id: "t".to_owned(),
                execution_id: id.to_owned(),
                is_sleeping_task: false,
                sleeping_task_unique_id: None,
                retry_options: RetryOptions {
                    max_attempts: 0,
                    base_delay_ms: None,
                    max_delay_ms: None,
                    delay_multiplier: None,
                },
                sleep_ms_before_run: 0,
                timeout_ms: 1_000,
                are_children_sequential: false,
                input: "1".to_owned(),
            },
            1_700_000_000_000,
        )
    }

    fn storage() -> Arc<dyn TaskExecutionsStorage> {
        Arc::new(InMemoryTaskExecutionsStorage::new(Default::default()).expect("storage"))
    }

    fn calls(store: &Store, operation: &str) -> u64 {
        store.metrics().get(operation).map_or(0, |m| m.calls)
    }

    #[tokio::test]
    async fn concurrent_single_calls_share_one_storage_call_each_in_order() {
        let store = Store::new(storage(), 0, Some(Duration::from_millis(10)));
        let inserts = (0..20).map(|i| store.insert_many(vec![execution(&format!("e{i}"))]));
        for result in futures::future::join_all(inserts).await {
            result.expect("insert");
        }
        assert_eq!(calls(&store, "insertMany"), 1);
        let gets = (0..20).map(|i| {
            store.get_many_by_id(vec![
                GetByIdRequest {
                    execution_id: format!("e{i}"),
                    filters: None,
                },
                GetByIdRequest {
                    execution_id: format!("missing{i}"),
                    filters: None,
                },
            ])
        });
        for (i, found) in futures::future::join_all(gets)
            .await
            .into_iter()
            .enumerate()
        {
            let found = found.expect("get");
            assert_eq!(found.len(), 2);
            assert_eq!(
                found[0].as_ref().expect("found").execution_id,
                format!("e{i}")
            );
            assert!(found[1].is_none());
        }
        assert_eq!(calls(&store, "getManyById"), 1);
        store.shutdown_batching().await;
    }

    #[tokio::test]
    async fn a_call_alone_goes_at_once_and_calls_wait_only_for_one_in_flight() {
        // An interval far longer than the test: no call may wait for it.
        let store = Store::new(storage(), 0, Some(Duration::from_secs(30)));
        let started = std::time::Instant::now();
        for i in 0..3 {
            store
                .insert_many(vec![execution(&format!("e{i}"))])
                .await
                .expect("insert");
        }
        assert!(store.get_by_id("e2").await.expect("get").is_some());
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "calls made one after the other waited for the interval"
        );
        assert_eq!(calls(&store, "insertMany"), 3);
        store.shutdown_batching().await;
    }

    #[tokio::test]
    async fn a_duplicate_insert_fails_only_its_own_caller() {
        let storage = storage();
        storage
            .insert_many(vec![execution("taken")])
            .await
            .expect("first insert");
        let store = Store::new(Arc::clone(&storage), 0, Some(Duration::from_millis(10)));
        let (duplicate, other, another) = tokio::join!(
            store.insert_many(vec![execution("taken")]),
            store.insert_many(vec![execution("new")]),
            store.insert_many(vec![execution("new2"), execution("new3")]),
        );
        let error = duplicate.expect_err("the duplicate is refused");
        assert!(error.is_already_exists(), "{error}");
        other.expect("the other caller's insert succeeds");
        another.expect("the third caller's insert succeeds");
        // One combined call, refused; then each caller's part alone.
        assert_eq!(calls(&store, "insertMany"), 4);
        assert_eq!(store.metrics()["insertMany"].failures, 2);
        for id in ["new", "new2", "new3"] {
            assert!(store.get_by_id(id).await.expect("get").is_some(), "{id}");
        }
        store.shutdown_batching().await;
    }

    #[tokio::test]
    async fn large_calls_go_to_the_storage_at_once() {
        let store = Store::new(storage(), 0, Some(Duration::from_millis(10)));
        let many: Vec<_> = (0..10).map(|i| execution(&format!("e{i}"))).collect();
        store.insert_many(many).await.expect("insert");
        assert!(!store.batcher().expect("batcher").is_looping());
    }

    #[tokio::test]
    async fn shutdown_sends_what_is_queued_and_stops_the_loop() {
        let store = Arc::new(Store::new(storage(), 0, Some(Duration::from_secs(5))));
        // A combined call in flight: the next ones wait (up to the 5 s interval).
        store.batcher().expect("batcher").hold_insert_many();
        let queued: Vec<_> = (0..5)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(
                    async move { store.insert_many(vec![execution(&format!("e{i}"))]).await },
                )
            })
            .collect();
        while !store.batcher().expect("batcher").is_looping() {
            tokio::task::yield_now().await;
        }
        // Let every caller queue its call (the loop waits up to 5 s before sending).
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(calls(&store, "insertMany"), 0);
        let started = std::time::Instant::now();
        store.shutdown_batching().await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "shutdown waited"
        );
        assert!(!store.batcher().expect("batcher").is_looping());
        for handle in queued {
            handle.await.expect("join").expect("insert");
        }
        assert_eq!(calls(&store, "insertMany"), 1);
        // Later calls go to the storage directly.
        store
            .insert_many(vec![execution("late")])
            .await
            .expect("late insert");
        assert_eq!(calls(&store, "insertMany"), 2);
        assert!(!store.batcher().expect("batcher").is_looping());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_executors_shutdown_sends_queued_calls_and_stops_the_loop() {
        let executor = crate::Executor::new(
            InMemoryTaskExecutionsStorage::new(Default::default()).expect("storage"),
            crate::ExecutorOptions::default()
                .with_enable_storage_batching(true)
                .with_storage_background_batching_process_intra_batch_sleep(Duration::from_millis(
                    100,
                ))
                .with_log_level(crate::LogLevel::Error),
        )
        .expect("executor");
        let task = executor
            .task(
                crate::TaskOptions::new("t", Duration::from_secs(10)),
                |_, i: u32| async move { Ok::<_, crate::TaskError>(i) },
            )
            .expect("task");
        executor.start();
        let handle = executor.enqueue(&task, 1).await.expect("enqueue");
        handle
            .wait_finished(crate::WaitOptions::default())
            .await
            .expect("finished");
        let batcher = || executor.inner.store.batcher().expect("batching is on");
        assert!(batcher().is_looping());
        // A call queued when shutdown starts is still sent.
        let pending = {
            let executor = executor.clone();
            let id = handle.execution_id().to_owned();
            tokio::spawn(async move { executor.inner.store.get_by_id(&id).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        executor.shutdown().await;
        assert!(!batcher().is_looping());
        let found = pending.await.expect("join").expect("get");
        assert!(found.is_some_and(|e| e.is_finished));
        // Handles keep working after shutdown: their reads go to the storage directly.
        assert!(handle.execution().await.expect("execution").is_finished);
        assert!(!batcher().is_looping());
    }
}
