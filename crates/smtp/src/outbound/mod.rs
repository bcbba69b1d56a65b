//! Outbound delivery: the queue worker, routing (MX, static routes, smarthost), the SMTP client and
//! DSN bounces.
//!
//! Implementation notes (the invariants of this module):
//! - **Never lose, never deliver twice on purpose.** A recipient is marked delivered only after the
//!   next hop's 2xx to the end of data; it is marked failed only after its DSN was stored (or when
//!   there is nobody to tell: the null sender). A crash in between repeats an attempt, never skips one.
//! - **Leases.** Recipients are claimed with a lease (`outbound.lease`) in the name of this node (the
//!   server's hostname); on start the node's own leases are released, so a restart after `kill -9`
//!   retries at once. While a delivery task holds recipients (waiting for a slot or talking to
//!   the next hop) it renews their leases every third of a lease, so neither this node's next
//!   claim nor another node takes them over: one delivery at a time, however slow the host.
//!   Another node takes over only after a lease expired (the holder died).
//! - **Limits.** One task per destination domain and claim batch, each holding a per-domain permit
//!   (`max_connections_per_domain`) from the start, and while connected one permit for the
//!   destination address (`max_connections_per_destination`, per IPv4 address or IPv6 /64) and
//!   a global one (`max_connections`), taken in that order: a task waiting for a tarpit host
//!   holds no global permit, and however many domains name that host it gets fewer connections
//!   than there are in all. The messages of a batch for one domain share one connection
//!   (RSET-free: each transaction ends with the reply to the end of data). The whole attempt
//!   (routing, connecting, every transaction) ends at `outbound.attempt_timeout`; the RFC 5321
//!   §4.5.3.2 timeouts apply to each step within it; what is unfinished is deferred (4.4.2).
//! - **Destinations.** MX answers (and the A/AAAA fallback) naming loopback, private,
//!   link-local, multicast or our own listening addresses are skipped, the next MX tried (RFC
//!   5321 §5.1), and a domain left without hosts fails with 5.4.4 and the reason in the DSN,
//!   unless `outbound.allow_private_destinations`. Smarthost and static routes are exempt.
//! - **TLS.** MX hosts: opportunistic STARTTLS, any certificate (RFC 7435; MTA-STS RFC 8461 and
//!   DANE RFC 7672 enforcement are planned), plaintext retry if the handshake fails. Relays (smarthost,
//!   static routes): STARTTLS or implicit TLS as configured, required, certificate verified against
//!   the system trust store unless `verify_certificate = false`; AUTH only over TLS.
//! - **8-bit and UTF-8.** A message needing SMTPUTF8 (UTF-8 envelope or header) sent to a server
//!   without it fails permanently with `5.6.7` (RFC 6531 §3.2: no downgrade is defined for the
//!   envelope, and rewriting headers would break signatures). An 8-bit message to a server without
//!   8BITMIME fails permanently with `5.6.3` rather than being sent as-is (RFC 6152 §3 forbids that)
//!   or re-encoded (which would break DKIM signatures); such servers are practically extinct.
//! - **DSNs** (RFC 3464) go to the envelope sender through the normal delivery path (local mailbox
//!   or this queue), never for the null sender; one "delayed" DSN per message after
//!   `outbound.delay_warning`. Failures of several destination domains of one message produce one
//!   DSN each. A queued message carries its sender's trust: failure and delay DSNs are not sent
//!   when the sender failed SPF or DMARC (forwarded mail; backscatter), "relayed" only to an
//!   authenticated or SPF-pass sender, the full message (RET=FULL) only to an authenticated one.
//!   DSNs leaving this server are capped per destination domain (`dsn::DsnLimiter`).
//! - **RFC 3461.** NOTIFY=NEVER (or a NOTIFY without FAILURE / DELAY) suppresses those DSNs. A
//!   next hop offering DSN gets RET, ENVID, NOTIFY and ORCPT as received (§5.2.1) and reports
//!   from then on; one without DSN makes NOTIFY=SUCCESS a "relayed" DSN (§5.2.2), sent after
//!   the 2xx and not retried (the recipient is delivered either way).

pub mod client;
mod destination;
pub mod dsn;
mod envelope;
pub mod routing;
mod tls;
mod worker;

pub use worker::Outbound;
