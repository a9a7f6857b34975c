//! A source whose identity policy changed (`identity` in the config) has its articles' keys
//! made again, from the entries state keeps, before its next fetch: the fetch then finds each
//! entry it archived before under its new key and updates that file in place, where it would
//! otherwise archive every entry a second time.

use tracing::{info, warn};

use super::Pipeline;
use crate::config::{Identity, Source};
use crate::error::{Error, Result};
use crate::normalize::{self, FetchedEntry};
use crate::store::{SourceState, Store};

impl Pipeline {
    /// Re-keys `source`'s articles when the policy its keys were made under (as `state` has
    /// it) is not the configured one; returns the state the fetch should go on with (without
    /// validators or body hash when keys moved, so that every entry is read again).
    pub(super) async fn rekey_if_identity_changed(
        &self,
        source: &Source,
        state: Option<SourceState>,
    ) -> Result<Option<SourceState>> {
        let configured = (source.identity != Identity::Auto).then(|| source.identity.as_str());
        let stored = state.as_ref().and_then(|s| s.identity.as_deref());
        if stored == configured || (state.is_none() && configured.is_none()) {
            return Ok(state);
        }
        let _turn = self.write_turn.lock().await;
        let mut tx = self.store().begin().await?;
        if self.lost_lease(&mut tx, &source.id).await? {
            return Err(Error::LeaseLost {
                source_id: source.id.clone(),
            });
        }
        let records = Store::keyed_entries(&mut tx, &source.id).await?;
        let mut unknown = 0;
        let moves: Vec<(String, String)> = records
            .into_iter()
            .filter_map(|(key, entry)| {
                // A record rebuilt from its file keeps no entry: it keeps its key, and a fetch
                // adopts it by its link as before.
                let Some(fetched) = entry.as_deref().and_then(FetchedEntry::from_json) else {
                    unknown += 1;
                    return None;
                };
                let identity = normalize::identify(&fetched.entry, source, &fetched.ctx).ok()?;
                Some((key, identity.key))
            })
            .collect();
        let moved = Store::rekey(&mut tx, &source.id, &moves).await?;
        let url = source.location.to_string();
        Store::set_identity(&mut tx, &source.id, &url, configured, moved > 0).await?;
        tx.commit().await?;
        info!(
            source = %source.id,
            from = stored.unwrap_or("auto"),
            to = source.identity.as_str(),
            moved,
            "identity policy changed: article keys made again"
        );
        if unknown > 0 {
            warn!(source = %source.id, records = unknown, "records rebuilt from files keep their keys");
        }
        Ok(state.map(|mut s| {
            s.identity = configured.map(str::to_owned);
            if moved > 0 {
                s.validators = Default::default();
                s.body_hash = None;
            }
            s
        }))
    }
}
