//! The admin endpoints. Each checks the admin password first (scrypt off
//! the I/O thread, throttled per client) and is written to the audit log
//! with its outcome — key names only, never key bytes or the password.

use super::access::AdminProof;
use super::now_ms;
use super::{json_response, parse_json, ApiError, ApiResult, ClientInfo};
use crate::admin::backup;
use crate::audit::Outcome;
use crate::authz::Operation;
use crate::crypto::keys::{AsymmetricKey, KeySpec, MacKey, SymmetricKey};
use crate::error::reply;
use crate::keystore::{
    validate_name, ConflictPolicy, InsertError, KeyMaterial, KeyRecord, KeyType, Origin, MAX_OBJECT_ID_BYTES,
};
use crate::lifecycle::LifecycleMap;
use crate::node::Node;
use crate::wire::{
    AsymmetricKeyInfo, BootstrapRequest, Bytes, EmptyResponse, GenerateBackupRequest, GenerateBackupResponse,
    GenerateKeyRequest, InjectKeyRequest, Int64, ListKeysRequest, ListKeysResponse, LogsResponse, PasswordOnlyRequest,
    RestoreBackupRequest, RestoreBackupResponse, SymmetricKeyInfo,
};

/// Runs an admin endpoint (below /REST/v1/; admin/bootstrap is apart) and
/// audits it; None when `endpoint` is not one.
pub async fn dispatch(node: &Node, client: &ClientInfo, endpoint: &str, body: &[u8]) -> Option<ApiResult> {
    let action = endpoint.trim_start_matches("admin/");
    let mut detail = String::new();
    let result = match endpoint {
        "admin/generatekey" => generate_key(node, client, body, &mut detail).await,
        "admin/injectkey" => inject_key(node, client, body, &mut detail).await,
        "admin/generatebackup" => generate_backup(node, client, body, &mut detail).await,
        "admin/restorebackup" => restore_backup(node, client, body, &mut detail).await,
        "admin/listkeys" => list_keys(node, client, body, &mut detail).await,
        "admin/getlogs" => get_logs(node, client, body, &mut detail).await,
        "admin/creategrants" => super::grant_ops::create(node, client, body, &mut detail).await,
        "admin/revokegrants" => super::grant_ops::revoke(node, client, body, &mut detail).await,
        "admin/listgrants" => super::grant_ops::list(node, client, body, &mut detail).await,
        "admin/setpolicy" => super::grant_ops::set_policy(node, client, body, &mut detail).await,
        _ => super::lifecycle_ops::dispatch(node, client, endpoint, body, &mut detail).await?,
    };
    let outcome = match &result {
        Ok(_) => Outcome::Ok,
        Err(e) => {
            // The audit line gets the full detail, internal faults included.
            let reply = reply(e);
            if !detail.is_empty() {
                detail.push_str("; ");
            }
            detail.push_str(&format!("{} {}", reply.status.as_u16(), reply.detail));
            reply.outcome
        }
    };
    // Every successful action that changes state or exports the inventory
    // goes to the history, which failures of any client cannot push out;
    // reads and failures are events (a holder of a mere `list` grant must
    // not be able to flush the history).
    let reads_only = matches!(endpoint, "admin/listkeys" | "admin/getlogs" | "admin/listgrants");
    if outcome == Outcome::Ok && !reads_only {
        node.audit.record_history(action, &client.subject, outcome, &detail);
    } else {
        node.audit.record(action, &client.subject, outcome, &detail);
    }
    Some(result)
}

/// admin/bootstrap: installs the RPC private key (no client certificate yet).
pub fn bootstrap(node: &Node, client: &ClientInfo, body: &[u8]) -> ApiResult {
    let result = parse_json::<BootstrapRequest>(body)
        .and_then(|request| node.bootstrap(&request.rpc_private_key.0).map_err(ApiError::from));
    let detail = match &result {
        Ok(()) => format!("from {}", client.peer),
        Err(e) => {
            let reply = reply(e);
            format!("from {}: {} {}", client.peer, reply.status.as_u16(), reply.detail)
        }
    };
    // Anyone may call bootstrap: every failure is a refusal, so that the
    // log's refusal rate limit bounds what strangers can write to it.
    if result.is_ok() {
        node.audit.record_history("bootstrap", &client.subject, Outcome::Ok, &detail);
    } else {
        node.audit.record("bootstrap", &client.subject, Outcome::Refused, &detail);
    }
    result?;
    json_response(&EmptyResponse {})
}

