//! Creates the benchmark keys through the admin API (reusing existing ones).

use std::path::Path;

use crate::client::{Client, Target};
use crate::ops::Op;
use crate::Error;

/// Path of the admin key-generation endpoint.
const GENERATEKEY: &str = "/REST/v1/admin/generatekey";

/// Reads `DIR/admin-password`, without the trailing newline.
pub fn admin_password(dir: &Path) -> Result<String, Error> {
    let path = dir.join("admin-password");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}

/// The `input` bytes of `op`: its fixed input, or for a decryption the
/// ciphertext the server makes of it (one call to the encryption endpoint).
pub async fn op_input(client: &mut Client, h2: bool, op: &Op) -> Result<Vec<u8>, Error> {
    let Some((path, body)) = op.encrypt_body() else {
        return Ok(crate::ops::input(op.input_len));
    };
    let (status, answer) = client.post(&Target::new(path, h2), body).await?;
    let output = serde_json::from_slice::<serde_json::Value>(&answer)
        .ok()
        .and_then(|v| v.get("output").and_then(|o| o.as_str()).map(str::to_string))
        .filter(|_| status.as_u16() == 200)
        .ok_or_else(|| format!("{path}: HTTP {status}: {}", String::from_utf8_lossy(&answer)))?;
    use base64::Engine;
    Ok(base64::engine::general_purpose::STANDARD.decode(output)?)
}

/// Generates the key of every op; `409` (name exists) means the key is reused.
/// Returns one progress line per key.
pub async fn ensure_keys(client: &mut Client, h2: bool, password: &str, ops: &[&Op]) -> Result<Vec<String>, Error> {
    let target = Target::new(GENERATEKEY, h2);
    let mut lines = Vec::new();
    for op in ops {
        let (status, body) = client.post(&target, op.generatekey_body(password)).await?;
        let outcome = match status.as_u16() {
            200 => "created",
            409 => "exists, reused",
            _ => {
                let msg = String::from_utf8_lossy(&body);
                return Err(format!("generatekey {}: HTTP {status}: {msg}", op.key.name).into());
            }
        };
        lines.push(format!("key {}: {outcome}", op.key.name));
    }
    Ok(lines)
}
