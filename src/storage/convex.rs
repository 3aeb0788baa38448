//! [`ConvexTaskExecutionsStorage`]: the storage contract over the generated Convex client.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::future::try_join_all;
use serde::Serialize;
use serde_json::Value;
use tracing::Instrument;

use super::chunking::{document_size, lower_limits, plan_elements, split_into};
use super::decode::{decode_document_lists, decode_documents, decode_optional_documents, Decoded};
use super::error::CONVEX_DOCUMENT_LIMIT_BYTES;
use super::options::{shard_of_execution, split_limit, ConvexStorageOptions, ValidatedOptions};
use super::requests::{
    GetByIdRequest, GetByParentExecutionIdRequest, GetBySleepingTaskUniqueIdRequest,
    UpdateAndDecrementParentActiveChildrenCountRequest, UpdateByCloseExpiresAtLessThanRequest,
    UpdateByCloseStatusRequest, UpdateByExecutorIdAndNeedsPromiseCancellationRequest,
    UpdateByIdAndInsertChildrenIfUpdatedRequest, UpdateByIdRequest,
    UpdateByOnChildrenFinishedProcessingExpiresAtLessThanRequest,
    UpdateByParentExecutionIdAndIsFinishedRequest,
    UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanRequest,
    UpdateByStatusAndOnChildrenFinishedProcessingStatusAndActiveChildrenCountZeroRequest,
    UpdateByStatusAndStartAtLessThanRequest,
};
use super::server_clock::{ClockEstimate, ServerClock};
use super::value::{TaskExecutionStorageUpdate, TaskExecutionStorageValue};
use super::{system_clock, Clock, StorageError, TaskExecutionsStorage, UndecodableDocument};
use crate::runtime::response_clock::ResponseClock;
use crate::runtime::{
    AuthSecret, ConvexError, ConvexHttpClient, ConvexOperation, FunctionKind, OperationLimits,
    RetrySafety,
};
use crate::task_executions as tx;
use crate::task_executions::{TaskExecution, TaskExecutionUpdate, TaskExecutionsStorageClient};
use crate::Doc;

/// Undecodable documents kept for [`ConvexTaskExecutionsStorage::undecodable_documents`].
const MAX_UNDECODABLE_KEPT: usize = 100;

/// Bytes counted for a document's system fields (`_id`, `_creationTime`) on top of its own
/// fields when checking it against Convex's document limit.
pub const SYSTEM_FIELDS_RESERVE_BYTES: u64 = 128;

/// The engine's storage on a Convex deployment running the generated component.
///
/// - **Shards.** Every inserted execution (children included) gets the shard
///   [`shard_of_execution`] gives for its id, in `[0, total_shards)`. The operations whose
///   Convex arguments name a shard (claiming, on-children-finished processing, closing,
///   promise cancellation, parent decrement) run once per owned shard, concurrently, and
///   their results are concatenated in shard order. Each shard gets the full `limit`, as in
///   the original, except the parent decrement, whose limit is split across the owned shards
///   rounding up. The expiry operations have no shard and run once.
/// - **Limits.** List requests are cut into calls within the server's per-call budgets by
///   count and by encoded size (see `chunking`). A call the server still refuses as over a
///   budget (`LIMIT_EXCEEDED`, or one of Convex's own transaction limits) is split — at the
///   `fits` the server reports, else in halves — and the parts are sent in order, down to a
///   single request; a single request that alone is too large is a
///   [`StorageError::LimitExceeded`]. Lookups send their calls concurrently and reassemble the
///   answers in request order. Writes send their calls one after the other: each call is
///   atomic, the batch as a whole is not, and a failure after the first call is a
///   [`StorageError::PartiallyApplied`] saying how many elements were written before. A parent
///   and the children it inserts always travel in the same call. Range operations with a
///   `limit` above what one call may patch are served in one call up to that maximum (see
///   `range_call` for why they do not continue); one refused over a budget is retried with
///   its `limit` lowered to `fits` (else halved), down to 1.
/// - **Document size.** An execution whose document would exceed Convex's 1 MiB limit is
///   refused before anything is sent ([`StorageError::DocumentTooLarge`]), as is an update
///   whose fields alone exceed it. The size is Convex's own measure of the document's value
///   (`Size` in Convex's `value` crate: 1 byte per null or boolean, 9 per number, 2 plus the
///   UTF-8 length per string, for arrays and objects 2 plus their elements, and per field its
///   name's length plus 1), computed from the JSON that is sent, plus
///   [`SYSTEM_FIELDS_RESERVE_BYTES`] for the system fields: exact for our documents, and never
///   below what Convex counts.
/// - **Retries.** Each call is retried by the HTTP client (its [`RetryPolicy`]) as far as the
///   operation's declared [`RetrySafety`] allows. For the `verify_duplicates` operations
///   (`insertMany`, `updateManyByIdAndInsertChildrenIfUpdated`), a re-sent call refused as a
///   duplicate after an attempt of unknown outcome is checked: the executions are read back,
///   and when every one the first attempt would have inserted exists with the same content
///   (identity fields: ids, parent, root, task, input, options — not server-time stamps), the
///   call succeeded; otherwise it is the [`StorageError::AlreadyExists`] it looks like.
/// - **The server's clock.** [`now_millis`](TaskExecutionsStorage::now_millis) is the
///   deployment's clock as estimated from the `Date` header of this storage's responses (see
///   [`ServerClock`]: within about ±(500 ms + half a round trip) after one response, about one
///   round trip after a few dozen); before any response, the local clock
///   ([`with_local_clock`](Self::with_local_clock) replaces it, e.g. with a skewed one in
///   tests).
/// - **Returned values.** Our component returns documents as they are after its patch, with
///   the server's time stamps; the original component returns them as they were before. A
///   returned document whose non-time fields already show the update (status, flags,
///   counters, outputs, executor, unset fields absent) is used as it is, so the server's time
///   stamps are not clobbered by the client's; any other is patched locally with the update
///   (and, for a claim, `expiresAt = updateExpiresAtWithStartedAt + timeoutMs`), as the
///   original client does.
/// - **Undecodable documents.** Each returned document is read on its own. A negative `acc`
///   (written by the original's decrement, which has no floor) is read as 0. A document that
///   still cannot be read never fails the others: it is logged at ERROR with its id, kept in
///   [`undecodable_documents`](Self::undecodable_documents) and counted, and left out of the
///   answer (a lookup answers `None` for it). When a lookup asked for that single document,
///   it fails with [`StorageError::UndecodableDocument`] instead. A claimed document that is
///   left out is lost to this call like one of a crashed executor: it is reclaimed after its
///   lease (`expiresAt`).
/// - **Test mode.** Without `enable_test_mode`, `delete_by_id` and `delete_all` send nothing
///   and fail with [`StorageError::TestModeRequired`].
///
/// If a call fails after the server patched documents (e.g. a lost response of an
/// `only_unsent` operation), those documents are not returned; claimed executions then expire
/// through their `expiresAt` like those of a crashed executor.
///
/// [`RetryPolicy`]: crate::runtime::RetryPolicy
#[derive(Clone, Debug)]
pub struct ConvexTaskExecutionsStorage {
    client: TaskExecutionsStorageClient,
    options: ValidatedOptions,
    clock: Arc<ServerClock>,
    undecodable: Arc<UndecodableLog>,
}

