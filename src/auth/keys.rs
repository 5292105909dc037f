//! Token keys: the service's own HS256 signing key (created on first start in the data
//! folder, mode 0600) and, optionally, an external identity provider's public key.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::AppError;

pub const SIGNING_KEY_FILE: &str = "signing.key";

/// The claims of every token this service issues or accepts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    /// Organisation slug.
    pub org: String,
    pub roles: Vec<String>,
    pub exp: i64,
    pub iat: i64,
    pub iss: String,
    pub aud: String,
}

pub struct TokenKeys {
    encoding: EncodingKey,
    local: (DecodingKey, Validation),
    external: Option<(DecodingKey, Validation)>,
    issuer: String,
    audience: String,
    pub default_ttl: Duration,
}

fn validation(algorithm: Algorithm, issuer: &str, audience: &str) -> Validation {
    let mut v = Validation::new(algorithm);
    v.set_issuer(&[issuer]);
    v.set_audience(&[audience]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    v.leeway = 30;
    v
}

impl TokenKeys {
    /// Loads the signing key from the data folder, creating it if absent. Returns the keys
    /// and whether the key file was created now.
    pub fn load_or_create(config: &Config) -> Result<(TokenKeys, bool), String> {
        let path = config.data_dir.join(SIGNING_KEY_FILE);
        let (secret, created) = read_or_create_secret(&path)?;
        let external = match &config.external_idp {
            None => None,
            Some(idp) => {
                let key = match idp.algorithm {
                    Algorithm::ES256 => DecodingKey::from_ec_pem(idp.public_key_pem.as_bytes()),
                    _ => DecodingKey::from_rsa_pem(idp.public_key_pem.as_bytes()),
                }
                .map_err(|e| format!("cannot read the identity provider's public key: {e}"))?;
                Some((key, validation(idp.algorithm, &idp.issuer, &idp.audience)))
            }
        };
        Ok((
            TokenKeys {
                encoding: EncodingKey::from_secret(&secret),
                local: (
                    DecodingKey::from_secret(&secret),
                    validation(Algorithm::HS256, &config.token_issuer, &config.token_audience),
                ),
                external,
                issuer: config.token_issuer.clone(),
                audience: config.token_audience.clone(),
                default_ttl: config.token_ttl,
            },
            created,
        ))
    }

    /// Issues a token for `org` with `roles`, valid for `ttl`.
    pub fn mint(&self, org: &str, subject: &str, roles: &[&str], ttl: Duration) -> Result<String, AppError> {
        let now = chrono::Utc::now().timestamp();
        let ttl_secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2);
        let claims = Claims {
            sub: subject.to_string(),
            org: org.to_string(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            exp: now.saturating_add(ttl_secs),
            iat: now,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AppError::internal(format!("cannot sign token: {e}")))
    }

    /// Verifies a bearer token: HS256 tokens against the local key, RS256/ES256 against the
    /// configured identity provider. Anything else is a 401.
    pub fn verify(&self, token: &str) -> Result<Claims, AppError> {
        let header = decode_header(token).map_err(|_| AppError::Unauthorized("malformed token".into()))?;
        let (key, validation) = if header.alg == Algorithm::HS256 {
            (&self.local.0, &self.local.1)
        } else {
            match &self.external {
                Some((key, v)) if v.algorithms.contains(&header.alg) => (key, v),
                _ => return Err(AppError::Unauthorized("token algorithm not accepted".into())),
            }
        };
        decode::<Claims>(token, key, validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AppError::Unauthorized("token expired".into()),
                jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                    AppError::Unauthorized("token signature is not valid".into())
                }
                jsonwebtoken::errors::ErrorKind::InvalidIssuer => {
                    AppError::Unauthorized("token issuer not accepted".into())
                }
                jsonwebtoken::errors::ErrorKind::InvalidAudience => {
                    AppError::Unauthorized("token audience not accepted".into())
                }
                _ => AppError::Unauthorized("token is not valid".into()),
            })
    }
}

fn read_or_create_secret(path: &Path) -> Result<(Vec<u8>, bool), String> {
    let engine = base64::engine::general_purpose::STANDARD;
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let secret = engine
                .decode(text.trim())
                .map_err(|e| format!("signing key {} is not valid base64: {e}", path.display()))?;
            if secret.len() < 32 {
                return Err(format!("signing key {} is shorter than 32 bytes", path.display()));
            }
            Ok((secret, false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret: [u8; 48] = rand::random();
            write_private_file(path, engine.encode(secret).as_bytes())?;
            Ok((secret.to_vec(), true))
        }
        Err(e) => Err(format!("cannot read signing key {}: {e}", path.display())),
    }
}

/// Creates `path` readable by its owner only (0600), failing if it already exists.
fn write_private_file(path: &Path, content: &[u8]) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| format!("cannot create signing key {}: {e}", path.display()))?;
    file.write_all(content)
        .and_then(|_| file.sync_all())
        .map_err(|e| format!("cannot write signing key {}: {e}", path.display()))
}

/// Where the signing key lives for a configuration (for the start-up message).
pub fn signing_key_path(config: &Config) -> PathBuf {
    config.data_dir.join(SIGNING_KEY_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> (TokenKeys, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = Config::for_database("sqlite://unused.db", dir.path().to_path_buf());
        let (keys, created) = TokenKeys::load_or_create(&config).expect("keys");
        assert!(created);
        (keys, dir)
    }

    #[test]
    fn key_file_is_private_and_reused() {
        let (keys, dir) = keys();
        let path = dir.path().join(SIGNING_KEY_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("exists").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let token = keys
            .mint("acme", "alice", &["admin"], Duration::from_secs(60))
            .expect("mint");
        let config = Config::for_database("sqlite://unused.db", dir.path().to_path_buf());
        let (again, created) = TokenKeys::load_or_create(&config).expect("reload");
        assert!(!created);
        let claims = again.verify(&token).expect("same key verifies");
        assert_eq!(claims.org, "acme");
        assert_eq!(claims.roles, vec!["admin".to_string()]);
    }

    #[test]
    fn rejects_tampered_and_foreign_tokens() {
        let (keys, _dir) = keys();
        let (other, _dir2) = self::keys();
        let token = other
            .mint("acme", "mallory", &["admin"], Duration::from_secs(60))
            .expect("mint");
        assert!(matches!(keys.verify(&token), Err(AppError::Unauthorized(_))));
        assert!(matches!(keys.verify("not.a.token"), Err(AppError::Unauthorized(_))));
    }
}
