//! `[filter]`: spam scoring thresholds, the clamd antivirus connection and DNSBL zones. Raw form,
//! typed form and validation live together here so the filter's settings are read in one place.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// Spam and malware filtering of incoming mail (MX and LMTP; submissions are only virus-scanned).
#[derive(Debug, Clone, PartialEq)]
pub struct FilterConfig {
    /// Score spam at all. Default: `true`; with `false` no spam headers are added and nothing goes
    /// to Junk (the antivirus still runs when `clamd` is set).
    pub spam: bool,
    /// Score at or above which a message goes to the recipient's Junk mailbox. Default: 5.0, the
    /// SpamAssassin convention operators know; a classifier verdict alone reaches it only when the
    /// classifier is ≥ 95 % sure (see `bayes_weight`).
    pub junk_threshold: f64,
    /// Score at or above which the message is refused at end of DATA with `550 5.7.1`. Default:
    /// 15.0: three times the junk threshold, so only messages that several rules agree on are
    /// refused — a refusal is not recoverable by the user, Junk is.
    pub reject_threshold: f64,
    /// Points the classifier adds at certainty 1 (spam) and subtracts at 0 (ham); linear in between,
    /// 0 at 0.5. Default: 5.25, so a classifier probability of 0.976 alone reaches the default junk
    /// threshold and a confident ham verdict offsets one or two weak rules.
    pub bayes_weight: f64,
    /// Messages of each class (spam and ham, site-wide plus the account's own) the classifier must
    /// have learned before it scores. Default: 20 of each; below that its token statistics are
    /// noise.
    pub bayes_min_messages: u64,
    /// Where clamd listens: a unix socket path or `host:port`. Default: none — no virus scanning,
    /// stated in the log at start-up.
    pub clamd: Option<ClamdAddress>,
    /// What to do when clamd cannot be asked (down, timeout, error reply). Default:
    /// [`ClamdFailure::Tempfail`]: the sender retries later, so no message goes unscanned.
    pub clamd_failure: ClamdFailure,
    /// Time for connecting to clamd, and separately for the whole scan of one message. Default: 30 s;
    /// clamd scans a typical message in well under a second, and a sender's SMTP client waits at
    /// least 10 minutes for the end-of-DATA reply (RFC 5321 §4.5.3.2.6).
    pub clamd_timeout: Duration,
    /// Largest message sent to clamd, in bytes; larger ones are handled as `too_large_to_scan`
    /// says. Default: `limits.max_message_size`, so that no message escapes the scan. clamd
    /// refuses streams above its `StreamMaxLength` (25 MiB unless raised), which counts as a
    /// failed scan (`clamd_failure`): raise it to the message size limit, or lower this.
    pub max_scan_size: u64,
    /// What happens to a message above `max_scan_size`. Default: [`ClamdFailure::Tempfail`]
    /// (`451 4.7.1`): a mail server with a virus scanner never accepts mail unscanned unless
    /// the operator says so (`"accept"`: delivered with `X-Virus-Scan: skipped`).
    pub too_large_to_scan: ClamdFailure,
    /// DNS blocklist zones queried for the connecting client's IP address (MX only), e.g.
    /// `zen.spamhaus.org`. Default: none — most lists have usage terms the operator must accept.
    pub dnsbl_zones: Vec<String>,
    /// Points added per listing zone. Default: 3.0: a listing alone does not send mail to Junk,
    /// together with a spammy classifier verdict it does.
    pub dnsbl_weight: f64,
    /// Time for all DNSBL queries of one message together. Default: 5 s; an unanswered query counts
    /// as not listed.
    pub dnsbl_timeout: Duration,
}

// Validation rejects NaN and infinities, so equality on the validated config is an equivalence.
impl Eq for FilterConfig {}

impl Default for FilterConfig {
    fn default() -> Self {
        FilterConfig {
            spam: true,
            junk_threshold: 5.0,
            reject_threshold: 15.0,
            bayes_weight: 5.25,
            bayes_min_messages: 20,
            clamd: None,
            clamd_failure: ClamdFailure::Tempfail,
            clamd_timeout: Duration::from_secs(30),
            max_scan_size: super::Limits::default().max_message_size,
            too_large_to_scan: ClamdFailure::Tempfail,
            dnsbl_zones: Vec::new(),
            dnsbl_weight: 3.0,
            dnsbl_timeout: Duration::from_secs(5),
        }
    }
}