/// The undecodable documents met so far (shared by clones).
#[derive(Debug, Default)]
struct UndecodableLog {
    count: AtomicU64,
    recent: Mutex<VecDeque<UndecodableDocument>>,
}

/// An operation whose answer is read as JSON, so that each returned document can be read on
/// its own. Same function, kind, retry safety and limits as `O`.
struct Raw<'a, O>(&'a O);

impl<O: Serialize> Serialize for Raw<'_, O> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<O: ConvexOperation> ConvexOperation for Raw<'_, O> {
    const NAME: &'static str = O::NAME;
    const KIND: FunctionKind = O::KIND;
    const RETRY_SAFETY: RetrySafety = O::RETRY_SAFETY;
    const TEST_ONLY: bool = O::TEST_ONLY;
    const LIMITS: OperationLimits = O::LIMITS;
    type Response = Value;
}

/// For a `verify_duplicates` write: the executions its elements insert, in groups that one
/// transaction inserts together or not at all.
pub(super) type InsertedGroups<T> = dyn Fn(&[T]) -> Vec<Vec<&TaskExecution>> + Sync;

/// A list call that failed: how many elements earlier parts wrote, and why.
struct Failed {
    applied: usize,
    error: StorageError,
}

/// For a call refused over a budget: how many leading requests or documents fit, when the
/// server said. `None` when the error is not such a refusal.
fn budget_refusal(error: &ConvexError) -> Option<Option<u32>> {
    match StorageError::from_ref(error) {
        Some(StorageError::LimitExceeded { fits, .. }) => Some(fits),
        _ => None,
    }
}

/// Where to cut a part of `len` elements refused over a budget.
fn split_size(len: usize, fits: Option<u32>) -> usize {
    match fits.and_then(|n| usize::try_from(n).ok()) {
        Some(0) => 1,
        Some(n) if n < len => n,
        _ => len.div_ceil(2),
    }
}

impl StorageError {
    /// The typed error of `error` when it is one of the server's refusals; `None` otherwise
    /// (without consuming it).
    fn from_ref(error: &ConvexError) -> Option<StorageError> {
        let last = error.last_attempt();
        let copy = match last {
            ConvexError::Function {
                path,
                message,
                code,
                data,
            } => ConvexError::Function {
                path: path.clone(),
                message: message.clone(),
                code: code.clone(),
                data: data.clone(),
            },
            _ => return None,
        };
        match StorageError::from(copy) {
            StorageError::Convex(_) => None,
            typed => Some(typed),
        }
    }
}

impl ConvexTaskExecutionsStorage {
    /// A storage over `client`, after validating `options`.
    pub fn new(
        client: TaskExecutionsStorageClient,
        options: ConvexStorageOptions,
    ) -> Result<Self, StorageError> {
        let options = options.validate()?;
        let storage = Self {
            client,
            options,
            clock: Arc::new(ServerClock::new(system_clock())),
            undecodable: Arc::default(),
        };
        Ok(storage.observing_responses())
    }

    /// Installs this storage's server clock on its HTTP client, so that every response the
    /// client gets (whoever makes the call) feeds the estimate.
    fn observing_responses(mut self) -> Self {
        let clock = Arc::clone(&self.clock) as Arc<dyn ResponseClock>;
        self.client = self.client.map_http(|http| http.with_response_clock(clock));
        self
    }

    /// A storage for the deployment at `url` whose public API expects `auth_secret`, with the
    /// HTTP client's default timeouts and retry policy.
    pub fn connect(
        url: &str,
        auth_secret: AuthSecret,
        options: ConvexStorageOptions,
    ) -> Result<Self, StorageError> {
        let http = ConvexHttpClient::new(url)?;
        Self::new(TaskExecutionsStorageClient::new(http, auth_secret), options)
    }

    /// Reads the local time from `clock` (epoch ms) instead of the system clock, for the
    /// server-clock estimate of [`now_millis`](TaskExecutionsStorage::now_millis) (which starts
    /// over). Tests use it to skew this client against the server.
    pub fn with_local_clock(mut self, clock: Clock) -> Self {
        self.clock = Arc::new(ServerClock::new(clock));
        self.observing_responses()
    }

    /// The estimate of the deployment's clock against the local one; `None` before the first
    /// response.
    pub fn clock_estimate(&self) -> Option<ClockEstimate> {
        self.clock.estimate()
    }

    /// The typed client underneath.
    pub fn client(&self) -> &TaskExecutionsStorageClient {
        &self.client
    }

    /// The number of shards executions are spread over.
    pub fn total_shards(&self) -> u32 {
        self.options.total_shards
    }

    /// The shards this storage serves, sorted and without duplicates.
    pub fn shards(&self) -> &[u32] {
        &self.options.shards
    }

    /// Whether `delete_by_id` and `delete_all` reach the server.
    pub fn is_test_mode_enabled(&self) -> bool {
        self.options.enable_test_mode
    }

    /// The last (at most 100) documents this storage and its clones could not read, oldest
    /// first. Each was also logged at ERROR.
    pub fn undecodable_documents(&self) -> Vec<UndecodableDocument> {
        let recent = self
            .undecodable
            .recent
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        recent.iter().cloned().collect()
    }

