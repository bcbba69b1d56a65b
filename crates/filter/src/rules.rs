//! Rules: weighted features of a message that hint at spam or malware. Each hit adds its points to
//! the score; the classifier's points come on top (see `lib.rs`).
//!
//! Weights are in SpamAssassin's scale (5 = spam) and deliberately modest: no single header anomaly
//! sends a message to Junk on its own, because legitimate bulk and old mailers trip them too.
//! Executable attachments are the exception: they are how malware arrives, and Junk is a safe place
//! to look at them. Authentication results (SPF, DKIM, DMARC) of the pipeline's authentication stage
//! are further inputs (`authentication`).

use mail_parser::{Host, Message};

use crate::tokenize::{Analysis, extension, find_urls, url_host};

/// One rule that matched, with the points it adds (negative points mean "looks legitimate").
#[derive(Debug, Clone, PartialEq)]
pub struct RuleHit {
    /// Upper-case rule name, as shown in `X-Spam-Status: … tests=`.
    pub name: String,
    /// Points added to the score.
    pub points: f64,
}

/// No `Date:` (RFC 5322 §3.6 requires one); mostly ratware. SpamAssassin's MISSING_DATE is ~1.4.
pub(crate) const MISSING_DATE: f64 = 1.2;
/// No `Message-ID:` (RFC 5322 §3.6.4 "SHOULD"); some legitimate mailers omit it.
pub(crate) const MISSING_MESSAGE_ID: f64 = 0.8;
/// `From: "support@our-domain" <x@elsewhere>`: the display name claims one of our domains.
pub(crate) const FROM_NAME_SPOOFS_LOCAL_DOMAIN: f64 = 3.0;
/// A `Received:` in the message as it arrived claims our own host name: a forged trace.
pub(crate) const FORGED_RECEIVED: f64 = 3.0;
/// A link to a bare IP address; legitimate mail links to names.
pub(crate) const URL_IP_LITERAL: f64 = 1.5;
/// A link whose visible text is a URL or domain other than where it leads (phishing).
pub(crate) const URL_TEXT_MISMATCH: f64 = 2.5;
/// An attachment that runs code when opened on Windows.
pub(crate) const EXECUTABLE_ATTACHMENT: f64 = 4.0;
/// `invoice.pdf.exe`: an executable disguised as a document, on top of EXECUTABLE_ATTACHMENT.
pub(crate) const DOUBLE_EXTENSION: f64 = 3.0;

/// DMARC failed (RFC 7489): the From domain is not authenticated although its owner publishes a
/// policy. Under `p=none` this rule is the only consequence; under `p=quarantine`/`p=reject` the
/// authentication stage decides on its own. SpamAssassin's DMARC_NONE/DMARC_QUAR are ~0.1–2.
pub(crate) const DMARC_FAIL: f64 = 2.5;
/// SPF `fail` (`-all`) for the MAIL FROM domain: the domain owner says this host may not send
/// for it. Forwarding breaks SPF legitimately, so modest (SpamAssassin SPF_FAIL ~0.9).
pub(crate) const SPF_FAIL: f64 = 1.0;
/// SPF `softfail` (`~all`).
pub(crate) const SPF_SOFTFAIL: f64 = 0.5;
/// A valid DKIM signature by the From domain (SpamAssassin DKIM_VALID_AU −0.1): the author
/// domain vouches for the message, a little.
pub(crate) const DKIM_VALID_AUTHOR: f64 = -0.5;

/// Extensions Windows executes or scripts on open (Microsoft's "blocked attachments in Outlook"
/// list, the common part).
const EXECUTABLE: &[&str] = &[
    "exe", "scr", "com", "pif", "bat", "cmd", "js", "jse", "vbs", "vbe", "wsf", "wsh", "hta",
    "jar", "msi", "ps1", "lnk", "cpl", "reg",
];
/// Extensions that make a double extension look like a document.
const DOCUMENT: &[&str] = &[
    "pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "rtf", "txt", "jpg", "jpeg", "png", "gif",
    "zip", "htm", "html",
];

