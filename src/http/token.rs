//! `POST /v1/auth/token`: OAuth2 client-credentials grant for API clients.

use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::api_clients::verify_secret;
use crate::db::{self};
use crate::error::AppError;
use crate::http::Routes;
use crate::state::AppState;

pub fn routes(routes: &mut Routes) {
    routes.at("/auth/token", |r| r.route(web::post().to(token)));
}

/// Client credentials, as JSON or `application/x-www-form-urlencoded` (or HTTP Basic).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({"grant_type": "client_credentials", "client_id": "rc_5f0c2a9e8b7d6c5b4a39281f", "client_secret": "s3cr3t"}))]
pub struct TokenRequest {
    /// Must be `client_credentials` when given.
    #[serde(default)]
    pub grant_type: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"access_token": "eyJhbGciOiJIUzI1NiJ9…", "token_type": "Bearer", "expires_in": 3600}))]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Lifetime in seconds.
    pub expires_in: u64,
}

fn basic_credentials(req: &HttpRequest) -> Option<(String, String)> {
    let value = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

/// Exchange an API client's id and secret for a bearer token.
#[utoipa::path(post, path = "/v1/auth/token", tag = "auth",
    request_body(content(
        (TokenRequest = "application/json"),
        (TokenRequest = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "A bearer token", body = TokenResponse),
              (status = 401, description = "Unknown client, wrong secret or revoked client", body = crate::error::Problem, content_type = "application/problem+json")))]
pub async fn token(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Either<web::Json<TokenRequest>, web::Form<TokenRequest>>,
) -> Result<HttpResponse, AppError> {
    let body = match body {
        web::Either::Left(json) => json.into_inner(),
        web::Either::Right(form) => form.into_inner(),
    };
    if let Some(grant) = &body.grant_type
        && grant != "client_credentials"
    {
        return Err(AppError::invalid("grant_type", "only client_credentials is supported"));
    }
    let (client_id, secret) = match (body.client_id, body.client_secret, basic_credentials(&req)) {
        (Some(id), Some(secret), _) => (id, secret),
        (_, _, Some(basic)) => basic,
        _ => {
            return Err(AppError::Unauthorized(
                "client_id and client_secret are required".into(),
            ));
        }
    };
    let keys = state.keys.clone();
    let pool = state.pool.clone();
    let (org_slug, role, client_id) = db::run(&pool, move |c| {
        let client = db::repo::api_clients::find_by_client_id(c, &client_id)?;
        // The slow hash runs even for unknown ids so response time does not reveal them.
        let hash = client.as_ref().map(|cl| cl.secret_hash.as_str()).unwrap_or(DUMMY_HASH);
        let ok = verify_secret(&secret, hash);
        match client {
            Some(cl) if ok && cl.revoked_at.is_none() => {
                let org = db::repo::organizations::find(c, cl.org_id)?;
                Ok((org.slug, cl.role, cl.client_id))
            }
            _ => Err(AppError::Unauthorized("unknown client or wrong secret".into())),
        }
    })
    .await?;
    let ttl = keys.default_ttl;
    let subject = format!("client:{client_id}");
    let access_token = keys.mint(&org_slug, &subject, &[role.as_str()], ttl)?;
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(TokenResponse {
            access_token,
            token_type: "Bearer".into(),
            expires_in: ttl.as_secs(),
        }))
}

/// An argon2 hash of a random string, verified against when the client id is unknown.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0bDCvCqtz0V8f2Vj6E0N2VhxWJ3YqcV1bJkP0n1Yx0A";
