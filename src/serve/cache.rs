//! Rendered responses, kept until a commit changes what they show. Every commit that changes an
//! article or a source's feed metadata moves the state's version (triggers in the database), so
//! a `gazette fetch` run beside the daemon invalidates the daemon's cache too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::config::Settings;
use crate::error::Result;
use crate::store::Store;

/// Responses kept at most; past it the cache starts over, which bounds its memory.
const MAX_ENTRIES: usize = 2048;

/// One rendered response.
#[derive(Debug)]
pub(super) struct Rendered {
    pub content_type: &'static str,
    pub body: Bytes,
    pub etag: String,
    pub modified: DateTime<Utc>,
}

impl Rendered {
    pub fn new(content_type: &'static str, body: Vec<u8>, modified: DateTime<Utc>) -> Self {
        let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&body)[..16]));
        Self {
            content_type,
            body: Bytes::from(body),
            etag,
            modified,
        }
    }
}

/// What the cached responses were rendered from: the state's version and the settings.
type Generation = (i64, usize);

#[derive(Debug, Default)]
pub struct RenderCache {
    inner: Mutex<Responses>,
}

#[derive(Debug, Default)]
struct Responses {
    generation: Option<Generation>,
    by_key: HashMap<String, Arc<Rendered>>,
}

impl RenderCache {
    /// The response cached under `key` for the current state and settings, or the one `render`
    /// makes (kept for the next request); `None` (not found) is not kept.
    pub(super) async fn get_or_render<F, Fut>(
        &self,
        store: &Store,
        settings: &Arc<Settings>,
        key: String,
        render: F,
    ) -> Result<Option<Arc<Rendered>>>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Option<Rendered>>>,
    {
        // The settings are swapped as a whole on reload, so their address tells them apart.
        let generation = (store.state_version().await?, Arc::as_ptr(settings) as usize);
        {
            let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            if inner.generation != Some(generation) {
                inner.generation = Some(generation);
                inner.by_key.clear();
            }
            if let Some(found) = inner.by_key.get(&key) {
                return Ok(Some(Arc::clone(found)));
            }
        }
        let Some(rendered) = render().await? else {
            return Ok(None);
        };
        let rendered = Arc::new(rendered);
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.generation == Some(generation) {
            if inner.by_key.len() >= MAX_ENTRIES {
                inner.by_key.clear();
            }
            inner.by_key.insert(key, Arc::clone(&rendered));
        }
        Ok(Some(rendered))
    }
}