/// What the rules know about this server.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Site<'a> {
    /// This server's name (`Received: … by <hostname>`).
    pub hostname: &'a str,
    /// The local domains, lowercased.
    pub domains: &'a [String],
}

/// Evaluates the header, URL and attachment rules. `arrived_from_outside` is true for MX mail,
/// where a `Received:` by us in the original data cannot be genuine.
pub(crate) fn evaluate(
    msg: &Message<'_>,
    analysis: &Analysis,
    site: Site<'_>,
    arrived_from_outside: bool,
) -> Vec<RuleHit> {
    let mut hits = Vec::new();
    let mut hit = |name: &str, points: f64| {
        if !hits.iter().any(|h: &RuleHit| h.name == name) {
            hits.push(RuleHit {
                name: name.to_owned(),
                points,
            });
        }
    };
    if msg.date().is_none() {
        hit("MISSING_DATE", MISSING_DATE);
    }
    if msg.message_id().is_none() {
        hit("MISSING_MESSAGE_ID", MISSING_MESSAGE_ID);
    }
    if from_name_spoofs(msg, site.domains) {
        hit(
            "FROM_NAME_SPOOFS_LOCAL_DOMAIN",
            FROM_NAME_SPOOFS_LOCAL_DOMAIN,
        );
    }
    if arrived_from_outside && forged_received(msg, site.hostname) {
        hit("FORGED_RECEIVED", FORGED_RECEIVED);
    }
    let text_urls = analysis.texts.iter().flat_map(|t| find_urls(t));
    let link_urls = analysis
        .html
        .iter()
        .flat_map(|h| h.links.iter().map(|l| l.href.as_str()));
    if text_urls
        .chain(link_urls)
        .filter_map(url_host)
        .any(|h| h.parse::<std::net::IpAddr>().is_ok())
    {
        hit("URL_IP_LITERAL", URL_IP_LITERAL);
    }
    let mismatch = analysis
        .html
        .iter()
        .flat_map(|h| &h.links)
        .any(|l| link_text_mismatch(&l.href, &l.text));
    if mismatch {
        hit("URL_TEXT_MISMATCH", URL_TEXT_MISMATCH);
    }
    for (name, _) in &analysis.attachments {
        let Some(name) = name.as_deref() else {
            continue;
        };
        let Some(ext) = extension(name) else { continue };
        if EXECUTABLE.contains(&ext.as_str()) {
            hit("EXECUTABLE_ATTACHMENT", EXECUTABLE_ATTACHMENT);
            let stem = name
                .trim()
                .trim_end_matches('.')
                .rsplit_once('.')
                .map_or("", |(stem, _)| stem);
            if extension(stem).is_some_and(|e| DOCUMENT.contains(&e.as_str())) {
                hit("DOUBLE_EXTENSION", DOUBLE_EXTENSION);
            }
        }
    }
    hits
}

/// Rules on the authentication results (`tern-delivery`'s authentication stage).
pub(crate) fn authentication(auth: Option<&crate::Authentication>) -> Vec<RuleHit> {
    use crate::AuthResult;
    let Some(auth) = auth else {
        return Vec::new();
    };
    let mut hits = Vec::new();
    let mut hit = |name: &str, points: f64| {
        hits.push(RuleHit {
            name: name.to_owned(),
            points,
        })
    };
    if auth.dmarc == AuthResult::Fail {
        hit("DMARC_FAIL", DMARC_FAIL);
    }
    match auth.spf {
        AuthResult::Fail => hit("SPF_FAIL", SPF_FAIL),
        AuthResult::SoftFail => hit("SPF_SOFTFAIL", SPF_SOFTFAIL),
        _ => {}
    }
    if auth.dkim_author_domain {
        hit("DKIM_VALID_AU", DKIM_VALID_AUTHOR);
    }
    hits
}

