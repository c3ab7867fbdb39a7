//! The admin's credentials other than its client secret, and how the token endpoint checks them:
//!
//! - **certificate**: an RSA key and a self-signed certificate (rcgen) that the emulator trusts
//!   for the admin's client id, as if uploaded to the app's `keyCredentials`. A client assertion
//!   is verified as the Microsoft identity platform does
//!   (<https://learn.microsoft.com/entra/identity-platform/certificate-credentials>): RS256 (or
//!   PS256) signature with the key of the certificate named by the `x5t` (SHA-1) or `x5t#S256`
//!   header, `aud` = this token endpoint, `iss` = `sub` = the client id, a `jti`, and `nbf`/`exp`
//!   around now. The signature is checked with RustCrypto's `rsa`, not with ring (which the tools
//!   sign with), so a bug in one implementation cannot hide itself.
//! - **workload identity federation**
//!   (<https://learn.microsoft.com/entra/workload-id/workload-identity-federation>): the admin app
//!   has one federated identity credential (issuer `{url}/_sim/oidc`, a GitHub-Actions-style
//!   subject, audience `api://AzureADTokenExchange`). The emulator is also that external issuer:
//!   it mints the assertion the tools read from `AZURE_FEDERATED_TOKEN_FILE` (signed with its own
//!   key in the emulator's token format, not RS256 from a JWKS).
//! - **managed identity**: with `Options::managed_identity`, the main listener serves the App
//!   Service protocol (`GET /msi/token?resource=..&api-version=2019-08-01` with
//!   `X-IDENTITY-HEADER`;
//!   <https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference>)
//!   and the VM metadata protocol (`GET /metadata/identity/oauth2/token?resource=..&api-version=2018-02-01`
//!   with `Metadata: true`;
//!   <https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token>),
//!   which accepts only the IMDS api-versions Learn documents ([`IMDS_VERSIONS`]).
//!   The managed identity is the admin's service principal, so its tokens may do what the
//!   admin may.
//!
//! UNVERIFIED (plausible, documented so nobody relies on them blindly): the AADSTS codes for a
//! federated assertion with a bad signature (700027) and for a missing `jti` (50027); the App
//! Service endpoint's error bodies (`{"statusCode", "message"}`); a 5-minute clock skew.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use rsa::RsaPublicKey;
use rsa::pkcs8::EncodePrivateKey;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::exchange::{Ctx, Reply};
use crate::state::{EXCHANGE_AUDIENCE, Sim, TrustedCert};
use crate::util::{lock, now_ms};

/// `client_assertion_type` of a JWT client assertion (RFC 7523).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Clock skew allowed on `nbf` and `exp`.
const SKEW_S: u64 = 300;

/// A client certificate: PEM text with the certificate and its PKCS#8 private key, what a tool
/// is given in `AZURE_CLIENT_CERTIFICATE_PATH`, and what the emulator trusts about it.
pub struct ClientCertificate {
    pub pem: String,
    pub der: Vec<u8>,
    pub key: RsaPublicKey,
}

impl ClientCertificate {
    /// The certificate's SHA-1 thumbprint, base64url (the `x5t` header).
    pub fn x5t(&self) -> String {
        B64.encode(sha1::Sha1::digest(&self.der))
    }
    pub fn trusted_for(&self, client_id: &str) -> TrustedCert {
        TrustedCert {
            client_id: client_id.to_ascii_lowercase(),
            sha1: sha1::Sha1::digest(&self.der).to_vec(),
            sha256: Sha256::digest(&self.der).to_vec(),
            key: self.key.clone(),
        }
    }
}

