//! Connection slots through the real binary (security issue 17): a listener with its own
//! `max_connections` stops a flood at that limit, so a flood of port 25 from many addresses
//! cannot take the global slots that IMAP users need. (The IPv6 /48 cap is tested in the
//! listener runtime's unit tests: on loopback the binary only ever sees ::1.)

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use support::wire::Wire;
use support::{PASSWORD, TestServer};

#[test]
fn a_flood_on_the_smtp_listener_from_many_addresses_leaves_imap_users_their_slots() {
    // Eight slots in all, at most four of them on port 25.
    let server = TestServer::start_with(
        &["imap"],
        &["alice"],
        "[[listener]]\nname = \"smtp\"\nprotocol = \"smtp\"\nbind = \"127.0.0.1:0\"\n\
         max_connections = 4\n[limits]\nmax_connections = 8\n",
    );
    // Eight flooders, each from its own address, so no per-address limit is involved.
    let mut held = Vec::new();
    let mut refused = 0;
    for n in 2..10 {
        let from = IpAddr::V4(Ipv4Addr::new(127, 0, 0, n));
        let mut wire = Wire::connect_from(from, server.addr("smtp"));
        let first = wire.line();
        if first.starts_with("220 ") {
            held.push(wire);
        } else {
            assert_eq!(first, "421 4.7.0 Too many connections, try again later");
            assert!(wire.expect_close(Duration::from_secs(5)).is_empty());
            refused += 1;
        }
    }
    assert_eq!((held.len(), refused), (4, 4));
    // While the flood holds its four slots, an IMAP user still gets in.
    let mut imap = Wire::connect(server.addr("imap"));
    let greeting = imap.line();
    assert!(greeting.starts_with("* OK [CAPABILITY "), "{greeting}");
    let (_, ok) = imap.imap("l", &format!("LOGIN alice@example.test {PASSWORD}"));
    assert!(ok.starts_with("l OK"), "{ok}");
    assert_eq!(imap.imap("o", "LOGOUT").1, "o OK LOGOUT completed");
    // The flooders are still connected and served.
    for wire in &mut held {
        assert!(wire.smtp("EHLO flood.test").starts_with("250"));
    }
}
