//! The filter's output ([`Verdict`]) and the header fields it adds.

use std::fmt::Write as _;

use tern_store::{AccountId, SenderAction};

use crate::rules::RuleHit;

/// What the filter decided about one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Set when the message must not be delivered to anybody; the session answers accordingly.
    pub refusal: Option<Refusal>,
    /// Header fields to add on top of the message (`X-Spam-Score`, `X-Spam-Status`,
    /// `X-Virus-Scan`), each CRLF-terminated and folded; empty when there is nothing to add.
    pub fields: String,
    /// One decision per distinct account, in the order asked.
    pub accounts: Vec<AccountVerdict>,
}

impl Verdict {
    /// A verdict that delivers to every account's INBOX with no added fields.
    pub fn deliver(accounts: &[AccountId]) -> Verdict {
        let mut out = Verdict {
            refusal: None,
            fields: String::new(),
            accounts: Vec::new(),
        };
        for &account in accounts {
            if !out.accounts.iter().any(|a| a.account == account) {
                out.accounts.push(AccountVerdict {
                    account,
                    score: 0.0,
                    bayes: None,
                    sender: None,
                    action: Action::Inbox,
                });
            }
        }
        out
    }

    /// Whether `account`'s copy goes to its Junk mailbox.
    pub fn is_junk(&self, account: AccountId) -> bool {
        self.accounts
            .iter()
            .any(|a| a.account == account && a.action != Action::Inbox)
    }
}

/// Why a message is refused as a whole.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// clamd found malware; the signature name (SMTP: `554 5.7.1`).
    Virus(String),
    /// clamd could not scan it and the failure mode is tempfail (SMTP: `451 4.7.1`).
    ScanFailed(String),
    /// Every recipient's score reached the reject threshold, or every recipient blocks the sender
    /// (SMTP: `550 5.7.1`). The highest score.
    Spam(f64),
}

/// Where one account's copy goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The INBOX (or wherever Sieve puts it).
    Inbox,
    /// The account's Junk mailbox.
    Junk,
    /// Above the reject threshold (or blocked); the message is refused if every account says so,
    /// else this copy goes to Junk.
    Reject,
}

/// The filter's decision for one account.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountVerdict {
    /// The account.
    pub account: AccountId,
    /// Rules plus classifier points.
    pub score: f64,
    /// The classifier's spam probability, `None` while it has learned too little.
    pub bayes: Option<f64>,
    /// The account's sender-list entry that matched the sender, if any.
    pub sender: Option<SenderAction>,
    /// The outcome.
    pub action: Action,
}

/// `X-Spam-Score` and `X-Spam-Status` in SpamAssassin's layout, which mail clients and Sieve
/// scripts already know: `Yes, score=7.2 required=5.0 tests=A,B bayes=0.998`.
pub(crate) fn spam_fields(
    score: f64,
    required: f64,
    spam: bool,
    rules: &[RuleHit],
    bayes: Option<f64>,
    sender: Option<SenderAction>,
) -> String {
    let mut status = format!(
        "{}, score={score:.1} required={required:.1}",
        if spam { "Yes" } else { "No" }
    );
    let tests: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
    let _ = write!(
        status,
        " tests={}",
        if tests.is_empty() {
            "none".to_owned()
        } else {
            tests.join(",")
        }
    );
    match bayes {
        Some(p) => {
            let _ = write!(status, " bayes={p:.3}");
        }
        None => status.push_str(" bayes=untrained"),
    }
    match sender {
        Some(SenderAction::Allow) => status.push_str(" allowlisted"),
        Some(SenderAction::Block) => status.push_str(" blocklisted"),
        None => {}
    }
    let mut out = format!("X-Spam-Score: {score:.1}\r\n");
    out.push_str(&fold("X-Spam-Status", &status));
    out
}

/// One header field, folded at spaces so lines stay within 78 characters where possible
/// (RFC 5322 §2.1.1), CRLF-terminated. A word too long for any line (a long `tests=` list) is
/// split after its commas.
pub(crate) fn fold(name: &str, value: &str) -> String {
    let mut out = format!("{name}:");
    let mut line = out.len();
    for word in value.split(' ').filter(|w| !w.is_empty()) {
        let pieces: Vec<&str> = if word.len() > 76 {
            word.split_inclusive(',').collect()
        } else {
            vec![word]
        };
        for (i, piece) in pieces.iter().enumerate() {
            let sep = usize::from(i == 0);
            if line + sep + piece.len() > 78 && line > name.len() + 1 {
                out.push_str("\r\n\t");
                line = 1;
            } else if i == 0 {
                out.push(' ');
                line += 1;
            }
            out.push_str(piece);
            line += piece.len();
        }
    }
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(name: &str) -> RuleHit {
        RuleHit {
            name: name.into(),
            points: 1.0,
        }
    }

    #[test]
    fn spam_fields_follow_the_spamassassin_layout() {
        let f = spam_fields(7.25, 5.0, true, &[hit("MISSING_DATE")], Some(0.9981), None);
        assert_eq!(
            f,
            "X-Spam-Score: 7.2\r\nX-Spam-Status: Yes, score=7.2 required=5.0 tests=MISSING_DATE bayes=0.998\r\n"
        );
        let f = spam_fields(-1.0, 5.0, false, &[], None, Some(SenderAction::Allow));
        // 82 characters: folded before the last word.
        assert!(
            f.ends_with(
                "No, score=-1.0 required=5.0 tests=none bayes=untrained\r\n\tallowlisted\r\n"
            ),
            "{f}"
        );
    }

    #[test]
    fn long_fields_fold_below_78_columns_and_unfold_to_the_value() {
        let rules: Vec<RuleHit> = (0..12)
            .map(|i| hit(&format!("SOME_LONG_RULE_NAME_{i}")))
            .collect();
        let f = spam_fields(30.0, 5.0, true, &rules, Some(1.0), None);
        for line in f.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(line.len() <= 78, "{line:?}");
        }
        // Unfolding (RFC 5322 §2.2.3: remove CRLF before WSP) and dropping the tab restores the list.
        let unfolded = f.replace("\r\n\t", "");
        assert!(
            unfolded.contains("SOME_LONG_RULE_NAME_0,SOME_LONG_RULE_NAME_1,"),
            "{unfolded}"
        );
    }
}