/// Authorizes a management request (see [`super::access::authorize_admin`])
/// and notes in the audit detail how it was proved.
pub(super) async fn authorize(
    node: &Node,
    client: &ClientInfo,
    password: &str,
    op: Operation,
    key: Option<&str>,
    detail: &mut String,
) -> Result<AdminProof, ApiError> {
    let proof = super::access::authorize_admin(node, client, password, op, key).await?;
    if !detail.is_empty() {
        detail.push(' ');
    }
    detail.push_str(proof.as_str());
    Ok(proof)
}

fn key_type(text: &str) -> Result<KeyType, ApiError> {
    KeyType::parse(text).ok_or_else(|| ApiError::InvalidKeyType(super::printable(text)))
}

fn insert(node: &Node, name: String, material: KeyMaterial, object_id: Vec<u8>) -> ApiResult {
    let key_type = material.key_type();
    match node.keystore.insert(KeyRecord::new(name, now_ms(), material).with_object_id(object_id)) {
        Ok(record) => {
            node.cluster_changed(vec![record]);
            json_response(&EmptyResponse {})
        }
        Err(InsertError::Exists) => Err(ApiError::NameTaken(key_type)),
        Err(InsertError::Destroyed) => Err(ApiError::NameDestroyed(key_type)),
    }
}

fn refuse_existing(node: &Node, key_type: KeyType, name: &str) -> Result<(), ApiError> {
    validate_name(name)?;
    let snapshot = node.keystore.snapshot();
    if snapshot.entry(key_type, name).is_some_and(|e| e.lifecycle().destroyed_at_ms.is_some()) {
        return Err(ApiError::NameDestroyed(key_type));
    }
    if snapshot.get(key_type, name).is_some() {
        return Err(ApiError::NameTaken(key_type));
    }
    Ok(())
}

async fn generate_key(node: &Node, client: &ClientInfo, body: &[u8], detail: &mut String) -> ApiResult {
    let request: GenerateKeyRequest = parse_json(body)?;
    *detail = format!("key={} type={}", super::printable(&request.key_name), super::printable(&request.key_type));
    authorize(node, client, &request.admin_password.0, Operation::Generate, Some(&request.key_name), detail).await?;
    let key_type = key_type(&request.key_type)?;
    // Refuse a taken name before spending seconds on an RSA key.
    refuse_existing(node, key_type, &request.key_name)?;
    check_object_id(&request.object_id)?;
    let size = u64::try_from(request.key_size.0).map_err(|_| ApiError::NegativeKeySize)?;
    let material = match key_type {
        KeyType::Symmetric => KeyMaterial::Symmetric(SymmetricKey::generate(size)?),
        KeyType::Mac => KeyMaterial::Mac(MacKey::generate(size)?),
        KeyType::Asymmetric => {
            let spec = KeySpec::parse(&request.key_spec)
                .map_err(|_| ApiError::InvalidKeySpec(super::printable(&request.key_spec)))?;
            // RSA generation takes up to seconds: never on an I/O thread.
            let key = tokio::task::spawn_blocking(move || AsymmetricKey::generate(spec, size))
                .await
                .map_err(|_| ApiError::GenerationInterrupted)??;
            KeyMaterial::Asymmetric(Box::new(key))
        }
    };
    insert(node, request.key_name, material, request.object_id.0)
}

/// Refuses an `objectId` longer than [`MAX_OBJECT_ID_BYTES`].
fn check_object_id(object_id: &Bytes) -> Result<(), ApiError> {
    match object_id.0.len() <= MAX_OBJECT_ID_BYTES {
        true => Ok(()),
        false => Err(ApiError::ObjectIdTooLong),
    }
}