/// A new RSA-2048 key and a self-signed certificate for it, valid for a year. Takes about a
/// second (RSA key generation), so the in-process server makes one only when asked.
pub fn generate_client_certificate(common_name: &str) -> Result<ClientCertificate, String> {
    let mut rng = rand::thread_rng();
    let private = rsa::RsaPrivateKey::new(&mut rng, 2048).map_err(|e| format!("RSA key: {e}"))?;
    let key = private.to_public_key();
    let pkcs8 = private
        .to_pkcs8_der()
        .map_err(|e| format!("RSA key encoding: {e}"))?;
    let pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
        &rustls::pki_types::PrivatePkcs8KeyDer::from(pkcs8.as_bytes()),
        &rcgen::PKCS_RSA_SHA256,
    )
    .map_err(|e| format!("RSA key for rcgen: {e}"))?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(365);
    let cert = params
        .self_signed(&pair)
        .map_err(|e| format!("certificate: {e}"))?;
    let pem = format!("{}{}", cert.pem(), pair.serialize_pem());
    Ok(ClientCertificate {
        pem,
        der: cert.der().to_vec(),
        key,
    })
}

fn aad_error(status: u16, error: &str, code: u32, text: &str) -> Reply {
    crate::access_token::aad_error(status, error, code, text)
}

fn invalid_client(code: u32, text: &str) -> Reply {
    aad_error(401, "invalid_client", code, text)
}

fn decode_part(p: &str) -> Option<Value> {
    B64.decode(p.trim_end_matches('='))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}

fn malformed() -> Reply {
    aad_error(
        400,
        "invalid_request",
        50027,
        "JWT token is invalid or malformed.",
    )
}

/// Checks a `client_assertion` for `client_id`: `Ok` when the client is authenticated, else
/// the reply Entra would give.
pub fn check_client_assertion(
    sim: &Sim,
    client_id: &str,
    assertion_type: Option<&str>,
    assertion: &str,
) -> Result<(), Reply> {
    if assertion_type != Some(JWT_BEARER) {
        return Err(aad_error(
            400,
            "invalid_request",
            900144,
            &format!(
                "The request body must contain the following parameter: 'client_assertion_type' with the value '{JWT_BEARER}'."
            ),
        ));
    }
    let mut parts = assertion.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let (Some(header), Some(claims)) = (decode_part(h), decode_part(p)) else {
        return Err(malformed());
    };
    let iss = claims["iss"].as_str().unwrap_or_default();
    // An app's own assertion names the app as issuer; anything else is a token from an
    // external identity provider, matched against the app's federated identity credentials.
    if iss.eq_ignore_ascii_case(client_id) {
        check_certificate_assertion(sim, client_id, &header, &claims, h, p, s)
    } else {
        check_federated_assertion(sim, client_id, &claims, assertion)
    }
}

/// A JWT NumericDate claim in whole seconds: "a JSON numeric value representing the number of
/// seconds from 1970-01-01T00:00:00Z UTC [...] non-integer values can be represented" (RFC 7519
/// §2). MSAL Python and azure-identity send `time.time()` floats (`"exp": 1767225600.123`).
fn numeric_date(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0 && *f < 1e15)
            .map(|f| f.floor() as u64)
    })
}

/// A certificate thumbprint header (`x5t`, `x5t#S256`): base64url, with or without the `=`
/// padding. RFC 7515 §2 says base64url "with all trailing '=' characters omitted", but MSAL
/// Python sends `base64.urlsafe_b64encode(...)` with its padding, and Entra accepts it.
fn thumbprint(v: &Value) -> Option<Vec<u8>> {
    v.as_str()
        .and_then(|t| B64.decode(t.trim_end_matches('=')).ok())
}

fn time_range(claims: &Value) -> Result<(), Reply> {
    let now = now_ms() / 1000;
    let nbf = numeric_date(&claims["nbf"]).unwrap_or(0);
    let exp = numeric_date(&claims["exp"]).unwrap_or(0);
    if exp == 0 || exp + SKEW_S <= now || nbf > now + SKEW_S {
        return Err(invalid_client(
            700024,
            &format!(
                "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}. Review the documentation at https://docs.microsoft.com/azure/active-directory/develop/active-directory-certificate-credentials .",
                crate::util::rfc3339_secs(now * 1000),
                crate::util::rfc3339_secs(nbf * 1000),
                crate::util::rfc3339_secs(exp * 1000)
            ),
        ));
    }
    Ok(())
}

