use super::*;

const EXAMPLE: &str = include_str!("../../../../tern.example.toml");

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::from_toml_str(text, Path::new("/etc/tern"))
}

fn error_lines(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(config) => panic!("expected errors, got {config:?}"),
        Err(errors) => errors.errors().iter().map(ToString::to_string).collect(),
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn development_profile_is_loopback_with_self_signed_tls_and_plaintext_on_loopback() {
    let c = Config::development(PathBuf::from("./tern-data"));
    assert_eq!(c.hostname, "localhost");
    assert_eq!(c.domains, ["localhost"]);
    assert_eq!(
        c.store,
        StoreUrl::Sqlite(PathBuf::from("./tern-data/tern.db"))
    );
    assert!(c.auth.allow_plaintext_on_loopback);
    assert!(c.tls.self_signed);
    let ports: Vec<(Protocol, u16)> = c
        .listeners
        .iter()
        .map(|l| (l.protocol, l.bind.port()))
        .collect();
    assert_eq!(
        ports,
        [
            (Protocol::Smtp, 2525),
            (Protocol::Submission, 2587),
            (Protocol::Submissions, 2465),
            (Protocol::Imap, 2143),
            (Protocol::Imaps, 2993),
            (Protocol::Pop3, 2110),
            (Protocol::Pop3s, 2995),
            (Protocol::ManageSieve, 4190),
            (Protocol::Http, 8080),
        ]
    );
    assert!(c.listeners.iter().all(|l| l.bind.ip().is_loopback()));
    assert_eq!(c.self_signed_names(), ["localhost"]);
    // Loopback only: it runs as whoever starts it, so the README's first command works as root.
    assert!(c.allow_root);
}

#[test]
fn example_file_parses_to_the_documented_values() {
    let c = parse(EXAMPLE).unwrap_or_else(|e| panic!("example config is invalid:\n{e}"));
    assert_eq!(c.hostname, "mail.example.com");
    assert_eq!(c.domains, ["example.com", "example.org"]);
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/tern"));
    assert_eq!(
        c.store,
        StoreUrl::Sqlite(PathBuf::from("/var/lib/tern/tern.db"))
    );
    assert_eq!(c.log_format, LogFormat::Text);
    assert_eq!((c.user.as_deref(), c.allow_root), (None, false));
    // Every value the example spells out equals the built-in default.
    assert_eq!(c.auth, AuthConfig::default());
    assert_eq!(c.limits, Limits::default());
    let by_name = |n: &str| {
        c.listeners
            .iter()
            .find(|l| l.name == n)
            .unwrap_or_else(|| panic!("no listener {n}"))
    };
    assert_eq!(by_name("submissions").tls, TlsMode::Implicit);
    assert_eq!(by_name("imap").tls, TlsMode::StartTls);
    assert_eq!(by_name("lmtp-local").bind, addr("127.0.0.1:24"));
    assert_eq!(by_name("http").tls, TlsMode::None);
    assert_eq!(by_name("smtp-internal").protocol, Protocol::Smtp);
    assert_eq!(c.listeners.len(), 11);
    // The default listener set is the example's minus the two extras.
    let defaults = ListenerConfig::defaults();
    for d in &defaults {
        assert_eq!(by_name(&d.name), d);
    }
    assert_eq!(
        c.tls.cert,
        Some(PathBuf::from("/etc/tern/tls/fullchain.pem"))
    );
    assert_eq!(c.tls.domains.len(), 2);
    assert!(c.tls.domains.contains_key("*.example.net"));
}

#[test]
fn empty_file_gives_production_defaults_but_needs_a_certificate() {
    let lines = error_lines("");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("tls: listeners \"smtp\""), "{lines:?}");
    let c = parse("[tls]\nself_signed = true\n").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.listeners, ListenerConfig::defaults());
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/tern"));
    assert!(!c.auth.allow_plaintext_on_loopback);
    assert_eq!(c.auth.subaddress_separator, Some('+'));
    assert!(!c.hostname.is_empty());
    let smtp = &c.listeners[0];
    assert_eq!(
        (smtp.name.as_str(), smtp.bind),
        ("smtp", addr("0.0.0.0:25"))
    );
    let http = c.listeners.iter().find(|l| l.protocol == Protocol::Http);
    assert_eq!(http.map(|l| l.bind), Some(addr("127.0.0.1:8080")));
}