    /// How many undecodable documents this storage and its clones met (each time one was
    /// returned).
    pub fn undecodable_document_count(&self) -> u64 {
        self.undecodable.count.load(Ordering::Relaxed)
    }

    fn report(&self, document: UndecodableDocument) {
        tracing::error!(
            function = %document.function,
            id = document.id.as_deref().unwrap_or("?"),
            execution_id = document.execution_id.as_deref().unwrap_or("?"),
            error = %document.message,
            "a returned document cannot be read as a task execution; left out of the answer"
        );
        self.undecodable.count.fetch_add(1, Ordering::Relaxed);
        let mut recent = self
            .undecodable
            .recent
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if recent.len() == MAX_UNDECODABLE_KEPT {
            recent.pop_front();
        }
        recent.push_back(document);
    }

    /// The healthy documents of `decoded`, reporting the others.
    fn healthy(&self, decoded: Vec<Decoded>) -> Vec<Doc<TaskExecution>> {
        decoded
            .into_iter()
            .filter_map(|d| d.map_err(|bad| self.report(bad)).ok())
            .collect()
    }

    /// The per-call limits of `O`, lowered by `max_items_per_call` when set.
    fn limits<O: ConvexOperation>(&self) -> OperationLimits {
        lower_limits(&O::LIMITS, self.options.max_items_per_call)
    }

    /// Plans the calls of a list request of `O` (see `chunking`).
    pub(super) fn plan<T: Serialize, O: ConvexOperation>(
        &self,
        elements: &[T],
        children_of: impl Fn(&T) -> usize,
        name_of: impl Fn(&T) -> String,
    ) -> Result<Vec<Range<usize>>, StorageError> {
        plan_elements(O::NAME, &self.limits::<O>(), elements, children_of, name_of)
    }

    /// The document of a new execution, in its shard, refused when over Convex's document
    /// limit.
    fn document(&self, value: TaskExecutionStorageValue) -> Result<TaskExecution, StorageError> {
        let shard = shard_of_execution(&value.execution_id, self.options.total_shards);
        let document = value.into_document(shard);
        check_size(&document.execution_id, &document)?;
        Ok(document)
    }

    /// One call of `O`, answered as JSON: retried as `O` declares (`Raw` keeps its
    /// `RETRY_SAFETY`); the response feeds the server clock through the HTTP client.
    async fn call_raw<O: ConvexOperation>(&self, args: &O) -> Result<Value, ConvexError> {
        self.client.call(&Raw(args)).await
    }

    /// One call of `O` whose answer is not a document.
    async fn call<O: ConvexOperation>(&self, args: &O) -> Result<O::Response, StorageError> {
        let value = self.call_raw(args).await?;
        decode_plain::<O>(value)
    }

    /// Sends `items` as calls of `O`, one after the other, splitting a call the server refuses
    /// over a budget (at `fits`, else in halves; everything still to send is then cut to that
    /// size) down to single requests. Returns each call's element count and answer, in order.
    ///
    /// `verify`, for the `verify_duplicates` writes, decides whether a duplicate refusal after
    /// an attempt of unknown outcome was that attempt's own success: then the call counts as
    /// applied (answer `null`) and the calls still queued are sent as usual.
    async fn call_splitting<T, O>(
        &self,
        items: Vec<T>,
        args_of: &(impl Fn(Vec<T>) -> O + Sync),
        items_of: &(impl Fn(O) -> Vec<T> + Sync),
        verify: Option<&InsertedGroups<T>>,
    ) -> Result<Vec<(usize, Value)>, Failed>
    where
        T: Send + Sync,
        O: ConvexOperation,
    {
        let mut queue: VecDeque<Vec<T>> = VecDeque::from([items]);
        let mut answers = Vec::new();
        let mut applied = 0;
        while let Some(part) = queue.pop_front() {
            let len = part.len();
            let args = args_of(part);
            let error = match self.call_raw(&args).await {
                Ok(answer) => {
                    applied += len;
                    answers.push((len, answer));
                    continue;
                }
                Err(error) => error,
            };
            let part = items_of(args);
            match budget_refusal(&error) {
                Some(fits) if len > 1 => {
                    let size = split_size(len, fits);
                    tracing::info!(
                        function = O::NAME,
                        elements = len,
                        fits = ?fits,
                        piece = size,
                        "a call refused over a budget is split"
                    );
                    // What did not fit in `len` will not fit later either: the rest of the
                    // queue is cut to the same size, in order.
                    let mut rest: Vec<T> = part;
                    rest.extend(queue.drain(..).flatten());
                    let mut rest = rest.into_iter().peekable();
                    while rest.peek().is_some() {
                        queue.push_back(rest.by_ref().take(size).collect());
                    }
                }
                _ => match self.verified_duplicate::<T, O>(&error, &part, verify).await {
                    Ok(true) => {
                        applied += len;
                        answers.push((len, Value::Null));
                    }
                    Ok(false) => {
                        return Err(Failed {
                            applied,
                            error: StorageError::from(error),
                        })
                    }
                    Err(verify_error) => {
                        return Err(Failed {
                            applied,
                            error: verify_error,
                        })
                    }
                },
            }
        }
        Ok(answers)
    }

    /// Whether `error`, the failure of a `verify_duplicates` call of `items`, is the duplicate
    /// refusal of a re-sent attempt whose first attempt inserted `items` as sent.
    async fn verified_duplicate<T, O: ConvexOperation>(
        &self,
        error: &ConvexError,
        items: &[T],
        verify: Option<&InsertedGroups<T>>,
    ) -> Result<bool, StorageError> {
        let Some(groups_of) = verify else {
            return Ok(false);
        };
        let duplicate = matches!(
            StorageError::from_ref(error),
            Some(StorageError::AlreadyExists { .. })
        );
        if !(duplicate
            && error.earlier_attempt_may_have_applied()
            && O::RETRY_SAFETY == RetrySafety::VerifyDuplicates)
        {
            return Ok(false);
        }
        let verified = self.verify_inserted::<O>(&groups_of(items)).await?;
        if verified {
            tracing::info!(
                function = O::NAME,
                "a re-sent call was refused as a duplicate of its own first attempt; \
                 its executions are stored as sent: success"
            );
        }
        Ok(verified)
    }