fn check_certificate_assertion(
    sim: &Sim,
    client_id: &str,
    header: &Value,
    claims: &Value,
    h: &str,
    p: &str,
    s: &str,
) -> Result<(), Reply> {
    let alg = header["alg"].as_str().unwrap_or_default();
    if alg != "RS256" && alg != "PS256" {
        return Err(invalid_client(
            700027,
            &format!(
                "Client assertion failed signature validation. (Reason - the signing algorithm '{alg}' is not supported: use RS256 or PS256.)"
            ),
        ));
    }
    let by_sha1 = thumbprint(&header["x5t"]);
    let by_sha256 = thumbprint(&header["x5t#S256"]);
    let shown = header["x5t"]
        .as_str()
        .or(header["x5t#S256"].as_str())
        .unwrap_or("(none)")
        .to_string();
    let cert = lock(&sim.trusted_certs)
        .iter()
        .find(|c| {
            c.client_id.eq_ignore_ascii_case(client_id)
                && (by_sha1.as_deref() == Some(&c.sha1[..])
                    || by_sha256.as_deref() == Some(&c.sha256[..]))
        })
        .cloned();
    let Some(cert) = cert else {
        return Err(invalid_client(
            700027,
            &format!(
                "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{shown}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'. Review the documentation at https://docs.microsoft.com/en-us/graph/deployments#app-registration-and-token-service-root-endpoints to set up the correct key.]"
            ),
        ));
    };
    let signed = format!("{h}.{p}");
    let sig = B64.decode(s.trim_end_matches('=')).unwrap_or_default();
    let ok = match alg {
        "RS256" => {
            use rsa::signature::Verifier;
            let vk = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(cert.key.clone());
            rsa::pkcs1v15::Signature::try_from(&sig[..])
                .is_ok_and(|sig| vk.verify(signed.as_bytes(), &sig).is_ok())
        }
        _ => {
            use rsa::signature::Verifier;
            let vk = rsa::pss::VerifyingKey::<Sha256>::new(cert.key.clone());
            rsa::pss::Signature::try_from(&sig[..])
                .is_ok_and(|sig| vk.verify(signed.as_bytes(), &sig).is_ok())
        }
    };
    if !ok {
        return Err(invalid_client(
            700027,
            "Client assertion contains an invalid signature. [Reason - The key was found, but the signature does not match.]",
        ));
    }
    let aud = claims["aud"].as_str().unwrap_or_default();
    if !token_endpoints(sim)
        .iter()
        .any(|e| e.eq_ignore_ascii_case(aud.trim_end_matches('/')))
    {
        return Err(invalid_client(
            700023,
            "Client assertion audience claim does not match Realm issuer. Review the documentation at https://docs.microsoft.com/azure/active-directory/develop/active-directory-certificate-credentials .",
        ));
    }
    time_range(claims)?;
    if !claims["sub"]
        .as_str()
        .is_some_and(|s| s.eq_ignore_ascii_case(client_id))
    {
        return Err(invalid_client(
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://docs.microsoft.com/azure/active-directory/develop/active-directory-certificate-credentials .",
        ));
    }
    if claims["jti"].as_str().is_none_or(str::is_empty) {
        return Err(malformed());
    }
    Ok(())
}

/// The token endpoint as an assertion's `aud` may name it: with the tenant id or its domain.
fn token_endpoints(sim: &Sim) -> Vec<String> {
    let main = sim.urls().main;
    let t = lock(&sim.tenant);
    [&t.tenant_id, &t.initial_domain]
        .iter()
        .map(|tenant| format!("{main}/{tenant}/oauth2/v2.0/token"))
        .collect()
}