#[test]
fn unknown_key_error_names_the_key_and_its_line() {
    let text = "hostname = \"mx.example.com\"\n[limits]\nmax_conections = 5\n";
    let lines = error_lines(text);
    assert_eq!(lines.len(), 1);
    assert!(lines[0].contains("max_conections"), "{}", lines[0]);
    assert!(lines[0].contains("line 3"), "{}", lines[0]);
}

#[test]
fn toml_syntax_error_reports_its_location() {
    let lines = error_lines("hostname = \n");
    assert!(lines[0].contains("line 1"), "{}", lines[0]);
}

#[test]
fn every_error_is_reported_together_with_its_key_path() {
    let text = r#"
hostname = "bad host"
domains = ["example.com", "EXAMPLE.com", "-x.org"]
log_format = "xml"

[[listener]]
protocol = "smtp"
bind = "127.0.0.1:2525"

[[listener]]
protocol = "imap"
bind = "127.0.0.1:2525"

[[listener]]
protocol = "imaps"
bind = "x"

[[listener]]
protocol = "smtp"
bind = "127.0.0.1:2526"

[[listener]]
protocol = "gopher"

[auth]
subaddress_separator = "ab"

[limits]
max_line_length = 80
max_connections = 0
max_mailboxes = 0

[tls]
cert = "cert.pem"
"#;
    let lines = error_lines(text);
    let expected = [
        "hostname: invalid host name \"bad host\"",
        "domains[1]: duplicate domain \"example.com\"",
        "domains[2]: \"-x.org\": invalid domain: label starts or ends with '-'",
        "log_format: unknown format \"xml\"",
        "listener[1].bind: duplicate bind address 127.0.0.1:2525 (also listener[0])",
        "listener[2].bind: invalid socket address \"x\"",
        "listener[3].name: duplicate listener name \"smtp\" (also listener[0])",
        "listener[4].protocol: unknown protocol \"gopher\"",
        "auth.subaddress_separator: invalid separator \"ab\"",
        "limits.max_connections: must be at least 1",
        "limits.max_line_length: must be at least 1000",
        "limits.max_mailboxes: must be at least 1",
        "tls.key: required when tls.cert is set",
    ];
    for e in expected {
        assert!(
            lines.iter().any(|l| l.starts_with(e)),
            "missing {e:?} in\n{}",
            lines.join("\n")
        );
    }
    assert_eq!(lines.len(), expected.len(), "{}", lines.join("\n"));
    // Display is one error per line.
    let shown = parse(text).err().map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(shown.lines().count(), expected.len());
}

#[test]
fn postgres_store_is_rejected_as_not_yet_supported() {
    let text =
        "store = \"postgres://tern:secret@db.example.com/tern\"\n[tls]\nself_signed = true\n";
    let lines = error_lines(text);
    assert_eq!(lines.len(), 1);
    assert!(lines[0].starts_with("store: PostgreSQL is not yet supported"));
    assert!(!lines[0].contains("secret"));
    let debug = format!(
        "{:?}",
        StoreUrl::Postgres("postgres://tern:secret@db.example.com/tern".into())
    );
    assert!(!debug.contains("secret"), "{debug}");
}

#[test]
fn relative_paths_resolve_against_the_config_directory_and_data_dir() {
    let text = r#"
data_dir = "data"
store = "sqlite:meta/tern.db"
[tls]
cert = "tls/cert.pem"
key = "tls/key.pem"
[tls.domains."Mail.Example.org"]
cert = "/abs/c.pem"
key = "k.pem"
"#;
    let c = parse(text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.data_dir, PathBuf::from("/etc/tern/data"));
    assert_eq!(
        c.store,
        StoreUrl::Sqlite(PathBuf::from("/etc/tern/data/meta/tern.db"))
    );
    assert_eq!(c.tls.cert, Some(PathBuf::from("/etc/tern/tls/cert.pem")));
    let pair = c.tls.domains.get("mail.example.org");
    assert_eq!(
        pair,
        Some(&CertPair {
            cert: PathBuf::from("/abs/c.pem"),
            key: PathBuf::from("/etc/tern/k.pem"),
        })
    );
}