/// Whether `domain` is `local` or below it.
fn in_domain(domain: &str, local: &str) -> bool {
    domain == local
        || domain
            .strip_suffix(local)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// The display name of a From address names one of our domains, while the address is not ours.
fn from_name_spoofs(msg: &Message<'_>, domains: &[String]) -> bool {
    let Some(from) = msg.from() else { return false };
    from.iter().any(|a| {
        let name = a.name().unwrap_or("").to_lowercase();
        let address_domain = a
            .address()
            .and_then(|x| x.rsplit_once('@'))
            .map(|(_, d)| d.to_ascii_lowercase())
            .unwrap_or_default();
        domains.iter().any(|d| {
            !in_domain(&address_domain, d)
                && name
                    .split(|c: char| {
                        c.is_whitespace() || matches!(c, '@' | '<' | '>' | '"' | '(' | ')' | ',')
                    })
                    .any(|w| in_domain(w.trim_end_matches('.'), d))
        })
    })
}

/// A `Received:` field claims to have been added by (or sent from) this very host.
fn forged_received(msg: &Message<'_>, hostname: &str) -> bool {
    let ours = |h: Option<&Host<'_>>| match h {
        Some(Host::Name(n)) => n.trim_end_matches('.').eq_ignore_ascii_case(hostname),
        _ => false,
    };
    msg.received_all().any(|r| ours(r.by()) || ours(r.from()))
}