async fn inject_key(node: &Node, client: &ClientInfo, body: &[u8], detail: &mut String) -> ApiResult {
    let request: InjectKeyRequest = parse_json(body)?;
    *detail = format!("key={} type={}", super::printable(&request.key_name), super::printable(&request.key_type));
    authorize(node, client, &request.admin_password.0, Operation::Inject, Some(&request.key_name), detail).await?;
    let key_type = key_type(&request.key_type)?;
    refuse_existing(node, key_type, &request.key_name)?;
    check_object_id(&request.object_id)?;
    let bytes = &request.key.0;
    if bytes.len() > crate::node::MAX_KEY_DER_BYTES {
        return Err(ApiError::KeyTooLarge);
    }
    let material = match key_type {
        KeyType::Symmetric => KeyMaterial::Symmetric(SymmetricKey::from_bytes(bytes)?),
        KeyType::Mac => KeyMaterial::Mac(MacKey::from_bytes(bytes)?),
        KeyType::Asymmetric => KeyMaterial::Asymmetric(Box::new(AsymmetricKey::from_pkcs8_der(bytes)?)),
    };
    insert(node, request.key_name, material, request.object_id.0)
}

fn rpc_key_missing() -> ApiError {
    ApiError::Bootstrapping
}

async fn generate_backup(node: &Node, client: &ClientInfo, body: &[u8], detail: &mut String) -> ApiResult {
    let request: GenerateBackupRequest = parse_json(body)?;
    authorize(node, client, &request.admin_password.0, Operation::Backup, None, detail).await?;
    let rpc_key = node.rpc_key().ok_or_else(rpc_key_missing)?;
    let snapshot = node.keystore.snapshot();
    let policy = node.authz.policy();
    let format = backup::Format::choose(request.backup_version.0, policy.state(), &snapshot)?;
    detail.push_str(&format!(" version={}", format.version()));
    let blob = backup::create(&snapshot, (format, policy.state()), rpc_key, now_ms())?;
    json_response(&GenerateBackupResponse { backup: blob })
}

async fn restore_backup(node: &Node, client: &ClientInfo, body: &[u8], detail: &mut String) -> ApiResult {
    let request: RestoreBackupRequest = parse_json(body)?;
    let proof = authorize(node, client, &request.admin_password.0, Operation::Restore, None, detail).await?;
    let blob = request.backup.ok_or(ApiError::BackupRequired)?;
    let rpc_key = node.rpc_key().ok_or_else(rpc_key_missing)?;
    let mut contents = backup::open(&blob, rpc_key)?;
    // Anybody can encrypt a backup to the public RPC certificate: grants in
    // one are grants made by its restorer, who must hold manage-grants.
    let with_grants = contents.authorization.as_ref().is_some_and(|a| !a.is_empty());
    if with_grants
        && proof == AdminProof::Certificate
        && !super::access::grants_of(node, client).is_some_and(|g| g.granted(Operation::ManageGrants, None))
    {
        return Err(super::access::refuse(node, client, Operation::ManageGrants, "*"));
    }
    if let Some(authorization) = &mut contents.authorization {
        // Nor may a backup dated in the future pin the policy mode.
        authorization.clamp_mode_time(now_ms());
        super::grant_ops::check_restore_limit(node, authorization)?;
    }
    // A backup's lifecycle state comes only with the keys it holds and
    // this node does not know, and never destroys or schedules anything
    // (see KeyLifecycle::restorable): a restore never changes a key that
    // is here, whoever encrypted the backup. First, so that the states
    // apply to the records that follow.
    let mut restorable = LifecycleMap::default();
    for record in &contents.records {
        let key_type = record.material.key_type();
        if let Some(lifecycle) = contents.lifecycle.get(key_type, &record.name) {
            restorable.set(key_type, &record.name, lifecycle.restorable());
        }
    }
    restorable.clamp_future(now_ms());
    let lifecycle = node.keystore.merge_lifecycle_of_new_keys(&restorable);
    if !lifecycle.changed.is_empty() {
        node.lifecycle_changed(node.keystore.snapshot().lifecycle_of(&lifecycle.changed));
    }
    let mut records = contents.records;
    // A backup's createdAt is whatever the backup says: restored material
    // never outranks material generated or injected in the cluster.
    records.iter_mut().for_each(|r| r.origin = Origin::Restored);
    let report = node.keystore.merge(records, ConflictPolicy::KeepExisting);
    node.cluster_changed(report.new_records.clone());
    detail.push_str(&format!(
        " added={} unchanged={} conflicts={} destroyed-left-out={} lifecycle-added={}",
        report.added,
        report.unchanged,
        report.conflicts.len(),
        report.destroyed.len(),
        lifecycle.changed.len()
    ));
    if let Some(authorization) = contents.authorization {
        // Unions only: a grant revoked since the backup stays revoked.
        let changes = node.authz.merge(&authorization);
        if !changes.is_empty() {
            node.authorization_changed(authorization);
        }
        detail.push_str(&format!(
            " grants-added={} grants-replaced={} revocations-added={} mode-changed={}",
            changes.grants, changes.replaced, changes.revocations, changes.mode
        ));
    }
    for conflict in &report.conflicts {
        node.audit.record_history(
            "restorebackup-conflict",
            &client.subject,
            Outcome::Failed,
            &format!("{conflict}: backup holds different material under this name; the existing key was kept, the backup's left out"),
        );
    }
    for destroyed in &report.destroyed {
        node.audit.record_history(
            "restorebackup-destroyed",
            &client.subject,
            Outcome::Ok,
            &format!("{destroyed}: destroyed in this cluster; the backup's material was left out"),
        );
    }
    json_response(&RestoreBackupResponse { conflicts: report.conflicts, destroyed: report.destroyed })
}

