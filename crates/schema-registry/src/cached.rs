//! [`CachedRegistry`]: at most one request per schema id, and per (subject, schema) registration.

use std::{
    collections::HashMap,
    fmt,
    future::Future,
    hash::Hash,
    sync::{Arc, Mutex, PoisonError},
};

use tokio::sync::OnceCell;

use avro_codec::{RegisteredSchema, RegistryError, SchemaId, SchemaRegistry};

type Cells<K, V> = Mutex<HashMap<K, Arc<OnceCell<V>>>>;

/// Caches answers of another [`SchemaRegistry`] that cannot change: schemas by id, ids of
/// registered schemas, and lookups. `latest` is passed through.
///
/// Concurrent misses for the same key share one request (single flight): the first caller
/// fetches, the others wait for its answer. Failures are not cached: when the fetch fails, its
/// caller gets the error and the next waiter (or a later call) tries again.
pub struct CachedRegistry<R> {
    inner: R,
    by_id: Cells<SchemaId, Arc<str>>,
    registered: Cells<(String, String), SchemaId>,
    looked_up: Cells<(String, String), RegisteredSchema>,
}

impl<R> fmt::Debug for CachedRegistry<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedRegistry")
            .field("schemas_by_id", &lock(&self.by_id).len())
            .field("registrations", &lock(&self.registered).len())
            .field("lookups", &lock(&self.looked_up).len())
            .finish_non_exhaustive()
    }
}

impl<R: SchemaRegistry> CachedRegistry<R> {
    /// Wraps `inner` with empty caches.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            by_id: Mutex::default(),
            registered: Mutex::default(),
            looked_up: Mutex::default(),
        }
    }

    /// The wrapped registry.
    pub fn inner(&self) -> &R {
        &self.inner
    }

    /// Records a schema known to have `id`, so that `schema_by_id(id)` needs no request.
    fn remember_schema(&self, id: SchemaId, schema: Arc<str>) {
        lock(&self.by_id)
            .entry(id)
            .or_insert_with(|| Arc::new(OnceCell::new_with(Some(schema))));
    }
}

impl<R: SchemaRegistry> SchemaRegistry for CachedRegistry<R> {
    async fn register(&self, subject: &str, schema: &str) -> Result<SchemaId, RegistryError> {
        let key = (subject.to_owned(), schema.to_owned());
        let id = single_flight(&self.registered, key, || {
            self.inner.register(subject, schema)
        })
        .await?;
        self.remember_schema(id, schema.into());
        Ok(id)
    }

    async fn lookup(&self, subject: &str, schema: &str) -> Result<RegisteredSchema, RegistryError> {
        let key = (subject.to_owned(), schema.to_owned());
        let found =
            single_flight(&self.looked_up, key, || self.inner.lookup(subject, schema)).await?;
        self.remember_schema(found.id, Arc::clone(&found.schema));
        Ok(found)
    }

    async fn schema_by_id(&self, id: SchemaId) -> Result<Arc<str>, RegistryError> {
        single_flight(&self.by_id, id, || self.inner.schema_by_id(id)).await
    }

    async fn latest(&self, subject: &str) -> Result<RegisteredSchema, RegistryError> {
        self.inner.latest(subject).await
    }

    async fn subjects_for_id(&self, id: SchemaId) -> Result<Vec<String>, RegistryError> {
        self.inner.subjects_for_id(id).await
    }
}

async fn single_flight<K, V, F, Fut>(
    cells: &Cells<K, V>,
    key: K,
    fetch: F,
) -> Result<V, RegistryError>
where
    K: Eq + Hash + Clone,
    V: Clone,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<V, RegistryError>>,
{
    let cell = Arc::clone(lock(cells).entry(key.clone()).or_default());
    let result = cell.get_or_try_init(fetch).await.cloned();
    if result.is_err() {
        // Drop the empty cell so failed keys (e.g. a stream of random ids) do not pile up.
        let mut cells = lock(cells);
        if cells
            .get(&key)
            .is_some_and(|current| Arc::ptr_eq(current, &cell) && !current.initialized())
        {
            cells.remove(&key);
        }
    }
    result
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The maps are only changed by single inserts and removes, which a panic cannot tear.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