/// Where clamd listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClamdAddress {
    /// clamd's `LocalSocket`.
    Unix(PathBuf),
    /// clamd's `TCPSocket`/`TCPAddr`, as `host:port`.
    Tcp(String),
}

/// What happens to a message clamd could not scan (or, for `too_large_to_scan`, was not sent
/// to clamd because of its size).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClamdFailure {
    /// Refuse it for now (`451 4.7.1`); the sender retries.
    #[default]
    Tempfail,
    /// Deliver it with an `X-Virus-Scan: failed` header.
    Accept,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFilter {
    pub spam: Option<bool>,
    pub junk_threshold: Option<f64>,
    pub reject_threshold: Option<f64>,
    pub bayes_weight: Option<f64>,
    pub bayes_min_messages: Option<u64>,
    /// Unix socket path (absolute, or `unix:<path>`) or `host:port`.
    pub clamd: Option<String>,
    /// `tempfail` or `accept`.
    pub clamd_failure: Option<String>,
    pub clamd_timeout_seconds: Option<u64>,
    pub max_scan_size: Option<u64>,
    /// `tempfail` or `accept`.
    pub too_large_to_scan: Option<String>,
    pub dnsbl_zones: Option<Vec<String>>,
    pub dnsbl_weight: Option<f64>,
    pub dnsbl_timeout_seconds: Option<u64>,
}

/// Raw → typed; every problem is returned with its key path. `max_message_size` is the validated
/// `limits.max_message_size`, the default of `max_scan_size`.
pub(super) fn validate(raw: RawFilter, max_message_size: u64) -> (FilterConfig, Vec<ConfigError>) {
    let mut errors = Vec::new();
    let d = FilterConfig::default();
    let mut number = |key: &str, value: Option<f64>, default: f64| match value {
        Some(v) if !v.is_finite() => {
            errors.push(ConfigError::new(
                format!("filter.{key}"),
                "must be a finite number",
            ));
            default
        }
        Some(v) => v,
        None => default,
    };
    let junk_threshold = number("junk_threshold", raw.junk_threshold, d.junk_threshold);
    let reject_threshold = number("reject_threshold", raw.reject_threshold, d.reject_threshold);
    let bayes_weight = number("bayes_weight", raw.bayes_weight, d.bayes_weight);
    let dnsbl_weight = number("dnsbl_weight", raw.dnsbl_weight, d.dnsbl_weight);
    if reject_threshold < junk_threshold {
        errors.push(ConfigError::new(
            "filter.reject_threshold",
            format!("must not be below junk_threshold ({junk_threshold})"),
        ));
    }
    if bayes_weight < 0.0 {
        errors.push(ConfigError::new(
            "filter.bayes_weight",
            "must not be negative",
        ));
    }
    let clamd = raw.clamd.and_then(|s| match parse_clamd(&s) {
        Ok(a) => Some(a),
        Err(m) => {
            errors.push(ConfigError::new("filter.clamd", m));
            None
        }
    });
    let mut failure_mode = |key: &str, value: Option<&str>| match value {
        None | Some("tempfail") => ClamdFailure::Tempfail,
        Some("accept") => ClamdFailure::Accept,
        Some(other) => {
            errors.push(ConfigError::new(
                format!("filter.{key}"),
                format!("unknown mode {other:?}; expected \"tempfail\" or \"accept\""),
            ));
            ClamdFailure::Tempfail
        }
    };
    let clamd_failure = failure_mode("clamd_failure", raw.clamd_failure.as_deref());
    let too_large_to_scan = failure_mode("too_large_to_scan", raw.too_large_to_scan.as_deref());
    let mut seconds = |key: &str, value: Option<u64>, default: Duration| match value {
        Some(0) => {
            errors.push(ConfigError::new(
                format!("filter.{key}"),
                "must be at least 1",
            ));
            default
        }
        Some(s) => Duration::from_secs(s),
        None => default,
    };
    let clamd_timeout = seconds(
        "clamd_timeout_seconds",
        raw.clamd_timeout_seconds,
        d.clamd_timeout,
    );
    let dnsbl_timeout = seconds(
        "dnsbl_timeout_seconds",
        raw.dnsbl_timeout_seconds,
        d.dnsbl_timeout,
    );
    let mut dnsbl_zones = Vec::new();
    for (i, zone) in raw.dnsbl_zones.unwrap_or_default().into_iter().enumerate() {
        let zone = zone.trim_end_matches('.').to_ascii_lowercase();
        if super::validate::is_dns_name(&zone, false) {
            dnsbl_zones.push(zone);
        } else {
            errors.push(ConfigError::new(
                format!("filter.dnsbl_zones[{i}]"),
                format!("invalid DNS zone {zone:?}"),
            ));
        }
    }
    let config = FilterConfig {
        spam: raw.spam.unwrap_or(d.spam),
        junk_threshold,
        reject_threshold,
        bayes_weight,
        bayes_min_messages: raw.bayes_min_messages.unwrap_or(d.bayes_min_messages),
        clamd,
        clamd_failure,
        clamd_timeout,
        max_scan_size: raw.max_scan_size.unwrap_or(max_message_size),
        too_large_to_scan,
        dnsbl_zones,
        dnsbl_weight,
        dnsbl_timeout,
    };
    (config, errors)
}