async fn list_keys(node: &Node, client: &ClientInfo, body: &[u8], detail: &mut String) -> ApiResult {
    let request: ListKeysRequest = parse_json(body)?;
    *detail = format!("key={}", super::printable(&request.key_name));
    let named = Some(request.key_name.as_str()).filter(|n| !n.is_empty());
    let proof = authorize(node, client, &request.admin_password.0, Operation::List, named, detail).await?;
    // A certificate lists only the keys its list grants cover.
    let grants = super::access::grants_of(node, client);
    let listable = |name: &str| {
        proof == AdminProof::Password || grants.as_ref().is_some_and(|g| g.granted(Operation::List, Some(name)))
    };
    let snapshot = node.keystore.snapshot();
    let only_type = match (request.key_name.is_empty(), request.key_type.is_empty()) {
        (false, true) => return Err(ApiError::KeyTypeRequired),
        (_, false) => Some(key_type(&request.key_type)?),
        (true, true) => None,
    };
    let mut records = Vec::new();
    for t in KeyType::ALL.into_iter().filter(|t| only_type.is_none_or(|o| o == *t)) {
        if request.key_name.is_empty() {
            records.extend(snapshot.sorted(t).into_iter().filter(|(name, _)| listable(name)));
        } else if let Some(record) = snapshot.get(t, &request.key_name) {
            records.push((request.key_name.clone(), record));
        } else {
            return Err(ApiError::NoKeyWithName(t));
        }
    }
    let mut response = ListKeysResponse::default();
    for (name, record) in records {
        let length_info = |length: usize| SymmetricKeyInfo {
            name: name.clone(),
            created_at: Int64(record.created_at_ms),
            key_length: Int64(length as i64),
        };
        match &record.material {
            KeyMaterial::Symmetric(k) => response.symmetric_key.push(length_info(k.len())),
            KeyMaterial::Mac(k) => response.mac_key.push(length_info(k.len())),
            KeyMaterial::Asymmetric(k) => response.asymmetric_key.push(AsymmetricKeyInfo {
                name: name.clone(),
                created_at: Int64(record.created_at_ms),
                key_spec: k.spec().as_str().to_string(),
                public_key: Bytes(k.public_key_der()),
            }),
        }
    }
    json_response(&response)
}

async fn get_logs(node: &Node, client: &ClientInfo, body: &[u8], detail: &mut String) -> ApiResult {
    let request: PasswordOnlyRequest = parse_json(body)?;
    authorize(node, client, &request.admin_password.0, Operation::GetLogs, None, detail).await?;
    json_response(&LogsResponse { log: node.audit.snapshot() })
}
