//! Opening a session with a next hop: a connection slot for its destination, then connect,
//! EHLO, TLS and AUTH as the hop requires, all before the attempt's deadline.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tern_common::config::RelayTls;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;
use tracing::info;

use super::{Connection, Outbound};
use crate::outbound::client::{self, Client, ClientError, Timeouts};
use crate::outbound::routing::{Hop, HopKind};

impl Outbound {
    /// Tries every address of every hop in order (RFC 5321 §5.1) until a session is ready for
    /// MAIL, or `deadline` passes.
    pub(super) async fn connect_any(
        &self,
        hops: &[Hop],
        deadline: Instant,
        last_error: &mut String,
    ) -> Option<Connection> {
        for hop in hops {
            for addr in &hop.addrs {
                if Instant::now() >= deadline {
                    *last_error = format!(
                        "the attempt was cut off after outbound.attempt_timeout before {} [{}] \
                         was tried (last error: {last_error})",
                        hop.host,
                        addr.ip()
                    );
                    return None;
                }
                let Some(slots) = self.slots(hop, addr.ip(), deadline).await else {
                    *last_error = format!(
                        "{} [{}]: no connection slot free before the attempt deadline \
                         (outbound.attempt_timeout; outbound.max_connections_per_destination)",
                        hop.host,
                        addr.ip()
                    );
                    return None;
                };
                match self.open_session(hop, *addr, true, deadline).await {
                    Ok(client) => {
                        return Some(Connection {
                            client,
                            host: hop.host.clone(),
                            _slots: slots,
                        });
                    }
                    Err(e) => {
                        info!(host = %hop.host, addr = %addr, error = %e, "outbound: cannot use host");
                        *last_error = format!("{} [{}]: {e}", hop.host, addr.ip());
                        if matches!(e, ClientError::Deadline { .. }) {
                            return None;
                        }
                    }
                }
            }
        }
        None
    }

    /// A slot for `ip`'s destination, then one of the global ones, waiting until `deadline` at
    /// most. In this order, so a task waiting for a busy destination (a tarpit) holds none of
    /// the global slots the other destinations need. A configured relay (smarthost, static
    /// route) takes no destination slot: the operator chose it, and all mail may go there.
    async fn slots(
        &self,
        hop: &Hop,
        ip: IpAddr,
        deadline: Instant,
    ) -> Option<(Option<OwnedSemaphorePermit>, OwnedSemaphorePermit)> {
        let destination = match hop.kind {
            HopKind::Mx => Some(self.per_destination.for_ip(ip)),
            HopKind::Relay(_) => None,
        };
        let both = async {
            let d = match destination {
                Some(slots) => Some(slots.acquire_owned().await.ok()?),
                None => None,
            };
            let g = Arc::clone(&self.global).acquire_owned().await.ok()?;
            Some((d, g))
        };
        tokio::time::timeout_at(deadline, both).await.ok().flatten()
    }

    fn timeouts(&self) -> Timeouts {
        Timeouts::rfc5321(self.config.connect_timeout, self.config.command_timeout)
    }

    /// Connect, EHLO, TLS as the hop requires, AUTH for relays.
    async fn open_session(
        &self,
        hop: &Hop,
        addr: SocketAddr,
        try_tls: bool,
        deadline: Instant,
    ) -> Result<Client, ClientError> {
        let name = server_name(&hop.host, addr.ip());
        match &hop.kind {
            HopKind::Mx => {
                let mut client = Client::connect(addr, self.timeouts(), deadline).await?;
                client.hello(&self.ehlo).await?;
                if try_tls && self.config.opportunistic_tls && client.caps.has(client::STARTTLS) {
                    let upgraded = async {
                        client.starttls(&self.tls.opportunistic, name).await?;
                        client.hello(&self.ehlo).await
                    };
                    if let Err(e) = upgraded.await {
                        // RFC 7435 §4: opportunistic, so fall back to cleartext on a new connection.
                        info!(host = %hop.host, error = %e, "outbound: STARTTLS failed; retrying without TLS");
                        drop(client);
                        return Box::pin(self.open_session(hop, addr, false, deadline)).await;
                    }
                }
                Ok(client)
            }
            HopKind::Relay(relay) => {
                let connector: &TlsConnector = if relay.verify_certificate {
                    &self.tls.verified
                } else {
                    &self.tls.opportunistic
                };
                let mut client = match relay.tls {
                    RelayTls::Implicit => {
                        Client::connect_tls(
                            addr,
                            self.timeouts(),
                            deadline,
                            connector,
                            name.clone(),
                        )
                        .await?
                    }
                    _ => Client::connect(addr, self.timeouts(), deadline).await?,
                };
                client.hello(&self.ehlo).await?;
                if relay.tls == RelayTls::StartTls {
                    if !client.caps.has(client::STARTTLS) {
                        return Err(ClientError::Io(format!(
                            "{} does not offer STARTTLS, which the route requires",
                            hop.host
                        )));
                    }
                    client.starttls(connector, name).await?;
                    client.hello(&self.ehlo).await?;
                }
                if let (Some(user), Some(file)) = (&relay.username, &relay.password_file) {
                    let Some(password) = self.passwords.get(file) else {
                        return Err(ClientError::Io("relay password not loaded".into()));
                    };
                    if !client.caps.has(client::AUTH) {
                        return Err(ClientError::Io(format!("{} does not offer AUTH", hop.host)));
                    }
                    client.auth(user, password).await?;
                }
                Ok(client)
            }
        }
    }
}

/// TLS server name: the host name, or the IP address for an address literal.
fn server_name(host: &str, ip: IpAddr) -> ServerName<'static> {
    ServerName::try_from(host.to_owned()).unwrap_or(ServerName::IpAddress(ip.into()))
}
