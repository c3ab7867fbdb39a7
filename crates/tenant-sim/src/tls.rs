//! `--tls`: a throw-away CA and a server certificate for `127.0.0.1`, `::1` and `localhost`,
//! generated at start with rcgen and served with rustls (ring provider, installed explicitly in
//! the server config rather than as the process default). The CA certificate is written as PEM
//! to a temp file that lives as long as the server; clients trust it with `--ca-file`.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// The server side of `--tls`.
pub struct Tls {
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// The CA certificate (PEM) in a temp file, deleted when dropped.
    pub ca_file: tempfile::NamedTempFile,
}

fn err(what: &str) -> impl Fn(rcgen::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Generate a CA and a loopback server certificate, and build the rustls acceptor.
pub fn generate() -> Result<Tls, String> {
    let ca_key = KeyPair::generate().map_err(err("CA key"))?;
    let mut ca = CertificateParams::default();
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name
        .push(DnType::CommonName, "tenant-sim test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).map_err(err("CA certificate"))?;

    let key = KeyPair::generate().map_err(err("server key"))?;
    let mut leaf = CertificateParams::default();
    leaf.distinguished_name = DistinguishedName::new();
    leaf.distinguished_name
        .push(DnType::CommonName, "tenant-sim");
    leaf.subject_alt_names = vec![
        SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        SanType::DnsName("localhost".try_into().map_err(err("SAN"))?),
    ];
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_cert = leaf
        .signed_by(&key, &ca_cert, &ca_key)
        .map_err(err("server certificate"))?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf_cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .map_err(|e| format!("TLS server config: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];

    let mut ca_file = tempfile::Builder::new()
        .prefix("tenant-sim-ca-")
        .suffix(".pem")
        .tempfile()
        .map_err(|e| format!("CA file: {e}"))?;
    ca_file
        .write_all(ca_cert.pem().as_bytes())
        .and_then(|_| ca_file.flush())
        .map_err(|e| format!("CA file: {e}"))?;
    Ok(Tls {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        ca_file,
    })
}