    /// Sends the chunks of a write one call after the other, so that a failure can say how
    /// much was written before it. `verify`, for the `verify_duplicates` operations, decides
    /// whether a duplicate refusal after an attempt of unknown outcome was the first attempt's
    /// own success.
    pub(super) async fn send_in_order<T, O>(
        &self,
        elements: Vec<T>,
        chunks: &[Range<usize>],
        args_of: impl Fn(Vec<T>) -> O + Sync,
        items_of: impl Fn(O) -> Vec<T> + Sync,
        verify: Option<&InsertedGroups<T>>,
    ) -> Result<(), StorageError>
    where
        T: Send + Sync,
        O: ConvexOperation<Response = ()>,
    {
        let total = elements.len();
        let mut applied = 0;
        for (index, chunk) in split_into(elements, chunks).into_iter().enumerate() {
            let len = chunk.len();
            let span = tracing::debug_span!("chunk", chunk = index, elements = len);
            let result = self
                .call_splitting(chunk, &args_of, &items_of, verify)
                .instrument(span)
                .await;
            let Failed {
                applied: applied_in_chunk,
                error,
            } = match result {
                Ok(_) => {
                    applied += len;
                    continue;
                }
                Err(failed) => failed,
            };
            return Err(partially_applied(
                O::NAME,
                applied + applied_in_chunk,
                total,
                error,
            ));
        }
        Ok(())
    }

    /// Whether the executions of `groups` were inserted by an earlier attempt of the same
    /// call: every group (executions inserted in the same transaction or not at all) is either
    /// entirely present with the same identity or, for `updateManyByIdAndInsertChildren`,
    /// entirely absent (its parent's patch did not happen), and at least one is present.
    async fn verify_inserted<O: ConvexOperation>(
        &self,
        groups: &[Vec<&TaskExecution>],
    ) -> Result<bool, StorageError> {
        let ids: Vec<String> = groups
            .iter()
            .flatten()
            .map(|d| d.execution_id.clone())
            .collect();
        let stored: HashMap<String, Doc<TaskExecution>> = self
            .look_up_documents(ids)
            .await?
            .into_iter()
            .flatten()
            .map(|d| (d.execution_id.clone(), d))
            .collect();
        let every_group_must_be_present = O::NAME == tx::InsertManyArgs::NAME;
        let mut any_present = false;
        for group in groups {
            let present = group
                .iter()
                .filter(|sent| {
                    stored
                        .get(&sent.execution_id)
                        .is_some_and(|d| same_identity(sent, &d.value))
                })
                .count();
            if present == group.len() && !group.is_empty() {
                any_present = true;
            } else if present != 0 || every_group_must_be_present {
                return Ok(false);
            }
        }
        Ok(any_present)
    }

    /// Documents by execution id, in request order (the undecodable ones reported, as `None`).
    async fn look_up_documents(
        &self,
        ids: Vec<String>,
    ) -> Result<Vec<Option<Doc<TaskExecution>>>, StorageError> {
        let requests: Vec<tx::ByExecutionIdRequest> = ids
            .into_iter()
            .map(|execution_id| tx::ByExecutionIdRequest {
                execution_id,
                filters: None,
            })
            .collect();
        let answers = self.look_up_by_id(requests).await?;
        Ok(answers
            .into_iter()
            .map(|answer| answer.and_then(|d| d.map_err(|bad| self.report(bad)).ok()))
            .collect())
    }

    async fn look_up_by_id(
        &self,
        requests: Vec<tx::ByExecutionIdRequest>,
    ) -> Result<Vec<Option<Decoded>>, StorageError> {
        let chunks = self.plan::<_, tx::GetManyByIdArgs>(
            &requests,
            |_| 0,
            |r| execution_name(&r.execution_id),
        )?;
        let answers = self
            .look_up(
                requests,
                &chunks,
                |requests| tx::GetManyByIdArgs { requests },
                |args| args.requests,
            )
            .await?;
        let mut decoded = Vec::new();
        for (expected, answer) in answers {
            let part = decode_optional_documents(tx::GetManyByIdArgs::NAME, answer)?;
            check_answer_count::<tx::GetManyByIdArgs, _>(&part, expected)?;
            decoded.extend(part);
        }
        Ok(decoded)
    }

    /// Sends the chunks of a lookup concurrently (each split further if the server refuses it
    /// over a budget) and returns each call's element count and answer, in request order.
    async fn look_up<T, O>(
        &self,
        elements: Vec<T>,
        chunks: &[Range<usize>],
        args_of: impl Fn(Vec<T>) -> O + Sync,
        items_of: impl Fn(O) -> Vec<T> + Sync,
    ) -> Result<Vec<(usize, Value)>, StorageError>
    where
        T: Send + Sync,
        O: ConvexOperation,
    {
        let (args_of, items_of) = (&args_of, &items_of);
        let calls = split_into(elements, chunks)
            .into_iter()
            .enumerate()
            .map(|(index, chunk)| {
                let span = tracing::debug_span!("chunk", chunk = index, elements = chunk.len());
                async move {
                    self.call_splitting(chunk, args_of, items_of, None)
                        .await
                        .map_err(|failed| failed.error)
                }
                .instrument(span)
            });
        Ok(try_join_all(calls).await?.into_iter().flatten().collect())
    }

    /// Runs `run` once per owned shard, concurrently; results in shard order.
    async fn per_shard<R, F, Fut>(&self, run: F) -> Result<Vec<R>, StorageError>
    where
        F: Fn(u32) -> Fut,
        Fut: Future<Output = Result<R, StorageError>>,
    {
        try_join_all(
            self.options
                .shards
                .iter()
                .map(|&shard| run(shard).instrument(tracing::debug_span!("shard", shard))),
        )
        .await
    }

