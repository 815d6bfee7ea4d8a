//! Destinations as data: created, replaced and deleted through the API while
//! hookwatch runs. The store keeps each one's document (the config file's
//! `[[destinations]]` keys, as JSON) so it survives restarts; the config
//! file's destinations stay the file's to change.
//!
//! One change at a time (`admin` lock), each made durable before it shows:
//! a create that fails leaves nothing behind, a delete cancels the owed events
//! and removes the document in one transaction.

use super::{deliver, dispatcher, Change, Destination, DestinationSource, Engine, EngineError};
use crate::config::{destination_from_json, DestinationConfig, RawDestination};
use crate::model::DestinationRuntime;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// How often a draining destination checks whether it owes anything still.
const DRAIN_CHECK: Duration = Duration::from_secs(1);

/// What the store keeps for a destination created through the API.
#[derive(serde::Serialize, serde::Deserialize)]
struct Document {
    definition: RawDestination,
    #[serde(default)]
    draining: bool,
}

/// A destination read back from the store.
pub(super) struct StoredDestination {
    pub config: DestinationConfig,
    pub draining: bool,
}

impl StoredDestination {
    pub(super) fn decode(bytes: &[u8]) -> Result<StoredDestination, String> {
        let document: Document = serde_json::from_slice(bytes)
            .map_err(|e| format!("not a destination document: {e}"))?;
        let definition =
            serde_json::to_vec(&document.definition).map_err(|e| format!("cannot re-read: {e}"))?;
        Ok(StoredDestination {
            config: RawDestination::load(&definition)?,
            draining: document.draining,
        })
    }
}

fn encode(definition: &RawDestination, draining: bool) -> Vec<u8> {
    serde_json::to_vec(&Document {
        definition: definition.clone(),
        draining,
    })
    .expect("a destination document always serialises")
}

/// What a delete did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Deleted {
    pub id: String,
    /// Owed events cancelled with reason `destination_deleted` (0 when draining).
    pub cancelled: u64,
    /// `true`: not deleted yet; it takes no new events and goes once it owes
    /// nothing.
    pub draining: bool,
}

impl Engine {
    /// Creates a destination from an API body (the config file's keys).
    pub async fn create_destination(
        &self,
        body: serde_json::Value,
    ) -> Result<Arc<Destination>, EngineError> {
        let (config, definition) = validate(body)?;
        if config.id == crate::config::ALERTS_DESTINATION {
            return Err(EngineError::Conflict(format!(
                "\"{}\" is reserved for the alerts of [alerts]",
                config.id
            )));
        }
        let _admin = self.inner.admin.lock().await;
        if let Ok(existing) = self.destination(&config.id) {
            return Err(EngineError::Conflict(match existing.source {
                DestinationSource::File => format!(
                    "a destination \"{}\" exists (defined in the config file)",
                    config.id
                ),
                DestinationSource::Api => format!("a destination \"{}\" exists", config.id),
                DestinationSource::Alerts => {
                    format!("\"{}\" is reserved for the alerts of [alerts]", config.id)
                }
            }));
        }
        let count = self
            .inner
            .destinations
            .read()
            .expect("destinations lock")
            .len();
        if count >= self.inner.max_destinations {
            return Err(EngineError::Conflict(format!(
                "hookwatch holds {count} destinations, the limit set by server.max_destinations ({})",
                self.inner.max_destinations
            )));
        }
        self.check_reach(&config).await?;
        self.inner
            .store
            .put_destination(config.id.clone(), encode(&definition, false))
            .await?;
        let destination = Arc::new(Destination::new(
            config,
            DestinationSource::Api,
            self.inner.api_reach,
            DestinationRuntime::default(),
            self.inner.shutdown.child_token(),
        ));
        self.inner
            .destinations
            .write()
            .expect("destinations lock")
            .insert(destination.id.clone(), destination.clone());
        self.inner
            .tasks
            .spawn(dispatcher::run(self.clone(), destination.clone()));
        tracing::info!(destination = %destination.id, url = %destination.config().url, "destination {} created through the API", destination.id);
        self.publish(Change::Destination {
            id: destination.id.clone(),
        });
        Ok(destination)
    }