#[test]
fn listener_defaults_follow_the_protocol() {
    let text = r#"
[[listener]]
protocol = "pop3s"
[[listener]]
protocol = "lmtp"
bind = "[::1]:24"
[[listener]]
protocol = "http"
tls = "starttls"
[tls]
self_signed = true
"#;
    let lines = error_lines(text);
    assert_eq!(
        lines,
        ["listener[2].tls: HTTP has no STARTTLS; use \"none\" or \"implicit\""]
    );
    let c = parse(&text.replace("tls = \"starttls\"", "tls = \"implicit\""))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.listeners[0],
        ListenerConfig::new(Protocol::Pop3s, addr("0.0.0.0:995"))
    );
    assert_eq!(c.listeners[0].tls, TlsMode::Implicit);
    assert_eq!(c.listeners[1].tls, TlsMode::None);
    assert_eq!(c.listeners[2].bind, addr("127.0.0.1:8080"));
}

#[test]
fn wildcard_bind_overlapping_a_specific_address_is_an_error() {
    let text = r#"
listener = [
  { protocol = "smtp", bind = "0.0.0.0:25" },
  { name = "smtp2", protocol = "smtp", bind = "127.0.0.1:25" },
  { name = "smtp3", protocol = "smtp", bind = "127.0.0.1:26" },
]
[tls]
self_signed = true
"#;
    assert_eq!(
        error_lines(text),
        ["listener[1].bind: 127.0.0.1:25 overlaps 0.0.0.0:25 of listener[0]"]
    );
}

#[test]
fn no_listeners_need_no_certificate_and_empty_separator_disables_subaddressing() {
    let text = "listener = []\n[auth]\nsubaddress_separator = \"\"\n";
    let c = parse(text).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.listeners.is_empty());
    assert_eq!(c.auth.subaddress_separator, None);
}

#[test]
fn self_signed_with_a_certificate_and_incomplete_sni_entries_are_errors() {
    let text = r#"
[tls]
cert = "c.pem"
key = "k.pem"
self_signed = true
[tls.domains."bad name"]
cert = "c.pem"
"#;
    assert_eq!(
        error_lines(text),
        [
            "tls.self_signed: cannot be combined with tls.cert; remove one of them",
            "tls.domains.\"bad name\": invalid name; expected a host name or *.parent wildcard",
            "tls.domains.\"bad name\".key: required",
        ]
    );
}

#[test]
fn load_reads_a_file_and_names_it_in_errors() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("tern.toml");
    let missing = Config::load(&path).err().map(|e| e.to_string());
    assert!(
        missing
            .as_deref()
            .is_some_and(|m| m.contains("cannot read") && m.contains("tern.toml")),
        "{missing:?}"
    );
    std::fs::write(&path, "data_dir = \"d\"\n[tls]\nself_signed = true\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let c = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.data_dir, dir.path().join("d"));
    std::fs::write(&path, "nope = 1\n").unwrap_or_else(|e| panic!("{e}"));
    let bad = Config::load(&path)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(bad.contains("tern.toml") && bad.contains("nope"), "{bad}");
}

#[test]
fn lmtp_off_loopback_needs_allow_remote_and_defaults_to_loopback() {
    let open =
        "[[listener]]\nprotocol = \"lmtp\"\nbind = \"0.0.0.0:24\"\n[tls]\nself_signed = true\n";
    let lines = error_lines(open);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("listener[0].bind: LMTP has no authentication"),
        "{lines:?}"
    );
    let mapped = open.replace("0.0.0.0:24", "[::ffff:127.0.0.1]:24");
    assert!(parse(&mapped).is_ok());
    let allowed = open.replace("bind = ", "allow_remote = true\nbind = ");
    let c = parse(&allowed).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.listeners[0].bind, addr("0.0.0.0:24"));
    let default_bind = "[[listener]]\nprotocol = \"lmtp\"\n[tls]\nself_signed = true\n";
    let c = parse(default_bind).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.listeners[0].bind, addr("127.0.0.1:24"));
    let misplaced =
        "[[listener]]\nprotocol = \"smtp\"\nallow_remote = true\n[tls]\nself_signed = true\n";
    assert_eq!(
        error_lines(misplaced),
        ["listener[0].allow_remote: only LMTP listeners have this setting"]
    );
}

#[test]
fn the_dsn_limit_per_domain_defaults_to_100_an_hour_and_must_be_at_least_1() {
    let c = parse(EXAMPLE).unwrap_or_else(|e| panic!("example config is invalid:\n{e}"));
    assert_eq!(c.outbound.dsn_per_domain_per_hour, 100);
    assert_eq!(OutboundConfig::default().dsn_per_domain_per_hour, 100);
    let with = |n: u32| {
        format!(
            "{}\n[outbound]\ndsn_per_domain_per_hour = {n}\n",
            "[tls]\nself_signed = true"
        )
    };
    assert_eq!(parse(&with(7)).unwrap().outbound.dsn_per_domain_per_hour, 7);
    let lines = error_lines(&with(0));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("outbound.dsn_per_domain_per_hour: must be at least 1")),
        "{lines:?}"
    );
}