    /// A range update of up to `limit` documents, in ONE call: at most the operation's
    /// per-call maximum (`max_limit`, lowered by `max_items_per_call`). `None` for a `limit`
    /// of 0 (nothing is sent).
    ///
    /// A larger `limit` is not continued in a second call on purpose: that call would be a new
    /// transaction, and documents the update leaves inside the range (an update that changes
    /// neither the status nor the bounded field) would be patched and counted twice. Returning
    /// fewer than `limit` is within the contract; the engine's pollers simply ask again. For
    /// the same reason a call refused over a budget is sent again with a lower `limit` (the
    /// `fits` the server reports, else half), not continued.
    async fn range_call<O>(
        &self,
        limit: u32,
        args_of: impl Fn(u32) -> O,
    ) -> Result<Option<Value>, StorageError>
    where
        O: ConvexOperation,
    {
        if limit == 0 {
            return Ok(None);
        }
        let per_call = self.limits::<O>().max_limit.unwrap_or(limit);
        let mut limit = limit.min(per_call);
        loop {
            let error = match self.call_raw(&args_of(limit)).await {
                Ok(answer) => return Ok(Some(answer)),
                Err(error) => error,
            };
            match budget_refusal(&error) {
                // Not even the first document fits: a lower limit cannot help.
                Some(fits) if limit > 1 && fits != Some(0) => {
                    let lower = match fits {
                        Some(n) if (1..limit).contains(&n) => n,
                        _ => limit.div_ceil(2).min(limit - 1),
                    };
                    tracing::info!(
                        function = O::NAME,
                        limit,
                        fits = ?fits,
                        lower,
                        "a range call refused over a budget is sent again with a lower limit"
                    );
                    limit = lower;
                }
                _ => return Err(error.into()),
            }
        }
    }

    /// A range update that returns its documents, as storage values (see "Returned values").
    async fn range_documents<O>(
        &self,
        limit: u32,
        update: &TaskExecutionStorageUpdate,
        expires_at_with_started_at: Option<u64>,
        args_of: impl Fn(u32) -> O,
    ) -> Result<Vec<TaskExecutionStorageValue>, StorageError>
    where
        O: ConvexOperation,
    {
        let Some(answer) = self.range_call(limit, args_of).await? else {
            return Ok(Vec::new());
        };
        let documents = self.healthy(decode_documents(O::NAME, answer)?);
        Ok(documents
            .into_iter()
            .map(|document| returned_value(document, update, expires_at_with_started_at))
            .collect())
    }

    /// A range update that returns a count.
    async fn range_count<O>(
        &self,
        limit: u32,
        args_of: impl Fn(u32) -> O,
    ) -> Result<u32, StorageError>
    where
        O: ConvexOperation<Response = u32>,
    {
        match self.range_call(limit, args_of).await? {
            None => Ok(0),
            Some(answer) => decode_plain::<O>(answer),
        }
    }

    /// The values of a lookup's answers, undecodable ones reported as `None` (or the error,
    /// when the lookup was for that one document).
    fn lookup_values(
        &self,
        answers: Vec<Option<Decoded>>,
    ) -> Result<Vec<Option<TaskExecutionStorageValue>>, StorageError> {
        if let [Some(Err(bad))] = answers.as_slice() {
            self.report(bad.clone());
            return Err(StorageError::UndecodableDocument(bad.clone()));
        }
        Ok(answers
            .into_iter()
            .map(|answer| {
                answer
                    .and_then(|d| d.map_err(|bad| self.report(bad)).ok())
                    .map(TaskExecutionStorageValue::from)
            })
            .collect())
    }
}

/// `execution_id`'s document (or update) checked against Convex's document limit.
fn check_size<T: Serialize>(execution_id: &str, value: &T) -> Result<(), StorageError> {
    let bytes = document_size(value)
        .map_err(|e| {
            StorageError::InvalidRequest(format!(
                "{} cannot be encoded (nothing was sent): {e}",
                execution_name(execution_id)
            ))
        })?
        .saturating_add(SYSTEM_FIELDS_RESERVE_BYTES);
    if bytes > CONVEX_DOCUMENT_LIMIT_BYTES {
        return Err(StorageError::DocumentTooLarge {
            execution_id: execution_id.to_owned(),
            bytes,
            limit: CONVEX_DOCUMENT_LIMIT_BYTES,
        });
    }
    Ok(())
}

/// The answer of `O` decoded as its (non-document) response type.
fn decode_plain<O: ConvexOperation>(value: Value) -> Result<O::Response, StorageError> {
    serde_json::from_value(value).map_err(|e| {
        StorageError::Convex(ConvexError::Decode {
            path: O::NAME.to_owned(),
            message: format!("the function's return value does not match: {e}"),
        })
    })
}

/// The identity of an execution: what an insert sets and no update changes.
#[allow(clippy::type_complexity)]
fn identity(
    d: &TaskExecution,
) -> (
    u32,
    (&Option<String>, &Option<String>),
    (&Option<String>, &Option<String>),
    (Option<u32>, Option<bool>, Option<bool>),
    (&String, &String),
    (bool, &Option<String>),
    &tx::RetryOptions,
    (u64, u64, bool),
    &String,
) {
    (
        d.shard,
        (&d.root_task_id, &d.root_execution_id),
        (&d.parent_task_id, &d.parent_execution_id),
        (
            d.index_in_parent_children,
            d.is_only_child_of_parent,
            d.is_finalize_of_parent,
        ),
        (&d.task_id, &d.execution_id),
        (d.is_sleeping_task, &d.sleeping_task_unique_id),
        &d.retry_options,
        (
            d.sleep_ms_before_run,
            d.timeout_ms,
            d.are_children_sequential,
        ),
        &d.input,
    )
}

/// Whether `stored` is the execution `sent` inserted (same identity).
fn same_identity(sent: &TaskExecution, stored: &TaskExecution) -> bool {
    identity(sent) == identity(stored)
}

/// The executions an `insertMany` call inserts: all in one transaction, or none.
pub(super) fn insert_groups(documents: &[TaskExecution]) -> Vec<Vec<&TaskExecution>> {
    vec![documents.iter().collect()]
}

/// The children an `updateManyByIdAndInsertChildrenIfUpdated` call inserts: each parent's
/// together with its patch, or none of them.
pub(super) fn children_groups(
    requests: &[tx::UpdateByExecutionIdAndInsertChildrenRequest],
) -> Vec<Vec<&TaskExecution>> {
    requests
        .iter()
        .map(|r| {
            r.children_task_executions_to_insert_if_any_updated
                .iter()
                .collect()
        })
        .collect()
}

