//! The key lifecycle endpoints: rotation (on demand and on a schedule),
//! the minimum decryption version, trimming, enable and disable, deletion
//! with a waiting period, and keys/describe. Each management endpoint is
//! authorized like admin/generatekey (password or a grant of its
//! operation on the key) and audited by admin_ops.

use super::admin_ops::authorize;
use super::key_use::KeyUseError;
use super::{json_response, parse_json, ApiError, ApiResult, ClientInfo};
use crate::authz::Operation;
use crate::keystore::{validate_name, KeyEntry, KeyRecord, KeyType, RotateError};
use crate::lifecycle::{EffectiveState, KeyLifecycle, KeyStatus, LifecycleMap};
use crate::node::Node;
use crate::wire::key_admin::{
    KeyRequest, RotateKeyResponse, ScheduleDeletionRequest, ScheduleDeletionResponse, SetMinDecryptionVersionRequest,
    SetRotationRequest, TrimVersionsRequest,
};
use crate::wire::{EmptyResponse, Int64};

/// Runs a lifecycle management endpoint; None when `endpoint` is not one.
pub async fn dispatch(
    node: &Node,
    client: &ClientInfo,
    endpoint: &str,
    body: &[u8],
    detail: &mut String,
) -> Option<ApiResult> {
    Some(match endpoint {
        "admin/rotatekey" => rotate_key(node, client, body, detail).await,
        "admin/setrotation" => set_rotation(node, client, body, detail).await,
        "admin/setmindecryptionversion" => set_min_decryption_version(node, client, body, detail).await,
        "admin/trimversions" => trim_versions(node, client, body, detail).await,
        "admin/disablekey" => set_enabled(node, client, body, detail, false).await,
        "admin/enablekey" => set_enabled(node, client, body, detail, true).await,
        "admin/scheduledeletion" => schedule_deletion(node, client, body, detail).await,
        "admin/canceldeletion" => cancel_deletion(node, client, body, detail).await,
        _ => return None,
    })
}

/// Why a lifecycle change was refused (names bounded and printable).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleChangeError {
    /// A period outside the accepted range.
    #[error("rotationPeriodSeconds must be 0 (off) or {minimum} to {maximum}, got {got}")]
    RotationPeriod {
        /// The node's minimum (config `lifecycle.minimumRotationPeriodSeconds`).
        minimum: u64,
        /// Ten years.
        maximum: u64,
        /// The value sent.
        got: i64,
    },
    /// A waiting period outside the accepted range.
    #[error("pendingWindowSeconds must be {minimum} to {maximum}, got {got}")]
    PendingWindow {
        /// The node's minimum (config `lifecycle.minimumDeletionWindowSeconds`).
        minimum: u64,
        /// One year.
        maximum: u64,
        /// The value sent.
        got: i64,
    },
    /// A version bound outside the key's versions.
    #[error("{field} must be {lowest} to {highest} for key {name:?}, got {got}")]
    VersionBound {
        /// The request field.
        field: &'static str,
        /// The key.
        name: String,
        /// The lowest acceptable.
        lowest: u32,
        /// The highest acceptable.
        highest: u32,
        /// The value sent.
        got: u32,
    },
    /// Both a waiting period and `minimumWindow`.
    #[error("give pendingWindowSeconds or minimumWindow, not both")]
    WindowTwice,
    /// The change does not apply in the key's state.
    #[error("key {name:?} is {state}: {what}")]
    WrongState {
        /// The key.
        name: String,
        /// Its state.
        state: &'static str,
        /// What to do instead.
        what: &'static str,
    },
}

impl crate::error::Classify for LifecycleChangeError {
    fn kind(&self) -> crate::error::ErrorKind {
        match self {
            LifecycleChangeError::WrongState { .. } => crate::error::ErrorKind::Conflict,
            _ => crate::error::ErrorKind::BadRequest,
        }
    }
}

/// The API name of a state.
pub fn state_name(state: EffectiveState) -> &'static str {
    match state {
        EffectiveState::Enabled => "ENABLED",
        EffectiveState::Disabled => "DISABLED",
        EffectiveState::PendingDeletion { .. } => "PENDING_DELETION",
        EffectiveState::DeletionDue { .. } | EffectiveState::Destroyed { .. } => "DESTROYED",
    }
}