fn check_federated_assertion(
    sim: &Sim,
    client_id: &str,
    claims: &Value,
    assertion: &str,
) -> Result<(), Reply> {
    let Some(fed) = lock(&sim.federation).clone() else {
        return Err(no_federated_record(claims));
    };
    let is_admin = lock(&sim.tenant)
        .admin
        .client_id
        .eq_ignore_ascii_case(client_id);
    let matches = is_admin
        && claims["iss"].as_str() == Some(fed.issuer.as_str())
        && claims["sub"].as_str() == Some(fed.subject.as_str())
        && claims["aud"].as_str() == Some(EXCHANGE_AUDIENCE);
    if !matches {
        return Err(no_federated_record(claims));
    }
    match crate::jwt::verify(&fed.key, assertion, 0) {
        // `now` = 0: only the signature is checked here; the time range is Entra's own check
        // below, with its own error.
        Ok(_) | Err(crate::jwt::TokenError::Expired) => {}
        Err(_) => {
            return Err(invalid_client(
                700027,
                "Client assertion failed signature validation. [Reason - The key used to sign the assertion was not found in the issuer's signing keys.]",
            ));
        }
    }
    time_range(claims)
}

fn no_federated_record(claims: &Value) -> Reply {
    let s = |k: &str| claims[k].as_str().unwrap_or_default().to_string();
    aad_error(
        400,
        "invalid_request",
        70021,
        &format!(
            "No matching federated identity record found for presented assertion. Assertion Issuer: '{}'. Assertion Subject: '{}'. Assertion Audience: '{}'. https://learn.microsoft.com/entra/workload-id/workload-identity-federation",
            s("iss"),
            s("sub"),
            s("aud")
        ),
    )
}

// ---------- managed identity ----------

/// Which managed-identity protocol a request speaks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MiProtocol {
    /// App Service / Functions / Container Apps: `IDENTITY_ENDPOINT` + `X-IDENTITY-HEADER`.
    AppService,
    /// The VM metadata endpoint (IMDS): `Metadata: true`.
    Imds,
}

impl MiProtocol {
    /// The protocol a path belongs to, if any.
    pub fn of_path(path: &str) -> Option<MiProtocol> {
        match path.trim_end_matches('/') {
            "/msi/token" => Some(MiProtocol::AppService),
            "/metadata/identity/oauth2/token" => Some(MiProtocol::Imds),
            _ => None,
        }
    }
}

fn mi_error(proto: MiProtocol, status: u16, error: &str, text: &str) -> Reply {
    match proto {
        MiProtocol::AppService => {
            Reply::json(status, json!({"statusCode": status, "message": text}))
        }
        MiProtocol::Imds => Reply::json(status, json!({"error": error, "error_description": text})),
    }
}

/// The IMDS api-versions the identity endpoint answers: the versions Learn's Instance Metadata
/// Service page lists as supported ("Supported API versions") from the one that introduced
/// `/identity`, 2018-02-01 (how-to-use-vm-token: "use API version 2018-02-01 or greater"),
/// through 2021-01-01, the last the page version read lists
/// (learn.microsoft.com/azure/virtual-machines/instance-metadata-service#versioning).
const IMDS_VERSIONS: &[&str] = &[
    "2018-02-01",
    "2018-04-02",
    "2018-10-01",
    "2019-02-01",
    "2019-03-11",
    "2019-04-30",
    "2019-06-01",
    "2019-06-04",
    "2019-08-01",
    "2019-08-15",
    "2019-11-01",
    "2020-06-01",
    "2020-07-15",
    "2020-09-01",
    "2020-10-01",
    "2020-12-01",
    "2021-01-01",
];

/// IMDS without an api-version answers 400 with the newest versions (documented body, Learn's
/// Instance Metadata Service page, "Versioning"); the answer to a version it does not know is
/// not documented, and the emulator gives the same shape (UNVERIFIED).
fn imds_version_error(version: &str) -> Reply {
    let error = if version.is_empty() {
        "Bad request. api-version was not specified in the request. For more information refer to aka.ms/azureimds".to_string()
    } else {
        format!(
            "Bad request. api-version '{version}' is invalid. For more information refer to aka.ms/azureimds"
        )
    };
    let newest: Vec<&str> = IMDS_VERSIONS.iter().rev().take(3).copied().collect();
    Reply::json(400, json!({"error": error, "newest-versions": newest}))
}