/// Visible text that is itself a URL or domain name, pointing elsewhere than the href.
fn link_text_mismatch(href: &str, text: &str) -> bool {
    let Some(target) = url_host(href) else {
        return false;
    };
    let text = text.trim();
    if text.contains(char::is_whitespace) {
        return false;
    }
    let shown = url_host(text).or_else(|| {
        // A bare domain as link text ("paypal.com"): at least one dot and a letter TLD.
        let t = text.trim_end_matches('/').to_ascii_lowercase();
        let tld_ok = t
            .rsplit_once('.')
            .is_some_and(|(_, tld)| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
        (tld_ok
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-')))
        .then_some(t)
    });
    match shown {
        Some(shown) => base_domain(&shown) != base_domain(&target),
        None => false,
    }
}

/// The last two labels of a host name (`a.b.example.org` → `example.org`). Coarse — no public
/// suffix list — but enough to tell `paypal.com` from `paypal.com.evil.test`.
fn base_domain(host: &str) -> String {
    let labels: Vec<&str> = host.trim_start_matches("www.").split('.').collect();
    labels[labels.len().saturating_sub(2)..].join(".")
}

#[cfg(test)]
mod tests {
    use mail_parser::MessageParser;

    use super::*;
    use crate::tokenize::analyze;

    fn hits(raw: &str, outside: bool) -> Vec<String> {
        let msg = MessageParser::default()
            .parse(raw.as_bytes())
            .expect("parses");
        let domains = ["tern.test".to_owned()];
        let site = Site {
            hostname: "mx.tern.test",
            domains: &domains,
        };
        evaluate(&msg, &analyze(&msg), site, outside)
            .into_iter()
            .map(|h| h.name)
            .collect()
    }

    const OK_HEAD: &str = "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <1@a.test>\r\n";

    #[test]
    fn a_plain_well_formed_message_hits_nothing() {
        let raw = format!(
            "{OK_HEAD}From: Ann <ann@a.test>\r\nSubject: hi\r\n\r\nsee https://a.test/x\r\n"
        );
        assert!(hits(&raw, true).is_empty());
    }

    #[test]
    fn missing_date_and_message_id_are_scored() {
        assert_eq!(
            hits("From: a@a.test\r\n\r\nx\r\n", true),
            ["MISSING_DATE", "MISSING_MESSAGE_ID"]
        );
    }

    #[test]
    fn display_names_claiming_our_domain_from_elsewhere_are_spoofing() {
        let spoof = format!("{OK_HEAD}From: \"Helpdesk@Tern.test\" <x@evil.test>\r\n\r\nx\r\n");
        assert_eq!(hits(&spoof, true), ["FROM_NAME_SPOOFS_LOCAL_DOMAIN"]);
        let sub = format!("{OK_HEAD}From: \"it.tern.test support\" <x@evil.test>\r\n\r\nx\r\n");
        assert_eq!(hits(&sub, true), ["FROM_NAME_SPOOFS_LOCAL_DOMAIN"]);
        let genuine = format!("{OK_HEAD}From: \"ann@tern.test\" <ann@tern.test>\r\n\r\nx\r\n");
        assert!(hits(&genuine, true).is_empty());
        let lookalike = format!("{OK_HEAD}From: \"notern.test\" <x@evil.test>\r\n\r\nx\r\n");
        assert!(hits(&lookalike, true).is_empty());
    }

    #[test]
    fn received_by_our_own_host_is_forged_only_from_outside() {
        let raw = format!(
            "Received: from [192.0.2.1] by MX.tern.test with ESMTP; Mon, 1 Jan 2024 00:00:00 +0000\r\n\
             {OK_HEAD}\r\nx\r\n"
        );
        assert_eq!(hits(&raw, true), ["FORGED_RECEIVED"]);
        assert!(hits(&raw, false).is_empty());
    }

    #[test]
    fn ip_links_and_mismatched_link_text_are_scored() {
        let raw = format!(
            "{OK_HEAD}Content-Type: text/html\r\n\r\n<a href=\"http://198.51.100.4/login\">x</a>\
             <a href=\"http://paypal.com.evil.test/\">www.paypal.com</a>\
             <a href=\"https://www.shop.test/a\">shop.test</a>\r\n"
        );
        assert_eq!(hits(&raw, true), ["URL_IP_LITERAL", "URL_TEXT_MISMATCH"]);
        let honest = format!(
            "{OK_HEAD}Content-Type: text/html\r\n\r\n<a href=\"https://www.shop.test/a\">shop.test</a>\
             <a href=\"https://x.test/\">click here</a>\r\n"
        );
        assert!(hits(&honest, true).is_empty());
    }

    #[test]
    fn executable_and_double_extension_attachments_are_scored() {
        let attach = |name: &str| {
            format!(
                "{OK_HEAD}Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
                 Content-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/octet-stream\r\n\
                 Content-Disposition: attachment; filename=\"{name}\"\r\n\r\nMZ\r\n--b--\r\n"
            )
        };
        assert_eq!(hits(&attach("setup.EXE"), true), ["EXECUTABLE_ATTACHMENT"]);
        assert_eq!(
            hits(&attach("Invoice.pdf.scr"), true),
            ["EXECUTABLE_ATTACHMENT", "DOUBLE_EXTENSION"]
        );
        assert!(hits(&attach("report.pdf"), true).is_empty());
        assert!(hits(&attach("archive.tar.gz"), true).is_empty());
    }

    #[test]
    fn authentication_results_become_weighted_rules() {
        use crate::{AuthResult, Authentication};
        assert!(authentication(None).is_empty());
        let names = |a| -> Vec<(String, f64)> {
            authentication(Some(&a))
                .into_iter()
                .map(|h| (h.name, h.points))
                .collect()
        };
        assert_eq!(
            names(Authentication::new(
                AuthResult::Fail,
                false,
                AuthResult::Fail
            )),
            [
                ("DMARC_FAIL".to_owned(), DMARC_FAIL),
                ("SPF_FAIL".to_owned(), SPF_FAIL)
            ]
        );
        assert_eq!(
            names(Authentication::new(
                AuthResult::SoftFail,
                true,
                AuthResult::Pass
            )),
            [
                ("SPF_SOFTFAIL".to_owned(), SPF_SOFTFAIL),
                ("DKIM_VALID_AU".to_owned(), DKIM_VALID_AUTHOR)
            ]
        );
        const { assert!(DKIM_VALID_AUTHOR < 0.0) };
    }
}