/// Longest rotation period: ten years.
const MAX_ROTATION_PERIOD_S: u64 = 10 * 366 * 86_400;
/// Longest waiting period before a deletion: one year.
const MAX_PENDING_WINDOW_S: u64 = 366 * 86_400;
/// The waiting period when the request names none: 30 days.
pub const DEFAULT_PENDING_WINDOW_S: u64 = 30 * 86_400;

/// Authorizes `op` on the request's key and parses its type.
async fn authorized_key(
    node: &Node,
    client: &ClientInfo,
    (password, key_type_text, name): (&str, &str, &str),
    op: Operation,
    detail: &mut String,
) -> Result<KeyType, ApiError> {
    describe_target(detail, key_type_text, name);
    authorize(node, client, password, op, Some(name), detail).await?;
    validate_name(name)?;
    key_type(key_type_text)
}

/// Applies `change` to the lifecycle of an existing, not destroyed key and
/// pushes the result to the peers.
fn change(
    node: &Node,
    key_type: KeyType,
    name: &str,
    change: impl FnOnce(&KeyEntry, &mut KeyLifecycle, EffectiveState) -> Result<(), ApiError>,
) -> Result<KeyLifecycle, ApiError> {
    let now = super::now_ms();
    let changed = node.keystore.change_lifecycle(key_type, name, |entry, lifecycle| {
        let state = lifecycle.effective(now);
        if matches!(state, EffectiveState::Destroyed { .. } | EffectiveState::DeletionDue { .. }) {
            return Err(KeyUseError::Destroyed { name: super::printable(name) }.into());
        }
        if entry.newest_version() == 0 {
            return Err(ApiError::NoSuchKey { key_type, name: super::printable(name) });
        }
        change(entry, lifecycle, state)
    })?;
    let (lifecycle, _) = changed.ok_or_else(|| ApiError::NoSuchKey { key_type, name: super::printable(name) })?;
    let mut pushed = LifecycleMap::default();
    pushed.set(key_type, name, lifecycle.clone());
    node.lifecycle_changed(pushed);
    Ok(lifecycle)
}

fn by(client: &ClientInfo) -> String {
    client.subject.to_string()
}

fn wrong_state(name: &str, state: EffectiveState, what: &'static str) -> ApiError {
    ApiError::LifecycleChange(LifecycleChangeError::WrongState {
        name: super::printable(name),
        state: state_name(state),
        what,
    })
}

/// admin/setrotation: rotation every `rotationPeriodSeconds` (0: off).
async fn set_rotation(node: &Node, client: &ClientInfo, body: &[u8], detail: &mut String) -> ApiResult {
    let request: SetRotationRequest = parse_json(body)?;
    let key = (request.admin_password.0.as_str(), request.key_type.as_str(), request.key_name.as_str());
    let key_type = authorized_key(node, client, key, Operation::Rotate, detail).await?;
    let seconds = request.rotation_period_seconds.0;
    let minimum = node.config.lifecycle.minimum_rotation_period_s;
    if seconds != 0 && !(minimum as i64..=MAX_ROTATION_PERIOD_S as i64).contains(&seconds) {
        return Err(
            LifecycleChangeError::RotationPeriod { minimum, maximum: MAX_ROTATION_PERIOD_S, got: seconds }.into()
        );
    }
    detail.push_str(&format!(" period={seconds}s"));
    let by = by(client);
    change(node, key_type, &request.key_name, |_, lifecycle, _| {
        lifecycle.set_rotation_period_ms(seconds as u64 * 1000, super::now_ms(), &by);
        Ok(())
    })?;
    json_response(&EmptyResponse {})
}

/// Refuses a version bound outside `bounds`.
fn check_bound(
    field: &'static str,
    name: &str,
    bounds: std::ops::RangeInclusive<u32>,
    got: u32,
) -> Result<(), LifecycleChangeError> {
    if bounds.contains(&got) {
        return Ok(());
    }
    let (lowest, highest) = bounds.into_inner();
    Err(LifecycleChangeError::VersionBound { field, name: super::printable(name), lowest, highest, got })
}