/// A managed-identity token request.
pub fn managed_identity(sim: &Sim, proto: MiProtocol, ctx: &Ctx) -> Reply {
    let Some(secret) = sim.identity_header.clone() else {
        return Reply::json(
            404,
            json!({"error":"not_found","error_description":"The requested endpoint does not exist."}),
        );
    };
    if ctx.method != "GET" {
        return mi_error(proto, 405, "invalid_request", "Only GET is supported.");
    }
    let (want_version, header_ok) = match proto {
        MiProtocol::AppService => (
            "2019-08-01",
            ctx.header("x-identity-header")
                .is_some_and(|h| crate::jwt::ct_eq(h.as_bytes(), secret.as_bytes())),
        ),
        MiProtocol::Imds => (
            "2018-02-01",
            ctx.header("metadata")
                .is_some_and(|h| h.eq_ignore_ascii_case("true")),
        ),
    };
    if !header_ok {
        return match proto {
            MiProtocol::AppService => mi_error(
                proto,
                401,
                "unauthorized",
                "The X-IDENTITY-HEADER header is missing or does not match IDENTITY_HEADER.",
            ),
            // how-to-use-vm-token, "HTTP response reference": 400, bad_request_102.
            MiProtocol::Imds => mi_error(
                proto,
                400,
                "bad_request_102",
                "Required metadata header not specified",
            ),
        };
    }
    let version = ctx.q("api-version").unwrap_or_default();
    if proto == MiProtocol::Imds && !IMDS_VERSIONS.contains(&version) {
        return imds_version_error(version);
    }
    if version.is_empty() || (proto == MiProtocol::AppService && version != want_version) {
        return mi_error(
            proto,
            400,
            "invalid_request",
            &format!("An api-version is required: use api-version={want_version}."),
        );
    }
    let Some(resource) = ctx
        .q("resource")
        .map(|r| r.trim_end_matches('/').to_string())
    else {
        return mi_error(
            proto,
            400,
            "invalid_request",
            "Required query variable 'resource' is missing",
        );
    };
    let admin = lock(&sim.tenant).admin.client_id.clone();
    if let Some(id) = ctx.q("client_id") {
        if !id.eq_ignore_ascii_case(&admin) {
            return mi_error(proto, 400, "invalid_request", "Identity not found");
        }
    }
    let urls = sim.urls();
    if resource != urls.main && resource != urls.dynamics {
        let tid = lock(&sim.tenant).tenant_id.clone();
        return mi_error(
            proto,
            400,
            "invalid_resource",
            &format!(
                "AADSTS500011: The resource principal named {resource} was not found in the tenant named {tid}."
            ),
        );
    }
    let access = crate::access_token::issue_app_token(sim, &resource, &admin);
    let now = now_ms() / 1000;
    let mut body: HashMap<&str, Value> = HashMap::new();
    body.insert("access_token", json!(access));
    body.insert("expires_on", json!((now + 3599).to_string()));
    body.insert("resource", json!(resource));
    body.insert("token_type", json!("Bearer"));
    match proto {
        MiProtocol::AppService => {
            body.insert("client_id", json!(admin));
        }
        MiProtocol::Imds => {
            body.insert("refresh_token", json!(""));
            body.insert("expires_in", json!("3599"));
            body.insert("not_before", json!(now.to_string()));
        }
    }
    Reply::json(200, serde_json::to_value(body).unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_certificate_signs_what_its_public_key_verifies() {
        let c = generate_client_certificate("test").expect("certificate");
        assert!(c.pem.contains("-----BEGIN CERTIFICATE-----"));
        assert!(c.pem.contains("-----BEGIN PRIVATE KEY-----"));
        assert_eq!(B64.decode(c.x5t()).expect("base64url").len(), 20);
    }

    #[test]
    fn managed_identity_paths() {
        assert_eq!(
            MiProtocol::of_path("/msi/token/"),
            Some(MiProtocol::AppService)
        );
        assert_eq!(
            MiProtocol::of_path("/metadata/identity/oauth2/token"),
            Some(MiProtocol::Imds)
        );
        assert_eq!(MiProtocol::of_path("/x/oauth2/v2.0/token"), None);
    }
}
