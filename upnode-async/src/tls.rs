//! TLS over any futures-io stream (rustls through `futures-rustls`), written once for every
//! runtime. Certificates are verified as the rustls configuration says (by default against
//! its roots, for the server name given).

use crate::error::ConnectError;
use crate::runtime::BoxStream;
use futures_rustls::rustls::pki_types::ServerName;
use futures_rustls::rustls::{ClientConfig, ServerConfig};
use futures_rustls::{TlsAcceptor, TlsConnector};
use std::io;
use std::sync::Arc;

/// The client side: a configuration and the name the server's certificate must carry.
#[derive(Clone)]
pub(crate) struct TlsClient {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl TlsClient {
    /// Checks the server name now, so a bad one is an error and not a failure on every
    /// attempt.
    pub fn new(config: Arc<ClientConfig>, server_name: &str) -> Result<TlsClient, ConnectError> {
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|_| ConnectError::ServerName(server_name.to_owned()))?;
        Ok(TlsClient {
            connector: TlsConnector::from(config),
            name,
        })
    }

    /// The TLS handshake over an open stream.
    pub async fn handshake(&self, stream: BoxStream) -> io::Result<BoxStream> {
        let tls = self.connector.connect(self.name.clone(), stream).await?;
        Ok(Box::new(tls))
    }
}

/// The server side's TLS handshake over an accepted stream.
pub(crate) async fn accept(config: Arc<ServerConfig>, stream: BoxStream) -> io::Result<BoxStream> {
    let tls = TlsAcceptor::from(config).accept(stream).await?;
    Ok(Box::new(tls))
}