    /// Replaces a destination created through the API with a new definition
    /// (its live edits are dropped: the new definition is what applies).
    pub async fn replace_destination(
        &self,
        id: &str,
        body: serde_json::Value,
    ) -> Result<Arc<Destination>, EngineError> {
        let body = with_path_id(id, body)?;
        let (config, definition) = validate(body)?;
        let _admin = self.inner.admin.lock().await;
        let destination = self.destination(id)?;
        refuse_file_defined(&destination, "replaced")?;
        self.check_reach(&config).await?;
        self.inner
            .store
            .put_destination(
                id.to_string(),
                encode(&definition, destination.is_draining()),
            )
            .await?;
        let mut runtime = destination.runtime();
        runtime.overrides = Default::default();
        runtime.concurrency = None;
        *destination.base.write().expect("destination base lock") = config.clone();
        *destination.config.write().expect("destination config lock") = Arc::new(config);
        *destination
            .runtime
            .lock()
            .expect("destination runtime lock") = runtime;
        tracing::info!(destination = %id, "destination {id} replaced through the API");
        self.save_runtime(&destination).await?;
        Ok(destination)
    }

    /// Deletes a destination created through the API. Its owed events are
    /// cancelled (reason `destination_deleted`) and stay readable; with
    /// `drain` it instead takes no new events and is deleted once it owes
    /// nothing.
    pub async fn delete_destination(&self, id: &str, drain: bool) -> Result<Deleted, EngineError> {
        let _admin = self.inner.admin.lock().await;
        let destination = self.destination(id)?;
        refuse_file_defined(&destination, "deleted")?;
        if drain {
            if !destination.draining.swap(true, Ordering::SeqCst) {
                let stored = self.stored_definition(id)?;
                self.inner
                    .store
                    .put_destination(id.to_string(), encode(&stored, true))
                    .await?;
                tracing::info!(destination = %id, "destination draining: no new events; deleted once it owes nothing");
                self.spawn_drain(destination.clone());
            }
            self.publish(Change::Destination { id: id.to_string() });
            return Ok(Deleted {
                id: id.to_string(),
                cancelled: 0,
                draining: true,
            });
        }
        let cancelled = self.remove_destination(&destination).await?;
        Ok(Deleted {
            id: id.to_string(),
            cancelled,
            draining: false,
        })
    }

    /// Stops the destination's dispatcher, lets its attempts in flight finish
    /// (up to its timeout), then deletes it in one transaction.
    async fn remove_destination(&self, destination: &Arc<Destination>) -> Result<u64, EngineError> {
        destination.draining.store(true, Ordering::SeqCst);
        destination.stop.cancel();
        let deadline = tokio::time::Instant::now() + destination.config().timeout;
        while destination.in_flight.lock().expect("in-flight lock").len() > 0
            && tokio::time::Instant::now() < deadline
        {
            let freed = destination.slot_freed.notified();
            let _ = tokio::time::timeout_at(deadline, freed).await;
        }
        let cancelled = self
            .inner
            .store
            .delete_destination(destination.id.clone())
            .await?;
        self.inner
            .destinations
            .write()
            .expect("destinations lock")
            .remove(&destination.id);
        tracing::info!(destination = %destination.id, cancelled, "destination {} deleted through the API", destination.id);
        self.publish(Change::Destination {
            id: destination.id.clone(),
        });
        Ok(cancelled)
    }

    /// Deletes a draining destination once it owes nothing. Resumed at start
    /// for destinations that were draining when hookwatch stopped.
    pub(super) fn spawn_drain(&self, destination: Arc<Destination>) {
        let engine = self.clone();
        self.inner.tasks.spawn(async move {
            loop {
                let owed = {
                    let engine = engine.clone();
                    let id = destination.id.clone();
                    engine
                        .read_store(move |store| store.counts(&id))
                        .await
                        .map(|counts| counts.owed())
                };
                // A fan-out acknowledged a moment ago may owe it events its
                // counts do not show until the writer's next commit.
                let indexing = engine.inner.store.indexing_pending();
                if let (Ok(0), false) = (owed, indexing) {
                    let _admin = engine.inner.admin.lock().await;
                    if let Err(e) = engine.remove_destination(&destination).await {
                        tracing::warn!(destination = %destination.id, error = %e, "cannot delete the drained destination");
                    }
                    return;
                }
                tokio::select! {
                    _ = destination.stop.cancelled() => return,
                    _ = tokio::time::sleep(DRAIN_CHECK) => {}
                }
            }
        });
    }