#[test]
fn outbound_destination_limits_deadline_and_private_allowance_are_validated() {
    let c = parse(EXAMPLE).unwrap_or_else(|e| panic!("example config is invalid:\n{e}"));
    assert_eq!(c.outbound.max_connections_per_destination, 8);
    assert_eq!(c.outbound.attempt_timeout, Duration::from_secs(600));
    assert!(!c.outbound.allow_private_destinations);
    let with = |outbound: &str| format!("[tls]\nself_signed = true\n[outbound]\n{outbound}\n");
    let c = parse(&with(
        "max_connections = 3\nattempt_timeout_seconds = 5\nallow_private_destinations = true",
    ))
    .unwrap();
    // Not set: below max_connections.
    assert_eq!(c.outbound.max_connections_per_destination, 2);
    assert_eq!(c.outbound.attempt_timeout, Duration::from_secs(5));
    assert!(c.outbound.allow_private_destinations);
    for bad in [
        "max_connections = 4\nmax_connections_per_destination = 4",
        "max_connections_per_destination = 0",
    ] {
        let lines = error_lines(&with(bad));
        assert!(
            lines.iter().any(|l| l.starts_with(
                "outbound.max_connections_per_destination: must be at least 1 and below max_connections"
            )),
            "{bad}: {lines:?}"
        );
    }
    for (bad, key) in [
        (
            "attempt_timeout_seconds = 0",
            "outbound.attempt_timeout_seconds",
        ),
        (
            "lease_seconds = 2",
            "outbound.lease_seconds: must be at least 3",
        ),
    ] {
        let lines = error_lines(&with(bad));
        assert!(lines.iter().any(|l| l.starts_with(key)), "{bad}: {lines:?}");
    }
}

#[test]
fn message_memory_defaults_to_four_largest_messages_and_must_hold_one() {
    let base = "[tls]\nself_signed = true\n[limits]\n";
    let c = parse(base).unwrap();
    assert_eq!(c.limits.message_memory, 256 << 20);
    let c = parse(&format!("{base}max_message_size = 100000000\n")).unwrap();
    assert_eq!(c.limits.message_memory, 400_000_000);
    let c = parse(&format!("{base}message_memory = 67108864\n")).unwrap();
    assert_eq!(c.limits.message_memory, 64 << 20);
    let lines = error_lines(&format!(
        "{base}max_message_size = 1000000\nmessage_memory = 999999\n"
    ));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("limits.message_memory: must be at least 1000000"),
        "{lines:?}"
    );
}

#[test]
fn a_listener_may_have_its_own_connection_limit_and_the_ipv6_48_cap_follows_the_per_ip_limit() {
    let text = r#"
[[listener]]
protocol = "smtp"
bind = "127.0.0.1:2525"
max_connections = 300

[[listener]]
protocol = "imap"
bind = "127.0.0.1:2143"

[limits]
max_connections_per_ip = 10

[tls]
self_signed = true
"#;
    let c = parse(text).unwrap();
    assert_eq!(c.listeners[0].max_connections, Some(300));
    assert_eq!(c.listeners[1].max_connections, None);
    assert_eq!(c.limits.max_connections_per_ipv6_48, 40);
    let lines = error_lines(
        "[[listener]]\nprotocol = \"smtp\"\nmax_connections = 0\n\
         [limits]\nmax_connections_per_ipv6_48 = 0\n[tls]\nself_signed = true\n",
    );
    assert_eq!(
        lines,
        [
            "listener[0].max_connections: must be at least 1",
            "limits.max_connections_per_ipv6_48: must be at least 1",
        ]
    );
}

#[test]
fn user_names_that_cannot_be_in_the_passwd_database_are_rejected() {
    for bad in ["", "a:b", " tern", "a/b"] {
        let text = format!("user = {bad:?}\n");
        let err = parse(&text).expect_err(&text).to_string();
        assert!(err.contains("user: invalid user name"), "{err}");
    }
    let c = parse("user = \"mail-tern\"\nallow_root = true\n[tls]\nself_signed = true\n")
        .expect("valid");
    assert_eq!((c.user.as_deref(), c.allow_root), (Some("mail-tern"), true));
}