/// `/path`, `unix:/path` or `host:port`.
fn parse_clamd(s: &str) -> Result<ClamdAddress, String> {
    let path = s.strip_prefix("unix:").unwrap_or(s);
    if path.starts_with('/') {
        return Ok(ClamdAddress::Unix(PathBuf::from(path)));
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(ClamdAddress::Tcp(s.to_owned()))
        }
        _ => Err(format!(
            "{s:?}: expected an absolute unix socket path or host:port (e.g. \"127.0.0.1:3310\")"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    /// Parses `text` below a TLS setting, so only the filter's own errors show.
    fn parse(text: &str) -> Result<Config, crate::config::ConfigErrors> {
        let text = format!("[tls]\nself_signed = true\n{text}");
        Config::from_toml_str(&text, std::path::Path::new("/etc/tern"))
    }

    #[test]
    fn example_filter_table_spells_out_the_defaults_plus_a_clamd_socket() {
        let example = include_str!("../../../../tern.example.toml");
        let c = Config::from_toml_str(example, std::path::Path::new("/etc/tern"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.filter,
            FilterConfig {
                clamd: Some(ClamdAddress::Unix("/run/clamav/clamd.ctl".into())),
                ..FilterConfig::default()
            }
        );
    }

    #[test]
    fn filter_defaults_apply_without_a_filter_table() {
        let c = parse("").expect("valid");
        assert_eq!(c.filter, FilterConfig::default());
        assert_eq!(c.filter.clamd, None);
        assert!(c.filter.dnsbl_zones.is_empty());
    }

    #[test]
    fn clamd_accepts_socket_paths_and_host_port() {
        let c =
            parse("[filter]\nclamd = \"unix:/run/clamav/clamd.ctl\"\nclamd_failure = \"accept\"")
                .expect("valid");
        assert_eq!(
            c.filter.clamd,
            Some(ClamdAddress::Unix("/run/clamav/clamd.ctl".into()))
        );
        assert_eq!(c.filter.clamd_failure, ClamdFailure::Accept);
        let c = parse("[filter]\nclamd = \"[::1]:3310\"").expect("valid");
        assert_eq!(c.filter.clamd, Some(ClamdAddress::Tcp("[::1]:3310".into())));
    }

    #[test]
    fn every_message_is_scanned_by_default_and_oversize_handling_is_explicit() {
        let c = parse("[limits]\nmax_message_size = 80000000").expect("valid");
        assert_eq!(c.filter.max_scan_size, 80_000_000);
        assert_eq!(c.filter.too_large_to_scan, ClamdFailure::Tempfail);
        let c =
            parse("[filter]\nmax_scan_size = 1000\ntoo_large_to_scan = \"accept\"").expect("valid");
        assert_eq!(c.filter.max_scan_size, 1000);
        assert_eq!(c.filter.too_large_to_scan, ClamdFailure::Accept);
        let e = parse("[filter]\ntoo_large_to_scan = \"skip\"").expect_err("invalid");
        assert_eq!(e.errors()[0].path, "filter.too_large_to_scan");
    }

    #[test]
    fn every_bad_filter_value_is_reported() {
        let e = parse(
            "[filter]\nclamd = \"clamd\"\nclamd_failure = \"skip\"\njunk_threshold = 9.0\n\
             reject_threshold = 8.0\nclamd_timeout_seconds = 0\ndnsbl_zones = [\"ok.test\", \"bad zone\"]",
        )
        .expect_err("invalid");
        let paths: Vec<&str> = e.errors().iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "filter.reject_threshold",
                "filter.clamd",
                "filter.clamd_failure",
                "filter.clamd_timeout_seconds",
                "filter.dnsbl_zones[1]",
            ]
        );
    }
}