    /// The stored definition of an API destination (to rewrite its document).
    fn stored_definition(&self, id: &str) -> Result<RawDestination, EngineError> {
        let stored = self
            .inner
            .store
            .api_destinations()?
            .into_iter()
            .find(|(stored_id, _)| stored_id == id)
            .ok_or_else(|| EngineError::UnknownDestination(id.to_string()))?;
        let document: Document =
            serde_json::from_slice(&stored.1).map_err(|e| EngineError::Invalid {
                field: "id".into(),
                message: format!("the stored definition does not read: {e}"),
            })?;
        Ok(document.definition)
    }

    /// Refuses a URL whose host is, or resolves to, an address destinations
    /// created through the API may not reach (link-local always; private
    /// ones too under `deny_private_destinations`). Checked again at every
    /// connect, so a name that changes its answer later is refused then.
    async fn check_reach(&self, config: &DestinationConfig) -> Result<(), EngineError> {
        let reach = self.inner.api_reach;
        let refused = |message: String| EngineError::Invalid {
            field: "url".into(),
            message,
        };
        if let Some(message) = reach.refused_literal(&config.url) {
            return Err(refused(message));
        }
        let Some(url::Host::Domain(host)) = config.url.host() else {
            return Ok(());
        };
        let port = config.url.port_or_known_default().unwrap_or(80);
        // A name that does not resolve now may later: it is checked at connect.
        let Ok(found) = tokio::net::lookup_host((host, port)).await else {
            return Ok(());
        };
        let found: Vec<std::net::IpAddr> = found.map(|addr| addr.ip()).collect();
        if let Some(ip) = found.iter().find(|ip| reach.refuses(**ip)) {
            let rule = match reach {
                deliver::Reach::NotLinkLocal => {
                    "a link-local address, refused for destinations created through the API"
                }
                _ => "a private address, refused by deny_private_destinations",
            };
            return Err(refused(format!("{host} resolves to {ip}, {rule}")));
        }
        Ok(())
    }
}

fn validate(body: serde_json::Value) -> Result<(DestinationConfig, RawDestination), EngineError> {
    destination_from_json(body).map_err(|(field, message)| EngineError::Invalid { field, message })
}

/// A `PUT` body names the destination by its path; an `id` in the body must
/// agree.
fn with_path_id(id: &str, mut body: serde_json::Value) -> Result<serde_json::Value, EngineError> {
    let Some(object) = body.as_object_mut() else {
        return Err(EngineError::Invalid {
            field: "body".into(),
            message: "expected a JSON object".into(),
        });
    };
    match object.get("id") {
        None => {
            object.insert("id".into(), serde_json::Value::from(id));
        }
        Some(serde_json::Value::String(given)) if given == id => {}
        Some(other) => {
            return Err(EngineError::Invalid {
                field: "id".into(),
                message: format!("the body names {other}, the path \"{id}\""),
            })
        }
    }
    Ok(body)
}

fn refuse_file_defined(destination: &Destination, verb: &str) -> Result<(), EngineError> {
    match destination.source {
        DestinationSource::Api => Ok(()),
        DestinationSource::File => Err(EngineError::Conflict(format!(
            "destination \"{}\" is defined in the config file and cannot be {verb} through the API; edit the file (or use PATCH for a live edit)",
            destination.id
        ))),
        DestinationSource::Alerts => Err(EngineError::Conflict(format!(
            "destination \"{}\" delivers the alerts of [alerts] and cannot be {verb} through the API; edit [alerts] in the config file",
            destination.id
        ))),
    }
}