/// Whether a returned document already shows `update`'s non-time fields (set values present,
/// unset fields absent): then it is the document after the patch.
fn reflects_update(document: &TaskExecution, update: &TaskExecutionUpdate) -> bool {
    let TaskExecutionUpdate {
        executor_id,
        status,
        is_finished,
        run_output,
        output,
        error,
        retry_attempts,
        start_at: _,
        started_at: _,
        expires_at: _,
        waiting_for_children_started_at: _,
        waiting_for_finalize_started_at: _,
        finished_at: _,
        children,
        active_children_count,
        on_children_finished_processing_status,
        on_children_finished_processing_expires_at: _,
        on_children_finished_processing_finished_at: _,
        finalize,
        close_status,
        close_expires_at: _,
        closed_at: _,
        needs_promise_cancellation,
        updated_at: _,
        unset,
    } = update;
    fn shown<T: PartialEq>(set: &Option<T>, stored: &T) -> bool {
        set.as_ref().is_none_or(|v| v == stored)
    }
    fn shown_optional<T: PartialEq>(set: &Option<T>, stored: &Option<T>) -> bool {
        set.as_ref().is_none_or(|v| stored.as_ref() == Some(v))
    }
    // A field both set and unset by the same update ends up absent (the unset is applied
    // last, on the server as in `apply_update`): for it only the absence is checked.
    let removed = |pick: fn(&crate::task_executions::TaskExecutionUnset) -> bool| {
        unset.as_ref().is_some_and(pick)
    };
    let executor_id_ok = if removed(|u| u.executor_id) {
        document.executor_id.is_none()
    } else {
        shown_optional(executor_id, &document.executor_id)
    };
    let run_output_ok = if removed(|u| u.run_output) {
        document.run_output.is_none()
    } else {
        shown_optional(run_output, &document.run_output)
    };
    let error_ok = if removed(|u| u.error) {
        document.error.is_none()
    } else {
        shown_optional(error, &document.error)
    };
    executor_id_ok
        && run_output_ok
        && error_ok
        && shown(status, &document.status)
        && shown(is_finished, &document.is_finished)
        && shown_optional(output, &document.output)
        && shown(retry_attempts, &document.retry_attempts)
        && shown_optional(children, &document.children)
        && shown(active_children_count, &document.active_children_count)
        && shown(
            on_children_finished_processing_status,
            &document.on_children_finished_processing_status,
        )
        && shown_optional(finalize, &document.finalize)
        && shown(close_status, &document.close_status)
        && shown(
            needs_promise_cancellation,
            &document.needs_promise_cancellation,
        )
}

/// The storage value of a document returned by a range update (see "Returned values").
fn returned_value(
    document: Doc<TaskExecution>,
    update: &TaskExecutionStorageUpdate,
    expires_at_with_started_at: Option<u64>,
) -> TaskExecutionStorageValue {
    let after_patch = reflects_update(&document.value, update);
    let mut value = TaskExecutionStorageValue::from(document);
    if !after_patch {
        value.apply_update(update);
        if let Some(started_at) = expires_at_with_started_at {
            value.expires_at = Some(started_at.saturating_add(value.timeout_ms));
        }
    }
    value
}

/// A failure of the call after `applied` elements were written by earlier calls.
fn partially_applied(
    operation: &'static str,
    applied: usize,
    total: usize,
    error: StorageError,
) -> StorageError {
    if applied == 0 {
        return error;
    }
    StorageError::PartiallyApplied {
        operation,
        applied,
        total,
        source: Box::new(error),
    }
}

fn check_answer_count<O: ConvexOperation, R>(
    answers: &[R],
    expected: usize,
) -> Result<(), StorageError> {
    if answers.len() == expected {
        return Ok(());
    }
    Err(StorageError::Convex(ConvexError::Decode {
        path: O::NAME.to_owned(),
        message: format!(
            "expected one answer per request ({expected}), got {}",
            answers.len()
        ),
    }))
}

fn execution_name(execution_id: &str) -> String {
    format!("execution \"{execution_id}\"")
}

/// The span of one storage operation.
fn operation_span(operation: &'static str, elements: usize) -> tracing::Span {
    tracing::info_span!("convex_storage", operation, elements)
}

#[async_trait]
impl TaskExecutionsStorage for ConvexTaskExecutionsStorage {
    fn now_millis(&self) -> u64 {
        self.clock.now_millis()
    }

    async fn insert_many(
        &self,
        executions: Vec<TaskExecutionStorageValue>,
    ) -> Result<(), StorageError> {
        let span = operation_span(tx::InsertManyArgs::NAME, executions.len());
        async {
            let documents = executions
                .into_iter()
                .map(|v| self.document(v))
                .collect::<Result<Vec<_>, _>>()?;
            let chunks = self.plan::<_, tx::InsertManyArgs>(
                &documents,
                |_| 0,
                |d| execution_name(&d.execution_id),
            )?;
            self.send_in_order(
                documents,
                &chunks,
                |executions| tx::InsertManyArgs { executions },
                |args| args.executions,
                Some(&insert_groups),
            )
            .await
        }
        .instrument(span)
        .await
    }

    async fn get_many_by_id(
        &self,
        requests: Vec<GetByIdRequest>,
    ) -> Result<Vec<Option<TaskExecutionStorageValue>>, StorageError> {
        let span = operation_span(tx::GetManyByIdArgs::NAME, requests.len());
        async {
            let requests: Vec<tx::ByExecutionIdRequest> = requests
                .into_iter()
                .map(|r| tx::ByExecutionIdRequest {
                    execution_id: r.execution_id,
                    filters: r.filters,
                })
                .collect();
            let answers = self.look_up_by_id(requests).await?;
            self.lookup_values(answers)
        }
        .instrument(span)
        .await
    }

    async fn get_many_by_sleeping_task_unique_id(
        &self,
        requests: Vec<GetBySleepingTaskUniqueIdRequest>,
    ) -> Result<Vec<Option<TaskExecutionStorageValue>>, StorageError> {
        let span = operation_span(tx::GetManyBySleepingTaskUniqueIdArgs::NAME, requests.len());
        async {
            let requests: Vec<tx::BySleepingTaskUniqueIdRequest> = requests
                .into_iter()
                .map(|r| tx::BySleepingTaskUniqueIdRequest {
                    sleeping_task_unique_id: r.sleeping_task_unique_id,
                })
                .collect();
            let chunks = self.plan::<_, tx::GetManyBySleepingTaskUniqueIdArgs>(
                &requests,
                |_| 0,
                |r| format!("sleeping task \"{}\"", r.sleeping_task_unique_id),
            )?;
            let answers = self
                .look_up(
                    requests,
                    &chunks,
                    |requests| tx::GetManyBySleepingTaskUniqueIdArgs { requests },
                    |args| args.requests,
                )
                .await?;
            let mut decoded = Vec::new();
            for (expected, answer) in answers {
                let part =
                    decode_optional_documents(tx::GetManyBySleepingTaskUniqueIdArgs::NAME, answer)?;
                check_answer_count::<tx::GetManyBySleepingTaskUniqueIdArgs, _>(&part, expected)?;
                decoded.extend(part);
            }
            self.lookup_values(decoded)
        }
        .instrument(span)
        .await
    }