/// admin/setmindecryptionversion: older versions stop decrypting and verifying.
async fn set_min_decryption_version(node: &Node, client: &ClientInfo, body: &[u8], detail: &mut String) -> ApiResult {
    let request: SetMinDecryptionVersionRequest = parse_json(body)?;
    let key = (request.admin_password.0.as_str(), request.key_type.as_str(), request.key_name.as_str());
    let key_type = authorized_key(node, client, key, Operation::Rotate, detail).await?;
    let version = request.min_decryption_version;
    detail.push_str(&format!(" minDecryptionVersion={version}"));
    let by = by(client);
    let name = &request.key_name;
    change(node, key_type, name, |entry, lifecycle, _| {
        let bounds = lifecycle.min_available_version()..=entry.newest_version();
        check_bound("minDecryptionVersion", name, bounds, version)?;
        lifecycle.set_min_decryption_version(version, super::now_ms(), &by);
        Ok(())
    })?;
    json_response(&EmptyResponse {})
}

/// admin/trimversions: destroys the versions below `minAvailableVersion`.
async fn trim_versions(node: &Node, client: &ClientInfo, body: &[u8], detail: &mut String) -> ApiResult {
    let request: TrimVersionsRequest = parse_json(body)?;
    let key = (request.admin_password.0.as_str(), request.key_type.as_str(), request.key_name.as_str());
    let key_type = authorized_key(node, client, key, Operation::Delete, detail).await?;
    let version = request.min_available_version;
    detail.push_str(&format!(" minAvailableVersion={version}"));
    let name = &request.key_name;
    change(node, key_type, name, |_, lifecycle, _| {
        check_bound(
            "minAvailableVersion",
            name,
            lifecycle.min_available_version()..=lifecycle.min_decryption_version(),
            version,
        )?;
        lifecycle.trim(version);
        Ok(())
    })?;
    json_response(&EmptyResponse {})
}

/// admin/enablekey and admin/disablekey.
async fn set_enabled(node: &Node, client: &ClientInfo, body: &[u8], detail: &mut String, enable: bool) -> ApiResult {
    let request: KeyRequest = parse_json(body)?;
    let key = (request.admin_password.0.as_str(), request.key_type.as_str(), request.key_name.as_str());
    let op = Operation::Disable;
    let key_type = authorized_key(node, client, key, op, detail).await?;
    let by = by(client);
    let name = &request.key_name;
    change(node, key_type, name, |_, lifecycle, state| {
        if let EffectiveState::PendingDeletion { .. } = state {
            return Err(wrong_state(name, state, "cancel the deletion first (admin/canceldeletion)"));
        }
        let status = if enable { KeyStatus::Enabled } else { KeyStatus::Disabled };
        lifecycle.set_status(status, super::now_ms(), &by);
        Ok(())
    })?;
    json_response(&EmptyResponse {})
}

/// admin/scheduledeletion: refused from now, destroyed after the window.
async fn schedule_deletion(node: &Node, client: &ClientInfo, body: &[u8], detail: &mut String) -> ApiResult {
    let request: ScheduleDeletionRequest = parse_json(body)?;
    let key = (request.admin_password.0.as_str(), request.key_type.as_str(), request.key_name.as_str());
    let key_type = authorized_key(node, client, key, Operation::Delete, detail).await?;
    let minimum = node.config.lifecycle.minimum_deletion_window_s;
    let seconds = match request.pending_window_seconds.0 {
        0 if request.minimum_window => minimum,
        _ if request.minimum_window => return Err(LifecycleChangeError::WindowTwice.into()),
        0 => DEFAULT_PENDING_WINDOW_S.max(minimum),
        s if (minimum as i64..=MAX_PENDING_WINDOW_S as i64).contains(&s) => s as u64,
        got => return Err(LifecycleChangeError::PendingWindow { minimum, maximum: MAX_PENDING_WINDOW_S, got }.into()),
    };
    let delete_at_ms = super::now_ms() + seconds as i64 * 1000;
    detail.push_str(&format!(" window={seconds}s deleteAt={delete_at_ms}"));
    let by = by(client);
    let name = &request.key_name;
    change(node, key_type, name, |_, lifecycle, state| {
        if let EffectiveState::PendingDeletion { .. } = state {
            return Err(wrong_state(name, state, "it is scheduled already"));
        }
        lifecycle.set_status(KeyStatus::PendingDeletion { delete_at_ms }, super::now_ms(), &by);
        Ok(())
    })?;
    json_response(&ScheduleDeletionResponse { deletion_date: Int64(delete_at_ms) })
}

