//! The loop under every reflector of the server: events in, readiness kept current.

use std::sync::Arc;

use futures::{Stream, StreamExt};
use kube::runtime::watcher;

use super::readiness::{Cache, Readiness};

/// Polls a reflector stream forever; watch errors are logged (the backoff retries them) and
/// mark the cache stale until its next event. The first complete listing marks it synced.
pub async fn drive<K, S>(stream: S, cache: Cache, readiness: Arc<Readiness>)
where
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
{
    drive_with(stream, cache, readiness, |_| {}).await
}

/// `drive`, also handing every event to `on_event` (after the synced mark for the first
/// listing): the provisioning reconciler is nudged from here.
pub async fn drive_with<K, S>(
    stream: S,
    cache: Cache,
    readiness: Arc<Readiness>,
    mut on_event: impl FnMut(&watcher::Event<K>),
) where
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
{
    let mut stream = std::pin::pin!(stream);
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => {
                readiness.watch_ok(cache);
                if matches!(event, watcher::Event::InitDone) {
                    readiness.synced(cache);
                }
                on_event(&event);
            }
            Err(error) => {
                readiness.watch_failed(cache);
                let what = cache.name();
                tracing::warn!(%error, "watching {what} failed; retrying with backoff")
            }
        }
    }
}