    async fn update_many_by_id(
        &self,
        requests: Vec<UpdateByIdRequest>,
    ) -> Result<(), StorageError> {
        let span = operation_span(tx::UpdateManyByIdArgs::NAME, requests.len());
        async {
            for r in &requests {
                check_size(&r.execution_id, &r.update)?;
            }
            let requests: Vec<tx::UpdateByExecutionIdRequest> = requests
                .into_iter()
                .map(|r| tx::UpdateByExecutionIdRequest {
                    execution_id: r.execution_id,
                    filters: r.filters,
                    update: r.update,
                })
                .collect();
            let chunks = self.plan::<_, tx::UpdateManyByIdArgs>(
                &requests,
                |_| 0,
                |r| execution_name(&r.execution_id),
            )?;
            self.send_in_order(
                requests,
                &chunks,
                |requests| tx::UpdateManyByIdArgs { requests },
                |args| args.requests,
                None,
            )
            .await
        }
        .instrument(span)
        .await
    }

    async fn update_many_by_id_and_insert_children_if_updated(
        &self,
        requests: Vec<UpdateByIdAndInsertChildrenIfUpdatedRequest>,
    ) -> Result<(), StorageError> {
        let span = operation_span(
            tx::UpdateManyByIdAndInsertChildrenIfUpdatedArgs::NAME,
            requests.len(),
        );
        async {
            let mut wire = Vec::with_capacity(requests.len());
            for r in requests {
                check_size(&r.execution_id, &r.update)?;
                let children = r
                    .children_task_executions_to_insert_if_any_updated
                    .into_iter()
                    .map(|child| self.document(child))
                    .collect::<Result<Vec<_>, _>>()?;
                wire.push(tx::UpdateByExecutionIdAndInsertChildrenRequest {
                    execution_id: r.execution_id,
                    filters: r.filters,
                    update: r.update,
                    children_task_executions_to_insert_if_any_updated: children,
                });
            }
            let chunks = self.plan::<_, tx::UpdateManyByIdAndInsertChildrenIfUpdatedArgs>(
                &wire,
                |r| r.children_task_executions_to_insert_if_any_updated.len(),
                |r| execution_name(&r.execution_id),
            )?;
            self.send_in_order(
                wire,
                &chunks,
                |requests| tx::UpdateManyByIdAndInsertChildrenIfUpdatedArgs { requests },
                |args| args.requests,
                Some(&children_groups),
            )
            .await
        }
        .instrument(span)
        .await
    }

    async fn update_by_status_and_start_at_less_than_and_return(
        &self,
        request: UpdateByStatusAndStartAtLessThanRequest,
    ) -> Result<Vec<TaskExecutionStorageValue>, StorageError> {
        let span = operation_span(tx::UpdateByStatusAndStartAtLessThanAndReturnArgs::NAME, 0);
        let r = &request;
        let values = self
            .per_shard(|shard| {
                self.range_documents(
                    r.limit,
                    &r.update,
                    Some(r.update_expires_at_with_started_at),
                    move |limit| tx::UpdateByStatusAndStartAtLessThanAndReturnArgs {
                        shard,
                        status: r.status,
                        start_at_less_than: r.start_at_less_than,
                        update: r.update.clone(),
                        update_expires_at_with_started_at: r.update_expires_at_with_started_at,
                        limit,
                    },
                )
            })
            .instrument(span)
            .await?;
        Ok(values.into_iter().flatten().collect())
    }

    async fn update_by_status_and_on_children_finished_processing_status_and_active_children_count_zero_and_return(
        &self,
        request: UpdateByStatusAndOnChildrenFinishedProcessingStatusAndActiveChildrenCountZeroRequest,
    ) -> Result<Vec<TaskExecutionStorageValue>, StorageError> {
        let span = operation_span(
            tx::UpdateByStatusAndOcfpStatusAndAccZeroAndReturnArgs::NAME,
            0,
        );
        let r = &request;
        let values = self
            .per_shard(|shard| {
                self.range_documents(r.limit, &r.update, None, move |limit| {
                    tx::UpdateByStatusAndOcfpStatusAndAccZeroAndReturnArgs {
                        shard,
                        status: r.status,
                        ocfp_status: r.on_children_finished_processing_status,
                        update: r.update.clone(),
                        limit,
                    }
                })
            })
            .instrument(span)
            .await?;
        Ok(values.into_iter().flatten().collect())
    }

    async fn update_by_close_status_and_return(
        &self,
        request: UpdateByCloseStatusRequest,
    ) -> Result<Vec<TaskExecutionStorageValue>, StorageError> {
        let span = operation_span(tx::UpdateByCloseStatusAndReturnArgs::NAME, 0);
        let r = &request;
        let values = self
            .per_shard(|shard| {
                self.range_documents(r.limit, &r.update, None, move |limit| {
                    tx::UpdateByCloseStatusAndReturnArgs {
                        shard,
                        close_status: r.close_status,
                        update: r.update.clone(),
                        limit,
                    }
                })
            })
            .instrument(span)
            .await?;
        Ok(values.into_iter().flatten().collect())
    }

    async fn update_by_status_and_is_sleeping_task_and_expires_at_less_than(
        &self,
        request: UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanRequest,
    ) -> Result<u32, StorageError> {
        let span = operation_span(
            tx::UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanArgs::NAME,
            0,
        );
        let r = &request;
        self.range_count(r.limit, |limit| {
            tx::UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanArgs {
                status: r.status,
                is_sleeping_task: r.is_sleeping_task,
                expires_at_less_than: r.expires_at_less_than,
                update: r.update.clone(),
                limit,
            }
        })
        .instrument(span)
        .await
    }