/// admin/canceldeletion: the key stays, disabled (enable it to use it).
async fn cancel_deletion(node: &Node, client: &ClientInfo, body: &[u8], detail: &mut String) -> ApiResult {
    let request: KeyRequest = parse_json(body)?;
    let key = (request.admin_password.0.as_str(), request.key_type.as_str(), request.key_name.as_str());
    let key_type = authorized_key(node, client, key, Operation::Delete, detail).await?;
    let by = by(client);
    let name = &request.key_name;
    change(node, key_type, name, |_, lifecycle, state| {
        if !matches!(state, EffectiveState::PendingDeletion { .. }) {
            return Err(wrong_state(name, state, "no deletion is scheduled"));
        }
        lifecycle.set_status(KeyStatus::Disabled, super::now_ms(), &by);
        Ok(())
    })?;
    json_response(&EmptyResponse {})
}

fn key_type(text: &str) -> Result<KeyType, ApiError> {
    KeyType::parse(text).ok_or_else(|| ApiError::InvalidKeyType(super::printable(text)))
}

fn describe_target(detail: &mut String, key_type: &str, name: &str) {
    *detail = format!("key={} type={}", super::printable(name), super::printable(key_type));
}

/// admin/rotatekey: a new version with fresh material of the same kind.
async fn rotate_key(node: &Node, client: &ClientInfo, body: &[u8], detail: &mut String) -> ApiResult {
    let request: KeyRequest = parse_json(body)?;
    let key = (request.admin_password.0.as_str(), request.key_type.as_str(), request.key_name.as_str());
    let key_type = authorized_key(node, client, key, Operation::Rotate, detail).await?;
    let record = rotate(node, key_type, &request.key_name).await?;
    detail.push_str(&format!(" version={}", record.version));
    json_response(&RotateKeyResponse { key_version: record.version })
}

/// Adds the next version of `name` (also the scheduled rotation's path).
pub async fn rotate(node: &Node, key_type: KeyType, name: &str) -> Result<std::sync::Arc<KeyRecord>, ApiError> {
    let no_such_key = || ApiError::NoSuchKey { key_type, name: super::printable(name) };
    let snapshot = node.keystore.snapshot();
    let entry = snapshot.entry(key_type, name).ok_or_else(no_such_key)?;
    match entry.lifecycle().effective(super::now_ms()) {
        EffectiveState::Destroyed { .. } | EffectiveState::DeletionDue { .. } => {
            return Err(KeyUseError::Destroyed { name: super::printable(name) }.into())
        }
        state @ EffectiveState::PendingDeletion { .. } => {
            return Err(wrong_state(name, state, "a key pending deletion is not rotated"))
        }
        EffectiveState::Enabled | EffectiveState::Disabled => {}
    }
    let newest = entry.active().cloned().ok_or_else(no_such_key)?;
    let object_id = newest.object_id.clone();
    // RSA generation takes up to seconds: never on an I/O thread.
    let material = tokio::task::spawn_blocking(move || newest.material.generate_like())
        .await
        .map_err(|_| ApiError::GenerationInterrupted)??;
    // The application's identifier names the key, whichever version.
    let record = KeyRecord::new(name.to_string(), super::now_ms(), material).with_object_id(object_id);
    match node.keystore.add_version(record) {
        Ok(record) => {
            node.cluster_changed(vec![std::sync::Arc::clone(&record)]);
            Ok(record)
        }
        Err(RotateError::NoSuchKey) => Err(no_such_key()),
        Err(RotateError::TooManyVersions) => Err(ApiError::TooManyVersions),
        Err(RotateError::Destroyed) => Err(KeyUseError::Destroyed { name: super::printable(name) }.into()),
    }
}