    async fn update_by_on_children_finished_processing_expires_at_less_than(
        &self,
        request: UpdateByOnChildrenFinishedProcessingExpiresAtLessThanRequest,
    ) -> Result<u32, StorageError> {
        let span = operation_span(tx::UpdateByOcfpExpiresAtArgs::NAME, 0);
        let r = &request;
        self.range_count(r.limit, |limit| tx::UpdateByOcfpExpiresAtArgs {
            ocfp_expires_at_less_than: r.on_children_finished_processing_expires_at_less_than,
            update: r.update.clone(),
            limit,
        })
        .instrument(span)
        .await
    }

    async fn update_by_close_expires_at_less_than(
        &self,
        request: UpdateByCloseExpiresAtLessThanRequest,
    ) -> Result<u32, StorageError> {
        let span = operation_span(tx::UpdateByCloseExpiresAtArgs::NAME, 0);
        let r = &request;
        self.range_count(r.limit, |limit| tx::UpdateByCloseExpiresAtArgs {
            close_expires_at_less_than: r.close_expires_at_less_than,
            update: r.update.clone(),
            limit,
        })
        .instrument(span)
        .await
    }

    async fn update_by_executor_id_and_needs_promise_cancellation_and_return(
        &self,
        request: UpdateByExecutorIdAndNeedsPromiseCancellationRequest,
    ) -> Result<Vec<TaskExecutionStorageValue>, StorageError> {
        let span = operation_span(tx::UpdateByExecutorIdAndNpcAndReturnArgs::NAME, 0);
        let r = &request;
        let values = self
            .per_shard(|shard| {
                self.range_documents(r.limit, &r.update, None, move |limit| {
                    tx::UpdateByExecutorIdAndNpcAndReturnArgs {
                        shard,
                        executor_id: r.executor_id.clone(),
                        npc: r.needs_promise_cancellation,
                        update: r.update.clone(),
                        limit,
                    }
                })
            })
            .instrument(span)
            .await?;
        Ok(values.into_iter().flatten().collect())
    }

    async fn get_many_by_parent_execution_id(
        &self,
        requests: Vec<GetByParentExecutionIdRequest>,
    ) -> Result<Vec<Vec<TaskExecutionStorageValue>>, StorageError> {
        let span = operation_span(tx::GetManyByParentExecutionIdArgs::NAME, requests.len());
        async {
            let requests: Vec<tx::ByParentExecutionIdRequest> = requests
                .into_iter()
                .map(|r| tx::ByParentExecutionIdRequest {
                    parent_execution_id: r.parent_execution_id,
                })
                .collect();
            let chunks = self.plan::<_, tx::GetManyByParentExecutionIdArgs>(
                &requests,
                |_| 0,
                |r| format!("parent {}", execution_name(&r.parent_execution_id)),
            )?;
            let answers = self
                .look_up(
                    requests,
                    &chunks,
                    |requests| tx::GetManyByParentExecutionIdArgs { requests },
                    |args| args.requests,
                )
                .await?;
            let mut lists = Vec::new();
            for (expected, answer) in answers {
                let part = decode_document_lists(tx::GetManyByParentExecutionIdArgs::NAME, answer)?;
                check_answer_count::<tx::GetManyByParentExecutionIdArgs, _>(&part, expected)?;
                lists.extend(part.into_iter().map(|children| {
                    self.healthy(children)
                        .into_iter()
                        .map(TaskExecutionStorageValue::from)
                        .collect()
                }));
            }
            Ok(lists)
        }
        .instrument(span)
        .await
    }

    async fn update_many_by_parent_execution_id_and_is_finished(
        &self,
        requests: Vec<UpdateByParentExecutionIdAndIsFinishedRequest>,
    ) -> Result<(), StorageError> {
        let span = operation_span(
            tx::UpdateManyByParentExecutionIdAndIsFinishedArgs::NAME,
            requests.len(),
        );
        async {
            let requests: Vec<tx::UpdateByParentExecutionIdAndIsFinishedRequest> = requests
                .into_iter()
                .map(|r| tx::UpdateByParentExecutionIdAndIsFinishedRequest {
                    parent_execution_id: r.parent_execution_id,
                    is_finished: r.is_finished,
                    update: r.update,
                })
                .collect();
            let chunks = self.plan::<_, tx::UpdateManyByParentExecutionIdAndIsFinishedArgs>(
                &requests,
                |_| 0,
                |r| format!("parent {}", execution_name(&r.parent_execution_id)),
            )?;
            self.send_in_order(
                requests,
                &chunks,
                |requests| tx::UpdateManyByParentExecutionIdAndIsFinishedArgs { requests },
                |args| args.requests,
                None,
            )
            .await
        }
        .instrument(span)
        .await
    }

    async fn update_and_decrement_parent_active_children_count_by_is_finished_and_close_status(
        &self,
        request: UpdateAndDecrementParentActiveChildrenCountRequest,
    ) -> Result<u32, StorageError> {
        let span = operation_span(
            tx::UpdateAndDecrementParentAccByIsFinishedAndCloseStatusArgs::NAME,
            0,
        );
        let r = &request;
        let per_shard_limit = split_limit(r.limit, self.options.shards.len());
        let counts = self
            .per_shard(|shard| {
                self.range_count(per_shard_limit, move |limit| {
                    tx::UpdateAndDecrementParentAccByIsFinishedAndCloseStatusArgs {
                        shard,
                        is_finished: r.is_finished,
                        close_status: r.close_status,
                        update: r.update.clone(),
                        limit,
                    }
                })
            })
            .instrument(span)
            .await?;
        Ok(counts.into_iter().fold(0, u32::saturating_add))
    }

    async fn delete_by_id(&self, execution_id: &str) -> Result<(), StorageError> {
        if !self.options.enable_test_mode {
            return Err(StorageError::test_mode_off(tx::DeleteByIdArgs::NAME));
        }
        self.call(&tx::DeleteByIdArgs {
            execution_id: execution_id.to_owned(),
        })
        .instrument(operation_span(tx::DeleteByIdArgs::NAME, 1))
        .await
    }

    async fn delete_all(&self) -> Result<(), StorageError> {
        if !self.options.enable_test_mode {
            return Err(StorageError::test_mode_off(tx::DeleteAllArgs::NAME));
        }
        self.call(&tx::DeleteAllArgs {})
            .instrument(operation_span(tx::DeleteAllArgs::NAME, 0))
            .await
    }
}
